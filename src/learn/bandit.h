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
#include <random>
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

// A customer's features prepared to be crossed with many actions (a decision's candidates):
// the part of each crossed index that does not depend on the action, computed once. Refers to
// `base`, which must outlive it.
struct CrossableFeatures {
  explicit CrossableFeatures(std::span<const Feature> base);

  std::span<const Feature> base;
  std::vector<uint64_t> keys;  // per feature
};

class LinearPosterior {
 public:
  explicit LinearPosterior(const PosteriorOptions& options);

  RewardEstimate Predict(std::span<const Feature> x) const;
  // Predict(CrossWithAction(x.base, action, bits)), without building the crossed features: a
  // decision predicts every candidate but keeps the features of only those it chooses.
  RewardEstimate PredictCrossed(const CrossableFeatures& x, uint64_t action, int bits) const;
  // One weight's posterior mean (for explanations: mean x value is a feature's contribution).
  double MeanOf(uint32_t index) const { return weights_[index & mask_].mean; }
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
  // A weight's mean and variance side by side: a prediction or update reads both, so one cache
  // line per active feature rather than two (the image keeps them in two arrays).
  struct Weight {
    float mean;
    float variance;
  };

  // The prediction from the features at(0), ..., at(n - 1).
  template <typename FeatureAt>
  RewardEstimate Sum(size_t n, FeatureAt at) const;

  PosteriorOptions options_;
  uint32_t mask_;
  std::vector<Weight> weights_;
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
// bandit's 50 identical candidates cost one. Points that would add less than 1e-12 each, and
// factors within 1.3e-12 of 1, are left out too (the result moves by < 2e-10). A candidate with
// variance 0 is a point mass; point masses that tie share the win equally (Thompson sampling
// breaks such a tie uniformly at random). Candidates in `excluded`
// (may be empty) are left out of the competition.
double ProbabilityOfBest(std::span<const RewardEstimate> candidates, size_t i,
                         std::span<const uint8_t> excluded = {});
// The same with the candidates' standard deviations given (sds[k]: the square root of
// candidates[k].variance, 0 where that is not positive), for several calls on the same
// candidates (a decision's slots): they are not taken again each time.
double ProbabilityOfBest(std::span<const RewardEstimate> candidates, std::span<const double> sds,
                         size_t i, std::span<const uint8_t> excluded);

// The standard normal CDF, from a table (within 1e-6; 0 below -8, 1 from 8).
double NormalCdf(double z);

// A draw from the standard normal distribution, by Marsaglia and Tsang's ziggurat (256 layers,
// 52-bit uniforms; as numpy's Generator.standard_normal): exact, like std::normal_distribution,
// and cheaper (one 64-bit draw and a table lookup 99% of the time, where the polar method takes
// 2.5 draws and a logarithm per pair of normals). Thompson sampling draws one per candidate per
// slot.
double StandardNormal(std::mt19937_64& rng);

}  // namespace whisperer::learn
