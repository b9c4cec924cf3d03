#include "common/json_writer.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <string>

namespace whisperer {
namespace {

TEST(JsonWriterTest, EscapesStrings) {
  std::string out;
  AppendJsonString(&out, std::string_view("a\"b\\c\n\t\x01\x1f\xc3\xa9", 11));
  EXPECT_EQ(out, R"("a\"b\\c\n\t\u0001\u001f)"
                 "\xc3\xa9\"");
}

// Bytes that are not UTF-8 (from a %-decoded URL, say) become U+FFFD, so the output stays JSON;
// well-formed sequences of 2 to 4 bytes are kept, in the 8-byte scan's range and after it.
TEST(JsonWriterTest, ReplacesBytesThatAreNotUtf8) {
  const std::string kReplacement = "\xEF\xBF\xBD";
  const std::pair<std::string, std::string> cases[] = {
      {"\xc3(", kReplacement + "("},              // a lead byte without continuation
      {"ab\xff", "ab" + kReplacement},            // never valid
      {"\x80x", kReplacement + "x"},              // a stray continuation byte
      {"\xc0\xaf", kReplacement + kReplacement},  // overlong '/'
      {"\xed\xa0\x80", kReplacement + kReplacement + kReplacement},  // a surrogate
      {"\xf4\x90\x80\x80",
       kReplacement + kReplacement + kReplacement + kReplacement},  // > U+10FFFF
      {"\xe2\x82", kReplacement + kReplacement},                    // truncated at the end
      {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 12345678",
       "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 12345678"},
  };
  for (const auto& [in, want] : cases) {
    const std::string& expected = want;
    std::string out;
    AppendJsonString(&out, in);
    EXPECT_EQ(out, "\"" + expected + "\"") << in;
    std::string padded;  // the same after 16 clean bytes, past the 8-byte scan
    AppendJsonString(&padded, "0123456789abcdef" + in);
    EXPECT_EQ(padded, "\"0123456789abcdef" + expected + "\"") << in;
  }
}

// Every length up to 24, clean or with one byte to escape at each position: the 8-bytes-at-a-time
// check and the byte-by-byte loop after it agree with a plain escaper.
TEST(JsonWriterTest, EscapesAtEveryLengthAndPosition) {
  auto expected = [](std::string_view s) {
    std::string e = "\"";
    for (char c : s) {
      if (c == '"' || c == '\\') {
        e += '\\';
        e += c;
      } else if (c == '\n') {
        e += "\\n";
      } else if (static_cast<unsigned char>(c) < 0x20) {
        char buf[8];
        std::snprintf(buf, sizeof(buf), "\\u%04x", c);
        e += buf;
      } else {
        e += c;
      }
    }
    return e + "\"";
  };
  for (size_t n = 0; n <= 24; ++n) {
    std::string clean(n, 'x');
    std::string out;
    AppendJsonString(&out, clean);
    EXPECT_EQ(out, expected(clean));
    for (size_t at = 0; at < n; ++at) {
      for (char bad : {'"', '\\', '\n', '\x01', '\x1f'}) {
        std::string s = clean;
        s[at] = bad;
        out.clear();
        AppendJsonString(&out, s);
        ASSERT_EQ(out, expected(s)) << "length " << n << " at " << at;
      }
    }
  }
}

TEST(JsonWriterTest, NestedContainersAndCommas) {
  std::string out;
  JsonWriter w(&out);
  w.StartObject();
  w.Key("a");
  w.Int(-3);
  w.Key("b");
  w.StartArray();
  w.Uint(18446744073709551615ull);
  w.Double(0.1);
  w.Bool(false);
  w.Null();
  w.StartObject();
  w.EndObject();
  w.EndArray();
  w.Key("c");
  w.String("x");
  w.EndObject();
  EXPECT_EQ(out, R"({"a":-3,"b":[18446744073709551615,0.1,false,null,{}],"c":"x"})");
}

TEST(JsonWriterTest, NonFiniteDoubleIsNull) {
  std::string out;
  JsonWriter w(&out);
  w.StartArray();
  w.Double(std::numeric_limits<double>::infinity());
  w.EndArray();
  EXPECT_EQ(out, "[null]");
}

TEST(JsonWriterTest, RoundTripsParsedElementCompactly) {
  simdjson::dom::parser parser;
  std::string in =
      R"( { "k" : [1, -2, 3.5e10, "s\"\u00e9", true, null, {"n":{}}], "big": 1e300 } )";
  simdjson::dom::element doc = parser.parse(in);
  std::string out;
  JsonWriter w(&out);
  w.Element(doc);
  EXPECT_EQ(out, "{\"k\":[1,-2,3.5e+10,\"s\\\"\xc3\xa9\",true,null,{\"n\":{}}],\"big\":1e+300}");
  // What we write parses back to the same value.
  simdjson::dom::parser parser2;
  std::string again;
  JsonWriter w2(&again);
  w2.Element(parser2.parse(out));
  EXPECT_EQ(again, out);
}

}  // namespace
}  // namespace whisperer

namespace whisperer {
namespace {

TEST(JsonWriterTest, EscapesAtEveryPositionOfLongStrings) {
  // The 8-byte fast path must find a special byte wherever it sits.
  for (char special : {'"', '\\', '\n', '\x01', '\x1f'}) {
    for (size_t pos = 0; pos < 20; ++pos) {
      std::string s(20, 'a');
      s[pos] = special;
      std::string out;
      AppendJsonString(&out, s);
      simdjson::dom::parser p;
      std::string_view back;
      ASSERT_EQ(p.parse(out).get_string().get(back), simdjson::SUCCESS) << out;
      EXPECT_EQ(back, s);
    }
  }
  std::string clean(64, 'z');
  std::string out;
  AppendJsonString(&out, clean);
  EXPECT_EQ(out, "\"" + clean + "\"");
  std::string utf8 = "h\xc3\xa9llo w\xc3\xb6rld \xe2\x9c\x93 and more text";
  out.clear();
  AppendJsonString(&out, utf8);
  EXPECT_EQ(out, "\"" + utf8 + "\"");
}

}  // namespace
}  // namespace whisperer
