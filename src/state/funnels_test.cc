#include "state/funnels.h"

#include <gtest/gtest.h>

namespace whisperer::state {
namespace {

JourneyStep Step(int from, int to, int64_t in_stage_ms = 0) {
  JourneyStep s;
  s.from = from;
  s.to = to;
  s.in_stage_ms = in_stage_ms;
  return s;
}

TEST(Funnels, CountsEntriesMovesTimesConversionsAndExits) {
  FunnelCounts c;
  // Three customers enter; two reach stage 1 (after 1 s and 3 s), one of them skips to 2;
  // one converts from stage 2, one exits from stage 0.
  for (int i = 0; i < 3; ++i) CountStep(Step(-1, 0), 3, &c);
  CountStep(Step(0, 1, 1000), 3, &c);
  CountStep(Step(0, 2, 3000), 3, &c);
  CountStep(Step(2, JourneyStep::kConverted, 500), 3, &c);
  CountStep(Step(0, JourneyStep::kExited, 9000), 3, &c);
  EXPECT_EQ(c.entered, (std::vector<uint64_t>{3, 1, 1}));
  EXPECT_EQ(c.moved_on, (std::vector<uint64_t>{2, 0, 1}));
  EXPECT_EQ(c.converted, 1u);
  EXPECT_EQ(c.exited, 1u);
  // Times in stage 0 of those who moved on: 1 s and 3 s; the exit is not a move on.
  int64_t median = c.TimeQuantile(0, 0.5);
  int64_t p90 = c.TimeQuantile(0, 0.9);
  EXPECT_GE(median, 1000 / 1.5);
  EXPECT_LE(median, 1000 * 1.5);
  EXPECT_GE(p90, 3000 / 1.5);
  EXPECT_LE(p90, 3000 * 1.5);
  EXPECT_EQ(c.TimeQuantile(1, 0.5), -1);  // nobody moved on from stage 1

  absl::StatusOr<FunnelCounts> back = DecodeFunnel(EncodeFunnel(c));
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(EncodeFunnel(*back), EncodeFunnel(c));
  EXPECT_FALSE(DecodeFunnel(EncodeFunnel(c) + "x").ok());
  EXPECT_FALSE(DecodeFunnel("").ok());

  FunnelCounts sum;
  sum.Add(c);
  sum.Add(c);
  EXPECT_EQ(sum.entered[0], 6u);
  EXPECT_EQ(sum.TimeQuantile(0, 0.5), median);
}

TEST(Funnels, KeysOrderByDayThenDimension) {
  std::string a = FunnelKey(1, "j", 1, 19000, FunnelDimension::kDevice, "mobile");
  std::string b = FunnelKey(1, "j", 1, 19001, FunnelDimension::kAll, "");
  EXPECT_LT(a, b);
  EXPECT_GE(a, FunnelKeyPrefix(1, "j", 1, 19000));
  EXPECT_LT(a, FunnelKeyPrefix(1, "j", 1, 19001));
  std::optional<FunnelKeyParts> parts =
      DecodeFunnelKeySuffix(std::string_view(a).substr(FunnelKeyPrefix(1, "j", 1, 0).size() - 4));
  ASSERT_TRUE(parts);
  EXPECT_EQ(parts->day, 19000);
  EXPECT_EQ(parts->dimension, FunnelDimension::kDevice);
  EXPECT_EQ(parts->value, "mobile");
}

}  // namespace
}  // namespace whisperer::state
