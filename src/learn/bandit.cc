#include "learn/bandit.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>

#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "common/hash.h"
#include "common/scratch.h"
#include "common/strings.h"

namespace whisperer::learn {
namespace {

constexpr char kMagic[] = "WHPOST1";

// f^n by squaring: std::pow is ten times slower for these small whole exponents.
double IntPow(double f, int n) {
  double r = 1;
  while (n > 0) {
    if (n & 1) r *= f;
    f *= f;
    n >>= 1;
  }
  return r;
}

template <typename T>
void Put(std::string* out, T v) {
  out->append(reinterpret_cast<const char*>(&v), sizeof v);
}

template <typename T>
bool Get(std::string_view* in, T* v) {
  if (in->size() < sizeof *v) return false;
  std::memcpy(v, in->data(), sizeof *v);
  in->remove_prefix(sizeof *v);
  return true;
}

}  // namespace

LinearPosterior::LinearPosterior(const PosteriorOptions& options)
    : options_(options),
      mask_((uint32_t{1} << options.bits) - 1),
      weights_(size_t{1} << options.bits,
               Weight{0.0f, static_cast<float>(options.prior_variance)}) {}

namespace {

// Where CrossWithAction puts a feature for the action whose hash is `action`: from the
// feature's key (CrossKey), which does not depend on the action.
inline uint64_t CrossKey(uint32_t index) { return uint64_t{index} * 0x9e3779b97f4a7c15ULL; }
inline uint32_t CrossedIndex(uint64_t action, uint64_t key, uint32_t mask) {
  return static_cast<uint32_t>(Mix64(action ^ key) & mask);
}

}  // namespace

CrossableFeatures::CrossableFeatures(std::span<const Feature> features) : base(features) {
  keys.reserve(base.size());
  for (const Feature& f : base) keys.push_back(CrossKey(f.index));
}

template <typename FeatureAt>
RewardEstimate LinearPosterior::Sum(size_t n, FeatureAt at) const {
  // Four running sums of each rather than one: a single sum is a chain of dependent additions,
  // which for ~50 features costs more than the weights' loads.
  double mean[4] = {0, 0, 0, 0}, variance[4] = {0, 0, 0, 0};
  size_t k = 0;
  for (; k + 4 <= n; k += 4) {
    for (size_t l = 0; l < 4; ++l) {
      const Feature f = at(k + l);
      const Weight& w = weights_[f.index & mask_];
      mean[l] += static_cast<double>(w.mean) * f.value;
      variance[l] += static_cast<double>(w.variance) * f.value * f.value;
    }
  }
  for (; k < n; ++k) {
    const Feature f = at(k);
    const Weight& w = weights_[f.index & mask_];
    mean[0] += static_cast<double>(w.mean) * f.value;
    variance[0] += static_cast<double>(w.variance) * f.value * f.value;
  }
  return {(mean[0] + mean[1]) + (mean[2] + mean[3]),
          (variance[0] + variance[1]) + (variance[2] + variance[3])};
}

RewardEstimate LinearPosterior::Predict(std::span<const Feature> x) const {
  return Sum(x.size(), [x](size_t k) { return x[k]; });
}

RewardEstimate LinearPosterior::PredictCrossed(const CrossableFeatures& x, uint64_t action,
                                               int bits) const {
  // The same sums in the same order as Predict on CrossWithAction's output.
  const uint32_t mask = (uint32_t{1} << bits) - 1;
  const Feature bias = {static_cast<uint32_t>(Mix64(action) & mask), 1.0f};
  return Sum(x.base.size() + 1, [&](size_t k) {
    return k == 0 ? bias : Feature{CrossedIndex(action, x.keys[k - 1], mask), x.base[k - 1].value};
  });
}

void LinearPosterior::Update(std::span<const Feature> x, double reward) {
  const RewardEstimate e = Predict(x);
  const double s = options_.noise + e.variance;
  const double error = reward - e.mean;
  for (const Feature& f : x) {
    Weight& w = weights_[f.index & mask_];
    const double p = w.variance;
    const double gain = p * f.value / s;
    w.mean = static_cast<float>(w.mean + options_.learning_rate * gain * error);
    // Never below a sliver of the prior: float rounding must not make a weight certain.
    w.variance =
        static_cast<float>(std::max(p - gain * f.value * p, 1e-6 * options_.prior_variance));
  }
  ++updates_;
}

std::string LinearPosterior::Serialize() const {
  std::string out(kMagic, sizeof kMagic);
  Put(&out, static_cast<int32_t>(options_.bits));
  Put(&out, options_.prior_variance);
  Put(&out, options_.noise);
  Put(&out, options_.learning_rate);
  Put(&out, updates_);
  // Every mean, then every variance (the image predates their sharing an array).
  const size_t n = weights_.size(), at = out.size();
  out.resize(at + 2 * n * sizeof(float));
  for (size_t k = 0; k < n; ++k) {
    std::memcpy(&out[at + k * sizeof(float)], &weights_[k].mean, sizeof(float));
    std::memcpy(&out[at + (n + k) * sizeof(float)], &weights_[k].variance, sizeof(float));
  }
  return out;
}

absl::StatusOr<LinearPosterior> LinearPosterior::Deserialize(std::string_view in) {
  if (in.size() < sizeof kMagic || std::memcmp(in.data(), kMagic, sizeof kMagic) != 0) {
    return absl::InvalidArgumentError("not a bandit posterior image");
  }
  in.remove_prefix(sizeof kMagic);
  int32_t bits = 0;
  PosteriorOptions o;
  uint64_t updates = 0;
  if (!Get(&in, &bits) || !Get(&in, &o.prior_variance) || !Get(&in, &o.noise) ||
      !Get(&in, &o.learning_rate) || !Get(&in, &updates) || bits < 1 || bits > 26) {
    return absl::InvalidArgumentError("truncated bandit posterior image");
  }
  o.bits = bits;
  const size_t n = size_t{1} << bits;
  if (in.size() != 2 * n * sizeof(float)) {
    return absl::InvalidArgumentError(
        ToAbsl(StrCat("bandit posterior image: ", in.size(), " bytes of weights, expected ",
                      2 * n * sizeof(float))));
  }
  LinearPosterior p(o);
  for (size_t k = 0; k < n; ++k) {
    std::memcpy(&p.weights_[k].mean, in.data() + k * sizeof(float), sizeof(float));
    std::memcpy(&p.weights_[k].variance, in.data() + (n + k) * sizeof(float), sizeof(float));
  }
  p.updates_ = updates;
  return p;
}

void CrossWithAction(std::span<const Feature> base, uint64_t action, int bits,
                     std::vector<Feature>* out) {
  const uint32_t mask = (uint32_t{1} << bits) - 1;
  out->resize(base.size() + 1);
  (*out)[0] = {static_cast<uint32_t>(Mix64(action) & mask), 1.0f};  // the action's bias
  for (size_t k = 0; k < base.size(); ++k) {
    (*out)[k + 1] = {CrossedIndex(action, CrossKey(base[k].index), mask), base[k].value};
  }
}

namespace {

// A table of the normal CDF at 1/256 steps over [-8, 8], interpolated linearly: within 1e-6 of
// erfc and a tenth of its cost (ProbabilityOfBest evaluates it thousands of times per
// decision).
constexpr int kCdfPerUnit = 256;
constexpr double kCdfLimit = 8;
constexpr int kCdfSize = static_cast<int>(2 * kCdfLimit * kCdfPerUnit) + 1;

const double* CdfTable() {
  static const std::vector<double> table = [] {
    std::vector<double> t(kCdfSize);
    for (int k = 0; k < kCdfSize; ++k) {
      const double x = -kCdfLimit + static_cast<double>(k) / kCdfPerUnit;
      t[k] = 0.5 * std::erfc(-x / std::sqrt(2.0));
    }
    return t;
  }();
  return table.data();
}

inline double TableCdf(const double* table, double z) {
  if (!(z > -kCdfLimit)) return 0;  // NaN too
  if (z >= kCdfLimit) return 1;
  const double pos = (z + kCdfLimit) * kCdfPerUnit;
  const int k = static_cast<int>(pos);
  return table[k] + (pos - k) * (table[k + 1] - table[k]);
}

// The same table as (value, slope to the next) pairs, for ProbabilityOfBest's inner loop: one
// load per evaluation and no branch. The last entry is flat.
struct CdfStep {
  double value, slope;
};

const CdfStep* CdfSteps() {
  static const std::vector<CdfStep> steps = [] {
    const double* t = CdfTable();
    std::vector<CdfStep> s(kCdfSize);
    for (int k = 0; k + 1 < kCdfSize; ++k) s[k] = {t[k], t[k + 1] - t[k]};
    s[kCdfSize - 1] = {t[kCdfSize - 1], 0};
    return s;
  }();
  return steps.data();
}

// The CDF at table position `pos` ((z + 8) * 256), which the caller keeps within [0, 4096]
// (the index is clamped all the same, so that no input reads outside the table).
inline double StepCdf(const CdfStep* steps, double pos) {
  int k = static_cast<int>(pos);
  k = k < 0 ? 0 : k;
  k = k > kCdfSize - 1 ? kCdfSize - 1 : k;
  return steps[k].value + (pos - k) * steps[k].slope;
}

// A competitor in ProbabilityOfBest's integration: its CDF's table position at point k is
// at + k step, its factor there that CDF to the power `count`, and 1 from point `end` on.
struct Line {
  double at, step;
  int count, end;
};

// q[k] *= the line's factors at points k in [first, min(end, line.end)) and, when that count
// is odd, at the next point too (q must have room there; its factor there is within 1.3e-12
// of 1, as it should be): positions clamped to the table.
void MultiplyLine(const CdfStep* steps, const Line& line, int first, int end, double* q) {
  end = std::min(end, line.end);
#ifdef __SSE2__
  // Two points at a time: the table reads are scalar, the arithmetic is not.
  const __m128d top = _mm_set1_pd(kCdfSize - 1), zero = _mm_setzero_pd(), one = _mm_set1_pd(1);
  const __m128d at = _mm_set1_pd(line.at), step = _mm_set1_pd(line.step), two = _mm_set1_pd(2);
  __m128d k = _mm_set_pd(first + 1, first);
  for (int p = first; p < end; p += 2) {
    // max first: NaN becomes 0.
    const __m128d pos = _mm_min_pd(_mm_max_pd(_mm_add_pd(at, _mm_mul_pd(k, step)), zero), top);
    const __m128i i = _mm_cvttpd_epi32(pos);
    const __m128d frac = _mm_sub_pd(pos, _mm_cvtepi32_pd(i));
    const __m128d a = _mm_loadu_pd(&steps[_mm_cvtsi128_si32(i)].value);
    const __m128d b = _mm_loadu_pd(&steps[_mm_cvtsi128_si32(_mm_shuffle_epi32(i, 1))].value);
    __m128d f = _mm_add_pd(_mm_unpacklo_pd(a, b), _mm_mul_pd(frac, _mm_unpackhi_pd(a, b)));
    if (line.count != 1) {  // f^count by squaring (the same products as IntPow)
      __m128d power = one, square = f;
      for (int n = line.count; n > 0; n >>= 1) {
        if (n & 1) power = _mm_mul_pd(power, square);
        square = _mm_mul_pd(square, square);
      }
      f = power;
    }
    _mm_storeu_pd(q + p, _mm_mul_pd(_mm_loadu_pd(q + p), f));
    k = _mm_add_pd(k, two);
  }
#else
  for (int k = first; k < end; ++k) {
    const double f = StepCdf(steps, line.at + k * line.step);
    q[k] *= line.count == 1 ? f : IntPow(f, line.count);
  }
#endif
}

}  // namespace

double NormalCdf(double z) { return TableCdf(CdfTable(), z); }

namespace {

// The ziggurat: 256 layers of equal area kV under f(x) = exp(-x^2/2), x >= 0, the base one
// with the tail beyond kR. Layer i > 0 spans [0, x_i) with f from f_i to f_{i-1}; a draw in it
// below x_{i-1} is surely under f. Scaled for 52-bit uniforms: k[i] = (x_{i-1} / x_i) 2^52,
// w[i] = x_i / 2^52 (layer 0: the base strip, its width kV / f(kR)).
constexpr double kR = 3.6541528853610088;
constexpr double kV = 4.92867323399e-3;

struct Ziggurat {
  uint64_t k[256];
  double w[256], f[256];
};

const Ziggurat& ZigguratTables() {
  static const Ziggurat z = [] {
    Ziggurat t;
    constexpr double m = 4503599627370496.0;  // 2^52
    double x = kR, previous = kR;
    const double q = kV / std::exp(-0.5 * kR * kR);
    t.k[0] = static_cast<uint64_t>(kR / q * m);
    t.k[1] = 0;
    t.w[0] = q / m;
    t.w[255] = kR / m;
    t.f[0] = 1;
    t.f[255] = std::exp(-0.5 * kR * kR);
    for (int i = 254; i >= 1; --i) {
      x = std::sqrt(-2 * std::log(kV / x + std::exp(-0.5 * x * x)));
      t.k[i + 1] = static_cast<uint64_t>(x / previous * m);
      previous = x;
      t.f[i] = std::exp(-0.5 * x * x);
      t.w[i] = x / m;
    }
    return t;
  }();
  return z;
}

// Uniform in [0, 1) from 53 bits.
double Unit(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

}  // namespace

double StandardNormal(std::mt19937_64& rng) {
  const Ziggurat& z = ZigguratTables();
  for (;;) {
    const uint64_t r = rng();
    const int layer = static_cast<int>(r & 0xff);
    const bool negative = (r >> 8) & 1;
    const uint64_t u = (r >> 9) & 0x000fffffffffffffULL;                         // 52 bits
    const double x = static_cast<double>(static_cast<int64_t>(u)) * z.w[layer];  // signed: cheaper
    if (u < z.k[layer]) return negative ? -x : x;  // inside the layer's rectangle: 99.3%
    if (layer == 0) {  // the tail beyond kR (Marsaglia's method); 1 - U: never log(0)
      for (;;) {
        const double tx = -std::log1p(-Unit(rng)) / kR;
        const double ty = -std::log1p(-Unit(rng));
        if (ty + ty > tx * tx) return negative ? -(kR + tx) : kR + tx;
      }
    }
    // The wedge between the rectangle and the curve.
    if ((z.f[layer - 1] - z.f[layer]) * Unit(rng) + z.f[layer] < std::exp(-0.5 * x * x)) {
      return negative ? -x : x;
    }
  }
}

double ProbabilityOfBest(std::span<const RewardEstimate> c, size_t i,
                         std::span<const uint8_t> excluded) {
  ScratchArray<double, 64> scratch(c.size());
  double* sds = scratch.data();
  for (size_t j = 0; j < c.size(); ++j) sds[j] = c[j].variance > 0 ? std::sqrt(c[j].variance) : 0;
  return ProbabilityOfBest(c, std::span<const double>(sds, c.size()), i, excluded);
}

double ProbabilityOfBest(std::span<const RewardEstimate> c, std::span<const double> sds, size_t i,
                         std::span<const uint8_t> excluded) {
  // Beyond 7 standard deviations a normal CDF is 1 or 0 to within 1.3e-12.
  constexpr double kTail = 7;
  // What a point of the integration may add and still be left out (see below).
  constexpr double kNegligible = 1e-12;
  const double mi = c[i].mean;
  const double si = sds[i];
  // The range of X_i worth integrating: its own +-6 sd, and not below where some competitor is
  // all but certainly above (there the product is 0).
  double lo = mi - 6 * si, hi = mi + 6 * si;
  struct Competitor {
    double mean, sd, inv_sd;  // inv_sd: 1 / sd, or 0
    int count;
  };
  // On the stack for the usual few dozen candidates (no allocation per call). One more than the
  // candidates: a sentinel equal to none.
  ScratchArray<Competitor, 65> competitors(c.size() + 1);
  Competitor* all = competitors.data();
  // Equal competitors (untried actions share a prior) are one factor raised to their count.
  // They are found through a small direct-mapped table of the last competitor seen per hash of
  // (mean, sd): it may miss an equal one on a collision, which costs only speed, and unlike an
  // exact hash table or a sort it costs next to nothing when all differ (a trained bandit).
  constexpr int kSlotBits = 6;
  size_t slot_of[size_t{1} << kSlotBits];
  const size_t sentinel = c.size();
  all[sentinel] = {std::numeric_limits<double>::quiet_NaN(), 0, 0, 0};
  std::fill(std::begin(slot_of), std::end(slot_of), sentinel);
  size_t n = 0;
  for (size_t j = 0; j < c.size(); ++j) {
    if (j == i || (!excluded.empty() && excluded[j])) continue;
    const double mean = c[j].mean, sd = sds[j];
    if (std::isnan(mean)) return 0;  // never below: a CDF of NaN is 0
    lo = std::max(lo, mean - kTail * sd);
    uint64_t mean_bits, sd_bits;
    std::memcpy(&mean_bits, &mean, sizeof mean_bits);
    std::memcpy(&sd_bits, &sd, sizeof sd_bits);
    size_t& slot =
        slot_of[((mean_bits ^ (sd_bits * 0x9e3779b97f4a7c15ULL)) * 0xc2b2ae3d27d4eb4fULL) >>
                (64 - kSlotBits)];
    if (all[slot].mean == mean && all[slot].sd == sd) {
      ++all[slot].count;
    } else {
      slot = n;
      all[n++] = {mean, sd, 0, 1};
    }
  }
  if (lo > hi || (si == 0 && lo > mi)) return 0;
  // Competitors surely below the whole range count as 1: left out.
  size_t kept = 0;
  for (size_t j = 0; j < n; ++j) {
    Competitor x = all[j];
    if (x.mean + kTail * x.sd < lo) continue;
    x.inv_sd = x.sd > 0 ? 1 / x.sd : 0;
    all[kept++] = x;
  }
  // None left to beat (a sole candidate, or every other surely below): certain, not the
  // truncated integral of X_i's own density (1 - 2e-9).
  if (kept == 0) return 1;
  const std::span<const Competitor> active(all, kept);
  const double* cdf = CdfTable();
  // One competitor's factor at s: P(X_j < s)^count. From its mean + 8 sd on its CDF is 1.
  auto factor = [cdf](const Competitor& x, double s) {
    const double f = x.sd == 0 ? (x.mean < s ? 1.0 : 0.0) : TableCdf(cdf, (s - x.mean) * x.inv_sd);
    return x.count == 1 ? f : IntPow(f, x.count);
  };
  if (si == 0) {
    // A point mass: the others below it, and a tie with equal point masses broken uniformly (as
    // Thompson sampling's draw breaks it), so tied candidates share what they win together.
    double p = 1;
    int tied = 0;
    for (const Competitor& x : active) {
      if (x.sd == 0 && x.mean == mi) {
        tied += x.count;
        continue;
      }
      if (x.mean + kCdfLimit * x.sd < mi) continue;
      p *= factor(x, mi);
      if (p < kNegligible) return 0;
    }
    return p / (1 + tied);
  }
  // Composite Simpson over z in [(lo - mi) / si, 6]: the narrower the range a leading competitor
  // leaves, the finer the step. The product over competitors is built competitor by competitor
  // across the points rather than point by point: each competitor touches only the points
  // below its mean + 7 sd (above, its factor is 1), its table position is a line in the
  // point's number, and the points' products are independent, so they are computed two at a
  // time and pipeline instead of forming one chain of multiplications.
  constexpr int kIntervals = 64;  // even, for Simpson
  constexpr int kPoints = kIntervals + 1;
  const double from = (lo - mi) / si, to = (hi - mi) / si;
  const double h = (to - from) / kIntervals;
  if (!(h > 0)) return 0;
  // g[k]: what point k adds to the integral per unit of product, its Simpson weight times the
  // standard normal density at z_k times h / 3. The density goes by its ratio from one point to
  // the next: exp(-z^2/2) at z + h is exp(-z^2/2) exp(-z h - h^2/2), and that ratio itself
  // shrinks by exp(-h^2) a step.
  double g[kPoints];
  {
    double density = std::exp(-0.5 * from * from) * h / 3 / std::sqrt(2 * M_PI);
    double ratio = std::exp(-from * h - 0.5 * h * h);
    const double shrink = std::exp(-h * h);
    for (int k = 0; k < kPoints; ++k) {
      g[k] = ((k == 0 || k == kIntervals) ? 1 : (k % 2 == 1 ? 4 : 2)) * density;
      density *= ratio;
      ratio *= shrink;
    }
  }
  // A point that can add less than kNegligible is left out (at most 65 of them: the result
  // moves by < 1e-10): the points above `stop` whatever the product, and those from the bottom
  // up whose product so far already makes them negligible. The product only rises with z (each
  // factor does, and so does its rounding) and only falls as factors are added, so those form
  // a prefix, below `first`, which later competitors skip. A kept product is so >= 1e-11
  // (g <= 0.1), a factor >= 6e-16 (every competitor is within 7 sd of its mean from lo up),
  // and no product comes near denormals (but for powers of many equal competitors).
  int stop = kPoints;
  while (stop > 0 && g[stop - 1] < kNegligible) --stop;
  // The competitors as lines (positions at each point), all set up before any is multiplied
  // in (measurably faster than one loop: the setups' latencies overlap); point masses instead
  // cut off the points where they are surely above (s_k <= mean), a prefix below `first`.
  const double inv_base = 1 / (si * h * kCdfPerUnit);  // a line's step = inv_sd / inv_base
  ScratchArray<Line, 64> line_scratch(active.size());
  Line* lines = line_scratch.data();
  int first = 0;
  size_t n_lines = 0;
  // A point whose s_k only rounds below the mass (the range starts at it) is kept: the integrand
  // there is its limit from above, the mass's factor 1, and dropping it loses Simpson's end term.
  const double rounding = 1e-12 * (std::fabs(mi) + si * (std::fabs(from) + std::fabs(to)));
  for (const Competitor& x : active) {
    if (x.sd == 0) {
      while (first < stop && mi + si * (from + first * h) < x.mean - rounding) ++first;
      continue;
    }
    // s_k = mi + si z_k; its table position (s_k - mean) / sd * 256 + 2048 = at + k step.
    const double at = ((mi + si * from - x.mean) * x.inv_sd + kCdfLimit) * kCdfPerUnit;
    const double step = si * h * x.inv_sd * kCdfPerUnit;
    // From mean + 7 sd on (position 15 x 256) the factor is taken as 1, as for the competitors
    // left out above (within 1.3e-12): from about point (3840 - at) / step.
    const double last = ((kCdfLimit + kTail) * kCdfPerUnit - at) * x.sd * inv_base;
    const int end = last >= stop - 1 ? stop : last < 0 ? 0 : static_cast<int>(last) + 1;
    if (end > 0) lines[n_lines++] = {at, step, x.count, end};
  }
  const CdfStep* steps = CdfSteps();
  double q[kPoints + 1];  // the products at the points (and room for MultiplyLine)
  std::fill(q, q + kPoints + 1, 1.0);
  for (size_t j = 0; j < n_lines && first < stop; ++j) {
    MultiplyLine(steps, lines[j], first, stop, q);
    while (first < stop && q[first] * g[first] < kNegligible) ++first;
  }
  if (first >= stop) return 0;
  double sum = 0;
  for (int k = first; k < stop; ++k) sum += g[k] * q[k];
  return std::clamp(sum, 0.0, 1.0);
}

}  // namespace whisperer::learn
