// Offline evaluation from a decision log: `whisperer eval ope --log FILE --policy NAME` and the
// Open Bandit Dataset check (`whisperer eval open_bandit`).
//
// A decision log is one logged slot per line: the action the logging policy placed at a
// position, the candidates it chose among, the probability it chose it with, the reward that
// followed and the context. Two readers fill the same DecisionLog: the NDJSON of the server's
// export (`GET /v1/decisions/export`; docs/evaluation.md has the reading rules) and the Open
// Bandit Dataset's CSV files. EvaluateDecisionLog then trains a reward model on the first lines,
// computes a target policy's probability of every candidate on the rest, and estimates the
// target's value with learn/ope.h (DM, IPW, SNIPW, DR, bootstrap intervals).
//
// The reward model is the decision engine's own: learn::LinearPosterior on the context plus the
// position (a categorical feature), crossed with the action (learn::CrossWithAction with the
// hash of the action's name, as the decider crosses an action's id).
//
// Thread-safety: pure functions of their arguments; nothing is shared.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "common/json_writer.h"
#include "learn/ftrl.h"
#include "learn/ope.h"

namespace whisperer::eval {

// What a logged propensity at a position after the first is the probability of.
enum class PositionBasis {
  // Of the action among the candidates still open at this position, given the actions placed
  // at the earlier positions (the engine's export: the candidates exclude those actions).
  kConditional,
  // Of the action at this position, whatever the earlier ones hold (the Open Bandit Dataset:
  // every item is a candidate at every position).
  kMarginal,
};

struct LoggedSlot {
  size_t line = 0;                   // 1-based line of the file, for messages
  uint32_t position = 1;             // 1-based
  size_t action = 0;                 // the logged action: an index into `candidates`
  std::vector<uint32_t> candidates;  // indexes into DecisionLog::actions, the action included
  double propensity = 1;             // in (0, 1]
  std::optional<double> reward;      // nullopt: no reward known (counts as 0)
  std::vector<learn::Feature> context;
};

struct DecisionLog {
  std::vector<std::string> actions;  // every action named, in order of first appearance
  std::vector<LoggedSlot> slots;     // in file order
  PositionBasis basis = PositionBasis::kConditional;
  size_t missing_rewards = 0;
  // Lines of slots held for approval that took no reward, left out of `slots`.
  size_t held_unrewarded = 0;

  // The index of the action named `name`, added if new.
  uint32_t Intern(std::string_view name);

 private:
  std::unordered_map<std::string, uint32_t> index_;
};

// Hashed features of the object form of a context (bits as FeatureBuilder's).
inline constexpr int kContextBits = 16;

// The NDJSON decision log in `text`, one slot per line (blank lines skipped). InvalidArgument
// naming the line and the field of the first bad one ("line 12: propensity must be in (0, 1]").
absl::StatusOr<DecisionLog> ParseDecisionLog(std::string_view text,
                                             PositionBasis basis = PositionBasis::kConditional);
// The same from a file; messages start with its path.
absl::StatusOr<DecisionLog> ReadDecisionLog(const std::string& path,
                                            PositionBasis basis = PositionBasis::kConditional);

// An Open Bandit Dataset log ({random,bts}_{campaign}.csv): candidates are every item 0..K-1 of
// the campaign (K = the number of user-item_affinity columns; action i is named "i"), position
// from `position`, reward = `click`, propensity = `propensity_score` (marginal per position),
// context = user_feature_0..3 as categorical features and the affinity columns as numeric ones.
absl::StatusOr<DecisionLog> ReadOpenBanditLog(const std::string& path);

// Beta priors per action of a Bernoulli Thompson sampling policy; action i is the one named "i".
struct BetaPriors {
  std::vector<double> alpha, beta;
};

// `campaign` of a file shaped like Open Bandit Pipeline's prior_bts.yaml:
//   campaign: {alpha: [a0, a1, ...], beta: [b0, b1, ...]}
// An empty `campaign` is allowed when the file has only one.
absl::StatusOr<BetaPriors> ReadBetaPriors(const std::string& path, const std::string& campaign);

// P(items[i] ranked r-th), r < ranks, for a policy that draws every item's reward from its Beta
// prior and ranks the items by their draws (Open Bandit Pipeline's
// BernoulliTS.compute_batch_action_dist), estimated from `simulations` draws seeded by `seed`.
// Result[i][r]; every column sums to 1 when ranks <= items.size().
std::vector<std::vector<double>> BtsRankProbabilities(const BetaPriors& priors,
                                                      std::span<const uint32_t> items, size_t ranks,
                                                      int simulations, uint64_t seed);

// The target policies, by name.
inline constexpr std::string_view kPolicies = "uniform, logged, greedy, thompson or bts";

struct OpeLogOptions {
  std::string policy = {};  // one of kPolicies
  // The first `train` fraction of the slots trains the reward model (and thompson's and
  // greedy's policy), the rest are evaluated. 0: the model learns from every slot and every
  // slot is evaluated (in-sample: the reward model has seen the rewards it predicts).
  double train = 0.5;
  int bootstrap = 200;                              // resamples of the intervals
  uint64_t seed = 1;                                // of the bootstrap and of bts's simulations
  std::optional<BetaPriors> priors = std::nullopt;  // bts's, actions named by their index
  int simulations = 100000;                         // bts's draws per set of candidates
};

struct OpeLogResult {
  size_t lines = 0;        // logged slots
  size_t train_lines = 0;  // slots before the evaluated ones
  size_t evaluated_lines = 0;
  size_t model_lines = 0;      // slots the reward model learned from
  size_t missing_rewards = 0;  // slots without a reward, counted as 0
  size_t held_lines = 0;       // held for approval without a reward: left out (never shown)
  double logged_value = 0;     // mean reward of the evaluated slots
  learn::OpeResult estimates;
};

// The value of `options.policy` estimated on `log`. The policies' probability of a candidate c
// at a slot with candidates C at position k:
//   uniform   1 / |C|
//   logged    the logging policy itself: the logged propensity for the logged action and the
//             rest shared equally by the other candidates (IPW and SNIPW are then the mean
//             reward; DM and DR use that approximation of the logging policy)
//   greedy    1 for the candidate of the highest predicted reward (conditional basis), or for the
//             one ranked k-th by it (marginal basis)
//   thompson  learn::ProbabilityOfBest of the reward model's estimates among C (the engine's
//             linear Thompson sampling); conditional basis only
//   bts       P(c has the best Beta draw among C) (conditional basis: a Thompson sampler drawing
//             afresh at each position; exact for position 1), or P(c ranked k-th by the draws)
//             (marginal basis, as Open Bandit Pipeline computes it); BtsRankProbabilities
// InvalidArgument for an unknown policy (naming the valid ones), bts without priors or with an
// action that has none, a train fraction outside [0, 1) or nothing left to evaluate.
absl::StatusOr<OpeLogResult> EvaluateDecisionLog(const DecisionLog& log,
                                                 const OpeLogOptions& options);

// Writes "dm", "ipw", "snipw" and "dr", each {"value", "low", "high"}, into the open object.
void WriteOpeEstimates(JsonWriter& w, const learn::OpeResult& r);

// `whisperer eval ope`: the command's options and its JSON answer.
struct OpeCommand {
  std::string log;  // NDJSON file
  std::string policy;
  double train = 0.5;
  int bootstrap = 200;
  uint64_t seed = 1;
  std::string priors;  // file, for bts
  std::string campaign;
  int simulations = 100000;
  bool marginal_positions = false;  // the log's propensities are PositionBasis::kMarginal
};

// One JSON object: {"policy", "log", "lines", "trainLines", "evaluatedLines",
// "rewardModelLines", "missingRewards", "loggedValue", "dm": {"value", "low", "high"}, "ipw",
// "snipw", "dr"}.
absl::StatusOr<std::string> RunOpeCommand(const OpeCommand& command);

}  // namespace whisperer::eval
