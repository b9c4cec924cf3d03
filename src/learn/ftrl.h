// Online logistic regression: FTRL-Proximal over hashed sparse features, with online
// calibration.
//
// The propensity models (conversion / lead score, churn) learn from every labelled example as it
// arrives, over features hashed into a fixed table, so a workspace's model has a fixed size
// whatever its traits and event names. The learner is FTRL-Proximal ("Ad Click Prediction: a
// View from the Trenches", McMahan et al., KDD 2013, algorithm 1): per-coordinate learning rates
// alpha / (beta + sqrt(sum of squared gradients)), L1 (sparse weights) and L2. Written here
// rather than taken from a library because it is the product's core, it runs inside the event
// path, and it is a few dozen lines (Vowpal Wabbit, the reference implementation, is not a
// Debian library).
//
// Calibration: FTRL's raw probabilities are pulled toward 0.5 by regularization and skewed by
// class imbalance, so each model keeps a Platt scaler (sigmoid(a * logit + b)) fitted on its own
// progressive-validation predictions: every example is predicted before the model learns from
// it, the (raw logit, label) pair goes into a fine histogram (count, positives and mean logit
// per bin), and a and b are refitted by Newton
// steps over the histogram every `refit_every` examples; the histogram decays so that it describes
// the model as it is now, not as it was. No example is ever scored by a calibrator that saw its
// label.
//
// Thread-safety: none; a model is owned by one shard thread (reads and learns), and copied for
// publication.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace whisperer::learn {

inline double Sigmoid(double x) { return 1 / (1 + std::exp(-x)); }

// One active feature: a slot of the weight table and its value (1 for categorical ones).
struct Feature {
  uint32_t index = 0;
  float value = 0;
};

// Builds the hashed features of one example. Names are hashed with their value for categorical
// features ("plan=pro"), alone for numeric ones; a cross hashes both pairs. Slot 0 is the bias,
// always present. With keep_names, the readable name of each feature is kept beside it (for
// explanations; it costs a string per feature).
class FeatureBuilder {
 public:
  explicit FeatureBuilder(int bits, bool keep_names = false);

  void Clear();
  void Numeric(std::string_view name, double value);
  void Categorical(std::string_view name, std::string_view value, double weight = 1);
  void Cross(std::string_view a_name, std::string_view a_value, std::string_view b_name,
             std::string_view b_value);

  std::span<const Feature> features() const { return features_; }
  // Parallel to features() when keep_names; empty otherwise.
  const std::vector<std::string>& names() const { return names_; }

 private:
  void Add(uint64_t hash, double value, std::string_view name_a, std::string_view name_b);

  uint32_t mask_;
  bool keep_names_;
  std::vector<Feature> features_;
  std::vector<std::string> names_;
};

struct FtrlOptions {
  int bits = 18;          // 2^bits weight slots (2^18: 2 MiB of state per model)
  double alpha = 0.1;     // learning rate scale
  double beta = 1.0;      // learning rate smoothing
  double l1 = 1.0;        // L1 strength (sparsity)
  double l2 = 1.0;        // L2 strength
  int refit_every = 256;  // calibration refit interval, in examples
  // The calibrator's memory, in examples: at each refit the histogram is scaled by
  // 1 - refit_every / calibration_window, so it follows the model as the model learns.
  int calibration_window = 8192;
};

// A feature's signed share of a prediction: weight x value, in logit units.
struct Contribution {
  size_t feature = 0;  // index into the features passed in
  double logit = 0;
};

// Platt scaling, sigmoid(a * logit + b), fitted by Newton's method on a decaying histogram of
// (logit, label) pairs: per bin the examples, positives and the sum of logits (each bin stands at
// its examples' mean logit). At each refit the histogram is scaled by 1 - refit_every / window,
// so the calibrator describes the model as it is now, not as it was.
class PlattCalibrator {
 public:
  PlattCalibrator(int refit_every, int window) : refit_every_(refit_every), window_(window) {}

  // Records one scored example; refits every `refit_every` examples.
  void Add(double logit, int label);
  double Apply(double logit) const { return Sigmoid(a_ * logit + b_); }
  void Refit();

  double a() const { return a_; }
  double b() const { return b_; }

  void AppendTo(std::string* out) const;
  bool ReadFrom(std::string_view* in);

 private:
  static constexpr int kBins = 128;
  static constexpr double kSpan = 8;  // logits beyond +-kSpan share the end bins

  int refit_every_;
  int window_;
  uint64_t added_ = 0;
  std::array<double, kBins> count_{};
  std::array<double, kBins> positive_{};
  std::array<double, kBins> logit_sum_{};
  double a_ = 1;
  double b_ = 0;
};

class FtrlModel {
 public:
  explicit FtrlModel(const FtrlOptions& options = {});

  // Raw (uncalibrated) logit of an example.
  double Logit(std::span<const Feature> features) const;
  // Calibrated probability of the positive class.
  double Predict(std::span<const Feature> features) const;
  // Maps a raw logit through the calibrator.
  double Calibrate(double logit) const;

  // Learns one labelled example (label 0 or 1). Predicts it first (that prediction feeds the
  // calibrator and the progressive metrics) and returns the calibrated probability it had.
  double Learn(std::span<const Feature> features, int label);

  // The `k` largest contributions by magnitude (bias excluded), largest first.
  std::vector<Contribution> TopContributions(std::span<const Feature> features, size_t k) const;

  uint64_t examples() const { return examples_; }
  uint64_t positives() const { return positives_; }
  // Mean progressive-validation log loss (each example scored before it was learned), or 0.
  double progressive_log_loss() const;
  // Slots with a non-zero weight.
  size_t nonzero_weights() const;
  const FtrlOptions& options() const { return options_; }
  // Takes alpha, beta, L1, L2 and the calibration cadence from `options` (not the table size):
  // the per-coordinate state (z, n) stays valid, the weights follow the new settings.
  void SetHyperparameters(const FtrlOptions& options);
  const PlattCalibrator& calibrator() const { return calibrator_; }

  // A compact binary image (options, non-zero coordinates, calibrator, counters) and back.
  std::string Serialize() const;
  static absl::StatusOr<FtrlModel> Deserialize(std::string_view bytes);

 private:
  double Weight(uint32_t i) const;
  double WeightOf(double z, double sqrt_n) const;

  FtrlOptions options_;
  std::vector<float> z_;
  std::vector<float> n_;
  PlattCalibrator calibrator_;
  uint64_t examples_ = 0;
  uint64_t positives_ = 0;
  double log_loss_sum_ = 0;
};

}  // namespace whisperer::learn
