#include "learn/ftrl.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "common/hash.h"
#include "common/strings.h"
#include "common/varint.h"

namespace whisperer::learn {

namespace {

// Separators keep "a"+"bc" and "ab"+"c" apart in the hash.
constexpr uint64_t kCategoricalSeed = 0x9e3779b97f4a7c15ULL;
constexpr uint64_t kCrossSeed = 0xc2b2ae3d27d4eb4fULL;

constexpr uint32_t kFormatVersion = 1;

void PutDouble(std::string* out, double v) {
  char buf[sizeof v];
  std::memcpy(buf, &v, sizeof v);
  out->append(buf, sizeof v);
}

bool GetDouble(std::string_view* in, double* v) {
  if (in->size() < sizeof *v) return false;
  std::memcpy(v, in->data(), sizeof *v);
  in->remove_prefix(sizeof *v);
  return true;
}

}  // namespace

FeatureBuilder::FeatureBuilder(int bits, bool keep_names)
    : mask_((1u << std::clamp(bits, 1, 30)) - 1), keep_names_(keep_names) {
  Clear();
}

void FeatureBuilder::Clear() {
  features_.clear();
  names_.clear();
  features_.push_back({0, 1});  // bias
  if (keep_names_) names_.emplace_back("bias");
}

void FeatureBuilder::Add(uint64_t hash, double value, std::string_view name_a,
                         std::string_view name_b) {
  if (value == 0 || !std::isfinite(value)) return;
  // Slot 0 is the bias's own; a feature hashing there moves to slot 1.
  uint32_t index = static_cast<uint32_t>(hash) & mask_;
  if (index == 0) index = 1;
  features_.push_back({index, static_cast<float>(value)});
  if (keep_names_) names_.push_back(name_b.empty() ? std::string(name_a) : StrCat(name_a, name_b));
}

void FeatureBuilder::Numeric(std::string_view name, double value) {
  Add(Hash64(name), value, name, {});
}

void FeatureBuilder::Categorical(std::string_view name, std::string_view value, double weight) {
  uint64_t h = Hash64(value, Hash64(name) ^ kCategoricalSeed);
  if (keep_names_) {
    Add(h, weight, StrCat(name, "="), value);
  } else {
    Add(h, weight, {}, {});
  }
}

void FeatureBuilder::Cross(std::string_view a_name, std::string_view a_value,
                           std::string_view b_name, std::string_view b_value) {
  uint64_t h = Hash64(b_value, Hash64(b_name, Hash64(a_value, Hash64(a_name) ^ kCrossSeed)));
  if (keep_names_) {
    Add(h, 1, StrCat(a_name, "=", a_value, " & "), StrCat(b_name, "=", b_value));
  } else {
    Add(h, 1, {}, {});
  }
}

FtrlModel::FtrlModel(const FtrlOptions& options)
    : options_(options), calibrator_(options.refit_every, options.calibration_window) {
  options_.bits = std::clamp(options_.bits, 1, 30);
  z_.assign(size_t{1} << options_.bits, 0);
  n_.assign(size_t{1} << options_.bits, 0);
}

void FtrlModel::SetHyperparameters(const FtrlOptions& options) {
  const int bits = options_.bits;
  options_ = options;
  options_.bits = bits;
}

double FtrlModel::Weight(uint32_t i) const {
  return WeightOf(z_[i], std::sqrt(static_cast<double>(n_[i])));
}

double FtrlModel::WeightOf(double z, double sqrt_n) const {
  if (std::abs(z) <= options_.l1) return 0;
  double sign = z < 0 ? -1 : 1;
  return -(z - sign * options_.l1) / ((options_.beta + sqrt_n) / options_.alpha + options_.l2);
}

double FtrlModel::Logit(std::span<const Feature> features) const {
  double sum = 0;
  for (const Feature& f : features) sum += Weight(f.index) * f.value;
  return sum;
}

double FtrlModel::Calibrate(double logit) const { return calibrator_.Apply(logit); }

double FtrlModel::Predict(std::span<const Feature> features) const {
  return Calibrate(Logit(features));
}

double FtrlModel::Learn(std::span<const Feature> features, int label) {
  // The weights and sqrt(n) are computed once, for the prediction and for the update
  // (algorithm 1).
  constexpr size_t kStack = 64;
  double stack[2 * kStack];
  std::vector<double> heap;
  double* w = stack;
  if (features.size() > kStack) {
    heap.resize(2 * features.size());
    w = heap.data();
  }
  double* sqrt_n = w + std::max(features.size(), kStack);
  double logit = 0;
  for (size_t i = 0; i < features.size(); ++i) {
    const uint32_t j = features[i].index;
    sqrt_n[i] = std::sqrt(static_cast<double>(n_[j]));
    w[i] = WeightOf(z_[j], sqrt_n[i]);
    logit += w[i] * features[i].value;
  }
  const double y = label ? 1 : 0;
  const double raw = Sigmoid(std::clamp(logit, -35.0, 35.0));
  const double g_scale = raw - y;
  for (size_t i = 0; i < features.size(); ++i) {
    const uint32_t j = features[i].index;
    const double g = g_scale * features[i].value;
    const double n = n_[j] + g * g;
    const double sigma = (std::sqrt(n) - sqrt_n[i]) / options_.alpha;
    z_[j] = static_cast<float>(z_[j] + g - sigma * w[i]);
    n_[j] = static_cast<float>(n);
  }

  const double p = Calibrate(logit);
  ++examples_;
  positives_ += label ? 1 : 0;
  const double q = std::clamp(p, 1e-15, 1 - 1e-15);
  log_loss_sum_ -= label ? std::log(q) : std::log(1 - q);
  calibrator_.Add(logit, label);
  return p;
}

void PlattCalibrator::Add(double logit, int label) {
  int bin = static_cast<int>((std::clamp(logit, -kSpan, kSpan) + kSpan) / (2 * kSpan) * kBins);
  bin = std::min(bin, kBins - 1);
  count_[bin] += 1;
  positive_[bin] += label ? 1 : 0;
  logit_sum_[bin] += logit;
  if (refit_every_ > 0 && ++added_ % static_cast<uint64_t>(refit_every_) == 0) Refit();
}

// Each bin stands at its examples' mean logit, not at the bin's centre: when regularization
// squeezes the raw logits into a few bins, the centre would be far from them and a steep fit
// would magnify the difference. A small prior (one pseudo-example of each class at logit 0, as
// Platt's target smoothing does) keeps a and b finite on separable or one-class data.
//
// Newton's method with a backtracking line search on the log-likelihood (Lin, Lin and Weng, "A
// note on Platt's probabilistic outputs for support vector machines", 2007): a full Newton step
// from a fit far from the data (raw logits piled up where the labels do not put them, as an
// early model's are) overshot, and the clamps below then left a = 100, b = 50, every
// probability 1.
void PlattCalibrator::Refit() {
  // The negative log-likelihood of the histogram and the prior at (a, b), in a form that does
  // not overflow: sum of count * log(1 + e^t) - positives * t, with t = a * x + b.
  auto loss = [this](double a, double b) {
    double sum = 0;
    auto add = [&](double x, double count, double positives) {
      const double t = a * x + b;
      const double softplus = std::max(t, 0.0) + std::log1p(std::exp(-std::abs(t)));
      sum += count * softplus - positives * t;
    };
    for (int i = 0; i < kBins; ++i) {
      if (count_[i] > 0) add(logit_sum_[i] / count_[i], count_[i], positive_[i]);
    }
    add(0, 2, 1);
    return sum;
  };
  // Damped Newton steps from (a, b); with `slope` false, on b alone.
  auto newton = [&](double& a, double& b, bool slope) {
    double current = loss(a, b);
    for (int iter = 0; iter < 50; ++iter) {
      double g_a = 0, g_b = 0, h_aa = 0, h_ab = 0, h_bb = 0;
      auto accumulate = [&](double x, double count, double positives) {
        double p = Sigmoid(a * x + b);
        double residual = count * p - positives;
        double weight = count * p * (1 - p);
        g_a += residual * x;
        g_b += residual;
        h_aa += weight * x * x;
        h_ab += weight * x;
        h_bb += weight;
      };
      for (int i = 0; i < kBins; ++i) {
        if (count_[i] > 0) accumulate(logit_sum_[i] / count_[i], count_[i], positive_[i]);
      }
      accumulate(0, 2, 1);
      h_aa += 1e-6;  // keeps the Hessian invertible (Lin et al. add 1e-12 to both diagonals)
      h_bb += 1e-6;
      double da = 0, db = g_b / h_bb;
      if (slope) {
        const double det = h_aa * h_bb - h_ab * h_ab;
        if (!(det > 0)) break;
        da = (h_bb * g_a - h_ab * g_b) / det;
        db = (h_aa * g_b - h_ab * g_a) / det;
      }
      const double descent = g_a * da + g_b * db;  // > 0: the Hessian is positive definite
      if (!(descent > 1e-12)) break;
      double step = 1;
      double next = loss(a - da, b - db);
      while (!(next <= current - 1e-4 * step * descent) && step > 1e-10) {
        step /= 2;
        next = loss(a - step * da, b - step * db);
      }
      if (step <= 1e-10) break;  // no step lowers the loss: as good as it gets
      a -= step * da;
      b -= step * db;
      current = next;
      if (std::abs(step * da) + std::abs(step * db) < 1e-9) break;
    }
  };
  double a = a_, b = b_;
  newton(a, b, true);
  // The slope stays positive (calibration keeps the model's ranking) and bounded: when the best
  // one is outside, the intercept is fitted again at the bound, as the best fit there.
  if (std::isfinite(a) && (a < 0.01 || a > 100)) {
    a = std::clamp(a, 0.01, 100.0);
    if (!std::isfinite(b)) b = b_;
    newton(a, b, false);
  }
  if (std::isfinite(a) && std::isfinite(b)) {
    a_ = a;
    b_ = std::clamp(b, -50.0, 50.0);
  }
  if (window_ > refit_every_) {
    double keep = 1 - static_cast<double>(refit_every_) / window_;
    for (int i = 0; i < kBins; ++i) {
      count_[i] *= keep;
      positive_[i] *= keep;
      logit_sum_[i] *= keep;
    }
  }
}

void PlattCalibrator::AppendTo(std::string* out) const {
  PutVarint(out, added_);
  PutDouble(out, a_);
  PutDouble(out, b_);
  for (int i = 0; i < kBins; ++i) {
    PutDouble(out, count_[i]);
    PutDouble(out, positive_[i]);
    PutDouble(out, logit_sum_[i]);
  }
}

bool PlattCalibrator::ReadFrom(std::string_view* in) {
  if (!GetVarint(in, &added_) || !GetDouble(in, &a_) || !GetDouble(in, &b_)) return false;
  for (int i = 0; i < kBins; ++i) {
    if (!GetDouble(in, &count_[i]) || !GetDouble(in, &positive_[i]) ||
        !GetDouble(in, &logit_sum_[i])) {
      return false;
    }
  }
  return true;
}

std::vector<Contribution> FtrlModel::TopContributions(std::span<const Feature> features,
                                                      size_t k) const {
  std::vector<Contribution> out;
  for (size_t i = 0; i < features.size(); ++i) {
    if (features[i].index == 0) continue;  // bias
    double c = Weight(features[i].index) * features[i].value;
    if (c != 0) out.push_back({i, c});
  }
  std::sort(out.begin(), out.end(), [](const Contribution& x, const Contribution& y) {
    return std::abs(x.logit) > std::abs(y.logit);
  });
  if (out.size() > k) out.resize(k);
  return out;
}

double FtrlModel::progressive_log_loss() const {
  return examples_ ? log_loss_sum_ / static_cast<double>(examples_) : 0;
}

size_t FtrlModel::nonzero_weights() const {
  size_t count = 0;
  for (size_t i = 0; i < z_.size(); ++i) count += std::abs(z_[i]) > options_.l1;
  return count;
}

// Format: varint version, the options, counters, the calibrator, then the touched slots
// (n > 0) as varint index deltas with their z and n.
std::string FtrlModel::Serialize() const {
  std::string out;
  PutVarint(&out, kFormatVersion);
  PutVarint(&out, static_cast<uint64_t>(options_.bits));
  PutDouble(&out, options_.alpha);
  PutDouble(&out, options_.beta);
  PutDouble(&out, options_.l1);
  PutDouble(&out, options_.l2);
  PutVarint(&out, static_cast<uint64_t>(std::max(options_.refit_every, 0)));
  PutVarint(&out, static_cast<uint64_t>(std::max(options_.calibration_window, 0)));
  PutVarint(&out, examples_);
  PutVarint(&out, positives_);
  PutDouble(&out, log_loss_sum_);
  calibrator_.AppendTo(&out);
  size_t touched = 0;
  for (float n : n_) touched += n > 0;
  PutVarint(&out, touched);
  uint64_t last = 0;
  for (size_t i = 0; i < n_.size(); ++i) {
    if (n_[i] <= 0) continue;
    PutVarint(&out, i - last);
    last = i;
    char buf[2 * sizeof(float)];
    std::memcpy(buf, &z_[i], sizeof(float));
    std::memcpy(buf + sizeof(float), &n_[i], sizeof(float));
    out.append(buf, sizeof buf);
  }
  return out;
}

absl::StatusOr<FtrlModel> FtrlModel::Deserialize(std::string_view in) {
  auto corrupt = [](std::string_view what) {
    return absl::DataLossError(ToAbsl(StrCat("FTRL model image: ", what)));
  };
  uint64_t version = 0, bits = 0, refit = 0, window = 0;
  if (!GetVarint(&in, &version)) return corrupt("truncated header");
  if (version != kFormatVersion) return corrupt(StrCat("unknown format ", version));
  FtrlOptions options;
  if (!GetVarint(&in, &bits) || bits < 1 || bits > 30) return corrupt("bad table size");
  options.bits = static_cast<int>(bits);
  if (!GetDouble(&in, &options.alpha) || !GetDouble(&in, &options.beta) ||
      !GetDouble(&in, &options.l1) || !GetDouble(&in, &options.l2) || !GetVarint(&in, &refit) ||
      !GetVarint(&in, &window)) {
    return corrupt("truncated options");
  }
  options.refit_every = static_cast<int>(std::min<uint64_t>(refit, 1 << 30));
  options.calibration_window = static_cast<int>(std::min<uint64_t>(window, 1 << 30));
  FtrlModel model(options);
  if (!GetVarint(&in, &model.examples_) || !GetVarint(&in, &model.positives_) ||
      !GetDouble(&in, &model.log_loss_sum_)) {
    return corrupt("truncated counters");
  }
  if (!model.calibrator_.ReadFrom(&in)) return corrupt("truncated calibrator");
  uint64_t touched = 0;
  if (!GetVarint(&in, &touched) || touched > model.n_.size()) return corrupt("bad slot count");
  uint64_t index = 0;
  for (uint64_t k = 0; k < touched; ++k) {
    uint64_t delta = 0;
    if (!GetVarint(&in, &delta) || in.size() < 2 * sizeof(float)) return corrupt("truncated slot");
    index += delta;
    if (index >= model.n_.size()) return corrupt("slot out of range");
    std::memcpy(&model.z_[index], in.data(), sizeof(float));
    std::memcpy(&model.n_[index], in.data() + sizeof(float), sizeof(float));
    in.remove_prefix(2 * sizeof(float));
  }
  if (!in.empty()) return corrupt("trailing bytes");
  return model;
}

}  // namespace whisperer::learn
