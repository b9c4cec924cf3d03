#include "state/text_signals.h"

#include <algorithm>

#include "common/timestamp.h"

namespace whisperer::state {
namespace {

// The first `max` bytes of `s`, cut back to a UTF-8 character boundary.
std::string_view Utf8Prefix(std::string_view s, size_t max) {
  if (s.size() <= max) return s;
  size_t n = max;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

void SetCapped(std::string& out, std::string_view s) {
  out.assign(Utf8Prefix(s, kMaxTextRefBytes));
}

}  // namespace

std::string_view TextProperty(simdjson::dom::element event, std::string_view path) {
  simdjson::dom::element e;
  if (event["properties"].get(e) != simdjson::SUCCESS) return {};
  while (!path.empty()) {
    size_t dot = path.find('.');
    std::string_view part = path.substr(0, dot);
    if (!e.is_object() || e[part].get(e) != simdjson::SUCCESS) return {};
    path = dot == std::string_view::npos ? std::string_view() : path.substr(dot + 1);
  }
  std::string_view s;
  if (e.get(s) != simdjson::SUCCESS) return {};
  return s;
}

std::string_view ScoredPart(std::string_view text) {
  if (text.size() <= kMaxScoredTextBytes) return text;
  std::string_view head = text.substr(0, kMaxScoredTextBytes);
  size_t space = head.find_last_of(" \t\n\r");
  if (space != std::string_view::npos && space >= kMaxScoredTextBytes / 2) {
    return head.substr(0, space);
  }
  return Utf8Prefix(text, kMaxScoredTextBytes);
}

void ScoreTexts(const text::SentimentAnalyzer& sentiment, const text::IntentModel* intent,
                simdjson::dom::element event, const std::vector<std::string>& properties,
                EventFacts* facts) {
  facts->texts.clear();
  facts->text_intent.clear();
  facts->text_intent_probability = 0;
  for (const std::string& path : properties) {
    std::string_view value = TextProperty(event, path);
    if (value.empty()) continue;
    value = ScoredPart(value);
    if (intent != nullptr && facts->texts.empty()) {
      std::vector<text::IntentScore> top = intent->Predict(value, 1);
      if (!top.empty()) {
        facts->text_intent = std::move(top.front().label);
        facts->text_intent_probability = top.front().probability;
      }
    }
    facts->texts.push_back({path, sentiment.Score(value).compound});
  }
}

void FoldTexts(TextSentiment& s, const EventFacts& f) {
  if (f.texts.empty()) return;
  const int64_t ts = f.timestamp_ms;
  if (s.count == 0 || ts >= s.latest_ms) {
    s.latest = f.texts.front().compound;
    SetCapped(s.latest_property, f.texts.front().property);
    s.latest_ms = ts;
    SetCapped(s.latest_message_id, f.message_id);
  }
  for (const EventFacts::ScoredText& t : f.texts) {
    ++s.count;
    s.mean += (t.compound - s.mean) / static_cast<double>(s.count);
    if (t.compound >= kPositiveSentiment) ++s.positive;
    if (t.compound <= kNegativeSentiment) ++s.negative;
  }
  if (!f.text_intent.empty() && (s.intent.empty() || ts >= s.intent_ms)) {
    SetCapped(s.intent, f.text_intent);
    s.intent_probability = f.text_intent_probability;
    s.intent_ms = ts;
  }
}

void MergeTexts(TextSentiment& s, const TextSentiment& l) {
  if (l.count > 0) {
    if (s.count == 0 || l.latest_ms > s.latest_ms) {
      s.latest = l.latest;
      s.latest_property = l.latest_property;
      s.latest_ms = l.latest_ms;
      s.latest_message_id = l.latest_message_id;
    }
    const uint64_t count = s.count + l.count;
    s.mean = (s.mean * static_cast<double>(s.count) + l.mean * static_cast<double>(l.count)) /
             static_cast<double>(count);
    s.count = count;
    s.positive += l.positive;
    s.negative += l.negative;
  }
  if (!l.intent.empty() && (s.intent.empty() || l.intent_ms > s.intent_ms)) {
    s.intent = l.intent;
    s.intent_probability = l.intent_probability;
    s.intent_ms = l.intent_ms;
  }
}

void WriteTextSentiment(const TextSentiment& s, JsonWriter& w) {
  if (s.count == 0) {
    w.Null();
    return;
  }
  w.StartObject();
  w.Key("latest");
  w.StartObject();
  w.Key("compound");
  w.Double(s.latest);
  w.Key("property");
  w.String(s.latest_property);
  WriteTime(w, "at", s.latest_ms);
  w.Key("messageId");
  w.String(s.latest_message_id);
  w.EndObject();
  w.Key("average");
  w.Double(s.mean);
  w.Key("count");
  w.Uint(s.count);
  w.Key("positive");
  w.Uint(s.positive);
  w.Key("negative");
  w.Uint(s.negative);
  w.EndObject();
}

void WriteTextIntent(const TextSentiment& s, JsonWriter& w) {
  if (s.intent.empty()) {
    w.Null();
    return;
  }
  w.StartObject();
  w.Key("label");
  w.String(s.intent);
  w.Key("probability");
  w.Double(s.intent_probability);
  WriteTime(w, "at", s.intent_ms);
  w.EndObject();
}

}  // namespace whisperer::state
