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

}  // namespace
}  // namespace whisperer::decide
