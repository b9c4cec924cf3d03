#include "common/strings.h"

#include <gtest/gtest.h>

namespace whisperer {
namespace {

TEST(StringsTest, StrCatMixesTypes) {
  std::string_view sv = "view";
  EXPECT_EQ(StrCat("a", sv, std::string("s"), 42, -7, size_t{3}, 'c', 0.5), "aviews42-73c0.5");
  std::string out = "x";
  StrAppend(&out, "y", 1);
  EXPECT_EQ(out, "xy1");
}

TEST(StringsTest, CaseAndWhitespace) {
  EXPECT_EQ(StripWhitespace("  a b \t\n"), "a b");
  EXPECT_TRUE(EqualsIgnoreCase("GZip", "gzip"));
  EXPECT_FALSE(EqualsIgnoreCase("gzip", "gzi"));
  EXPECT_TRUE(StartsWithIgnoreCase("basic abc", "Basic"));
  EXPECT_EQ(ToLower("AbC"), "abc");
}

TEST(StringsTest, Hex16) {
  EXPECT_EQ(Hex16(0x1a2b), "0000000000001a2b");
  EXPECT_EQ(ParseHex16("0000000000001a2b"), 0x1a2bu);
  EXPECT_EQ(ParseHex16(Hex16(~uint64_t{0})), ~uint64_t{0});
  EXPECT_FALSE(ParseHex16("1a2b").has_value());              // not 16 digits
  EXPECT_FALSE(ParseHex16("0000000000001A2B").has_value());  // one spelling: lower case
  EXPECT_FALSE(ParseHex16("000000000000 a2b").has_value());
}

TEST(StringsTest, Base64) {
  for (std::string s : {"", "f", "fo", "foo", "foob", "fooba", "foobar", "wk_abc:"}) {
    std::string decoded;
    ASSERT_TRUE(Base64Decode(Base64Encode(s), &decoded)) << s;
    EXPECT_EQ(decoded, s);
  }
  EXPECT_EQ(Base64Encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(Base64Encode("fo"), "Zm8=");
  std::string out;
  EXPECT_TRUE(Base64Decode("Zm8", &out));
  EXPECT_EQ(out, "fo");
  EXPECT_FALSE(Base64Decode("Zm9v!", &out));
  EXPECT_FALSE(Base64Decode("Z", &out));
}

TEST(RewriteSurrogateEscapes, PairsForYamlLoneOnesAsTheReplacementCharacter) {
  std::string out;
  const std::string_view json = R"({"a":"\ud83d\udd25 \u00e9 \\ud83d","b":"\ud83d"})";
  EXPECT_TRUE(RewriteSurrogateEscapes(json, /*pairs_as_yaml=*/true, &out));
  EXPECT_EQ(out, R"({"a":"\U0001F525 \u00e9 \\ud83d","b":"\uFFFD"})");
  EXPECT_TRUE(RewriteSurrogateEscapes(json, /*pairs_as_yaml=*/false, &out));
  EXPECT_EQ(out, R"({"a":"\ud83d\udd25 \u00e9 \\ud83d","b":"\uFFFD"})");
  EXPECT_FALSE(RewriteSurrogateEscapes(R"(["\u00e9"])", true, &out));
}

TEST(StripUtf8Bom, LeavesOutAByteOrderMarkAtTheStartOnly) {
  EXPECT_EQ(StripUtf8Bom("\xEF\xBB\xBFid,x"), "id,x");
  EXPECT_EQ(StripUtf8Bom("id\xEF\xBB\xBF"), "id\xEF\xBB\xBF");
  EXPECT_EQ(StripUtf8Bom(""), "");
}

}  // namespace
}  // namespace whisperer
