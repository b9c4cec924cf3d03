#include "common/duration.h"

#include <gtest/gtest.h>

namespace whisperer {
namespace {

TEST(DurationTest, Parses) {
  EXPECT_EQ(*ParseDurationMillis("500ms"), 500);
  EXPECT_EQ(*ParseDurationMillis("30s"), 30'000);
  EXPECT_EQ(*ParseDurationMillis("30"), 30'000);
  EXPECT_EQ(*ParseDurationMillis("5m"), 300'000);
  EXPECT_EQ(*ParseDurationMillis("2h"), 7'200'000);
  EXPECT_EQ(*ParseDurationMillis("7d"), 604'800'000);
}

TEST(DurationTest, Rejects) {
  EXPECT_FALSE(ParseDurationMillis("").ok());
  EXPECT_FALSE(ParseDurationMillis("-1s").ok());
  EXPECT_FALSE(ParseDurationMillis("7w").ok());
  EXPECT_FALSE(ParseDurationMillis("s").ok());
  EXPECT_FALSE(ParseDurationMillis("99999999999999999999d").ok());
  // Up to 100 years: longer would overflow a timer's nanoseconds.
  EXPECT_EQ(*ParseDurationMillis("36500d"), kMaxDurationMillis);
  EXPECT_FALSE(ParseDurationMillis("36501d").ok());
  EXPECT_FALSE(ParseDurationMillis("106752d").ok());
}

TEST(DurationTest, Formats) {
  EXPECT_EQ(FormatDurationMillis(604'800'000), "7d");
  EXPECT_EQ(FormatDurationMillis(1500), "1500ms");
  EXPECT_EQ(FormatDurationMillis(90'000), "90s");
  EXPECT_EQ(FormatDurationMillis(0), "0ms");
}

}  // namespace
}  // namespace whisperer
