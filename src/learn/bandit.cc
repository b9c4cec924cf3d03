#include "learn/bandit.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/strings.h"

namespace whisperer::learn {
namespace {

constexpr char kMagic[] = "WHPOST1";

uint64_t Mix(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
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
  out->push_back({static_cast<uint32_t>(Mix(action) & mask), 1.0f});  // the action's bias
  for (const Feature& f : base) {
    out->push_back(
        {static_cast<uint32_t>(Mix(action ^ (uint64_t{f.index} * 0x9e3779b97f4a7c15ULL)) & mask),
         f.value});
  }
}

double NormalCdf(double z) { return 0.5 * std::erfc(-z / std::sqrt(2.0)); }

double ProbabilityOfBest(std::span<const RewardEstimate> c, size_t i,
                         std::span<const uint8_t> excluded) {
  auto out = [&](size_t j) { return j == i || (!excluded.empty() && excluded[j]); };
  // P(X_j <= s) for every other candidate.
  auto below_all = [&](double s) {
    double p = 1;
    for (size_t j = 0; j < c.size() && p > 0; ++j) {
      if (out(j)) continue;
      if (c[j].variance <= 0) {
        p *= c[j].mean < s ? 1.0 : 0.0;
      } else {
        p *= NormalCdf((s - c[j].mean) / std::sqrt(c[j].variance));
      }
    }
    return p;
  };
  if (c[i].variance <= 0) return below_all(c[i].mean);
  const double sd = std::sqrt(c[i].variance);
  constexpr int kIntervals = 96;  // even, for Simpson
  constexpr double kFrom = -6, kTo = 6;
  constexpr double h = (kTo - kFrom) / kIntervals;
  double sum = 0;
  for (int k = 0; k <= kIntervals; ++k) {
    const double z = kFrom + k * h;
    const double weight = (k == 0 || k == kIntervals) ? 1 : (k % 2 == 1 ? 4 : 2);
    const double density = std::exp(-0.5 * z * z) / std::sqrt(2 * M_PI);
    sum += weight * density * below_all(c[i].mean + sd * z);
  }
  return std::clamp(sum * h / 3, 0.0, 1.0);
}

}  // namespace whisperer::learn
