// Deterministic mutation fuzzing of SegmentParser, run as a normal test (and under ASan/UBSan
// in `make test`). Valid seed bodies are mutated (byte flips, truncation, insertion of JSON
// punctuation and invalid UTF-8, duplication) with a fixed seed, and every result must keep the
// parser's contract:
//   - no crash, no sanitizer report;
//   - an error has a machine-readable code and a message;
//   - every accepted event's stored form is valid JSON on one line, within max_event_bytes, with
//     a messageId and userId or anonymousId.
#include <gtest/gtest.h>

#include <random>

#include "api/segment_parser.h"
#include "common/status.h"
#include "simdjson.h"
#include "testing/mutate.h"

namespace whisperer::api {
namespace {

constexpr const char* kSeeds[] = {
    R"({"batch":[{"type":"track","userId":"u1","event":"Bought","properties":{"price":9.5,"tags":["a","b"]},"timestamp":"2024-06-01T12:00:00Z"},{"type":"identify","anonymousId":"a1","traits":{"email":"x@y.z","n":null}},{"type":"alias","userId":"u2","previousId":"a1"}],"sentAt":"2024-06-01T12:00:01Z","context":{"library":{"name":"n"}}})",
    R"({"userId":"u","event":"Signed Up","messageId":"m-1","context":{"ip":"1.2.3.4","page":{"url":"https://x/y?z=\u00e9"}},"integrations":{"All":true}})",
    R"({"batch":[{"type":"page","userId":7,"name":"Home","properties":{"path":"/"}},{"type":"group","userId":"u","groupId":42,"traits":{"plan":"pro"}},{"type":"screen","anonymousId":"a","name":"S"}]})",
};

const std::string kInserts[] = {"{",
                                "}",
                                "[",
                                "]",
                                ",",
                                ":",
                                "\"",
                                "\\",
                                "null",
                                "1e999",
                                "-0",
                                "\xff",
                                "\xc3",
                                "\xed\xa0\x80",
                                "\x00",
                                "\"type\":\"track\"",
                                "\"userId\":\"\"",
                                "\"timestamp\":\"2024-02-30\""};

std::string Mutate(std::string s, std::mt19937_64& rng) {
  return testing::Mutate(std::move(s), rng, kInserts);
}

void CheckContract(const absl::StatusOr<ParsedRequest>& r, const Limits& limits,
                   const std::string& input) {
  if (!r.ok()) {
    EXPECT_FALSE(ErrorCodeOf(r.status()).empty()) << input;
    EXPECT_FALSE(r.status().message().empty()) << input;
    return;
  }
  for (const Rejection& rej : r->rejected) {
    EXPECT_FALSE(rej.error.ok());
    EXPECT_FALSE(ErrorCodeOf(rej.error).empty());
  }
  simdjson::dom::parser p;
  for (const Event& e : r->events) {
    EXPECT_LE(e.json.size(), limits.max_event_bytes);
    EXPECT_EQ(e.json.find('\n'), std::string::npos) << e.json;
    simdjson::dom::element doc;
    ASSERT_EQ(p.parse(e.json).get(doc), simdjson::SUCCESS) << e.json;
    std::string_view id;
    EXPECT_EQ(doc["messageId"].get_string().get(id), simdjson::SUCCESS) << e.json;
    EXPECT_FALSE(e.user_id.empty() && e.anonymous_id.empty()) << e.json;
  }
}

TEST(SegmentParserFuzzTest, MutatedBodiesKeepTheContract) {
  std::mt19937_64 rng(20261122);
  Limits limits{.max_event_bytes = 2048, .max_request_bytes = 64 * 1024, .max_batch_events = 50};
  SegmentParser parser(limits);
  RequestInfo info{1'717'243'200'000, "192.0.2.1", "fuzz"};
  int accepted = 0, refused = 0;
  for (int i = 0; i < 100000; ++i) {
    std::string body = Mutate(kSeeds[i % std::size(kSeeds)], rng);
    auto batch = parser.ParseBatch(body, info);
    CheckContract(batch, limits, body);
    auto single = parser.ParseSingle(static_cast<EventType>(i % 6), body, info);
    CheckContract(single, limits, body);
    (batch.ok() || single.ok() ? accepted : refused)++;
  }
  // The mutations must exercise both outcomes, or the test proves little.
  EXPECT_GT(accepted, 2000);
  EXPECT_GT(refused, 2000);
}

}  // namespace
}  // namespace whisperer::api
