// Text signals: the sentiment (text/sentiment.h, VADER) and, when the workspace has an intent
// model, the intent (text/intent_model.h) of what customers write in the event properties the
// workspace names (models.text.properties: paths below `properties`, dots nesting, such as
// `comment` or `review.body`).
//
// Per event, ScoreTexts scores every named property that holds a non-empty string, in config
// order, into the event's facts; properties absent, of another type, or empty are skipped. The
// intent model predicts the top intent of the first of them only (it is the one that becomes
// the profile's latest text). Texts longer than kMaxScoredTextBytes are scored on their first
// kMaxScoredTextBytes (cut at a space when there is one): VADER is made for sentences and
// posts, and its "but" rule is quadratic in the words, so a 32 KiB property must not hold the
// commit lock for milliseconds. FoldTexts (called by FoldEvent) then folds the scores into the
// profile's TextSentiment (state/profile.h). The engine does not score the texts of bots' events
// (FoldEvent keeps bots out of the profile's figures), nor any when none are configured.
//
// Thread-safety: pure functions; the analyzer and the model are immutable and shared.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/json_writer.h"
#include "simdjson.h"
#include "state/profile.h"
#include "text/intent_model.h"
#include "text/sentiment.h"

namespace whisperer::state {

inline constexpr size_t kMaxScoredTextBytes = 2048;

// The string at `path` below the event's `properties` ("review.body": properties.review.body);
// "" when it is absent or not a string.
std::string_view TextProperty(simdjson::dom::element event, std::string_view path);

// The first kMaxScoredTextBytes of `text` (whole when shorter), ending at a space when there is
// one in its second half, else at a UTF-8 character boundary.
std::string_view ScoredPart(std::string_view text);

// Scores the non-empty strings at `properties` of `event` into facts->texts (replacing what was
// there), and with `intent` (may be null) the top intent of the first into facts->text_intent.
// `properties` must outlive the facts (texts[].property points into it).
void ScoreTexts(const text::SentimentAnalyzer& sentiment, const text::IntentModel* intent,
                simdjson::dom::element event, const std::vector<std::string>& properties,
                EventFacts* facts);

// Folds the scored texts of one event (facts.texts, facts.text_intent) into `state`: counts and
// mean updated; the first text becomes the latest unless the latest is of a later event time.
void FoldTexts(TextSentiment& state, const EventFacts& facts);

// Folds `loser` into `survivor`: counts added, means weighted by their counts, the latest text
// and the latest intent each the one of the later event time (the survivor's on a tie).
void MergeTexts(TextSentiment& survivor, const TextSentiment& loser);

// The value of the profile JSON's "sentiment" key: null when no text was scored, else
// {"latest": {"compound", "property", "at", "messageId"}, "average", "count", "positive",
// "negative"}.
void WriteTextSentiment(const TextSentiment& state, JsonWriter& w);
// The value of its "textIntent" key: null when none was predicted, else {"label",
// "probability", "at"}.
void WriteTextIntent(const TextSentiment& state, JsonWriter& w);

}  // namespace whisperer::state
