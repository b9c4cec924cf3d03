// Off-policy evaluation: the value a target policy would have had, estimated from a log of
// another policy's choices with the probability each was made with (decisions' `probability`).
//
// For each logged round: the action taken, its logged probability p, the reward r, the target
// policy's probability pi(a) of every action, and optionally a reward model's prediction q(a) of
// every action. With w = pi(a_logged) / p:
//   DM     mean over rounds of sum_a pi(a) q(a)                 (biased when q is wrong)
//   IPW    mean of w r                                           (unbiased, high variance)
//   SNIPW  sum of w r / sum of w                                 (self-normalised)
//   DR     mean of sum_a pi(a) q(a) + w (r - q(a_logged))        (unbiased if p is right,
//                                                                 lower variance when q is good)
// each with a 95 % percentile bootstrap interval (rounds resampled with replacement).
// Written here: a few lines of arithmetic, the product's own evaluation of its decisions.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

namespace whisperer::learn {

struct LoggedRound {
  size_t action = 0;
  double propensity = 1;  // of the logged action under the logging policy
  double reward = 0;
  std::vector<double> target;     // pi(a) for every action
  std::vector<double> predicted;  // q(a) for every action; empty: no reward model (DM = DR = 0)
};

struct OpeEstimate {
  double value = 0;
  double low = 0, high = 0;  // 95 % bootstrap interval
};

struct OpeResult {
  OpeEstimate dm, ipw, snipw, dr;
  size_t rounds = 0;
};

// `bootstrap` resamples (0: no interval, low = high = value), drawn from `seed`.
OpeResult EstimatePolicyValue(std::span<const LoggedRound> rounds, int bootstrap = 200,
                              uint64_t seed = 1);

}  // namespace whisperer::learn
