#include "learn/bandit.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/hash.h"
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
      mean_(size_t{1} << options.bits, 0.0f),
      variance_(size_t{1} << options.bits, static_cast<float>(options.prior_variance)) {}

RewardEstimate LinearPosterior::Predict(std::span<const Feature> x) const {
  RewardEstimate e;
  for (const Feature& f : x) {
    const uint32_t i = f.index & mask_;
    e.mean += static_cast<double>(mean_[i]) * f.value;
    e.variance += static_cast<double>(variance_[i]) * f.value * f.value;
  }
  return e;
}

void LinearPosterior::Update(std::span<const Feature> x, double reward) {
  const RewardEstimate e = Predict(x);
  const double s = options_.noise + e.variance;
  const double error = reward - e.mean;
  for (const Feature& f : x) {
    const uint32_t i = f.index & mask_;
    const double p = variance_[i];
    const double gain = p * f.value / s;
    mean_[i] = static_cast<float>(mean_[i] + options_.learning_rate * gain * error);
    // Never below a sliver of the prior: float rounding must not make a weight certain.
    variance_[i] =
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
  out.append(reinterpret_cast<const char*>(mean_.data()), mean_.size() * sizeof(float));
  out.append(reinterpret_cast<const char*>(variance_.data()), variance_.size() * sizeof(float));
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
  std::memcpy(p.mean_.data(), in.data(), n * sizeof(float));
  std::memcpy(p.variance_.data(), in.data() + n * sizeof(float), n * sizeof(float));
  p.updates_ = updates;
  return p;
}

void CrossWithAction(std::span<const Feature> base, uint64_t action, int bits,
                     std::vector<Feature>* out) {
  const uint32_t mask = (uint32_t{1} << bits) - 1;
  out->clear();
  out->reserve(base.size() + 1);
  out->push_back({static_cast<uint32_t>(Mix64(action) & mask), 1.0f});  // the action's bias
  for (const Feature& f : base) {
    out->push_back(
        {static_cast<uint32_t>(Mix64(action ^ (uint64_t{f.index} * 0x9e3779b97f4a7c15ULL)) & mask),
         f.value});
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

}  // namespace

double NormalCdf(double z) { return TableCdf(CdfTable(), z); }

double ProbabilityOfBest(std::span<const RewardEstimate> c, size_t i,
                         std::span<const uint8_t> excluded) {
  // Beyond 7 standard deviations a normal CDF is 1 or 0 to within 1.3e-12.
  constexpr double kTail = 7;
  const double mi = c[i].mean;
  const double si = c[i].variance > 0 ? std::sqrt(c[i].variance) : 0;
  // The range of X_i worth integrating: its own +-6 sd, and not below where some competitor is
  // all but certainly above (there the product is 0).
  double lo = mi - 6 * si, hi = mi + 6 * si;
  struct Competitor {
    double mean, sd;
    int count;
    double inv_sd = 0, top = 0;  // 1 / sd; from `top` on its CDF is 1
  };
  std::vector<Competitor> active;
  active.reserve(c.size());
  for (size_t j = 0; j < c.size(); ++j) {
    if (j == i || (!excluded.empty() && excluded[j])) continue;
    const double sj = c[j].variance > 0 ? std::sqrt(c[j].variance) : 0;
    lo = std::max(lo, c[j].mean - kTail * sj);
    active.push_back({c[j].mean, sj, 1});
  }
  if (lo > hi || (si == 0 && lo > mi)) return 0;
  // Competitors surely below the whole range count as 1: left out. Equal ones (untried
  // actions share a prior) are one factor raised to their count.
  std::erase_if(active, [&](const Competitor& x) { return x.mean + kTail * x.sd < lo; });
  std::sort(active.begin(), active.end(), [](const Competitor& x, const Competitor& y) {
    return x.mean != y.mean ? x.mean < y.mean : x.sd < y.sd;
  });
  size_t kept = 0;
  for (size_t j = 0; j < active.size(); ++j) {
    if (kept > 0 && active[kept - 1].mean == active[j].mean &&
        active[kept - 1].sd == active[j].sd) {
      ++active[kept - 1].count;
    } else {
      active[kept++] = active[j];
    }
  }
  active.resize(kept);
  for (Competitor& x : active) {
    x.inv_sd = x.sd > 0 ? 1 / x.sd : 0;
    x.top = x.mean + kCdfLimit * x.sd;
  }
  // The integration points rise: a competitor whose CDF has reached 1 stays at 1. Sorted by
  // where that happens, the ones done are a prefix, skipped.
  std::sort(active.begin(), active.end(),
            [](const Competitor& x, const Competitor& y) { return x.top < y.top; });
  const double* table = CdfTable();
  size_t done = 0;
  auto below_all = [&](double s) {
    while (done < active.size() && active[done].top < s) ++done;
    double p = 1;
    for (size_t j = done; j < active.size(); ++j) {
      const Competitor& x = active[j];
      const double f =
          x.sd == 0 ? (x.mean < s ? 1.0 : 0.0) : TableCdf(table, (s - x.mean) * x.inv_sd);
      p *= x.count == 1 ? f : IntPow(f, x.count);
      if (p < 1e-300) return 0.0;
    }
    return p;
  };
  if (si == 0) return below_all(mi);
  // Composite Simpson over z in [(lo - mi) / si, 6]: the narrower the range a leading competitor
  // leaves, the finer the step.
  constexpr int kIntervals = 64;  // even, for Simpson
  const double from = (lo - mi) / si, to = (hi - mi) / si;
  const double h = (to - from) / kIntervals;
  double sum = 0;
  for (int k = 0; k <= kIntervals; ++k) {
    const double z = from + k * h;
    const double weight = (k == 0 || k == kIntervals) ? 1 : (k % 2 == 1 ? 4 : 2);
    sum += weight * std::exp(-0.5 * z * z) * below_all(mi + si * z);
  }
  return std::clamp(sum * h / 3 / std::sqrt(2 * M_PI), 0.0, 1.0);
}

}  // namespace whisperer::learn
