#include "common/timestamp.h"

#include <gtest/gtest.h>

namespace whisperer {
namespace {

TEST(TimestampTest, ParsesCommonForms) {
  EXPECT_EQ(ParseIso8601("1970-01-01T00:00:00Z"), 0);
  EXPECT_EQ(ParseIso8601("1970-01-01T00:00:00.001Z"), 1);
  EXPECT_EQ(ParseIso8601("2024-02-29T12:34:56.789Z"), 1709210096789);
  EXPECT_EQ(ParseIso8601("2024-02-29T12:34:56.789123456Z"), 1709210096789);
  EXPECT_EQ(ParseIso8601("2024-02-29T12:34:56.7Z"), 1709210096700);
  EXPECT_EQ(ParseIso8601("2024-02-29T14:34:56.789+02:00"), 1709210096789);
  EXPECT_EQ(ParseIso8601("2024-02-29T10:34:56.789-0200"), 1709210096789);
  EXPECT_EQ(ParseIso8601("2024-02-29T14:34:56.789+02"), 1709210096789);
  EXPECT_EQ(ParseIso8601("2024-02-29 12:34:56.789"), 1709210096789);
  EXPECT_EQ(ParseIso8601("2024-02-29T12:34Z"), 1709210040000);
  EXPECT_EQ(ParseIso8601("2024-02-29"), 1709164800000);
  EXPECT_EQ(ParseIso8601("1969-12-31T23:59:59.999Z"), -1);
}

TEST(TimestampTest, RejectsInvalid) {
  for (const char* bad : {"", "2024", "2024-13-01", "2023-02-29", "2024-02-30T00:00:00Z",
                          "2024-01-01T24:00:00Z", "2024-01-01T00:60:00Z", "2024-01-01T00:00:00.Z",
                          "2024-01-01T00:00:00X", "2024-01-01T00:00:00+2", "2024-01-01T00:00:00Z ",
                          "yesterday", "1700000000", "2024-01-01T00:00:00+24:00"}) {
    EXPECT_EQ(ParseIso8601(bad), std::nullopt) << bad;
  }
  // Years 0000 to 9999 in UTC: the ends are kept, an offset that crosses them is refused.
  EXPECT_EQ(ParseIso8601("0000-01-01T00:00:00Z"), kMinIso8601Millis);
  EXPECT_EQ(ParseIso8601("9999-12-31T23:59:59.999Z"), kMaxIso8601Millis);
  EXPECT_EQ(FormatIso8601(kMaxIso8601Millis), "9999-12-31T23:59:59.999Z");
  EXPECT_EQ(FormatIso8601(kMinIso8601Millis), "0000-01-01T00:00:00.000Z");
  EXPECT_EQ(ParseIso8601("9999-12-31T23:59:59-12:00"), std::nullopt);
  EXPECT_EQ(ParseIso8601("0000-01-01T00:00:00+01:00"), std::nullopt);
}

TEST(TimestampTest, FormatsCanonically) {
  EXPECT_EQ(FormatIso8601(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(FormatIso8601(1709210096789), "2024-02-29T12:34:56.789Z");
  EXPECT_EQ(FormatIso8601(-1), "1969-12-31T23:59:59.999Z");
}

TEST(TimestampTest, RoundTrips) {
  for (int64_t ms = -86'400'000LL * 800; ms < 86'400'000LL * 40000;
       ms += 86'400'000LL * 7 + 12345) {
    ASSERT_EQ(ParseIso8601(FormatIso8601(ms)), ms) << FormatIso8601(ms);
  }
}

}  // namespace
}  // namespace whisperer
