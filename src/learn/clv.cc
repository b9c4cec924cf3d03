#include "learn/clv.h"

#include <lbfgs.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <string>
#include <string_view>
#include <vector>

#include "common/strings.h"

namespace whisperer::learn {
namespace {

constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
constexpr int kMaxTerms = 1'000'000;  // of a Gauss hypergeometric series

// ln Gamma(x) for x > 0. glibc's lgamma() writes the global `signgam`; lgamma_r does not, which
// keeps these functions safe to call from several threads.
double LogGamma(double x) {
  int sign = 0;
  return ::lgamma_r(x, &sign);
}

double LogBeta(double a, double b) { return LogGamma(a) + LogGamma(b) - LogGamma(a + b); }

// The digamma function psi(x) = d/dx ln Gamma(x) for x > 0: the recurrence psi(x) = psi(x + 1) -
// 1/x up to x >= 10, then the asymptotic series to x^-10 (truncation error below 3e-14 there).
double Digamma(double x) {
  double result = 0;
  while (x < 10) {
    result -= 1 / x;
    x += 1;
  }
  const double f = 1 / (x * x);
  return result + std::log(x) - 0.5 / x -
         f * (1.0 / 12 - f * (1.0 / 120 - f * (1.0 / 252 - f * (1.0 / 240 - f / 132))));
}

// ln(e^u + e^v) without overflow; either may be -infinity.
double LogAddExp(double u, double v) {
  double m = std::max(u, v);
  if (m == -std::numeric_limits<double>::infinity()) return m;
  return m + std::log(std::exp(u - m) + std::exp(v - m));
}

bool IsWholeNonNegative(double x) { return x >= 0 && std::isfinite(x) && x == std::floor(x); }

// ---- Maximum likelihood with libLBFGS ------------------------------------------------------

// The mean negative log-likelihood and its gradient at the log-parameters `theta`.
using Objective = std::function<double(const double* theta, double* gradient)>;

struct Minimum {
  std::vector<double> theta;
  double value = 0;
  int iterations = 0;
  double penalty = 0;  // the ridge penalty the fit needed (see Minimize), 0 for none
};

struct LbfgsState {
  const Objective* objective;
  int n;
  int iterations = 0;
};

lbfgsfloatval_t EvaluateThunk(void* instance, const lbfgsfloatval_t* x, lbfgsfloatval_t* g,
                              const int n, const lbfgsfloatval_t /*step*/) {
  auto* state = static_cast<LbfgsState*>(instance);
  double value = (*state->objective)(x, g);
  if (!std::isfinite(value)) {
    // A line-search trial far outside the region where the likelihood is representable: a
    // large finite value sends the More-Thuente search back towards the last good point.
    for (int i = 0; i < n; ++i) g[i] = 0;
    return 1e300;
  }
  return value;
}

int ProgressThunk(void* instance, const lbfgsfloatval_t*, const lbfgsfloatval_t*,
                  const lbfgsfloatval_t, const lbfgsfloatval_t, const lbfgsfloatval_t,
                  const lbfgsfloatval_t, int, int k, int) {
  static_cast<LbfgsState*>(instance)->iterations = k;
  return 0;
}

std::string_view LbfgsReason(int code) {
  switch (code) {
    case LBFGSERR_MAXIMUMITERATION:
      return "the iteration limit was reached";
    case LBFGSERR_ROUNDING_ERROR:
      return "the line search hit rounding error";
    case LBFGSERR_MINIMUMSTEP:
      return "the line-search step became too small";
    case LBFGSERR_MAXIMUMSTEP:
      return "the line-search step became too large";
    case LBFGSERR_MAXIMUMLINESEARCH:
      return "the line search used up its evaluations";
    case LBFGSERR_WIDTHTOOSMALL:
      return "the line search's interval of uncertainty became too small";
    case LBFGSERR_INCREASEGRADIENT:
      return "the search direction increased the objective";
    case LBFGSERR_OUTOFMEMORY:
      return "out of memory";
    default:
      return "the optimisation failed";
  }
}

double Norm(const std::vector<double>& v) {
  double s = 0;
  for (double x : v) s += x * x;
  return std::sqrt(s);
}

// Minimises `objective` from `theta` with libLBFGS. Converged means libLBFGS's own gradient
// test passed; or that its line search could make no further progress (rounding error and its
// kin, common when `epsilon` asks for more than the objective's precision allows) while the
// gradient is already below libLBFGS's default tolerance, 1e-5 * max(1, |theta|).
// `code` receives libLBFGS's return code.
absl::StatusOr<Minimum> MinimizeOnce(std::string_view model, const Objective& objective,
                                     std::vector<double> theta, const FitOptions& options,
                                     int* code_out) {
  const int n = static_cast<int>(theta.size());
  lbfgs_parameter_t param;
  lbfgs_parameter_init(&param);
  param.epsilon = options.epsilon;
  param.max_iterations = std::max(0, options.max_iterations);
  LbfgsState state{&objective, n};
  double fx = 0;
  int code = lbfgs(n, theta.data(), &fx, EvaluateThunk, ProgressThunk, &state, &param);
  *code_out = code;

  std::vector<double> gradient(theta.size());
  double value = objective(theta.data(), gradient.data());
  bool converged = code == LBFGS_SUCCESS || code == LBFGS_ALREADY_MINIMIZED;
  if (!converged && code != LBFGSERR_MAXIMUMITERATION && code != LBFGSERR_OUTOFMEMORY) {
    converged = std::isfinite(value) && Norm(gradient) <= 1e-5 * std::max(1.0, Norm(theta));
  }
  if (!converged || !std::isfinite(value)) {
    return absl::FailedPreconditionError(
        ToAbsl(StrCat(model, " fit did not converge: ", LbfgsReason(code), " (libLBFGS code ", code,
                      ") after ", state.iterations, " iterations, mean log-likelihood ", -value,
                      ", gradient norm ", Norm(gradient))));
  }
  return Minimum{std::move(theta), value, state.iterations};
}

// MinimizeOnce, and when that does not converge, again with a ridge penalty
// lambda * |theta|^2 on the log-parameters, lambda = 1e-6, then 1e-4, then 1e-2. Data without
// heterogeneity (customers' mean spends all close, no variation in dropout) put the maximum of
// the likelihood at infinity: the parameters grow together without bound and the line search
// stalls on rounding error. The penalty (lifetimes' penalizer_coef does the same) stops them at
// a large finite point that answers like the limit. Data with an interior maximum, such as
// CDNOW, converge without it. The value returned is the unpenalised objective.
absl::StatusOr<Minimum> Minimize(std::string_view model, const Objective& objective,
                                 const std::vector<double>& theta, const FitOptions& options) {
  int code = 0;
  absl::StatusOr<Minimum> minimum = MinimizeOnce(model, objective, theta, options, &code);
  // Out of iterations or memory: a penalty would not help.
  if (minimum.ok() || code == LBFGSERR_MAXIMUMITERATION || code == LBFGSERR_OUTOFMEMORY) {
    return minimum;
  }
  for (double lambda : {1e-6, 1e-4, 1e-2}) {
    Objective penalised = [&](const double* t, double* grad) {
      double value = objective(t, grad);
      for (size_t i = 0; i < theta.size(); ++i) {
        value += lambda * t[i] * t[i];
        grad[i] += 2 * lambda * t[i];
      }
      return value;
    };
    absl::StatusOr<Minimum> again = MinimizeOnce(model, penalised, theta, options, &code);
    if (!again.ok()) continue;
    std::vector<double> gradient(theta.size());
    again->value = objective(again->theta.data(), gradient.data());
    again->penalty = lambda;
    return again;
  }
  return minimum;
}

// ---- BG/NBD ----------------------------------------------------------------------------------

absl::Status CheckRow(const RfmSummary& row, size_t i) {
  if (!IsWholeNonNegative(row.x) || !std::isfinite(row.t_x) || !std::isfinite(row.T) ||
      row.t_x < 0 || row.t_x > row.T) {
    return absl::InvalidArgumentError(ToAbsl(
        StrCat("row ", i, ": need x a non-negative integer and 0 <= t_x <= T, got x = ", row.x,
               ", t_x = ", row.t_x, ", T = ", row.T)));
  }
  return absl::OkStatus();
}

// One row's log-likelihood and, when `grad` is given, its derivatives with respect to
// (r, alpha, a, b), added to grad[0..3]:
//   ln L = A1 + A2 + ln(e^A3 + [x > 0] e^A4),
//   A1 = lnG(r+x) - lnG(r) + r ln alpha,   A2 = lnG(a+b) + lnG(b+x) - lnG(b) - lnG(a+b+x),
//   A3 = -(r+x) ln(alpha+T),               A4 = ln a - ln(b+x-1) - (r+x) ln(alpha+t_x).
double BgNbdRow(double r, double alpha, double a, double b, double x, double t_x, double T,
                double* grad) {
  const double a1 = LogGamma(r + x) - LogGamma(r) + r * std::log(alpha);
  const double a2 = LogGamma(a + b) + LogGamma(b + x) - LogGamma(b) - LogGamma(a + b + x);
  const double a3 = -(r + x) * std::log(alpha + T);
  const double a4 = x > 0 ? std::log(a) - std::log(b + x - 1) - (r + x) * std::log(alpha + t_x)
                          : -std::numeric_limits<double>::infinity();
  const double tail = LogAddExp(a3, a4);
  if (grad != nullptr) {
    // Weights of the two terms of the sum inside the logarithm.
    const double w4 = x > 0 ? std::exp(a4 - tail) : 0;
    const double w3 = 1 - w4;
    const double psi_ab = Digamma(a + b), psi_abx = Digamma(a + b + x);
    grad[0] += Digamma(r + x) - Digamma(r) + std::log(alpha) - w3 * std::log(alpha + T) -
               (x > 0 ? w4 * std::log(alpha + t_x) : 0);
    grad[1] += r / alpha - w3 * (r + x) / (alpha + T) - (x > 0 ? w4 * (r + x) / (alpha + t_x) : 0);
    grad[2] += psi_ab - psi_abx + (x > 0 ? w4 / a : 0);
    grad[3] += psi_ab + Digamma(b + x) - Digamma(b) - psi_abx - (x > 0 ? w4 / (b + x - 1) : 0);
  }
  return a1 + a2 + tail;
}

// 1 - P(alive) would lose digits; this is ln of the odds of having dropped out, ln(e^A4/e^A3).
double LogDropoutOdds(const BgNbdParams& p, double x, double t_x, double T) {
  return std::log(p.a) - std::log(p.b + x - 1) +
         (p.r + x) * (std::log(p.alpha + T) - std::log(p.alpha + t_x));
}

// The power series of 2F1(a, b; c; z) as sum * e^log_scale (the scale keeps representable a
// series whose terms exceed the double range); false if it did not converge. See Hyp2F1 in
// the header for the convergence check.
bool SumHyp2F1(double a, double b, double c, double z, int max_terms, double* sum,
               double* log_scale) {
  *log_scale = 0;
  if ((c <= 0 && c == std::floor(c)) || !(z >= 0) || !(z < 1)) return false;
  constexpr double kBig = 1e200;
  double s = 1;
  double term = 1;  // the n-th term, (a)_n (b)_n / ((c)_n n!) z^n, times e^-log_scale
  for (int n = 0; n < max_terms; ++n) {
    const double dn = n;
    term *= (a + dn) * (b + dn) / ((c + dn) * (dn + 1)) * z;
    if (term == 0) {  // a or b is a non-positive integer: a polynomial
      *sum = s;
      return true;
    }
    s += term;
    if (std::fabs(term) > kBig) {
      term /= kBig;
      s /= kBig;
      *log_scale += std::log(kBig);
    }
    // The terms after this one, the (n+1)-th, are |term| times products of the ratios at
    // m >= n+1, each at most rho.
    const double m = dn + 1;
    if (a + m > 0 && b + m > 0 && c + m > 0) {
      const double rho =
          z * std::min(std::max(1.0, (a + m) / (c + m)) * std::max(1.0, (b + m) / (m + 1)),
                       std::max(1.0, (b + m) / (c + m)) * std::max(1.0, (a + m) / (m + 1)));
      if (rho < 1 && std::fabs(term) * rho / (1 - rho) <= 1e-16 * std::fabs(s)) {
        *sum = s;
        return true;
      }
    }
  }
  return false;
}

// (a+b+x-1)/(a-1) * [1 - ((alpha+T)/(alpha+T+t))^(r+x) 2F1(r+x, b+x; a+b+x-1; z)], with
// z = t/(alpha+T+t): the expected purchases in the next t periods of a customer known to be
// alive after x repeat purchases and T periods. For a heavy buyer the power underflows and the
// series overflows (x = 2000: 1e-80 and 1e79), so their product is taken in logarithms. (Euler's
// transformation would keep both small, but its series needs about a z / (1 - z) terms, and a
// fit to data without heterogeneity in dropout drives a into the millions; this form needs
// about x z / (1 - z).)
double ExpectedIfAlive(const BgNbdParams& p, double t, double x, double T) {
  if (t <= 0) return 0;
  if (p.a == 1) return kNaN;
  const double c = p.a + p.b + x - 1;
  const double z = t / (p.alpha + T + t);
  const double log_one_minus_z = std::log1p(-z);
  double hyp = 0, log_scale = 0;  // 2F1 = hyp e^log_scale; hyp < 0 is possible when c < 0
  if (!SumHyp2F1(p.r + x, p.b + x, c, z, kMaxTerms, &hyp, &log_scale)) return kNaN;
  const double product = std::copysign(
      std::exp((p.r + x) * log_one_minus_z + std::log(std::fabs(hyp)) + log_scale), hyp);
  return c / (p.a - 1) * (1 - product);
}

// ---- Gamma-Gamma -----------------------------------------------------------------------------

// One row's log-likelihood of its mean spend m over x transactions and, when `grad` is given,
// its derivatives with respect to (p, q, v), added to grad[0..2].
double GammaGammaRow(double p, double q, double v, double x, double m, double* grad) {
  const double px = p * x;
  const double log_xm_v = std::log(x * m + v);
  if (grad != nullptr) {
    const double psi = Digamma(px + q);
    grad[0] += x * (psi - Digamma(px) + std::log(m) + std::log(x) - log_xm_v);
    grad[1] += psi - Digamma(q) + std::log(v) - log_xm_v;
    grad[2] += q / v - (px + q) / (x * m + v);
  }
  return LogGamma(px + q) - LogGamma(px) - LogGamma(q) + q * std::log(v) + (px - 1) * std::log(m) +
         px * std::log(x) - (px + q) * log_xm_v;
}

}  // namespace

double Hyp2F1(double a, double b, double c, double z, int max_terms) {
  double sum = 0, log_scale = 0;
  if (!SumHyp2F1(a, b, c, z, max_terms, &sum, &log_scale)) return kNaN;
  return sum * std::exp(log_scale);
}

double LogHyp2F1(double a, double b, double c, double z, int max_terms) {
  double sum = 0, log_scale = 0;
  if (!SumHyp2F1(a, b, c, z, max_terms, &sum, &log_scale) || !(sum > 0)) return kNaN;
  return std::log(sum) + log_scale;
}

absl::StatusOr<RfmSummary> SummarizePurchases(std::span<const Purchase> purchases,
                                              int64_t calibration_end, double period_days) {
  if (!(period_days > 0)) {
    return absl::InvalidArgumentError(ToAbsl(StrCat("period_days must be > 0, got ", period_days)));
  }
  std::vector<Purchase> sorted;
  for (const Purchase& p : purchases) {
    if (!std::isfinite(p.value)) {
      return absl::InvalidArgumentError(
          ToAbsl(StrCat("a purchase on day ", p.day, " has a non-finite value")));
    }
    if (p.day <= calibration_end) sorted.push_back(p);
  }
  if (sorted.empty()) {
    return absl::InvalidArgumentError(
        ToAbsl(StrCat("no purchase on or before the calibration end (day ", calibration_end, ")")));
  }
  std::sort(sorted.begin(), sorted.end(),
            [](const Purchase& l, const Purchase& r) { return l.day < r.day; });
  const int64_t first = sorted.front().day;
  RfmSummary s;
  int64_t last = first;
  double repeat_value = 0;
  for (const Purchase& p : sorted) {
    if (p.day == first) continue;  // the trial day, however many purchases it had
    if (p.day != last) {
      s.x += 1;
      last = p.day;
    }
    repeat_value += p.value;
  }
  s.t_x = static_cast<double>(last - first) / period_days;
  s.T = static_cast<double>(calibration_end - first) / period_days;
  s.monetary = s.x > 0 ? repeat_value / s.x : 0;
  return s;
}

double BgNbdLogLikelihood(const BgNbdParams& p, double x, double t_x, double T) {
  return BgNbdRow(p.r, p.alpha, p.a, p.b, x, t_x, T, nullptr);
}

absl::StatusOr<BgNbdParams> FitBgNbd(std::span<const RfmSummary> rows, const FitOptions& options) {
  if (rows.empty()) return absl::InvalidArgumentError("BG/NBD: no customers to fit");
  bool any_repeat = false;
  double mean_T = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    absl::Status status = CheckRow(rows[i], i);
    if (!status.ok()) return status;
    any_repeat = any_repeat || rows[i].x > 0;
    mean_T += rows[i].T / static_cast<double>(rows.size());
  }
  if (!any_repeat) {
    return absl::InvalidArgumentError(
        "BG/NBD: no customer made a repeat purchase, so the model is not identified");
  }
  const double n = static_cast<double>(rows.size());
  // theta = (ln r, ln alpha, ln a, ln b); the objective is the mean negative log-likelihood,
  // so that the gradient test does not depend on the number of customers.
  Objective objective = [&](const double* theta, double* grad) {
    const double r = std::exp(theta[0]), alpha = std::exp(theta[1]);
    const double a = std::exp(theta[2]), b = std::exp(theta[3]);
    double g[4] = {0, 0, 0, 0};
    double ll = 0;
    for (const RfmSummary& row : rows) ll += BgNbdRow(r, alpha, a, b, row.x, row.t_x, row.T, g);
    // d/d ln(theta) = theta * d/d theta.
    grad[0] = -g[0] * r / n;
    grad[1] = -g[1] * alpha / n;
    grad[2] = -g[2] * a / n;
    grad[3] = -g[3] * b / n;
    return -ll / n;
  };
  auto minimum =
      Minimize("BG/NBD", objective, {0, std::log(std::max(mean_T, 1e-3)), 0, 0}, options);
  if (!minimum.ok()) return minimum.status();
  BgNbdParams params;
  params.r = std::exp(minimum->theta[0]);
  params.alpha = std::exp(minimum->theta[1]);
  params.a = std::exp(minimum->theta[2]);
  params.b = std::exp(minimum->theta[3]);
  params.log_likelihood = -minimum->value * n;
  params.iterations = minimum->iterations;
  return params;
}

double BgNbdExpectedPurchases(const BgNbdParams& params, double t) {
  return ExpectedIfAlive(params, t, 0, 0);
}

double BgNbdProbAlive(const BgNbdParams& params, double x, double t_x, double T) {
  if (x <= 0) return 1;
  // 1 / (1 + e^L), arranged so that e^L cannot overflow.
  const double l = LogDropoutOdds(params, x, t_x, T);
  return l > 0 ? std::exp(-l) / (1 + std::exp(-l)) : 1 / (1 + std::exp(l));
}

double BgNbdConditionalExpected(const BgNbdParams& params, double t, double x, double t_x,
                                double T) {
  return ExpectedIfAlive(params, t, x, T) * BgNbdProbAlive(params, x, t_x, T);
}

double BgNbdProbCount(const BgNbdParams& p, double t, int n) {
  if (n < 0) return 0;
  if (t <= 0) return n == 0 ? 1 : 0;
  // The negative-binomial count of a customer who stays alive: P(j) = Gamma(r+j) /
  // (Gamma(r) j!) (1-z)^r z^j with z = t / (alpha + t).
  const double log_z = std::log(t) - std::log(p.alpha + t);
  const double log_1mz = std::log(p.alpha) - std::log(p.alpha + t);
  auto log_nb = [&](double j) {
    return LogGamma(p.r + j) - LogGamma(p.r) - LogGamma(j + 1) + p.r * log_1mz + j * log_z;
  };
  const double dn = n;
  double prob = std::exp(LogBeta(p.a, p.b + dn) - LogBeta(p.a, p.b) + log_nb(dn));
  if (n == 0) return prob;
  // Dropped out after the n-th purchase: P(NB >= n), from whichever side does not cancel.
  // P(j + 1) = P(j) (r + j) / (j + 1) z.
  const double z = std::exp(log_z);
  double head = 0;
  double nb = std::exp(p.r * log_1mz);
  for (int j = 0; j < n; ++j) {
    head += nb;
    nb *= (p.r + j) / (j + 1) * z;
  }
  double at_least_n = 1 - head;
  if (head > 0.5) {
    // The tail's term ratio (r+j)/(j+1) z tends to z < 1 (from above when r > 1, so bound it
    // by the larger of the two).
    at_least_n = 0;
    double term = std::exp(log_nb(dn));
    for (double j = dn; j < dn + 1e7; ++j) {
      at_least_n += term;
      const double ratio = (p.r + j) / (j + 1) * z;
      term *= ratio;
      const double rho = std::max(ratio, z);
      if (rho < 1 && term / (1 - rho) <= 1e-16 * at_least_n) break;
    }
  }
  return prob + std::exp(LogBeta(p.a + 1, p.b + dn - 1) - LogBeta(p.a, p.b)) * at_least_n;
}

absl::StatusOr<GammaGammaParams> FitGammaGamma(std::span<const RfmSummary> rows,
                                               const FitOptions& options) {
  std::vector<RfmSummary> repeaters;
  double mean_m = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    const RfmSummary& row = rows[i];
    if (!IsWholeNonNegative(row.x)) {
      return absl::InvalidArgumentError(
          ToAbsl(StrCat("row ", i, ": x must be a non-negative integer, got ", row.x)));
    }
    if (row.x == 0) continue;
    if (!(row.monetary > 0) || !std::isfinite(row.monetary)) {
      return absl::InvalidArgumentError(ToAbsl(
          StrCat("row ", i, ": a customer with repeat purchases needs a positive mean value, got ",
                 row.monetary)));
    }
    repeaters.push_back(row);
    mean_m += row.monetary;
  }
  if (repeaters.empty()) {
    return absl::InvalidArgumentError("Gamma-Gamma: no customer with a repeat purchase to fit");
  }
  const double n = static_cast<double>(repeaters.size());
  mean_m /= n;
  auto [low, high] = std::minmax_element(
      repeaters.begin(), repeaters.end(),
      [](const RfmSummary& a, const RfmSummary& b) { return a.monetary < b.monetary; });
  if (high->monetary - low->monetary <= 1e-12 * high->monetary) {
    // Every repeater's mean is the same (one price for everything): the likelihood grows without
    // bound as p -> infinity. The limit is a point mass at that value; p = q - 1 = 1e9, v = m
    // answers m for everybody.
    GammaGammaParams params;
    params.p = 1e9;
    params.q = 1e9 + 1;
    params.v = mean_m;
    params.log_likelihood = std::numeric_limits<double>::infinity();
    return params;
  }
  Objective objective = [&](const double* theta, double* grad) {
    const double p = std::exp(theta[0]), q = std::exp(theta[1]), v = std::exp(theta[2]);
    double g[3] = {0, 0, 0};
    double ll = 0;
    for (const RfmSummary& row : repeaters) ll += GammaGammaRow(p, q, v, row.x, row.monetary, g);
    grad[0] = -g[0] * p / n;
    grad[1] = -g[1] * q / n;
    grad[2] = -g[2] * v / n;
    return -ll / n;
  };
  auto minimum = Minimize("Gamma-Gamma", objective, {0, 0, std::log(mean_m)}, options);
  if (!minimum.ok()) return minimum.status();
  GammaGammaParams params;
  params.p = std::exp(minimum->theta[0]);
  params.q = std::exp(minimum->theta[1]);
  params.v = std::exp(minimum->theta[2]);
  params.log_likelihood = -minimum->value * n;
  params.iterations = minimum->iterations;
  return params;
}

double GammaGammaConditionalSpend(const GammaGammaParams& params, double x, double monetary) {
  const double denominator = params.p * x + params.q - 1;
  if (!(denominator > 0)) return kNaN;
  return params.p * (params.v + x * monetary) / denominator;
}

ClvEstimate EstimateClv(const ClvModel& model, const RfmSummary& c, const ClvOptions& options) {
  ClvEstimate e;
  const BgNbdParams& bg = model.purchases;
  e.prob_alive = BgNbdProbAlive(bg, c.x, c.t_x, c.T);
  e.expected_purchases = BgNbdConditionalExpected(bg, options.horizon, c.x, c.t_x, c.T);
  // Repeat purchases whose mean value is not positive (refunds booked as negative orders) say
  // nothing about what the next purchase is worth, as in the fit (the spend model is of positive
  // values): the spend of a customer with no repeat purchase, the population's mean.
  const bool spend_known = c.x > 0 && c.monetary > 0 && std::isfinite(c.monetary);
  e.expected_spend =
      GammaGammaConditionalSpend(model.spend, spend_known ? c.x : 0, spend_known ? c.monetary : 0);
  if (options.monthly_discount_rate == 0) {
    e.value = e.expected_purchases * e.expected_spend;
    return e;
  }
  if (!(options.periods_per_month > 0)) {
    e.value = kNaN;
    return e;
  }
  // Month i's expected purchases, E[Y(t_i)] - E[Y(t_(i-1))], discounted by (1 + rate)^i.
  const int months = static_cast<int>(std::ceil(options.horizon / options.periods_per_month));
  double before = 0;
  double discount = 1;
  for (int i = 1; i <= months; ++i) {
    const double t = std::min(i * options.periods_per_month, options.horizon);
    const double upto = BgNbdConditionalExpected(bg, t, c.x, c.t_x, c.T);
    discount /= 1 + options.monthly_discount_rate;
    e.value += (upto - before) * e.expected_spend * discount;
    before = upto;
  }
  return e;
}

}  // namespace whisperer::learn
