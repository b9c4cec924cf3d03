#include "decide/log.h"

#include <gtest/gtest.h>

namespace whisperer::decide {
namespace {

TEST(DecisionLog, IdsAreTimeOrderedAndReadBack) {
  const int64_t t = 1'700'000'000'000;
  uint64_t a = NextDecisionId(t);
  uint64_t b = NextDecisionId(t);      // the same millisecond
  uint64_t c = NextDecisionId(t - 5);  // a clock that stepped back
  EXPECT_LT(a, b);
  EXPECT_LT(b, c);
  EXPECT_EQ(DecisionMillis(a), t);
  EXPECT_GE(a, FirstDecisionIdAt(t));
  EXPECT_LT(a, FirstDecisionIdAt(t + 1));
  std::string s = DecisionIdString(a);
  EXPECT_EQ(s.size(), 20u);
  EXPECT_EQ(s.substr(0, 4), "dec_");
  EXPECT_EQ(ParseDecisionId(s), a);
  EXPECT_FALSE(ParseDecisionId("dec_123"));
  EXPECT_FALSE(ParseDecisionId("prf_0123456789abcdef"));
  EXPECT_FALSE(ParseDecisionId("dec_0123456789ABCDEF"));
  EXPECT_FALSE(ParseDecisionId("dec_0123456789abcdeg"));
}

TEST(DecisionLog, KeysSortByDecisionWithinTheirPrefix) {
  EXPECT_LT(DecisionKey(1, 5), DecisionKey(1, 6));
  EXPECT_LT(DecisionKey(1, 0xffffffffffffull), DecisionKey(2, 0));
  EXPECT_EQ(DecisionOfKey(DecisionKey(3, 42)), 42u);
  EXPECT_EQ(DecisionOfKey(ProfileDecisionKey(3, 7, 42)), 42u);
  std::string p = ProfileDecisionPrefix(3, 7);
  EXPECT_EQ(ProfileDecisionKey(3, 7, 42).substr(0, p.size()), p);
  EXPECT_NE(RewardPrefix(3, 42, 1), RewardPrefix(3, 42, 2));
  EXPECT_NE(BanditKey(3, "home"), BanditKey(4, "home"));
}

}  // namespace
}  // namespace whisperer::decide
