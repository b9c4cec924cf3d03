// Customer lifetime value: how many purchases a customer will still make, what each will be
// worth, and whether the customer is still "alive" — from nothing but the customer's own
// purchase history summarised as recency, frequency and monetary value (RFM).
//
//   SummarizePurchases  one customer's purchases -> RfmSummary (x, t_x, T, monetary) at a
//                       calibration end, the way the papers' CDNOW summary is derived;
//   BG/NBD              the beta-geometric / negative-binomial purchase model of Fader, Hardie
//                       & Lee (2005), "Counting Your Customers the Easy Way: An Alternative to
//                       the Pareto/NBD Model", Marketing Science 24(2): while alive a customer
//                       buys as a Poisson process with rate lambda ~ Gamma(r, alpha), and after
//                       each repeat purchase drops out with probability p ~ Beta(a, b);
//   Gamma-Gamma         the spend model of Fader, Hardie & Lee (2005), "RFM and CLV: Using
//                       Iso-Value Curves for Customer Base Analysis", JMR 42(4), as written up
//                       in Hardie's note 025 ("The Gamma-Gamma Model of Monetary Value"): each
//                       transaction value is Gamma(p, nu) with nu ~ Gamma(q, v) per customer,
//                       independent of the purchase process;
//   EstimateClv         expected purchases over a horizon times the expected spend per
//                       purchase, optionally discounted monthly, with P(alive): the figures the
//                       server puts on a customer profile.
//
// Both models are fitted by maximum likelihood over the logarithms of their parameters (so
// they stay positive), with analytic gradients, by libLBFGS (Okazaki's C port of Nocedal's
// L-BFGS, Debian liblbfgs-dev): a well-kept optimiser with a More-Thuente line search rather
// than a hand-rolled one. On the CDNOW sample (src/eval/cdnow.cc, `whisperer eval cdnow`)
// BG/NBD reproduces the published r, alpha, a, b and log-likelihood to the published decimals,
// and Gamma-Gamma p, q, v = 6.25, 3.74, 15.44 when fitted on the unrounded mean values, as the
// paper was (on the summary file's cent-rounded means v comes out 15.448, as lifetimes prints).
//
// Time is measured in periods (weeks by default) throughout; a model fitted on weekly
// summaries must be queried with weekly t, t_x and T.
//
// Thread-safety: pure functions (the fits keep their state on the caller's stack), safe to call
// from any number of threads at once.
#pragma once

#include <cstdint>
#include <span>

#include "absl/status/statusor.h"

namespace whisperer::learn {

// One customer's calibration-period summary.
struct RfmSummary {
  double x = 0;         // number of repeat purchases (a non-negative integer)
  double t_x = 0;       // time of the last repeat purchase since the first purchase; 0 if x = 0
  double T = 0;         // time from the first purchase to the end of calibration; t_x <= T
  double monetary = 0;  // mean value of the repeat purchases; 0 if x = 0
};

// One purchase: the UTC calendar day (days since 1970-01-01) and its value.
struct Purchase {
  int64_t day = 0;
  double value = 0;
};

// The UTC calendar day of a Unix timestamp in milliseconds (floor division, so times before
// 1970 fall on the right day too).
constexpr int64_t DayOfMillis(int64_t millis) {
  constexpr int64_t kMillisPerDay = 86'400'000;
  return millis >= 0 ? millis / kMillisPerDay : -((-millis + kMillisPerDay - 1) / kMillisPerDay);
}

// The RFM summary of one customer's `purchases` (any order) at `calibration_end` (a day,
// inclusive), in periods of `period_days` days:
//   - purchases on the same calendar day are one purchase, their values summed;
//   - the first purchase day is the trial and counts neither in x nor in monetary;
//   - purchases after `calibration_end` are ignored;
//   - t_x = (last repeat day - first day) / period_days, T = (calibration_end - first day) /
//     period_days, both unrounded.
// InvalidArgument when no purchase is on or before `calibration_end`, a value is not finite, or
// `period_days` <= 0.
absl::StatusOr<RfmSummary> SummarizePurchases(std::span<const Purchase> purchases,
                                              int64_t calibration_end, double period_days = 7);

// How a model is fitted.
struct FitOptions {
  // L-BFGS iterations before giving up (FailedPrecondition). 0 means no limit.
  int max_iterations = 1000;
  // Convergence: the norm of the gradient of the mean negative log-likelihood with respect to
  // the log-parameters is below epsilon * max(1, norm of the log-parameters). Tighter than
  // libLBFGS's default 1e-5 so that weakly identified parameters (BG/NBD's b, Gamma-Gamma's v)
  // settle to about six significant digits: on CDNOW, 1e-5 leaves b off by 3e-5 (17 rather
  // than 21 iterations). A fit whose line search stalls on rounding error short of epsilon
  // still counts as converged if the gradient is below libLBFGS's default tolerance.
  double epsilon = 1e-9;
};

// BG/NBD parameters: lambda ~ Gamma(shape r, rate alpha), p ~ Beta(a, b).
struct BgNbdParams {
  double r = 0;
  double alpha = 0;
  double a = 0;
  double b = 0;
  double log_likelihood = 0;  // total over the fitted rows (not the mean)
  int iterations = 0;         // L-BFGS iterations taken
};

// Maximum-likelihood BG/NBD on `rows` (monetary is not used). Starts from r = a = b = 1 and
// alpha = the mean T (so that the starting mean purchase rate is about 1 per lifetime).
// InvalidArgument on empty input, on a row with a negative or non-integer x, non-finite values
// or t_x outside [0, T], and when no row has x > 0 (the dropout process is then not
// identified); FailedPrecondition, naming libLBFGS's reason, when the fit does not converge.
absl::StatusOr<BgNbdParams> FitBgNbd(std::span<const RfmSummary> rows,
                                     const FitOptions& options = {});

// The log-likelihood of one customer's (x, t_x, T) under `params` (FHL 2005).
double BgNbdLogLikelihood(const BgNbdParams& params, double x, double t_x, double T);

// E[X(t)]: expected purchases of a new customer in (0, t] (FHL 2005). NaN when the Gauss
// hypergeometric series does not converge within its term limit (t above roughly 25,000 alpha),
// or when a = 1 or a + b = 1 (poles of the closed form; the expectation itself is finite).
//
// When the data show no heterogeneity in dropout, the likelihood keeps rising as a and b grow
// together (towards a fixed dropout probability a / (a + b)), and a fit stops at large a and b;
// these functions stay accurate there.
double BgNbdExpectedPurchases(const BgNbdParams& params, double t);

// E[Y(t) | x, t_x, T]: expected purchases in the next t periods of a customer with that
// history (FHL 2005). NaN as for BgNbdExpectedPurchases.
double BgNbdConditionalExpected(const BgNbdParams& params, double t, double x, double t_x,
                                double T);

// P(alive | x, t_x, T) (FHL 2005; Hardie's note 021): 1 when x = 0.
double BgNbdProbAlive(const BgNbdParams& params, double x, double t_x, double T);

// P(X(t) = n): the probability that a new customer makes exactly n purchases in (0, t]
// (FHL 2005).
double BgNbdProbCount(const BgNbdParams& params, double t, int n);

// Gamma-Gamma parameters: a transaction's value ~ Gamma(shape p, rate nu), nu ~ Gamma(q, v).
struct GammaGammaParams {
  double p = 0;
  double q = 0;
  double v = 0;
  double log_likelihood = 0;  // total over the rows with x > 0: the log-density of their means
  int iterations = 0;
};

// Both fits minimise with libLBFGS; a fit that does not converge is tried again with a small ridge
// penalty on the log-parameters (1e-6, 1e-4, then 1e-2: see Minimize in clv.cc), which data
// without heterogeneity need (their maximum is at infinity); the log-likelihood reported is the
// unpenalised one.
//
// Maximum-likelihood Gamma-Gamma on the rows of `rows` with x > 0 (rows with x = 0 are
// skipped; t_x and T are not used), from p = q = 1, v = the mean monetary value. The
// log-likelihood is that of lifetimes' GammaGammaFitter: per row
//   lnG(px+q) - lnG(px) - lnG(q) + q ln v + (px-1) ln m + px ln x - (px+q) ln(xm+v).
// InvalidArgument when no row has x > 0 or a row with x > 0 has a non-positive or non-finite
// monetary value; FailedPrecondition when the fit does not converge. When every repeater's mean
// value is the same (one price for everything) there is no maximum: the answer is the limit, a
// point mass at that value (p = q - 1 = 1e9, v = the value, log-likelihood +infinity).
absl::StatusOr<GammaGammaParams> FitGammaGamma(std::span<const RfmSummary> rows,
                                               const FitOptions& options = {});

// E[Z | x, mean m]: the expected value of this customer's future transactions,
// p (v + x m) / (p x + q - 1) — a weighted mean of the population mean p v / (q - 1) and the
// customer's own mean m, with weight p x / (p x + q - 1) on m. NaN when p x + q <= 1 (for a
// customer with x = 0 that is q <= 1: the population mean is infinite).
double GammaGammaConditionalSpend(const GammaGammaParams& params, double x, double monetary);

// Both models, as the server keeps them per workspace.
struct ClvModel {
  BgNbdParams purchases;
  GammaGammaParams spend;
};

struct ClvOptions {
  // The horizon, in periods. Default: 52 weeks.
  double horizon = 52;
  // Discount rate per month applied to each month's expected purchases (0 = undiscounted).
  // Month i (1-based) is discounted by (1 + rate)^i, as lifetimes' customer_lifetime_value.
  double monthly_discount_rate = 0;
  // Length of a month in periods. Default: weeks per average Gregorian month. Must be > 0 when
  // discounting (the value is NaN otherwise).
  double periods_per_month = 365.2425 / 12 / 7;
};

// The figures put on a customer's profile.
struct ClvEstimate {
  double prob_alive = 0;          // P(alive | history)
  double expected_purchases = 0;  // E[Y(horizon) | history], undiscounted
  double expected_spend = 0;      // expected value of each future purchase
  double value = 0;               // sum over months of purchases x spend, discounted
};

// P(alive), E[Y(horizon)], the conditional expected spend and their (discounted) product for
// `customer`, whose summary must be in the periods the model was fitted in. Fields are NaN
// where the models are (see above). A customer whose repeat purchases have no positive mean
// value gets the population's mean spend, never a negative one.
ClvEstimate EstimateClv(const ClvModel& model, const RfmSummary& customer,
                        const ClvOptions& options = {});

// The Gauss hypergeometric function 2F1(a, b; c; z) for 0 <= z < 1 and c not a non-positive
// integer, by its power series sum_n (a)_n (b)_n / ((c)_n n!) z^n. Convergence check: the ratio
// of term m+1 to term m is (a+m)/(c+m) * (b+m)/(m+1) * z. Once a+m, b+m and c+m are positive,
// each of these fractions is monotone in m and tends to 1, so every later ratio is at most
// rho = z min(max(1, (a+m)/(c+m)) max(1, (b+m)/(m+1)), max(1, (b+m)/(c+m)) max(1, (a+m)/(m+1)))
// and, when rho < 1, the terms after term m sum to at most |term m| rho / (1 - rho). Summation
// stops when that bound is below 1e-16 |sum| (or the series ends because a or b is a
// non-positive integer). NaN when it has not stopped after `max_terms` terms (z close to 1
// needs about 37 / (1 - z) terms; a or b much larger than c about max(a, b) z / (1 - z) more),
// for c a non-positive integer, or z outside [0, 1).
double Hyp2F1(double a, double b, double c, double z, int max_terms = 1'000'000);

// ln 2F1(a, b; c; z), summed as Hyp2F1 but with the terms rescaled so that it stays finite when
// 2F1 itself exceeds the double range (as 2F1(r+x, b+x; ...) does for heavy buyers). NaN as
// Hyp2F1, or when the sum is not positive.
double LogHyp2F1(double a, double b, double c, double z, int max_terms = 1'000'000);

}  // namespace whisperer::learn
