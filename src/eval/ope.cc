// Offline evaluation of decisions: the estimators of learn/ope.h on a logged bandit whose truth
// is known (ope_synthetic), and the engine's own contextual bandit learned and evaluated on the
// Hillstrom e-mail experiment (hillstrom).
#include <algorithm>
#include <cmath>
#include <random>

#include "common/csv.h"
#include "common/json_writer.h"
#include "common/strings.h"
#include "eval/eval.h"
#include "eval/ope_log.h"
#include "learn/bandit.h"
#include "learn/ope.h"

namespace whisperer::eval {
namespace {

constexpr int kBits = 16;

void WriteResult(JsonWriter& w, const learn::OpeResult& r) {
  w.StartObject();
  w.Key("rounds");
  w.Uint(r.rounds);
  WriteOpeEstimates(w, r);
  w.EndObject();
}

// The reward model of DM and DR: the decision engine's own (learn::LinearPosterior on the
// context crossed with the action), trained on the log it evaluates.
struct RewardModel {
  learn::LinearPosterior posterior{learn::PosteriorOptions{.bits = kBits}};
  std::vector<learn::Feature> crossed;
  void Learn(std::span<const learn::Feature> x, size_t action, double reward) {
    learn::CrossWithAction(x, action + 1, kBits, &crossed);
    posterior.Update(crossed, reward);
  }
  double Predict(std::span<const learn::Feature> x, size_t action) {
    learn::CrossWithAction(x, action + 1, kBits, &crossed);
    return posterior.Predict(crossed).mean;
  }
};

double Sigmoid(double z) { return 1 / (1 + std::exp(-z)); }

}  // namespace

// The synthetic logged bandit (documented in EVALUATION.md through scripts/eval.py): contexts
// x in R^5, each coordinate N(0, 1); 4 actions; the reward of action a is Bernoulli with
// probability sigmoid(theta_a . x + b_a), theta_a's coordinates N(0, 1) and b_a uniform in
// [-1.5, -0.5], drawn once from seed 2024. The logging policy picks softmax(theta_a . x) with
// probability 0.8 and uniformly otherwise (its propensities are logged); the target policy picks
// the action of the highest true probability. Its true value is the mean of that probability
// over 500,000 contexts. For each log size, 30 logs are drawn and every estimator's error
// measured.
absl::StatusOr<std::string> RunOpeSynthetic(const std::string&) {
  constexpr int kDim = 5, kActions = 4;
  std::mt19937_64 world(2024);
  std::normal_distribution<double> gauss(0, 1);
  std::uniform_real_distribution<double> unit(0, 1);
  double theta[kActions][kDim], bias[kActions];
  for (int a = 0; a < kActions; ++a) {
    for (int k = 0; k < kDim; ++k) theta[a][k] = gauss(world);
    bias[a] = -1.5 + unit(world);
  }
  auto truth = [&](const double* x, int a) {
    double z = bias[a];
    for (int k = 0; k < kDim; ++k) z += theta[a][k] * x[k];
    return Sigmoid(z);
  };
  auto best = [&](const double* x) {
    int b = 0;
    for (int a = 1; a < kActions; ++a) {
      if (truth(x, a) > truth(x, b)) b = a;
    }
    return b;
  };
  std::mt19937_64 truth_rng(7);
  double value = 0;
  constexpr int kTruthContexts = 500'000;
  for (int i = 0; i < kTruthContexts; ++i) {
    double x[kDim];
    for (double& v : x) v = gauss(truth_rng);
    value += truth(x, best(x));
  }
  value /= kTruthContexts;

  std::string out;
  JsonWriter w(&out);
  w.StartObject();
  w.Key("task");
  w.String("ope_synthetic");
  w.Key("true_value");
  w.Double(value);
  double logging_value = 0;  // the logging policy's true value on the first log's contexts
  w.Key("sizes");
  w.StartArray();
  constexpr int kLogs = 30;
  for (size_t n : {1'000u, 10'000u, 100'000u}) {
    double sq[4] = {0, 0, 0, 0};
    learn::OpeResult example;
    for (int log = 0; log < kLogs; ++log) {
      std::mt19937_64 rng(1000 * n + log);
      std::vector<std::array<double, kDim>> contexts(n);
      std::vector<learn::LoggedRound> rounds(n);
      RewardModel model;
      std::vector<std::vector<learn::Feature>> features(n);
      for (size_t i = 0; i < n; ++i) {
        for (double& v : contexts[i]) v = gauss(rng);
        const double* x = contexts[i].data();
        double p[kActions], total = 0;
        for (int a = 0; a < kActions; ++a) {
          double z = 0;
          for (int k = 0; k < kDim; ++k) z += theta[a][k] * x[k];
          p[a] = std::exp(z);
          total += p[a];
        }
        for (double& v : p) v = 0.8 * v / total + 0.2 / kActions;
        double u = unit(rng);
        int a = kActions - 1;
        for (int c = 0; c < kActions; ++c) {
          if ((u -= p[c]) <= 0) {
            a = c;
            break;
          }
        }
        learn::LoggedRound& r = rounds[i];
        r.action = static_cast<size_t>(a);
        r.propensity = p[a];
        r.reward = unit(rng) < truth(x, a) ? 1 : 0;
        r.target.assign(kActions, 0);
        r.target[static_cast<size_t>(best(x))] = 1;
        features[i].push_back({0, 1.0f});
        for (int k = 0; k < kDim; ++k) {
          features[i].push_back({static_cast<uint32_t>(k + 1), static_cast<float>(x[k])});
        }
        model.Learn(features[i], r.action, r.reward);
        if (log == 0 && n == 1'000u) logging_value += truth(x, a) / static_cast<double>(n);
      }
      for (size_t i = 0; i < n; ++i) {
        rounds[i].predicted.resize(kActions);
        for (int a = 0; a < kActions; ++a) {
          rounds[i].predicted[static_cast<size_t>(a)] = model.Predict(features[i], a);
        }
      }
      learn::OpeResult r = learn::EstimatePolicyValue(rounds, log == 0 ? 200 : 0, 5 + log);
      if (log == 0) example = r;
      const double errors[4] = {r.dm.value - value, r.ipw.value - value, r.snipw.value - value,
                                r.dr.value - value};
      for (int e = 0; e < 4; ++e) sq[e] += errors[e] * errors[e];
    }
    w.StartObject();
    w.Key("rounds");
    w.Uint(n);
    w.Key("logs");
    w.Int(kLogs);
    w.Key("rmse");
    w.StartObject();
    const char* names[] = {"dm", "ipw", "snipw", "dr"};
    for (int e = 0; e < 4; ++e) {
      w.Key(names[e]);
      w.Double(std::sqrt(sq[e] / kLogs));
    }
    w.EndObject();
    w.Key("first_log");
    WriteResult(w, example);
    w.EndObject();
  }
  w.EndArray();
  w.Key("logging_value_first_log");
  w.Double(logging_value);
  w.EndObject();
  return out;
}

// hillstrom/: the three e-mail arms as actions, the customer's columns as the context, visit as
// the reward. The engine's bandit (learn::LinearPosterior, features crossed with the arm) learns
// by replaying the training rows of the fixed split (each row's logged arm and visit); the
// learned policy picks the arm of the highest posterior mean. On the test rows its value is
// estimated by IPW, self-normalised IPW and DR (the arm's share of the test rows as its
// propensity), with bootstrap intervals, next to each single arm's visit rate and the uniform
// random policy's.
namespace {
absl::StatusOr<std::string> Hillstrom(const std::string& data_dir);
}  // namespace

absl::StatusOr<std::string> RunHillstrom(const std::string& data_dir) {
  try {  // std::stod and std::stoul on a malformed row
    return Hillstrom(data_dir);
  } catch (const std::exception& e) {
    return absl::InvalidArgumentError(
        ToAbsl(StrCat("hillstrom: a malformed row (", e.what(), ")")));
  }
}

namespace {
absl::StatusOr<std::string> Hillstrom(const std::string& data_dir) {
  const std::string dir = data_dir + "/hillstrom/";
  std::vector<std::vector<std::string>> rows;
  const std::vector<std::string> columns = {"recency", "history", "mens",    "womens", "zip_code",
                                            "newbie",  "channel", "segment", "visit"};
  if (absl::Status s = ReadCsvColumns(
          dir + "Kevin_Hillstrom_MineThatData_E-MailAnalytics_DataMiningChallenge_2008.03.20.csv",
          columns, &rows);
      !s.ok()) {
    return s;
  }
  std::vector<std::vector<std::string>> split;
  if (absl::Status s =
          ReadCsvColumns(dir + "split_stratified70_30_seed42.csv", {"row_index", "split"}, &split);
      !s.ok()) {
    return s;
  }
  if (split.size() != rows.size()) {
    return absl::InvalidArgumentError(
        ToAbsl(StrCat("hillstrom: ", rows.size(), " rows but ", split.size(), " split rows")));
  }
  std::vector<bool> is_test(rows.size());
  for (const auto& s : split) {
    const size_t i = std::stoul(s[0]);
    if (i >= rows.size()) return absl::InvalidArgumentError("hillstrom: split row out of range");
    is_test[i] = s[1] == "test";
  }
  const std::string arms[] = {"Mens E-Mail", "Womens E-Mail", "No E-Mail"};
  constexpr size_t kArms = 3;
  learn::FeatureBuilder builder(kBits);
  auto context = [&](const std::vector<std::string>& r) {
    builder.Clear();
    builder.Numeric("recency", std::stod(r[0]) / 12);
    builder.Numeric("history", std::log1p(std::stod(r[1])) / 7);
    builder.Categorical("mens", r[2]);
    builder.Categorical("womens", r[3]);
    builder.Categorical("zip", r[4]);
    builder.Categorical("newbie", r[5]);
    builder.Categorical("channel", r[6]);
    builder.Categorical("recency_bucket", r[0]);
    return std::vector<learn::Feature>(builder.features().begin(), builder.features().end());
  };
  auto arm_of = [&](const std::string& s) -> std::optional<size_t> {
    for (size_t a = 0; a < kArms; ++a) {
      if (arms[a] == s) return a;
    }
    return std::nullopt;
  };
  RewardModel model;
  size_t train = 0;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (is_test[i]) continue;
    std::optional<size_t> a = arm_of(rows[i][7]);
    if (!a) return absl::InvalidArgumentError(StrCat("hillstrom: unknown segment ", rows[i][7]));
    model.Learn(context(rows[i]), *a, rows[i][8] == "1" ? 1 : 0);
    ++train;
  }
  // Test rows: each arm's share (its propensity) and visit rate.
  double count[kArms] = {0, 0, 0}, visits[kArms] = {0, 0, 0};
  std::vector<size_t> test;
  for (size_t i = 0; i < rows.size(); ++i) {
    if (!is_test[i]) continue;
    const size_t a = *arm_of(rows[i][7]);
    count[a] += 1;
    visits[a] += rows[i][8] == "1" ? 1 : 0;
    test.push_back(i);
  }
  const double n = static_cast<double>(test.size());
  std::vector<learn::LoggedRound> rounds;
  size_t chose[kArms] = {0, 0, 0};
  for (size_t i : test) {
    std::vector<learn::Feature> x = context(rows[i]);
    learn::LoggedRound r;
    r.action = *arm_of(rows[i][7]);
    r.propensity = count[r.action] / n;
    r.reward = rows[i][8] == "1" ? 1 : 0;
    r.predicted.resize(kArms);
    size_t best = 0;
    for (size_t a = 0; a < kArms; ++a) {
      r.predicted[a] = model.Predict(x, a);
      if (r.predicted[a] > r.predicted[best]) best = a;
    }
    r.target.assign(kArms, 0);
    r.target[best] = 1;
    ++chose[best];
    rounds.push_back(std::move(r));
  }
  learn::OpeResult result = learn::EstimatePolicyValue(rounds, 500, 42);
  double uniform = 0;
  for (size_t a = 0; a < kArms; ++a) uniform += visits[a] / count[a] / kArms;

  std::string out;
  JsonWriter w(&out);
  w.StartObject();
  w.Key("task");
  w.String("hillstrom");
  w.Key("train_rows");
  w.Uint(train);
  w.Key("test_rows");
  w.Uint(test.size());
  w.Key("arms");
  w.StartArray();
  for (size_t a = 0; a < kArms; ++a) {
    w.StartObject();
    w.Key("arm");
    w.String(arms[a]);
    w.Key("test_rows");
    w.Double(count[a]);
    w.Key("visit_rate");
    w.Double(visits[a] / count[a]);
    w.Key("chosen_by_policy");
    w.Uint(chose[a]);
    w.EndObject();
  }
  w.EndArray();
  w.Key("uniform_value");
  w.Double(uniform);
  w.Key("learned_policy");
  WriteResult(w, result);
  w.EndObject();
  return out;
}

}  // namespace

}  // namespace whisperer::eval
