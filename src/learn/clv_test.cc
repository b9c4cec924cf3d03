#include "learn/clv.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <random>
#include <vector>

namespace whisperer::learn {
namespace {

// The published BG/NBD parameters for CDNOW (Fader, Hardie & Lee 2005), as R's BTYD and
// lifetimes' tests use them.
constexpr BgNbdParams kPublished{0.243, 4.414, 0.793, 2.426};
// The same fit to six decimals (lifetimes' docs): the parameters behind Hardie's E[X(t)] and
// conditional-expectation figures.
constexpr BgNbdParams kFitted{0.242593, 4.413532, 0.792886, 2.425752};

TEST(Hyp2F1, MatchesClosedForms) {
  // 2F1(1, 1; 2; z) = -ln(1 - z) / z, here with z close to 1 (slow convergence).
  for (double z : {0.0, 0.1, 0.5, 0.9, 0.99}) {
    double expected = z == 0 ? 1 : -std::log1p(-z) / z;
    EXPECT_NEAR(Hyp2F1(1, 1, 2, z), expected, 1e-13 * expected) << z;
  }
  // 2F1(a, b; b; z) = (1 - z)^-a.
  EXPECT_NEAR(Hyp2F1(0.7, 2.5, 2.5, 0.8), std::pow(0.2, -0.7), 1e-12);
  // A non-positive integer a ends the series: a polynomial.
  EXPECT_DOUBLE_EQ(Hyp2F1(-2, 3, 4, 0.5), 1 - 2 * 3 * 0.5 / 4 + 3 * 4 * 0.25 / (4 * 5));
  // Negative non-integer a: terms of mixed sign; (1 - z)^0.3 = 2F1(-0.3, b; b; z).
  EXPECT_NEAR(Hyp2F1(-0.3, 1.5, 1.5, 0.95), std::pow(0.05, 0.3), 1e-12);
  // Beyond the double range: 2F1(a, b; b; z) = (1 - z)^-a = 2^2000.
  EXPECT_TRUE(std::isinf(Hyp2F1(2000, 3, 3, 0.5)));
  EXPECT_NEAR(LogHyp2F1(2000, 3, 3, 0.5), 2000 * std::log(2.0), 1e-9);
  EXPECT_NEAR(LogHyp2F1(1, 1, 2, 0.9), std::log(-std::log1p(-0.9) / 0.9), 1e-14);
  // Large b and c, as a fit to data without dropout heterogeneity gives: still quick (reference:
  // the series in 40-digit arithmetic).
  EXPECT_NEAR(Hyp2F1(0.5, 2.5e6, 3.4e6, 0.9), 1.71945416858752, 1e-13);
  // Negative non-integer c (BG/NBD's E[X(t)] when a + b < 1): 2F1(a, c; c; z) = (1 - z)^-a.
  EXPECT_NEAR(Hyp2F1(0.7, -0.5, -0.5, 0.6), std::pow(0.4, -0.7), 1e-13);
  EXPECT_TRUE(std::isnan(Hyp2F1(1, 1, -2, 0.5)));
  EXPECT_TRUE(std::isnan(Hyp2F1(1, 1, 2, 1.0)));
  EXPECT_TRUE(std::isnan(Hyp2F1(1, 1, 0, 0.5)));
  EXPECT_TRUE(std::isnan(Hyp2F1(1, 1, 2, 0.999999, /*max_terms=*/100)));
}

TEST(BgNbd, ProbCountMatchesPublishedValues) {
  // From R BTYD's docs, as asserted by lifetimes' tests.
  EXPECT_NEAR(BgNbdProbCount(kPublished, 2, 10), 1.07869e-07, 1e-12);
  EXPECT_NEAR(BgNbdProbCount(kPublished, 39, 0), 0.5737864, 1e-7);
  const double expected[] = {0.0019995214, 0.0015170236, 0.0011633150, 0.0009003148, 0.0007023638,
                             0.0005517902, 0.0004361913, 0.0003467171, 0.0002769613, 0.0002222260};
  for (int n = 11; n <= 20; ++n) {
    EXPECT_NEAR(BgNbdProbCount(kPublished, 30, n), expected[n - 11], 1e-10) << n;
  }
}

TEST(BgNbd, ProbCountIsADistributionWithMeanExpectedPurchases) {
  for (double t : {0.5, 10.0, 52.0}) {
    double total = 0, mean = 0;
    for (int n = 0; n < 1000; ++n) {
      double p = BgNbdProbCount(kPublished, t, n);
      ASSERT_GE(p, 0);
      total += p;
      mean += n * p;
    }
    EXPECT_NEAR(total, 1, 1e-9) << t;
    EXPECT_NEAR(mean, BgNbdExpectedPurchases(kPublished, t), 1e-6) << t;
  }
  EXPECT_EQ(BgNbdProbCount(kPublished, 0, 0), 1);
  EXPECT_EQ(BgNbdProbCount(kPublished, 0, 3), 0);
  EXPECT_EQ(BgNbdProbCount(kPublished, 5, -1), 0);
}

TEST(BgNbd, ExpectedPurchasesMatchHardiesSpreadsheet) {
  // lifetimes' tests assert these to 3 decimals.
  const double t[] = {0.1429, 1, 3, 31.8571, 32, 78};
  const double expected[] = {0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576};
  for (size_t i = 0; i < std::size(t); ++i) {
    EXPECT_NEAR(BgNbdExpectedPurchases(kFitted, t[i]), expected[i], 5e-4) << t[i];
  }
  EXPECT_EQ(BgNbdExpectedPurchases(kFitted, 0), 0);
  // a + b < 1, where the closed form's 2F1 has c < 0: against E[(1 - (alpha / (alpha + p t))^r)
  // / p] integrated over p ~ Beta(a, b) by quadrature (mpmath), 0.8413305881395.
  EXPECT_NEAR(BgNbdExpectedPurchases(BgNbdParams{1.18, 11.1, 0.33, 0.64}, 10), 0.8413305881395,
              1e-11);
}

TEST(BgNbd, ConditionalExpectedMatchesPublishedValue) {
  EXPECT_NEAR(BgNbdConditionalExpected(kFitted, 39, 2, 30.43, 38.86), 1.226, 1e-3);
  // A customer seen for no time at all is a new customer.
  EXPECT_NEAR(BgNbdConditionalExpected(kFitted, 20, 0, 0, 0), BgNbdExpectedPurchases(kFitted, 20),
              1e-12);
  // A very heavy buyer, whose direct formula multiplies (1 - z)^(r+x) ~ 1e-80 by a 2F1 ~ 1e79,
  // and a long-silent one; the references are the direct formula in 50-digit arithmetic
  // (mpmath).
  EXPECT_NEAR(BgNbdConditionalExpected(kFitted, 10, 2000, 100, 100), 184.619327518509, 1e-9);
  EXPECT_NEAR(BgNbdConditionalExpected(kFitted, 52, 50, 20, 60), 1.39899337905040e-18, 1e-28);
}

TEST(BgNbd, ProbAlive) {
  EXPECT_EQ(BgNbdProbAlive(kPublished, 0, 0, 30), 1);
  // Same purchases, longer silence: less likely alive.
  double recent = BgNbdProbAlive(kPublished, 3, 30, 31);
  double silent = BgNbdProbAlive(kPublished, 3, 5, 31);
  EXPECT_GT(recent, silent);
  EXPECT_GT(silent, 0);
  EXPECT_LT(recent, 1);
  // 1 / (1 + a / (b + x - 1) ((alpha + T) / (alpha + t_x))^(r + x)) by hand.
  const BgNbdParams& p = kPublished;
  double odds = p.a / (p.b + 2) * std::pow((p.alpha + 31) / (p.alpha + 5), p.r + 3);
  EXPECT_NEAR(silent, 1 / (1 + odds), 1e-14);
  // A long-silent heavy buyer: a tiny probability, not 0/0.
  double gone = BgNbdProbAlive(kPublished, 500, 1, 400);
  EXPECT_GE(gone, 0);
  EXPECT_LT(gone, 1e-100);
}

// Customers simulated from BG/NBD: a Poisson rate lambda ~ Gamma(r, alpha) and a dropout
// probability p ~ Beta(a, b) each; after every repeat purchase the customer leaves with
// probability p. T is spread over a year-long cohort. Each repeater's mean spend is the mean of
// x draws of Gamma(gp, nu) with nu ~ Gamma(gq, gv).
std::vector<RfmSummary> Simulate(const BgNbdParams& bg, const GammaGammaParams& gg, size_t n,
                                 uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::gamma_distribution<double> rate(bg.r, 1 / bg.alpha);
  std::gamma_distribution<double> beta_a(bg.a, 1), beta_b(bg.b, 1);
  std::uniform_real_distribution<double> uniform(0, 1);
  std::gamma_distribution<double> nu_dist(gg.q, 1 / gg.v);
  std::vector<RfmSummary> rows;
  for (size_t i = 0; i < n; ++i) {
    RfmSummary s;
    s.T = 26 + 52 * uniform(rng);
    const double lambda = rate(rng);
    const double ga = beta_a(rng);
    const double p = ga / (ga + beta_b(rng));
    std::exponential_distribution<double> wait(lambda);
    double t = 0;
    while (true) {
      t += wait(rng);
      if (t > s.T) break;
      s.x += 1;
      s.t_x = t;
      if (uniform(rng) < p) break;
    }
    if (s.x > 0) {
      std::gamma_distribution<double> spend(gg.p, 1 / nu_dist(rng));
      double sum = 0;
      for (int k = 0; k < s.x; ++k) sum += spend(rng);
      s.monetary = sum / s.x;
    }
    rows.push_back(s);
  }
  return rows;
}

TEST(Fit, RecoversSimulatedParameters) {
  const BgNbdParams bg_true{0.5, 6, 0.7, 2.5};
  const GammaGammaParams gg_true{6, 4, 15};
  std::vector<RfmSummary> rows = Simulate(bg_true, gg_true, 20000, 42);

  auto bg = FitBgNbd(rows);
  ASSERT_TRUE(bg.ok()) << bg.status();
  // About three standard errors at this sample size (b is the least well identified).
  EXPECT_NEAR(bg->r, bg_true.r, 0.05 * bg_true.r);
  EXPECT_NEAR(bg->alpha, bg_true.alpha, 0.08 * bg_true.alpha);
  EXPECT_NEAR(bg->a, bg_true.a, 0.15 * bg_true.a);
  EXPECT_NEAR(bg->b, bg_true.b, 0.25 * bg_true.b);
  EXPECT_GT(bg->iterations, 0);
  // The fit is a maximum: moving any parameter lowers the likelihood.
  auto total = [&](const BgNbdParams& p) {
    double ll = 0;
    for (const RfmSummary& row : rows) ll += BgNbdLogLikelihood(p, row.x, row.t_x, row.T);
    return ll;
  };
  EXPECT_NEAR(total(*bg), bg->log_likelihood, 1e-6 * std::fabs(bg->log_likelihood));
  for (int i = 0; i < 4; ++i) {
    for (double f : {0.99, 1.01}) {
      BgNbdParams moved = *bg;
      double* field[] = {&moved.r, &moved.alpha, &moved.a, &moved.b};
      *field[i] *= f;
      EXPECT_LT(total(moved), bg->log_likelihood) << i << " " << f;
    }
  }

  auto gg = FitGammaGamma(rows);
  ASSERT_TRUE(gg.ok()) << gg.status();
  EXPECT_NEAR(gg->p, gg_true.p, 0.1 * gg_true.p);
  EXPECT_NEAR(gg->q, gg_true.q, 0.15 * gg_true.q);
  EXPECT_NEAR(gg->v, gg_true.v, 0.2 * gg_true.v);
  // The population mean spend p v / (q - 1) is better identified than v alone.
  EXPECT_NEAR(gg->p * gg->v / (gg->q - 1), 30, 1.5);
}

TEST(Fit, Errors) {
  EXPECT_EQ(FitBgNbd({}).status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<RfmSummary> no_repeat = {{0, 0, 10, 0}, {0, 0, 20, 0}};
  EXPECT_EQ(FitBgNbd(no_repeat).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FitGammaGamma(no_repeat).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FitGammaGamma({}).status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<RfmSummary> bad = {{1, 12, 10, 5}};  // t_x > T
  EXPECT_EQ(FitBgNbd(bad).status().code(), absl::StatusCode::kInvalidArgument);
  bad = {{1.5, 2, 10, 5}};  // x not an integer
  EXPECT_EQ(FitBgNbd(bad).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(FitGammaGamma(bad).status().code(), absl::StatusCode::kInvalidArgument);
  bad = {{2, 2, 10, 0}};  // a repeater without a positive mean value
  EXPECT_EQ(FitGammaGamma(bad).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(Fit, NonConvergenceIsAnError) {
  std::vector<RfmSummary> rows =
      Simulate(BgNbdParams{0.5, 6, 0.7, 2.5}, GammaGammaParams{6, 4, 15}, 500, 7);
  FitOptions options;
  options.max_iterations = 1;
  auto bg = FitBgNbd(rows, options);
  EXPECT_EQ(bg.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(bg.status().message().find("did not converge"), absl::string_view::npos);
  EXPECT_EQ(FitGammaGamma(rows, options).status().code(), absl::StatusCode::kFailedPrecondition);
}

// Spend with little variation between customers' means: the likelihood keeps rising as p, q and
// v grow together (towards one spend distribution for everybody), and the unpenalised fit stalls
// (libLBFGS -1001). The penalised retry answers, with an expected spend within the data.
TEST(GammaGamma, FitsSpendWithoutHeterogeneity) {
  std::vector<RfmSummary> rows;
  for (int i = 0; i < 400; ++i) {
    const int x = i % 8;
    double sum = 0;
    for (int k = 0; k <= x; ++k) sum += 20 + (7 * i + 13 * k) % 20;
    rows.push_back({static_cast<double>(x), 1, 10, x > 0 ? sum / (x + 1) : 0});
  }
  absl::StatusOr<GammaGammaParams> fit = FitGammaGamma(rows);
  ASSERT_TRUE(fit.ok()) << fit.status();
  const double population = GammaGammaConditionalSpend(*fit, 0, 0);
  EXPECT_GT(population, 20);
  EXPECT_LT(population, 40);
  EXPECT_TRUE(std::isfinite(fit->log_likelihood));

  // One price for everything: the limit, every customer's expected spend is that price.
  for (RfmSummary& row : rows) row.monetary = row.x > 0 ? 9.99 : 0;
  fit = FitGammaGamma(rows);
  ASSERT_TRUE(fit.ok()) << fit.status();
  EXPECT_NEAR(GammaGammaConditionalSpend(*fit, 0, 0), 9.99, 1e-6);
  EXPECT_NEAR(GammaGammaConditionalSpend(*fit, 3, 9.99), 9.99, 1e-6);
}

TEST(GammaGamma, ConditionalSpend) {
  const GammaGammaParams p{6.25, 3.74, 15.44};
  // No repeat purchase: the population mean p v / (q - 1).
  EXPECT_NEAR(GammaGammaConditionalSpend(p, 0, 0), 6.25 * 15.44 / 2.74, 1e-12);
  // Otherwise a weighted mean of that and the customer's own mean.
  double w = 6.25 * 2 / (6.25 * 2 + 3.74 - 1);
  EXPECT_NEAR(GammaGammaConditionalSpend(p, 2, 22.35), (1 - w) * 6.25 * 15.44 / 2.74 + w * 22.35,
              1e-12);
  EXPECT_TRUE(std::isnan(GammaGammaConditionalSpend({1, 0.5, 10}, 0, 0)));
}

TEST(SummarizePurchases, AggregatesDaysAndExcludesTheTrial) {
  // Out of order; two purchases on the trial day, two on day 107; one after the calibration end.
  std::vector<Purchase> purchases = {
      {107, 20}, {100, 10}, {121, 8}, {200, 99}, {100, 5}, {107, 2},
  };
  auto s = SummarizePurchases(purchases, 150);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->x, 2);
  EXPECT_DOUBLE_EQ(s->t_x, 21.0 / 7);
  EXPECT_DOUBLE_EQ(s->T, 50.0 / 7);
  EXPECT_DOUBLE_EQ(s->monetary, (22.0 + 8) / 2);

  // Daily periods; the calibration end day itself counts.
  s = SummarizePurchases(purchases, 121, 1);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->x, 2);
  EXPECT_EQ(s->t_x, 21);
  EXPECT_EQ(s->T, 21);

  // Only the trial day: nothing repeated.
  s = SummarizePurchases(std::vector<Purchase>{{100, 10}, {100, 3}}, 150);
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(s->x, 0);
  EXPECT_EQ(s->t_x, 0);
  EXPECT_EQ(s->monetary, 0);
  EXPECT_DOUBLE_EQ(s->T, 50.0 / 7);
}

TEST(SummarizePurchases, Errors) {
  EXPECT_EQ(SummarizePurchases({}, 10).status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<Purchase> late = {{20, 1}};
  EXPECT_EQ(SummarizePurchases(late, 10).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(SummarizePurchases(late, 30, 0).status().code(), absl::StatusCode::kInvalidArgument);
  std::vector<Purchase> nan = {{1, 1}, {2, std::nan("")}};
  EXPECT_EQ(SummarizePurchases(nan, 30).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(DayOfMillis, FloorsToUtcDays) {
  EXPECT_EQ(DayOfMillis(0), 0);
  EXPECT_EQ(DayOfMillis(86'399'999), 0);
  EXPECT_EQ(DayOfMillis(86'400'000), 1);
  EXPECT_EQ(DayOfMillis(-1), -1);
  EXPECT_EQ(DayOfMillis(-86'400'000), -1);
  EXPECT_EQ(DayOfMillis(-86'400'001), -2);
}

TEST(EstimateClv, CombinesTheModels) {
  const ClvModel model{kFitted, GammaGammaParams{6.25, 3.74, 15.44}};
  const RfmSummary customer{2, 30.43, 38.86, 22.35};
  ClvEstimate e = EstimateClv(model, customer);
  EXPECT_NEAR(e.prob_alive, BgNbdProbAlive(kFitted, 2, 30.43, 38.86), 1e-15);
  EXPECT_NEAR(e.expected_purchases, BgNbdConditionalExpected(kFitted, 52, 2, 30.43, 38.86), 1e-15);
  EXPECT_NEAR(e.expected_spend, GammaGammaConditionalSpend(model.spend, 2, 22.35), 1e-12);
  EXPECT_NEAR(e.value, e.expected_purchases * e.expected_spend, 1e-12);

  // Discounted: each month's purchases by (1 + rate)^month.
  ClvOptions options;
  options.horizon = 13;
  options.periods_per_month = 13.0 / 3;
  options.monthly_discount_rate = 0.01;
  ClvEstimate d = EstimateClv(model, customer, options);
  double by_hand = 0, before = 0;
  for (int m = 1; m <= 3; ++m) {
    double upto = BgNbdConditionalExpected(kFitted, m * 13.0 / 3, 2, 30.43, 38.86);
    by_hand += (upto - before) * e.expected_spend / std::pow(1.01, m);
    before = upto;
  }
  EXPECT_NEAR(d.value, by_hand, 1e-9);
  EXPECT_LT(d.value, d.expected_purchases * d.expected_spend);
  EXPECT_GT(d.value, 0);
}

TEST(EstimateClv, RepeatPurchasesWithoutPositiveValueGetThePopulationSpend) {
  const ClvModel model{kFitted, GammaGammaParams{6.25, 3.74, 15.44}};
  const double population = GammaGammaConditionalSpend(model.spend, 0, 0);
  for (double monetary : {-40.0, 0.0, std::numeric_limits<double>::infinity()}) {
    ClvEstimate e = EstimateClv(model, RfmSummary{2, 30.43, 38.86, monetary});
    EXPECT_DOUBLE_EQ(e.expected_spend, population) << monetary;
    EXPECT_GT(e.value, 0) << monetary;
    // The purchases still count: the customer bought twice more.
    EXPECT_NEAR(e.expected_purchases, BgNbdConditionalExpected(kFitted, 52, 2, 30.43, 38.86),
                1e-15);
  }
}

}  // namespace
}  // namespace whisperer::learn
