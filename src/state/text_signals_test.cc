#include "state/text_signals.h"

#include <gtest/gtest.h>

#include <deque>

#include "common/timestamp.h"
#include "testing/tiny_intent_model.h"

namespace whisperer::state {
namespace {

constexpr int64_t kT0 = 1'700'000'000'000;

const text::SentimentAnalyzer& Analyzer() {
  static const text::SentimentAnalyzer* analyzer = text::SentimentAnalyzer::Create().release();
  return *analyzer;
}

using testing::TinyIntentModel;

class TextSignalsTest : public ::testing::Test {
 protected:
  // Parses `properties_json` as the properties of a track event at `ts` and scores `paths`.
  EventFacts Score(const std::string& properties_json, const std::vector<std::string>& paths,
                   int64_t ts = kT0, const text::IntentModel* intent = nullptr) {
    json_.push_back(R"({"type":"track","event":"Review","anonymousId":"a","messageId":"m)" +
                    std::to_string(json_.size() + 1) + R"(","timestamp":")" + FormatIso8601(ts) +
                    R"(","properties":)" + properties_json + "}");
    simdjson::dom::element doc;
    EXPECT_EQ(parsers_.emplace_back().parse(json_.back()).get(doc), simdjson::SUCCESS);
    absl::StatusOr<EventFacts> facts = ExtractFacts(doc, identity::IdentityRules());
    EXPECT_TRUE(facts.ok()) << facts.status();
    EXPECT_TRUE(facts->texts.empty());  // ExtractFacts scores nothing
    ScoreTexts(Analyzer(), intent, doc, paths_.emplace_back(paths), &*facts);
    return *std::move(facts);
  }

  // Kept alive: the facts point into the documents and the paths.
  std::deque<std::vector<std::string>> paths_;
  std::deque<std::string> json_;
  std::deque<simdjson::dom::parser> parsers_;
};

TEST_F(TextSignalsTest, ScoresConfiguredStringPropertiesInConfigOrder) {
  const std::vector<std::string> paths = {"comment", "review.body", "rating", "missing", "empty"};
  EventFacts f = Score(R"({"rating":5,"empty":"","review":{"body":"Terrible service, I hate it."},)"
                       R"("comment":"I love it, great product!"})",
                       paths);
  ASSERT_EQ(f.texts.size(), 2u);
  EXPECT_EQ(f.texts[0].property, "comment");
  EXPECT_EQ(f.texts[0].compound, Analyzer().Score("I love it, great product!").compound);
  EXPECT_GT(f.texts[0].compound, 0.5);
  EXPECT_EQ(f.texts[1].property, "review.body");  // nested
  EXPECT_LT(f.texts[1].compound, -0.5);
  EXPECT_EQ(f.sentiment(), f.texts[0].compound);
  EXPECT_TRUE(f.text_intent.empty());  // no model

  // Numbers, objects, arrays and absent paths are not texts; neither is a path through a string.
  f = Score(R"({"comment":42,"review":{"body":["bad"]},"note":"ok"})",
            {"comment", "review.body", "review", "note.deeper", "nope.x"});
  EXPECT_TRUE(f.texts.empty());
  EXPECT_EQ(f.sentiment(), std::nullopt);
  // Nothing configured, nothing scored.
  f = Score(R"({"comment":"I love it"})", {});
  EXPECT_TRUE(f.texts.empty());
}

TEST_F(TextSignalsTest, LongTextsAreScoredOnTheirBeginning) {
  std::string word = "good ";
  std::string long_text;
  while (long_text.size() < 3 * kMaxScoredTextBytes) long_text += word;
  std::string_view part = ScoredPart(long_text);
  EXPECT_LE(part.size(), kMaxScoredTextBytes);
  EXPECT_GT(part.size(), kMaxScoredTextBytes - word.size());
  EXPECT_EQ(part.back(), 'd');  // cut at a space
  // Without a space, at a character boundary: "é" is two bytes.
  std::string accents;
  while (accents.size() < kMaxScoredTextBytes + 10) accents += "\xC3\xA9";
  accents = "x" + accents;
  part = ScoredPart(accents);
  EXPECT_EQ(part.size(), kMaxScoredTextBytes - 1);
  EXPECT_EQ(ScoredPart("short"), "short");
}

TEST_F(TextSignalsTest, FoldCountsMeansAndKeepsTheLatestByTime) {
  TextSentiment s;
  EventFacts a = Score(R"({"comment":"I love it, great product!"})", {"comment"}, kT0 + 1000);
  FoldTexts(s, a);
  EXPECT_EQ(s.count, 1u);
  EXPECT_EQ(s.positive, 1u);
  EXPECT_EQ(s.negative, 0u);
  EXPECT_EQ(s.latest, a.texts[0].compound);
  EXPECT_EQ(s.mean, a.texts[0].compound);
  EXPECT_EQ(s.latest_property, "comment");
  EXPECT_EQ(s.latest_ms, kT0 + 1000);
  EXPECT_EQ(s.latest_message_id, "m1");

  // An older event (sent late) counts, but is not the latest.
  EventFacts b = Score(R"({"comment":"Awful. I hate this."})", {"comment"}, kT0);
  FoldTexts(s, b);
  EXPECT_EQ(s.count, 2u);
  EXPECT_EQ(s.negative, 1u);
  EXPECT_EQ(s.latest, a.texts[0].compound);
  EXPECT_DOUBLE_EQ(s.mean, (a.texts[0].compound + b.texts[0].compound) / 2);

  // Two texts in one event: both counted; the first (in config order) is the latest. A neutral
  // text is neither positive nor negative.
  EventFacts c = Score(R"({"title":"The box is blue","body":"Bad, bad, bad."})", {"title", "body"},
                       kT0 + 2000);
  FoldTexts(s, c);
  EXPECT_EQ(s.count, 4u);
  EXPECT_EQ(s.positive, 1u);
  EXPECT_EQ(s.negative, 2u);
  EXPECT_EQ(s.latest, 0);
  EXPECT_EQ(s.latest_property, "title");
  EXPECT_EQ(s.latest_message_id, "m3");
  EXPECT_DOUBLE_EQ(s.mean, (a.texts[0].compound + b.texts[0].compound + c.texts[1].compound) / 4);

  // Events without texts change nothing.
  TextSentiment before = s;
  FoldTexts(s, Score(R"({"x":1})", {"comment"}));
  EXPECT_EQ(s.count, before.count);
  EXPECT_EQ(s.latest_ms, before.latest_ms);
}

TEST_F(TextSignalsTest, LongMessageIdsAreCapped) {
  TextSentiment s;
  EventFacts f;
  f.timestamp_ms = kT0;
  // The longest messageId an event may carry is kept whole.
  std::string id(256, 'x');
  f.message_id = id;
  f.texts.push_back({"comment", 0.5});
  FoldTexts(s, f);
  EXPECT_EQ(s.latest_message_id, id);
  id.assign(1000, 'y');
  f.message_id = id;
  f.timestamp_ms = kT0 + 1;
  FoldTexts(s, f);
  EXPECT_EQ(s.latest_message_id.size(), kMaxTextRefBytes);
}

TEST_F(TextSignalsTest, MergeAddsCountsWeighsMeansAndKeepsTheLaterLatest) {
  TextSentiment a, b, none;
  a.count = 3;
  a.mean = 0.5;
  a.positive = 2;
  a.negative = 1;
  a.latest = 0.9;
  a.latest_property = "comment";
  a.latest_ms = kT0;
  a.latest_message_id = "a";
  b.count = 1;
  b.mean = -0.7;
  b.negative = 1;
  b.latest = -0.7;
  b.latest_property = "review.body";
  b.latest_ms = kT0 + 5;
  b.latest_message_id = "b";
  b.intent = "refund";
  b.intent_probability = 0.8;
  b.intent_ms = kT0 + 5;

  TextSentiment merged = a;
  MergeTexts(merged, b);
  EXPECT_EQ(merged.count, 4u);
  EXPECT_DOUBLE_EQ(merged.mean, (3 * 0.5 - 0.7) / 4);
  EXPECT_EQ(merged.positive, 2u);
  EXPECT_EQ(merged.negative, 2u);
  EXPECT_EQ(merged.latest, -0.7);
  EXPECT_EQ(merged.latest_property, "review.body");
  EXPECT_EQ(merged.latest_message_id, "b");
  EXPECT_EQ(merged.intent, "refund");
  EXPECT_EQ(merged.intent_ms, kT0 + 5);

  // The other way round: the survivor's own latest is older, so it is replaced too; and a
  // loser without texts changes nothing.
  merged = b;
  MergeTexts(merged, a);
  EXPECT_EQ(merged.count, 4u);
  EXPECT_EQ(merged.latest_message_id, "b");
  EXPECT_EQ(merged.intent, "refund");
  MergeTexts(merged, none);
  EXPECT_EQ(merged.count, 4u);
  merged = none;
  MergeTexts(merged, a);
  EXPECT_EQ(merged.count, 3u);
  EXPECT_EQ(merged.mean, 0.5);
  EXPECT_EQ(merged.latest_message_id, "a");
}

TEST_F(TextSignalsTest, PredictsTheIntentOfTheFirstText) {
  std::unique_ptr<text::IntentModel> model = TinyIntentModel();
  ASSERT_NE(model, nullptr);
  EventFacts f = Score(R"({"subject":"i want my money back, refund please","body":"where is it"})",
                       {"subject", "body"}, kT0, model.get());
  ASSERT_EQ(f.texts.size(), 2u);
  EXPECT_EQ(f.text_intent, "refund");
  EXPECT_GT(f.text_intent_probability, 0.5);
  EXPECT_LE(f.text_intent_probability, 1);

  TextSentiment s;
  FoldTexts(s, f);
  EXPECT_EQ(s.intent, "refund");
  EXPECT_EQ(s.intent_probability, f.text_intent_probability);
  EXPECT_EQ(s.intent_ms, kT0);
  // A later text replaces it; an earlier one does not.
  FoldTexts(s, Score(R"({"subject":"where is my parcel, has it shipped"})", {"subject"}, kT0 + 10,
                     model.get()));
  EXPECT_EQ(s.intent, "track_order");
  FoldTexts(s, Score(R"({"subject":"refund my money"})", {"subject"}, kT0 + 5, model.get()));
  EXPECT_EQ(s.intent, "track_order");
  EXPECT_EQ(s.intent_ms, kT0 + 10);
  // No texts, no prediction.
  f = Score(R"({"subject":7})", {"subject"}, kT0, model.get());
  EXPECT_TRUE(f.text_intent.empty());
}

TEST_F(TextSignalsTest, JsonIsNullWithoutTexts) {
  TextSentiment s;
  std::string json;
  JsonWriter w(&json);
  w.StartArray();
  WriteTextSentiment(s, w);
  WriteTextIntent(s, w);
  w.EndArray();
  EXPECT_EQ(json, "[null,null]");

  s.count = 2;
  s.mean = 0.25;
  s.positive = 1;
  s.latest = 0.5;
  s.latest_property = "review.body";
  s.latest_ms = kT0;
  s.latest_message_id = "m1";
  s.intent = "refund";
  s.intent_probability = 0.75;
  s.intent_ms = kT0;
  json.clear();
  JsonWriter w2(&json);
  w2.StartArray();
  WriteTextSentiment(s, w2);
  WriteTextIntent(s, w2);
  w2.EndArray();
  EXPECT_EQ(json, R"([{"latest":{"compound":0.5,"property":"review.body",)"
                  R"("at":"2023-11-14T22:13:20.000Z","messageId":"m1"},"average":0.25,"count":2,)"
                  R"("positive":1,"negative":0},)"
                  R"({"label":"refund","probability":0.75,"at":"2023-11-14T22:13:20.000Z"}])");
}

}  // namespace
}  // namespace whisperer::state
