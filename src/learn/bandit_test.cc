#include "learn/bandit.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

namespace whisperer::learn {
namespace {

std::vector<Feature> Context(FeatureBuilder& b, std::string_view plan, double visits) {
  b.Clear();
  b.Categorical("plan", plan);
  b.Numeric("visits", visits);
  return {b.features().begin(), b.features().end()};
}

TEST(LinearPosterior, AnUpdateMovesThePredictionTowardsTheRewardWithoutOvershoot) {
  LinearPosterior p({.bits = 12});
  std::vector<Feature> x;
  for (uint32_t i = 1; i <= 60; ++i) x.push_back({i, 1.0f});  // many active features
  RewardEstimate before = p.Predict(x);
  EXPECT_EQ(before.mean, 0);
  EXPECT_NEAR(before.variance, 60 * 0.05, 1e-5);
  p.Update(x, 1);
  RewardEstimate after = p.Predict(x);
  EXPECT_GT(after.mean, 0.5);
  EXPECT_LT(after.mean, 1.0);  // the Kalman step: never past the reward
  EXPECT_LT(after.variance, before.variance);
  EXPECT_EQ(p.updates(), 1u);
}

TEST(LinearPosterior, LearnsEachActionsRewardRateInContext) {
  LinearPosterior p({.bits = 14});
  FeatureBuilder b(14);
  std::mt19937_64 rng(7);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<Feature> crossed;
  // Action 1 pays 0.7 to pro customers and 0.2 to free ones; action 2 pays 0.4 to both.
  for (int n = 0; n < 6000; ++n) {
    const bool pro = n % 2 == 0;
    const uint64_t action = 1 + (n / 2) % 2;
    std::vector<Feature> x = Context(b, pro ? "pro" : "free", 0.5);
    const double rate = action == 1 ? (pro ? 0.7 : 0.2) : 0.4;
    CrossWithAction(x, action, 14, &crossed);
    p.Update(crossed, u(rng) < rate ? 1 : 0);
  }
  auto predict = [&](uint64_t action, std::string_view plan) {
    std::vector<Feature> x = Context(b, plan, 0.5);
    CrossWithAction(x, action, 14, &crossed);
    return p.Predict(crossed);
  };
  EXPECT_NEAR(predict(1, "pro").mean, 0.7, 0.06);
  EXPECT_NEAR(predict(1, "free").mean, 0.2, 0.06);
  EXPECT_NEAR(predict(2, "pro").mean, 0.4, 0.06);
  EXPECT_NEAR(predict(2, "free").mean, 0.4, 0.06);
  EXPECT_LT(predict(1, "pro").variance, 0.01);
  // An action never tried keeps the prior's variance: its bias, the context's bias and plan (1
  // each) and visits (0.5^2).
  EXPECT_NEAR(predict(3, "pro").variance, 3.25 * 0.05, 1e-6);
}

TEST(LinearPosterior, SerializesAndRefusesOtherBytes) {
  LinearPosterior p({.bits = 10, .prior_variance = 0.1, .noise = 0.2, .learning_rate = 0.5});
  std::vector<Feature> x = {{3, 1.0f}, {9, 0.5f}};
  p.Update(x, 1);
  absl::StatusOr<LinearPosterior> back = LinearPosterior::Deserialize(p.Serialize());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->updates(), 1u);
  EXPECT_EQ(back->options().bits, 10);
  EXPECT_EQ(back->options().learning_rate, 0.5);
  EXPECT_EQ(back->Predict(x).mean, p.Predict(x).mean);
  EXPECT_EQ(back->Predict(x).variance, p.Predict(x).variance);
  std::string image = p.Serialize();
  EXPECT_FALSE(LinearPosterior::Deserialize(image.substr(0, image.size() - 1)).ok());
  EXPECT_FALSE(LinearPosterior::Deserialize("nonsense").ok());
}

TEST(CrossWithAction, GivesEachActionItsOwnSlots) {
  std::vector<Feature> base = {{5, 1.0f}, {77, 0.25f}, {1000, 2.0f}};
  std::vector<Feature> a, b, again;
  CrossWithAction(base, 11, 16, &a);
  CrossWithAction(base, 12, 16, &b);
  CrossWithAction(base, 11, 16, &again);
  ASSERT_EQ(a.size(), 4u);
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].index, again[i].index);
    EXPECT_NE(a[i].index, b[i].index);
    EXPECT_LT(a[i].index, 1u << 16);
  }
  EXPECT_EQ(a[2].value, 0.25f);
}

TEST(LinearPosterior, PredictCrossedIsPredictOfTheCrossedFeatures) {
  LinearPosterior p({.bits = 12});
  std::mt19937_64 rng(5);
  for (size_t n : {0, 1, 3, 4, 7, 50}) {
    std::vector<Feature> base;
    for (size_t k = 0; k < n; ++k) {
      base.push_back({static_cast<uint32_t>(rng()), static_cast<float>(rng() % 100) / 37});
    }
    std::vector<Feature> crossed;
    for (uint64_t action : {uint64_t{11}, uint64_t{0x9e3779b97f4a7c15}}) {
      CrossWithAction(base, action, 12, &crossed);
      for (int i = 0; i < 3; ++i) p.Update(crossed, i % 2);
      const RewardEstimate a = p.Predict(crossed),
                           b = p.PredictCrossed(CrossableFeatures(base), action, 12);
      EXPECT_EQ(a.mean, b.mean) << n;  // the same sums in the same order: bit for bit
      EXPECT_EQ(a.variance, b.variance) << n;
    }
  }
}

TEST(ProbabilityOfBest, MatchesSimulationOnRandomCandidates) {
  std::mt19937_64 rng(3);
  std::uniform_real_distribution<double> mean(-0.5, 1.5), sd(0.005, 0.5);
  for (int round = 0; round < 8; ++round) {
    std::vector<RewardEstimate> c(2 + round * 3);
    for (RewardEstimate& e : c) {
      const double s = sd(rng);
      e = {mean(rng), s * s};
    }
    std::vector<int> wins(c.size());
    constexpr int kDraws = 100'000;
    for (int n = 0; n < kDraws; ++n) {
      size_t best = 0;
      double top = -1e9;
      for (size_t i = 0; i < c.size(); ++i) {
        double s = std::normal_distribution<double>(c[i].mean, std::sqrt(c[i].variance))(rng);
        if (s > top) top = s, best = i;
      }
      ++wins[best];
    }
    for (size_t i = 0; i < c.size(); ++i) {
      EXPECT_NEAR(ProbabilityOfBest(c, i), static_cast<double>(wins[i]) / kDraws, 5e-3)
          << "round " << round << " candidate " << i;
    }
  }
}

TEST(ProbabilityOfBest, ManyCandidatesSumToOne) {
  // More candidates than are kept on the stack: the probabilities still sum to one.
  std::mt19937_64 rng(9);
  std::uniform_real_distribution<double> mean(0, 1), sd(0.05, 0.3);
  std::vector<RewardEstimate> c(150);
  for (RewardEstimate& e : c) {
    const double s = sd(rng);
    e = {mean(rng), s * s};
  }
  double total = 0;
  for (size_t i = 0; i < c.size(); ++i) total += ProbabilityOfBest(c, i);
  EXPECT_NEAR(total, 1, 5e-3);
}

TEST(ProbabilityOfBest, ASoleCandidateIsCertainlyBest) {
  // Alone, among excluded ones, or far above the rest: exactly 1, so an autonomy threshold of 1
  // acts on it and its logged propensity is 1.
  const std::vector<RewardEstimate> alone = {{0.3, 0.01}};
  EXPECT_EQ(ProbabilityOfBest(alone, 0), 1.0);
  const std::vector<RewardEstimate> c = {{0.3, 0.01}, {0.5, 0.01}, {-5, 0.01}};
  const std::vector<uint8_t> excluded = {0, 1, 0};
  EXPECT_EQ(ProbabilityOfBest(c, 0, excluded), 1.0);
  EXPECT_EQ(ProbabilityOfBest(c, 2, excluded), 0.0);
  EXPECT_LT(ProbabilityOfBest(c, 0), 0.1);
}

TEST(NormalCdf, MatchesErfc) {
  for (double z = -9; z <= 9; z += 0.0137) {
    EXPECT_NEAR(NormalCdf(z), 0.5 * std::erfc(-z / std::sqrt(2.0)), 1e-6) << z;
  }
  EXPECT_EQ(NormalCdf(-20), 0);
  EXPECT_EQ(NormalCdf(20), 1);
  EXPECT_EQ(NormalCdf(0), 0.5);
}

TEST(ProbabilityOfBest, MatchesSimulationAndSumsToOne) {
  std::vector<RewardEstimate> c = {{0.5, 0.01}, {0.45, 0.04}, {0.2, 0.09}, {0.52, 0.0004}};
  std::mt19937_64 rng(1);
  std::vector<int> wins(c.size());
  constexpr int kDraws = 200'000;
  for (int n = 0; n < kDraws; ++n) {
    size_t best = 0;
    double top = -1e9;
    for (size_t i = 0; i < c.size(); ++i) {
      double s = std::normal_distribution<double>(c[i].mean, std::sqrt(c[i].variance))(rng);
      if (s > top) top = s, best = i;
    }
    ++wins[best];
  }
  double total = 0;
  for (size_t i = 0; i < c.size(); ++i) {
    const double p = ProbabilityOfBest(c, i);
    EXPECT_NEAR(p, static_cast<double>(wins[i]) / kDraws, 0.005) << i;
    total += p;
  }
  EXPECT_NEAR(total, 1, 2e-3);
  // Equal candidates split evenly; an excluded one does not compete.
  std::vector<RewardEstimate> twins = {{0.3, 0.02}, {0.3, 0.02}, {0.9, 0.0001}};
  uint8_t excluded[] = {0, 0, 1};
  EXPECT_NEAR(ProbabilityOfBest(twins, 0, excluded), 0.5, 1e-3);
  EXPECT_LT(ProbabilityOfBest(twins, 0), 1e-4);  // the third is 4 standard deviations ahead
  // Point masses.
  std::vector<RewardEstimate> points = {{0.6, 0}, {0.4, 0}};
  EXPECT_EQ(ProbabilityOfBest(points, 0), 1);
  EXPECT_EQ(ProbabilityOfBest(points, 1), 0);
  // Tied point masses share the win (a tie is broken uniformly); below a continuous candidate,
  // they share what it leaves.
  std::vector<RewardEstimate> tied = {{0, 0}, {0, 0}, {0, 0}};
  for (size_t i = 0; i < tied.size(); ++i) EXPECT_DOUBLE_EQ(ProbabilityOfBest(tied, i), 1.0 / 3);
  std::vector<RewardEstimate> mixed = {{0, 0}, {0, 0}, {0.1, 0.04}};
  const double above = 1 - NormalCdf(-0.1 / 0.2);  // P(N(0.1, 0.2^2) > 0)
  EXPECT_NEAR(ProbabilityOfBest(mixed, 2), above, 1e-4);
  EXPECT_NEAR(ProbabilityOfBest(mixed, 0), (1 - above) / 2, 1e-4);
  // A continuous candidate against a point mass: the integral starts at the mass, whole.
  std::vector<RewardEstimate> step = {{0.2, 0.01}, {0.15, 0}};
  const double p0 = ProbabilityOfBest(step, 0), p1 = ProbabilityOfBest(step, 1);
  EXPECT_NEAR(p0, 1 - NormalCdf(-0.05 / 0.1), 1e-4);
  EXPECT_NEAR(p0 + p1, 1, 1e-4);
}

TEST(StandardNormal, IsTheStandardNormalDistribution) {
  std::mt19937_64 rng(11);
  constexpr int kDraws = 2'000'000;
  std::vector<double> draws(kDraws);
  double sum = 0, squares = 0, fourth = 0;
  int tail = 0;
  for (double& x : draws) {
    x = StandardNormal(rng);
    sum += x;
    squares += x * x;
    fourth += x * x * x * x;
    tail += std::fabs(x) > 3.6541528853610088;  // beyond the ziggurat's base: its tail method
  }
  EXPECT_NEAR(sum / kDraws, 0, 3e-3);
  EXPECT_NEAR(squares / kDraws, 1, 4e-3);
  EXPECT_NEAR(fourth / kDraws, 3, 3e-2);
  const double expected_tail = kDraws * std::erfc(3.6541528853610088 / std::sqrt(2.0));
  EXPECT_NEAR(tail, expected_tail, 5 * std::sqrt(expected_tail));
  // Kolmogorov-Smirnov: the empirical CDF within 1.63 / sqrt(n) of the normal's (1 % level).
  std::sort(draws.begin(), draws.end());
  double distance = 0;
  for (size_t k = 0; k < draws.size(); ++k) {
    const double cdf = 0.5 * std::erfc(-draws[k] / std::sqrt(2.0));
    distance = std::max({distance, std::fabs(cdf - static_cast<double>(k) / kDraws),
                         std::fabs(cdf - static_cast<double>(k + 1) / kDraws)});
  }
  EXPECT_LT(distance, 1.63 / std::sqrt(static_cast<double>(kDraws)));
}

}  // namespace
}  // namespace whisperer::learn
