#include "api/query.h"

#include <gtest/gtest.h>

#include "common/status.h"
#include "common/strings.h"

namespace whisperer::api {
namespace {

TEST(QueryParam, FindsPresentEmptyAndAbsent) {
  std::string_view t = "/v1/x?limit=10&cursor=&flag&email=a%40b.io";
  EXPECT_EQ(QueryParam(t, "limit"), "10");
  EXPECT_EQ(QueryParam(t, "cursor"), "");
  EXPECT_EQ(QueryParam(t, "flag"), "");
  EXPECT_EQ(QueryParam(t, "email"), "a%40b.io");
  EXPECT_FALSE(QueryParam(t, "lim").has_value());
  EXPECT_FALSE(QueryParam("/v1/x", "limit").has_value());
}

TEST(RepeatedQueryParam, NamesANameGivenTwiceWithOrWithoutAValue) {
  EXPECT_EQ(RepeatedQueryParam("/v1/x?limit=5&cursor=a&limit=9"), "limit");
  EXPECT_EQ(RepeatedQueryParam("/v1/x?flag&b=1&flag="), "flag");
  EXPECT_EQ(RepeatedQueryParam("/v1/x?a=1&a=1"), "a");  // even with the same value
  EXPECT_FALSE(RepeatedQueryParam("/v1/x?limit=5&cursor=a&lim=9").has_value());
  EXPECT_FALSE(RepeatedQueryParam("/v1/x?a=1&&=2&=3&").has_value());  // empty names are none
  EXPECT_FALSE(RepeatedQueryParam("/v1/x?email=a%26b%3D&emai=1").has_value());
  EXPECT_FALSE(RepeatedQueryParam("/v1/x").has_value());
  EXPECT_FALSE(RepeatedQueryParam("/v1/x?").has_value());
}

TEST(UnknownQueryParam, NamesTheFirstNameNotKnownAsWritten) {
  const std::vector<std::string> known = {"limit", "cursor"};
  EXPECT_FALSE(UnknownQueryParam("/v1/x?limit=5&cursor=a", known).has_value());
  EXPECT_FALSE(UnknownQueryParam("/v1/x?limit", known).has_value());
  EXPECT_FALSE(UnknownQueryParam("/v1/x?&&=3&limit=1&", known).has_value());  // empty: none
  EXPECT_FALSE(UnknownQueryParam("/v1/x", known).has_value());
  EXPECT_EQ(UnknownQueryParam("/v1/x?limit=5&limt=9&x=1", known), "limt");
  EXPECT_EQ(UnknownQueryParam("/v1/x?li%6dit=5", known), "li%6dit");  // QueryParam never reads it
  EXPECT_EQ(UnknownQueryParam("/v1/x?Limit=5", known), "Limit");      // names are case-sensitive
  EXPECT_EQ(UnknownQueryParam("/v1/x?a=1", {}), "a");
}

TEST(CheckQuery, RefusesARepeatedThenAnUnknownNameNamingIt) {
  const std::vector<std::string> known = {"limit", "cursor"};
  EXPECT_TRUE(CheckQuery("/v1/x?cursor=1&limit=2", &known, "/v1/x").ok());
  absl::Status unknown = CheckQuery("/v1/x?limt=5", &known, "/v1/x");
  EXPECT_EQ(ErrorCodeOf(unknown), "invalid_value");
  EXPECT_EQ(ErrorFieldOf(unknown), "limt");
  EXPECT_EQ(ToStd(unknown.message()), "unknown query parameter 'limt'; expected limit, cursor");
  const std::vector<std::string> none;
  absl::Status takes_none = CheckQuery("/v1/x/1?verbose=1", &none, "/v1/x/{id}");
  EXPECT_EQ(ToStd(takes_none.message()),
            "unknown query parameter 'verbose': /v1/x/{id} takes none");
  // A name given twice is named as such, even when it is also unknown.
  absl::Status twice = CheckQuery("/v1/x?z=1&z=2", &known, "/v1/x");
  EXPECT_EQ(ErrorFieldOf(twice), "z");
  EXPECT_EQ(ToStd(twice.message()), "query parameter 'z' is given more than once; give it once");
  // Without a list any query passes, a name given twice too: the route reads none.
  EXPECT_TRUE(CheckQuery("/v1/track?_=123&anything", nullptr, "/v1/track").ok());
  EXPECT_TRUE(CheckQuery("/v1/track?_=1&_=2", nullptr, "/v1/track").ok());
  // What is named is cut to 64 bytes.
  EXPECT_EQ(ErrorFieldOf(CheckQuery(StrCat("/v1/x?", std::string(300, 'q')), &known, "/v1/x")),
            std::string(64, 'q'));
}

TEST(PercentDecode, DecodesAndRejectsMalformedEscapes) {
  EXPECT_EQ(*PercentDecode("a%40b.io", "email"), "a@b.io");
  EXPECT_EQ(*PercentDecode("+1%20555", "phone"), "+1 555");
  absl::StatusOr<std::string> bad = PercentDecode("abc%4", "email");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(ErrorFieldOf(bad.status()), "email");
  EXPECT_FALSE(PercentDecode("%zz", "email").ok());
  // Decoded bytes must be UTF-8: they end up in JSON answers and in stored keys.
  EXPECT_EQ(*PercentDecode("caf%C3%A9", "userId"), "caf\xc3\xa9");
  absl::StatusOr<std::string> not_utf8 = PercentDecode("%C3%28", "userId");
  ASSERT_FALSE(not_utf8.ok());
  EXPECT_EQ(ErrorCodeOf(not_utf8.status()), "invalid_value");
  EXPECT_EQ(ErrorFieldOf(not_utf8.status()), "userId");
}

TEST(ParseUintParam, RangeAndFallback) {
  EXPECT_EQ(*ParseUintParam("", "limit", 100, 1000), 100u);
  EXPECT_EQ(*ParseUintParam("7", "limit", 100, 1000), 7u);
  EXPECT_FALSE(ParseUintParam("1001", "limit", 100, 1000).ok());
  EXPECT_FALSE(ParseUintParam("-1", "limit", 100, 1000).ok());
  EXPECT_FALSE(ParseUintParam("1x", "limit", 100, 1000).ok());
}

TEST(PageLimit, OneToAThousandDefaultAHundred) {
  EXPECT_EQ(*PageLimit("/v1/x"), 100u);
  EXPECT_EQ(*PageLimit("/v1/x?limit=1"), 1u);
  EXPECT_EQ(*PageLimit("/v1/x?cursor=5&limit=1000"), 1000u);
  for (const char* bad : {"/v1/x?limit=0", "/v1/x?limit=1001", "/v1/x?limit=ten"}) {
    absl::StatusOr<uint64_t> limit = PageLimit(bad);
    ASSERT_FALSE(limit.ok()) << bad;
    EXPECT_EQ(ErrorCodeOf(limit.status()), "invalid_value");
  }
}

TEST(JsonObjectBody, ObjectsOnlyWithTheReasonForEachRefusal) {
  simdjson::dom::parser parser;
  absl::StatusOr<simdjson::dom::element> ok = JsonObjectBody(R"({"a":1})", parser);
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_TRUE(ok->is_object());
  EXPECT_EQ(ErrorCodeOf(JsonObjectBody("[1]", parser).status()), "wrong_type");  // JSON, no object
  EXPECT_EQ(ErrorCodeOf(JsonObjectBody("", parser).status()), "malformed_json");
  EXPECT_EQ(ErrorCodeOf(JsonObjectBody("{\"a\":", parser).status()), "malformed_json");
  EXPECT_EQ(ErrorCodeOf(JsonObjectBody("{\"a\":\"\xc3(\"}", parser).status()), "invalid_utf8");
}

TEST(RefuseUnknownKeys, NamesTheFirstKeyNeitherKnownNorOfTheSegmentEnvelope) {
  simdjson::dom::parser parser;
  auto body = [&](std::string_view json) { return *JsonObjectBody(json, parser); };
  EXPECT_TRUE(RefuseUnknownKeys(body(R"({"slots":2,"note":"x"})"), {"slots", "note"}).ok());
  absl::Status s = RefuseUnknownKeys(body(R"({"slots":2,"slot":3})"), {"slots", "note"});
  EXPECT_EQ(ErrorCodeOf(s), "invalid_value");
  EXPECT_EQ(ErrorFieldOf(s), "slot");
  EXPECT_EQ(s.message(), "unknown field 'slot'; expected slots, note");
  // An event's common fields are ignored only where a request may be built like an event.
  const std::string_view event = R"({"slots":2,"messageId":"m","timestamp":"t","integrations":{}})";
  EXPECT_TRUE(RefuseUnknownKeys(body(event), {"slots"}, /*segment_envelope=*/true).ok());
  EXPECT_EQ(ErrorFieldOf(RefuseUnknownKeys(body(event), {"slots"})), "messageId");
  EXPECT_EQ(ErrorFieldOf(RefuseUnknownKeys(body(R"({"deferactivation":true})"), {"slots"}, true)),
            "deferactivation");
  simdjson::dom::element list;
  ASSERT_EQ(parser.parse(std::string_view("[1]")).get(list), simdjson::SUCCESS);
  EXPECT_TRUE(RefuseUnknownKeys(list, {"slots"}).ok());  // not an object: not this check
}

TEST(WidenBigIntegers, TouchesOnlyIntegerLiteralsPast64Bits) {
  std::string out;
  EXPECT_FALSE(WidenBigIntegers(R"({"a":[1,-2,3.5e30,18446744073709551615],"b":"1e99"})", &out));
  EXPECT_EQ(out, R"({"a":[1,-2,3.5e30,18446744073709551615],"b":"1e99"})");
  EXPECT_TRUE(WidenBigIntegers(
      R"({"a":18446744073709551616,"b":-9223372036854775809,"c":1.00000000000000000000001,)"
      R"("d":"99999999999999999999","e":000000000000000000000001})",
      &out));
  EXPECT_EQ(out, R"({"a":18446744073709551616.0,"b":-9223372036854775809.0,)"
                 R"("c":1.00000000000000000000001,"d":"99999999999999999999",)"
                 R"("e":000000000000000000000001})");
}

TEST(ReplaceLoneSurrogates, OnlyLoneOnesBecomeTheReplacementCharacter) {
  std::string out;
  // A pair, other escapes, an escaped backslash before a u, and a bad escape stay as they are.
  const std::string_view kept = R"({"a":"\ud83d\ude00 \u00e9 \\ud83d \n","b":"\uZZZZ"})";
  EXPECT_FALSE(ReplaceLoneSurrogates(kept, &out));
  EXPECT_EQ(out, kept);
  EXPECT_TRUE(ReplaceLoneSurrogates(
      R"({"cut":"Great \ud83d","low":"\uDE00x","two":"\ud83d\ud83d\ude00","end":"\udbff"})", &out));
  EXPECT_EQ(out,
            R"({"cut":"Great \uFFFD","low":"\uFFFDx","two":"\uFFFD\ud83d\ude00","end":"\uFFFD"})");
  // Parsed as a JavaScript client meant it, big integers widened in the same body.
  simdjson::dom::parser parser;
  absl::StatusOr<simdjson::dom::element> body =
      JsonObjectBody(R"({"t":"abc\ud83d","n":20000000000000000000})", parser);
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(std::string_view((*body)["t"]), "abc\xef\xbf\xbd");
  EXPECT_EQ(double((*body)["n"]), 2e19);
  body = JsonObjectBody(R"({"n":20000000000000000000,"t":"abc\udc00"})", parser);
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(ErrorCodeOf(JsonObjectBody(R"({"t":"\uZZZZ"})", parser).status()), "malformed_json");
}

TEST(WholeNumber, TakesEveryWayJsonWritesOne) {
  simdjson::dom::parser parser;
  auto read = [&](std::string_view json, uint64_t max) {
    return WholeNumber(parser.parse(json.data(), json.size()).value(), max);
  };
  EXPECT_EQ(read("3", 20), 3u);
  EXPECT_EQ(read("3.0", 20), 3u);
  EXPECT_EQ(read("3e0", 20), 3u);
  EXPECT_EQ(read("0", 20), 0u);
  EXPECT_EQ(read("20", 20), 20u);
  EXPECT_EQ(read("21", 20), std::nullopt);
  EXPECT_EQ(read("2.5", 20), std::nullopt);
  EXPECT_EQ(read("-1", 20), std::nullopt);
  EXPECT_EQ(read("-0.0", 20), 0u);
  EXPECT_EQ(read("\"3\"", 20), std::nullopt);
  EXPECT_EQ(read("null", 20), std::nullopt);
  EXPECT_EQ(read("9007199254740991", UINT64_MAX), 9007199254740991u);
  EXPECT_EQ(read("9007199254740992", UINT64_MAX), std::nullopt);
  EXPECT_EQ(read("1e300", UINT64_MAX), std::nullopt);
}

TEST(JsonObjectBody, IntegersPast64BitsAreReadAsDoubles) {
  simdjson::dom::parser parser;
  absl::StatusOr<simdjson::dom::element> got =
      JsonObjectBody(R"({"n":20000000000000000000,"s":"20000000000000000000"})", parser);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(double((*got)["n"]), 2e19);
  EXPECT_EQ(std::string_view((*got)["s"]), "20000000000000000000");
  EXPECT_EQ(ErrorCodeOf(JsonObjectBody(R"({"n":1e400})", parser).status()), "malformed_json");
}

TEST(JsonObjectBody, KeysTwiceInOneObjectAreRefusedWithTheirPath) {
  simdjson::dom::parser parser;
  struct Case {
    std::string body;
    std::string field;  // "" when accepted
  };
  const Case cases[] = {
      {R"({"slots":1,"slots":3})", "slots"},
      {R"({"context":{"page":{"url":"a","url":"b"}}})", "context.page.url"},
      {R"({"items":[{"id":1},{"id":2,"id":3}]})", "items[1].id"},
      // Equal keys in different objects, or a key equal to a value, are fine.
      {R"({"a":{"id":1},"b":{"id":1},"id":"id"})", ""},
  };
  for (const Case& c : cases) {
    absl::StatusOr<simdjson::dom::element> got = JsonObjectBody(c.body, parser);
    if (c.field.empty()) {
      EXPECT_TRUE(got.ok()) << c.body << ": " << got.status();
      continue;
    }
    EXPECT_EQ(ErrorCodeOf(got.status()), "duplicate_key") << c.body;
    EXPECT_EQ(ErrorFieldOf(got.status()), c.field) << c.body;
  }
  // More members than the pairwise check takes: the sorted one finds the repeat too.
  std::string wide = "{";
  for (int i = 0; i < 40; ++i) wide += "\"k" + std::to_string(i) + "\":" + std::to_string(i) + ",";
  wide += "\"k7\":0}";
  EXPECT_EQ(ErrorFieldOf(JsonObjectBody(wide, parser).status()), "k7");
}

}  // namespace
}  // namespace whisperer::api
