// The Open Bandit Dataset check (open_bandit/): the production Bernoulli Thompson sampling
// policy of ZOZOTOWN (its Beta priors from prior_bts.yaml) evaluated off-policy on the uniformly
// random log of each campaign, with the same reader and estimators as `whisperer eval ope`
// (eval/ope_log.h), next to the click rates both logs observed. A wiring check of the log
// reader, the position-wise (marginal) propensities and the BTS simulation, not an accuracy
// target: 10,000 rows per log hold a few dozen clicks.
#include <algorithm>

#include "common/json_writer.h"
#include "common/strings.h"
#include "eval/eval.h"
#include "eval/metrics.h"
#include "eval/ope_log.h"

namespace whisperer::eval {
namespace {

// Open Bandit Pipeline's README runs BernoulliTS(is_zozotown_prior=True, random_state=12345)
// with compute_batch_action_dist(n_sim=100000); the same seed and draws here.
constexpr uint64_t kSeed = 12345;
constexpr int kSimulations = 100'000;
constexpr int kBootstrap = 200;
// The README's IPW estimate of BTS over the Random log's click rate, for the "all" campaign
// (whose log is not in the sample).
constexpr double kReadmeAllRatio = 1.198126;

double MeanReward(const DecisionLog& log) {
  double sum = 0;
  for (const LoggedSlot& s : log.slots) sum += s.reward.value_or(0);
  return sum / static_cast<double>(log.slots.size());
}

absl::Status Campaign(const std::string& dir, const std::string& campaign, JsonWriter& w) {
  absl::StatusOr<DecisionLog> random = ReadOpenBanditLog(StrCat(dir, "random_", campaign, ".csv"));
  if (!random.ok()) return random.status();
  absl::StatusOr<DecisionLog> bts_log = ReadOpenBanditLog(StrCat(dir, "bts_", campaign, ".csv"));
  if (!bts_log.ok()) return bts_log.status();
  absl::StatusOr<BetaPriors> priors = ReadBetaPriors(dir + "prior_bts.yaml", campaign);
  if (!priors.ok()) return priors.status();
  const size_t items = random->actions.size();
  if (priors->alpha.size() != items || bts_log->actions.size() != items) {
    return absl::InvalidArgumentError(ToAbsl(
        StrCat("open_bandit ", campaign, ": ", items, " items in the random log, ",
               bts_log->actions.size(), " in the BTS log, ", priors->alpha.size(), " priors")));
  }
  // train 0: the reward model (DM, DR) learns from the whole Random log it then evaluates.
  OpeLogOptions options{.policy = "bts",
                        .train = 0,
                        .bootstrap = kBootstrap,
                        .seed = kSeed,
                        .priors = *priors,
                        .simulations = kSimulations};
  absl::StatusOr<OpeLogResult> bts = EvaluateDecisionLog(*random, options);
  if (!bts.ok()) return bts.status();
  options.policy = "uniform";  // the logging policy itself: IPW must give the click rate
  absl::StatusOr<OpeLogResult> uniform = EvaluateDecisionLog(*random, options);
  if (!uniform.ok()) return uniform.status();

  // The simulated policy against the BTS log's own propensities (the production policy's
  // Monte-Carlo estimates, from its parameters at the time): same item, same position.
  uint32_t positions = 1;
  for (const LoggedSlot& s : bts_log->slots) positions = std::max(positions, s.position);
  std::vector<uint32_t> all(items);
  for (uint32_t i = 0; i < items; ++i) all[i] = i;
  const std::vector<std::vector<double>> pi =
      BtsRankProbabilities(*priors, all, positions, kSimulations, kSeed);
  std::vector<double> logged, simulated;
  for (const LoggedSlot& s : bts_log->slots) {
    logged.push_back(s.propensity);
    simulated.push_back(pi[s.action][s.position - 1]);
  }
  auto mean = [](const std::vector<double>& v) {
    double sum = 0;
    for (double x : v) sum += x;
    return sum / static_cast<double>(v.size());
  };

  const double random_ctr = MeanReward(*random);
  w.StartObject();
  w.Key("campaign");
  w.String(campaign);
  w.Key("items");
  w.Uint(items);
  w.Key("random_rows");
  w.Uint(random->slots.size());
  w.Key("random_ctr");
  w.Double(random_ctr);
  w.Key("bts_log_rows");
  w.Uint(bts_log->slots.size());
  w.Key("bts_log_ctr");
  w.Double(MeanReward(*bts_log));
  w.Key("reward_model_rows");
  w.Uint(bts->model_lines);
  w.Key("bts_policy");
  w.StartObject();
  WriteOpeEstimates(w, bts->estimates);
  w.EndObject();
  w.Key("ipw_over_random_ctr");
  w.Double(random_ctr > 0 ? bts->estimates.ipw.value / random_ctr : 0);
  w.Key("uniform_policy_ipw");
  w.Double(uniform->estimates.ipw.value);
  w.Key("bts_log_propensities");
  w.StartObject();
  w.Key("mean_logged");
  w.Double(mean(logged));
  w.Key("mean_simulated");
  w.Double(mean(simulated));
  w.Key("pearson_r");
  w.Double(Pearson(logged, simulated));
  w.EndObject();
  w.EndObject();
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::string> RunOpenBandit(const std::string& data_dir) {
  const std::string dir = data_dir + "/open_bandit/";
  std::string out;
  JsonWriter w(&out);
  w.StartObject();
  w.Key("task");
  w.String("open_bandit");
  w.Key("policy");
  w.String("bts");
  w.Key("train_fraction");
  w.Double(0);
  w.Key("bootstrap");
  w.Int(kBootstrap);
  w.Key("simulations");
  w.Int(kSimulations);
  w.Key("seed");
  w.Uint(kSeed);
  w.Key("campaigns");
  w.StartArray();
  for (const char* campaign : {"men", "women"}) {
    if (absl::Status s = Campaign(dir, campaign, w); !s.ok()) return s;
  }
  w.EndArray();
  w.Key("readme_all_ratio");
  w.Double(kReadmeAllRatio);
  w.Key("all_campaign_available");
  w.Bool(false);
  w.EndObject();
  return out;
}

}  // namespace whisperer::eval
