#include "api/segment_parser.h"

#include <gtest/gtest.h>

#include "common/status.h"
#include "simdjson.h"

namespace whisperer::api {
namespace {

constexpr int64_t kNow = 1717243200000;  // 2024-06-01T12:00:00.000Z

RequestInfo Info() { return RequestInfo{kNow, "203.0.113.7", "curl/8"}; }

// Returns field `key` of the stored JSON as raw JSON text.
std::string FieldOf(const Event& e, std::string_view key) {
  simdjson::dom::parser p;
  simdjson::dom::element doc = p.parse(e.json);
  simdjson::dom::element v;
  if (doc[key].get(v)) return "<absent>";
  return simdjson::minify(v);
}

TEST(SegmentParserTest, TrackIsNormalized) {
  SegmentParser parser;
  auto r = parser.ParseSingle(EventType::kTrack, R"({
      "userId": "u1", "event": "Order Completed", "properties": {"revenue": 9.5},
      "messageId": "m-1", "timestamp": "2024-06-01T11:59:00.000Z", "custom": [1,2],
      "writeKey": "wk", "receivedAt": "1999-01-01T00:00:00Z", "type": "identify"})",
                              Info());
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->events.size(), 1u);
  const Event& e = r->events[0];
  EXPECT_EQ(r->write_key, "wk");
  EXPECT_EQ(e.type, EventType::kTrack);
  EXPECT_EQ(e.message_id, "m-1");
  EXPECT_EQ(e.user_id, "u1");
  EXPECT_EQ(e.timestamp_ms, kNow - 60'000);  // no sentAt: client time kept
  EXPECT_EQ(e.json,
            R"({"type":"track","messageId":"m-1","userId":"u1","event":"Order Completed",)"
            R"("properties":{"revenue":9.5},"custom":[1,2],)"
            R"("context":{"ip":"203.0.113.7","userAgent":"curl/8"},)"
            R"("originalTimestamp":"2024-06-01T11:59:00.000Z",)"
            R"("receivedAt":"2024-06-01T12:00:00.000Z","timestamp":"2024-06-01T11:59:00.000Z"})");
}

// JavaScript writes 2e19 as 20000000000000000000: past 64 bits, so simdjson refuses it as an
// integer. Such a number is read as the double JavaScript holds, not a reason to drop a batch.
TEST(SegmentParserTest, IntegersPast64BitsAreReadAsDoubles) {
  SegmentParser parser;
  auto r = parser.ParseBatch(
      R"({"batch":[{"type":"track","userId":"u","event":"E","properties":{)"
      R"("big":20000000000000000000,"low":-9300000000000000000,"max":18446744073709551615,)"
      R"("min":-9223372036854775808,"fine":1.5e300,"text":"123456789012345678901234 \" 99999999999999999999"}}]})",
      Info());
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->events.size(), 1u);
  EXPECT_EQ(
      FieldOf(r->events[0], "properties"),
      R"({"big":2e+19,"low":-9.3e+18,"max":18446744073709551615,)"
      R"("min":-9223372036854775808,"fine":1.5e+300,"text":"123456789012345678901234 \" 99999999999999999999"})");
  // A number no double holds is still malformed.
  auto out_of_range = parser.ParseBatch(
      R"({"batch":[{"type":"track","userId":"u","event":"E","properties":{"x":1e400}}]})", Info());
  EXPECT_EQ(ErrorCodeOf(out_of_range.status()), "malformed_json");
}

TEST(SegmentParserTest, ClockSkewIsCorrected) {
  SegmentParser parser;
  // The device clock is 1 hour fast: it says it sent at 13:00:05 an event made at 13:00:00.
  auto r = parser.ParseSingle(EventType::kTrack,
                              R"({"anonymousId":"a","event":"x",
                                  "timestamp":"2024-06-01T13:00:00Z",
                                  "sentAt":"2024-06-01T13:00:05Z"})",
                              Info());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->events[0].timestamp_ms, kNow - 5000);
  EXPECT_EQ(FieldOf(r->events[0], "timestamp"), R"("2024-06-01T11:59:55.000Z")");
  EXPECT_EQ(FieldOf(r->events[0], "originalTimestamp"), R"("2024-06-01T13:00:00.000Z")");
  EXPECT_EQ(FieldOf(r->events[0], "sentAt"), R"("2024-06-01T13:00:05.000Z")");
}

// A line of an archive that carries receivedAt is an event as stored: its timestamp was
// corrected when it arrived and is kept; live traffic's receivedAt is ignored.
TEST(SegmentParserTest, ArchivedEventsKeepTheirCorrectedTime) {
  SegmentParser parser;
  RequestInfo archive = Info();
  archive.archive = true;
  // As exported: the client's times, and the time corrected on arrival in 2023.
  const std::string stored =
      R"({"type":"track","anonymousId":"a","event":"x","messageId":"m1",)"
      R"("originalTimestamp":"2023-01-01T13:00:00.000Z","sentAt":"2023-01-01T13:00:05.000Z",)"
      R"("receivedAt":"2023-01-01T12:00:00.000Z","timestamp":"2023-01-01T11:59:55.000Z"})";
  auto r = parser.ParseLine(stored, archive);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(FieldOf(*r, "timestamp"), R"("2023-01-01T11:59:55.000Z")");
  EXPECT_EQ(FieldOf(*r, "originalTimestamp"), R"("2023-01-01T13:00:00.000Z")");
  EXPECT_EQ(FieldOf(*r, "sentAt"), R"("2023-01-01T13:00:05.000Z")");
  EXPECT_EQ(FieldOf(*r, "receivedAt"), R"("2024-06-01T12:00:00.000Z")");  // this server's
  // Sent with no time of its own but a batch's sentAt: the stored timestamp is the receipt's,
  // not a client's time, and gains no originalTimestamp.
  r = parser.ParseLine(
      R"({"type":"page","userId":"u","sentAt":"2023-01-01T13:00:05.000Z",)"
      R"("receivedAt":"2023-01-01T12:00:00.000Z","timestamp":"2023-01-01T12:00:00.000Z"})",
      archive);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->timestamp_ms, kNow - 44'668'800'000);  // 2023-01-01T12:00:00Z
  EXPECT_EQ(FieldOf(*r, "originalTimestamp"), "<absent>");
  // Without receivedAt a line is what a client sent, corrected as live traffic is; so is a
  // line whose receivedAt is not a time.
  r = parser.ParseLine(
      R"({"type":"page","userId":"u","timestamp":"2024-06-01T13:00:00Z","sentAt":"2024-06-01T13:00:05Z"})",
      archive);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->timestamp_ms, kNow - 5000);
  r = parser.ParseLine(
      R"({"type":"page","userId":"u","timestamp":"2024-06-01T13:00:00Z","sentAt":"2024-06-01T13:00:05Z","receivedAt":"soon"})",
      archive);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->timestamp_ms, kNow - 5000);
  // Over HTTP, a client's receivedAt changes nothing.
  r = parser.ParseLine(stored, Info());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->timestamp_ms, kNow - 5000);
}

TEST(SegmentParserTest, MissingTimestampIsReceivedAtAndMessageIdAssigned) {
  SegmentParser parser;
  auto r = parser.ParseSingle(EventType::kIdentify, R"({"userId":"u","traits":{"a":1}})", Info());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->events[0].timestamp_ms, kNow);
  EXPECT_EQ(r->events[0].message_id.size(), 36u);
  EXPECT_EQ(FieldOf(r->events[0], "originalTimestamp"), "<absent>");
}

TEST(SegmentParserTest, ContextIpAndUserAgentKeptWhenSent) {
  SegmentParser parser;
  auto r = parser.ParseSingle(EventType::kPage,
                              R"({"userId":"u","context":{"ip":"1.2.3.4","locale":"fr"}})", Info());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(FieldOf(r->events[0], "context"),
            R"({"ip":"1.2.3.4","locale":"fr","userAgent":"curl/8"})");
}

TEST(SegmentParserTest, IntegerIdsBecomeStrings) {
  SegmentParser parser;
  auto r = parser.ParseSingle(EventType::kGroup, R"({"userId":42,"groupId":7})", Info());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->events[0].user_id, "42");
  EXPECT_EQ(FieldOf(r->events[0], "groupId"), R"("7")");
}

struct BadCase {
  EventType type;
  const char* body;
  const char* code;
  const char* field;
};

TEST(SegmentParserTest, RejectsBadEventsNamingTheField) {
  const BadCase cases[] = {
      {EventType::kTrack, R"({"event":"x"})", "missing_field", "userId"},
      {EventType::kTrack, R"({"userId":"","anonymousId":null,"event":"x"})", "missing_field",
       "userId"},
      {EventType::kTrack, R"({"userId":"u"})", "missing_field", "event"},
      {EventType::kTrack, R"({"userId":"u","event":""})", "missing_field", "event"},
      {EventType::kTrack, R"({"userId":"u","event":5})", "wrong_type", "event"},
      {EventType::kTrack, R"({"userId":true,"event":"x"})", "wrong_type", "userId"},
      {EventType::kTrack, R"({"userId":"u","event":"x","properties":[1]})", "wrong_type",
       "properties"},
      {EventType::kTrack, R"({"userId":"u","event":"x","context":"c"})", "wrong_type", "context"},
      {EventType::kTrack, R"({"userId":"u","event":"x","timestamp":"yesterday"})",
       "invalid_timestamp", "timestamp"},
      {EventType::kTrack, R"({"userId":"u","event":"x","sentAt":12})", "wrong_type", "sentAt"},
      {EventType::kTrack,
       R"({"userId":"u","event":"x","timestamp":"0000-01-01T00:00:00Z","sentAt":"9999-12-31T23:59:59Z"})",
       "invalid_timestamp", "sentAt"},
      {EventType::kTrack, R"({"userId":"u","event":"x","messageId":{}})", "wrong_type",
       "messageId"},
      {EventType::kIdentify, R"({"userId":"u","traits":"t"})", "wrong_type", "traits"},
      {EventType::kGroup, R"({"userId":"u"})", "missing_field", "groupId"},
      {EventType::kAlias, R"({"anonymousId":"a","previousId":"p"})", "missing_field", "userId"},
      {EventType::kAlias, R"({"userId":"u"})", "missing_field", "previousId"},
      {EventType::kPage, R"({"userId":"u","name":3})", "wrong_type", "name"},
      {EventType::kTrack, R"([1])", "wrong_type", ""},
      {EventType::kTrack, R"({"userId":"u",)", "malformed_json", ""},
      {EventType::kTrack, "", "malformed_json", ""},
      {EventType::kTrack, "{\"userId\":\"\xff\",\"event\":\"x\"}", "invalid_utf8", ""},
      // A key twice in one object, at any depth: readers disagree on which counts.
      {EventType::kTrack, R"({"userId":"u","event":"x","userId":"v"})", "duplicate_key", "userId"},
      {EventType::kTrack,
       R"({"userId":"u","event":"Order Completed","properties":{"revenue":10,"revenue":1000}})",
       "duplicate_key", "properties.revenue"},
      {EventType::kTrack, R"({"userId":"u","event":"x","properties":{"items":[{},{"a":1,"a":2}]}})",
       "duplicate_key", "properties.items[1].a"},
      {EventType::kTrack, R"({"userId":"u","event":"x","properties":{},"properties":{}})",
       "duplicate_key", "properties"},
  };
  for (const BadCase& c : cases) {
    SegmentParser parser;
    auto r = parser.ParseSingle(c.type, c.body, Info());
    ASSERT_FALSE(r.ok()) << c.body;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument) << c.body;
    EXPECT_EQ(ErrorCodeOf(r.status()), c.code) << c.body << " " << r.status();
    EXPECT_EQ(ErrorFieldOf(r.status()), c.field) << c.body;
    EXPECT_FALSE(r.status().message().empty());
  }
}

TEST(SegmentParserTest, SingleEventSizeLimit) {
  SegmentParser parser(Limits{.max_event_bytes = 100});
  std::string body = R"({"userId":"u","event":")" + std::string(100, 'x') + "\"}";
  auto r = parser.ParseSingle(EventType::kTrack, body, Info());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(ErrorCodeOf(r.status()), "event_too_large");
  EXPECT_NE(r.status().message().find("100"), std::string_view::npos);
  // Measured without blanks, as in a batch: a pretty-printed body within the limit once
  // compact is an event within it.
  SegmentParser roomy(Limits{.max_event_bytes = 60});
  const std::string compact = R"({"userId":"u","event":"e","properties":{"a":1}})";
  ASSERT_LE(compact.size(), 60u);
  const std::string pretty =
      "{\n  \"userId\": \"u\",\n  \"event\": \"e\",\n  \"properties\": {\n    \"a\": 1\n  }\n}\n";
  ASSERT_GT(pretty.size(), 60u);
  EXPECT_TRUE(roomy.ParseSingle(EventType::kTrack, pretty, Info()).ok());
}

// The limit is on the event as sent: the fields the server adds (receivedAt, timestamp, a
// messageId, the request's ip and User-Agent, the batch's context) do not push an event the
// client measured under the limit over it.
TEST(SegmentParserTest, EventLimitCountsTheEventAsSentNotWhatTheServerAdds) {
  const size_t limit = 1000;
  SegmentParser parser(Limits{.max_event_bytes = limit});
  const std::string head = R"({"type":"track","userId":"u","event":")";
  const std::string tail = "\"}";
  const std::string at_limit = head + std::string(limit - head.size() - tail.size(), 'x') + tail;
  ASSERT_EQ(at_limit.size(), limit);
  const std::string long_agent(300, 'a');  // a long User-Agent header
  RequestInfo info = Info();
  info.user_agent = long_agent;
  auto r = parser.ParseBatch(R"({"context":{"locale":"de"},"batch":[)" + at_limit + "]}", info);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->events.size(), 1u) << ErrorCodeOf(r->rejected[0].error);
  EXPECT_GT(r->events[0].json.size(), limit + 300);  // stored with what the server added
  // One byte more as sent is over.
  const std::string over = head + std::string(limit + 1 - head.size() - tail.size(), 'x') + tail;
  auto o = parser.ParseBatch(R"({"batch":[)" + over + "]}", Info());
  ASSERT_TRUE(o.ok()) << o.status();
  EXPECT_TRUE(o->events.empty());
  ASSERT_EQ(o->rejected.size(), 1u);
  EXPECT_EQ(ErrorCodeOf(o->rejected[0].error), "event_too_large");
  EXPECT_NE(o->rejected[0].error.message().find("1001 bytes"), std::string_view::npos)
      << o->rejected[0].error.message();
  auto single = parser.ParseSingle(EventType::kTrack, at_limit, info);
  ASSERT_TRUE(single.ok()) << single.status();
}

TEST(SegmentParserTest, BatchKeepsValidAndListsRejected) {
  SegmentParser parser;
  auto r = parser.ParseBatch(R"({
      "writeKey": "wk", "sentAt": "2024-06-01T12:00:10Z",
      "context": {"library": {"name": "analytics-node"}, "locale": "en"},
      "batch": [
        {"type":"track","userId":"u","event":"a","timestamp":"2024-06-01T12:00:00Z",
         "context":{"locale":"de"}},
        {"type":"track","userId":"u"},
        {"type":"bogus","userId":"u"},
        {"type":"identify","anonymousId":"x"},
        "not an object",
        {"type":null,"userId":"u","event":"e"}
      ]})",
                             Info());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->write_key, "wk");
  ASSERT_EQ(r->events.size(), 2u);
  // Batch-level sentAt corrects the skew; batch context fills keys the event lacks.
  EXPECT_EQ(r->events[0].timestamp_ms, kNow - 10'000);
  EXPECT_EQ(
      FieldOf(r->events[0], "context"),
      R"({"locale":"de","library":{"name":"analytics-node"},"ip":"203.0.113.7","userAgent":"curl/8"})");
  EXPECT_EQ(r->events[1].type, EventType::kIdentify);
  ASSERT_EQ(r->rejected.size(), 4u);
  EXPECT_EQ(r->rejected[0].index, 1u);
  EXPECT_EQ(ErrorFieldOf(r->rejected[0].error), "batch[1].event");
  EXPECT_EQ(r->rejected[1].index, 2u);
  EXPECT_EQ(ErrorCodeOf(r->rejected[1].error), "invalid_value");
  EXPECT_EQ(ErrorFieldOf(r->rejected[1].error), "batch[2].type");
  EXPECT_EQ(r->rejected[2].index, 4u);
  EXPECT_EQ(ErrorFieldOf(r->rejected[2].error), "batch[4]");
  // A null type is an absent one, as for every spec field.
  EXPECT_EQ(ErrorCodeOf(r->rejected[3].error), "missing_field");
  EXPECT_EQ(ErrorFieldOf(r->rejected[3].error), "batch[5].type");
}

TEST(SegmentParserTest, BatchItemOverEventLimitRejectedAlone) {
  SegmentParser parser(Limits{.max_event_bytes = 300});
  std::string big = R"({"type":"track","userId":"u","event":")" + std::string(400, 'x') + "\"}";
  auto r = parser.ParseBatch(
      R"({"batch":[)" + big + R"(,{"type":"track","userId":"u","event":"e"}]})", Info());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->events.size(), 1u);
  ASSERT_EQ(r->rejected.size(), 1u);
  EXPECT_EQ(ErrorCodeOf(r->rejected[0].error), "event_too_large");
  EXPECT_EQ(ErrorFieldOf(r->rejected[0].error), "batch[0]");
}

TEST(SegmentParserTest, BatchEnvelopeErrors) {
  SegmentParser parser(
      Limits{.max_event_bytes = 32 * 1024, .max_request_bytes = 1000, .max_batch_events = 2});
  auto missing = parser.ParseBatch(R"({"events":[]})", Info());
  EXPECT_EQ(ErrorFieldOf(missing.status()), "batch");
  auto wrong = parser.ParseBatch(R"({"batch":{}})", Info());
  EXPECT_EQ(ErrorCodeOf(wrong.status()), "wrong_type");
  auto too_many = parser.ParseBatch(
      R"({"batch":[{"type":"track","userId":"u","event":"e"},{"type":"track","userId":"u","event":"e"},{"type":"track","userId":"u","event":"e"}]})",
      Info());
  EXPECT_EQ(too_many.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(ErrorCodeOf(too_many.status()), "batch_too_large");
  auto too_big = parser.ParseBatch(std::string(1001, ' '), Info());
  EXPECT_EQ(ErrorCodeOf(too_big.status()), "request_too_large");
  auto bad_sent = parser.ParseBatch(R"({"batch":[],"sentAt":"x"})", Info());
  EXPECT_EQ(ErrorFieldOf(bad_sent.status()), "sentAt");
  auto twice = parser.ParseBatch(R"({"batch":[],"batch":[]})", Info());
  EXPECT_EQ(ErrorCodeOf(twice.status()), "duplicate_key");
  EXPECT_EQ(ErrorFieldOf(twice.status()), "batch");
  auto shared = parser.ParseBatch(R"({"batch":[],"context":{"ip":"1","ip":"2"}})", Info());
  EXPECT_EQ(ErrorFieldOf(shared.status()), "context.ip");
  auto extra = parser.ParseBatch(R"({"batch":[],"extra":{"a":1,"a":2}})", Info());
  EXPECT_EQ(ErrorFieldOf(extra.status()), "extra.a");
  // The message names the key itself, even empty or with a dot in it.
  auto empty = parser.ParseBatch(R"({"batch":[],"context":{"":1,"":2}})", Info());
  EXPECT_NE(empty.status().message().find("key \"\" appears twice"), std::string_view::npos)
      << empty.status();
  auto dotted = parser.ParseBatch(R"({"batch":[],"context":{"a.b":1,"a.b":2}})", Info());
  EXPECT_NE(dotted.status().message().find("key \"a.b\""), std::string_view::npos)
      << dotted.status();
}

TEST(SegmentParserTest, AnEventWithAKeyTwiceIsRejectedAloneInABatch) {
  SegmentParser parser;
  // Many keys: the set-based check (over 32 members) finds the repeat too.
  std::string wide = R"({"type":"track","userId":"u","event":"e","properties":{)";
  for (int i = 0; i < 40; ++i) wide += "\"k" + std::to_string(i) + "\":" + std::to_string(i) + ",";
  wide += R"("k7":0}})";
  auto r = parser.ParseBatch(
      R"({"batch":[)" + wide + R"(,{"type":"track","userId":"u","event":"e"}]})", Info());
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->events.size(), 1u);
  ASSERT_EQ(r->rejected.size(), 1u);
  EXPECT_EQ(ErrorCodeOf(r->rejected[0].error), "duplicate_key");
  EXPECT_EQ(ErrorFieldOf(r->rejected[0].error), "batch[0].properties.k7");
}

TEST(SegmentParserTest, StoredJsonParsesAndNeedsNoNewlines) {
  SegmentParser parser;
  auto r = parser.ParseSingle(EventType::kTrack,
                              "{\n  \"userId\": \"u\",\n  \"event\": \"line\\nbreak\",\n"
                              "  \"properties\": {\"nested\": {\"deep\": [1, 2.5, null]}}\n}",
                              Info());
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->events[0].json.find('\n'), std::string::npos);
  simdjson::dom::parser p;
  EXPECT_EQ(p.parse(r->events[0].json).error(), simdjson::SUCCESS);
}

TEST(SegmentParserTest, ParseLineNeedsType) {
  SegmentParser parser;
  EXPECT_TRUE(parser.ParseLine(R"({"type":"screen","userId":"u","name":"Home"})", Info()).ok());
  auto r = parser.ParseLine(R"({"userId":"u"})", Info());
  EXPECT_EQ(ErrorFieldOf(r.status()), "type");
}

}  // namespace
}  // namespace whisperer::api

namespace whisperer::api {
namespace {

TEST(SegmentParserNullTest, NullSpecFieldsAreNotStored) {
  SegmentParser parser;
  auto r = parser.ParseSingle(EventType::kPage,
                              R"({"userId":"u","name":null,"properties":null,"custom":null})",
                              RequestInfo{0, "", ""});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->events[0].json.find("\"name\""), std::string::npos);
  EXPECT_EQ(r->events[0].json.find("\"properties\""), std::string::npos);
  EXPECT_NE(r->events[0].json.find("\"custom\":null"), std::string::npos);  // not ours to drop
}

TEST(ReadObjectTest, NullIsAbsentAnObjectIsReadAnythingElseIsWrongType) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc = parser.parse(
      std::string_view(R"({"context":{"k":1},"properties":null,"traits":[1],"integrations":"x"})"));
  std::optional<simdjson::dom::object> out;
  EXPECT_TRUE(ReadObject(doc["properties"], "properties", &out).ok());
  EXPECT_FALSE(out.has_value());
  ASSERT_TRUE(ReadObject(doc["context"], "context", &out).ok());
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(int64_t((*out)["k"]), 1);
  absl::Status array = ReadObject(doc["traits"], "traits", &out);
  EXPECT_EQ(ErrorCodeOf(array), "wrong_type");
  EXPECT_EQ(ErrorFieldOf(array), "traits");
  EXPECT_NE(array.message().find("traits must be an object, not an array"), std::string::npos);
  EXPECT_EQ(ErrorCodeOf(ReadObject(doc["integrations"], "integrations", &out)), "wrong_type");
}

}  // namespace
}  // namespace whisperer::api
