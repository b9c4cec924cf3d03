// The learner behind next-best-action decisions: a contextual bandit's reward model.
//
// LinearPosterior is Bayesian linear regression of a reward on hashed features (FeatureBuilder),
// with a diagonal Gaussian posterior over the weights: each weight has a mean and a variance.
// An update is the Kalman filter's (recursive least squares) with the covariance kept diagonal:
//   S = noise + sum_i P_i x_i^2,  K_i = P_i x_i / S,  mu_i += rate * K_i * (r - x.mu),
//   P_i -= K_i x_i P_i
// so one update moves the prediction by at most the error (no overshoot however many features
// are active), and the variance of a prediction, sum_i P_i x_i^2, shrinks where data was seen.
// A full covariance (LinUCB's A matrix) is d x d, out of reach for 2^16 hashed weights; the
// diagonal form is the usual approximation (Chapelle & Li 2011 use it for Thompson sampling) and
// costs O(active features) per prediction and update. Written here rather than taken from a
// library: it is the core of decisioning, and no Debian package offers an online one this cheap.
//
// Callers give each action its own weights by crossing every feature with the action
// (CrossWithAction): actions then share no weight (but for hash collisions) and their predicted
// rewards are independent Gaussians, which is what ProbabilityOfBest assumes.
//
// Thread-safety: a LinearPosterior is not synchronised; callers lock. The free functions are
// pure.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "learn/ftrl.h"

namespace whisperer::learn {

struct PosteriorOptions {
  int bits = 16;                 // 2^bits weights (2^16: 512 KiB of state)
  double prior_variance = 0.05;  // of each weight, before any data
  double noise = 0.25;           // reward noise variance (0.25: a coin flip's)
  double learning_rate = 1;      // scales each update's step (1: the Kalman gain as it is)
};

struct RewardEstimate {
  double mean = 0;
  double variance = 0;
};

class LinearPosterior {
 public:
  explicit LinearPosterior(const PosteriorOptions& options);

  RewardEstimate Predict(std::span<const Feature> x) const;
  // One weight's posterior mean (for explanations: mean x value is a feature's contribution).
  double MeanOf(uint32_t index) const { return mean_[index & mask_]; }
  void Update(std::span<const Feature> x, double reward);

  uint64_t updates() const { return updates_; }
  const PosteriorOptions& options() const { return options_; }
  // The learning rate may change (config) without losing what was learned.
  void set_learning_rate(double rate) { options_.learning_rate = rate; }

  // Binary image: a magic, the options, the update count, then every weight's mean and
  // variance. InvalidArgument for anything else.
  std::string Serialize() const;
  static absl::StatusOr<LinearPosterior> Deserialize(std::string_view image);

 private:
  PosteriorOptions options_;
  uint32_t mask_;
  std::vector<float> mean_;
  std::vector<float> variance_;
  uint64_t updates_ = 0;
};

// `base` crossed with `action` (a hash of its id): each feature moved to a slot of its own for
// this action, plus the action's bias, written to `out` (cleared first).
void CrossWithAction(std::span<const Feature> base, uint64_t action, int bits,
                     std::vector<Feature>* out);

// P(X_i >= X_j for every j), for independent X_k ~ N(mean_k, variance_k): the probability that
// candidate i has the highest reward. Integrated numerically over X_i (composite Simpson, 65
// points over its +-6 standard deviations, cut below where a competitor is surely above:
// within 2e-3 of a simulation even against a much sharper competitor); competitors surely below
// that range are left out, and equal ones are one factor raised to their count, so a fresh
// bandit's 50 identical candidates cost one. A candidate with variance 0 is a point mass, and
// ties between point masses count as lost. Candidates in `excluded` (may be
// empty) are left out of the competition.
double ProbabilityOfBest(std::span<const RewardEstimate> candidates, size_t i,
                         std::span<const uint8_t> excluded = {});

// The standard normal CDF, from a table (within 1e-6; 0 below -8, 1 from 8).
double NormalCdf(double z);

}  // namespace whisperer::learn
