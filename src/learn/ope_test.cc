#include "learn/ope.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace whisperer::learn {
namespace {

// Two actions paying 0.3 and 0.7 (Bernoulli); the log picks uniformly; the target always picks
// action 1, worth 0.7.
std::vector<LoggedRound> Log(size_t n, uint64_t seed, double model_error) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<LoggedRound> out;
  for (size_t i = 0; i < n; ++i) {
    LoggedRound r;
    r.action = u(rng) < 0.5 ? 0 : 1;
    r.propensity = 0.5;
    r.reward = u(rng) < (r.action == 0 ? 0.3 : 0.7) ? 1 : 0;
    r.target = {0, 1};
    r.predicted = {0.3 + model_error, 0.7 + model_error};
    out.push_back(std::move(r));
  }
  return out;
}

TEST(Ope, EstimatorsFindTheTargetsValue) {
  std::vector<LoggedRound> log = Log(20'000, 3, 0);
  OpeResult r = EstimatePolicyValue(log, 200, 9);
  EXPECT_EQ(r.rounds, 20'000u);
  EXPECT_NEAR(r.dm.value, 0.7, 1e-12);  // a perfect model
  EXPECT_NEAR(r.ipw.value, 0.7, 0.02);
  EXPECT_NEAR(r.snipw.value, 0.7, 0.02);
  EXPECT_NEAR(r.dr.value, 0.7, 0.01);
  for (const OpeEstimate* e : {&r.ipw, &r.snipw, &r.dr}) {
    EXPECT_LT(e->low, e->value);
    EXPECT_GT(e->high, e->value);
    EXPECT_LT(e->high - e->low, 0.05);
  }
  // A wrong model biases DM; DR stays unbiased (the propensities are right).
  std::vector<LoggedRound> biased = Log(20'000, 3, 0.1);
  OpeResult b = EstimatePolicyValue(biased, 0);
  EXPECT_NEAR(b.dm.value, 0.8, 1e-12);
  EXPECT_NEAR(b.dr.value, 0.7, 0.02);
  EXPECT_EQ(b.dr.low, b.dr.value);  // no bootstrap asked
  EXPECT_EQ(EstimatePolicyValue({}).rounds, 0u);
}

TEST(Ope, ErrorsShrinkAsTheLogGrowsAndDoublyRobustBeatsIpw) {
  auto rmse = [](size_t n, bool dr) {
    double sq = 0;
    for (uint64_t s = 0; s < 40; ++s) {
      OpeResult r = EstimatePolicyValue(Log(n, 100 + s, 0.05), 0);
      const double e = (dr ? r.dr.value : r.ipw.value) - 0.7;
      sq += e * e;
    }
    return std::sqrt(sq / 40);
  };
  EXPECT_LT(rmse(10'000, false), rmse(500, false));
  EXPECT_LT(rmse(10'000, true), rmse(500, true));
  EXPECT_LT(rmse(2'000, true), rmse(2'000, false));
}

}  // namespace
}  // namespace whisperer::learn
