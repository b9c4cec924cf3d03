#include "eval/ope_log.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <map>
#include <numeric>
#include <random>

#include "common/csv.h"
#include "common/hash.h"
#include "common/json_writer.h"
#include "common/strings.h"
#include "learn/bandit.h"
#include "simdjson.h"
#include "yaml-cpp/yaml.h"

namespace whisperer::eval {

uint32_t DecisionLog::Intern(std::string_view name) {
  auto [it, added] = index_.try_emplace(std::string(name), static_cast<uint32_t>(actions.size()));
  if (added) actions.emplace_back(name);
  return it->second;
}

namespace {

absl::Status LineError(size_t line, std::string_view what) {
  return absl::InvalidArgumentError(ToAbsl(StrCat("line ", line, ": ", what)));
}

absl::Status WithPath(const std::string& path, const absl::Status& s) {
  return absl::Status(s.code(), ToAbsl(StrCat(path, ": ", ToStd(s.message()))));
}

std::optional<double> ParseNumber(std::string_view s) {
  double v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() || !std::isfinite(v)) {
    return std::nullopt;
  }
  return v;
}

std::optional<uint64_t> ParseIndex(std::string_view s) {
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

// An action's name: a JSON string, or a whole number (logs that name actions by index).
std::optional<std::string> ActionName(simdjson::dom::element e) {
  std::string_view s;
  if (e.get_string().get(s) == simdjson::SUCCESS) {
    if (s.empty()) return std::nullopt;
    return std::string(s);
  }
  uint64_t u = 0;
  if (e.get_uint64().get(u) == simdjson::SUCCESS) return StrCat(u);
  return std::nullopt;
}

absl::Status ParseContext(simdjson::dom::element context, size_t line,
                          learn::FeatureBuilder& builder, std::vector<learn::Feature>* out) {
  if (context.is_null()) return absl::OkStatus();
  simdjson::dom::array pairs;
  if (context.get_array().get(pairs) == simdjson::SUCCESS) {
    size_t k = 0;
    for (simdjson::dom::element pair : pairs) {
      simdjson::dom::array a;
      uint64_t index = 0;
      double value = 0;
      if (pair.get_array().get(a) != simdjson::SUCCESS || a.size() != 2 ||
          a.at(0).get_uint64().get(index) != simdjson::SUCCESS || index > UINT32_MAX ||
          a.at(1).get_double().get(value) != simdjson::SUCCESS) {
        return LineError(line, StrCat("context[", k,
                                      "] must be an [index, value] pair (index a whole number "
                                      "from 0 to 4294967295, value a number)"));
      }
      if (value != 0) out->push_back({static_cast<uint32_t>(index), static_cast<float>(value)});
      ++k;
    }
    return absl::OkStatus();
  }
  simdjson::dom::object named;
  if (context.get_object().get(named) != simdjson::SUCCESS) {
    return LineError(line,
                     "context must be an array of [index, value] pairs or an object of named "
                     "features");
  }
  builder.Clear();
  for (auto [key, value] : named) {
    double number = 0;
    std::string_view text;
    bool flag = false;
    if (value.get_double().get(number) == simdjson::SUCCESS) {
      builder.Numeric(key, number);
    } else if (value.get_string().get(text) == simdjson::SUCCESS) {
      builder.Categorical(key, text);
    } else if (value.get_bool().get(flag) == simdjson::SUCCESS) {
      builder.Numeric(key, flag ? 1 : 0);
    } else if (!value.is_null()) {
      return LineError(line, StrCat("context.", key, " must be a number, a string or a bool"));
    }
  }
  out->assign(builder.features().begin(), builder.features().end());
  return absl::OkStatus();
}

absl::Status ParseSlot(std::string_view json, size_t line, simdjson::dom::parser& parser,
                       learn::FeatureBuilder& builder, DecisionLog* log) {
  simdjson::dom::element doc;
  if (parser.parse(json.data(), json.size()).get(doc) != simdjson::SUCCESS) {
    return LineError(line, "not valid JSON");
  }
  simdjson::dom::object o;
  if (doc.get_object().get(o) != simdjson::SUCCESS) return LineError(line, "not a JSON object");
  LoggedSlot slot;
  slot.line = line;

  simdjson::dom::element e;
  int64_t position = 0;
  if (o["position"].get(e) != simdjson::SUCCESS) return LineError(line, "position is missing");
  if (e.get_int64().get(position) != simdjson::SUCCESS || position < 1 || position > 1'000'000) {
    return LineError(line, "position must be a whole number from 1");
  }
  slot.position = static_cast<uint32_t>(position);

  if (o["action"].get(e) != simdjson::SUCCESS) return LineError(line, "action is missing");
  std::optional<std::string> action = ActionName(e);
  if (!action) return LineError(line, "action must be a non-empty string");

  simdjson::dom::array candidates;
  if (o["candidates"].get(e) != simdjson::SUCCESS) return LineError(line, "candidates is missing");
  if (e.get_array().get(candidates) != simdjson::SUCCESS || candidates.size() == 0) {
    return LineError(line, "candidates must be a non-empty array of action names");
  }
  const uint32_t logged = log->Intern(*action);
  std::optional<size_t> at;
  for (simdjson::dom::element c : candidates) {
    std::optional<std::string> name = ActionName(c);
    if (!name) return LineError(line, "candidates must be a non-empty array of action names");
    const uint32_t index = log->Intern(*name);
    if (std::find(slot.candidates.begin(), slot.candidates.end(), index) != slot.candidates.end()) {
      return LineError(line, StrCat("candidates: '", *name, "' appears twice"));
    }
    if (index == logged) at = slot.candidates.size();
    slot.candidates.push_back(index);
  }
  if (!at) return LineError(line, StrCat("candidates must include the action '", *action, "'"));
  slot.action = *at;

  if (o["propensity"].get(e) != simdjson::SUCCESS) return LineError(line, "propensity is missing");
  if (e.get_double().get(slot.propensity) != simdjson::SUCCESS ||
      !(slot.propensity > 0 && slot.propensity <= 1)) {
    return LineError(line, "propensity must be in (0, 1]");
  }

  if (o["reward"].get(e) == simdjson::SUCCESS && !e.is_null()) {
    double reward = 0;
    if (e.get_double().get(reward) != simdjson::SUCCESS) {
      return LineError(line, "reward must be a number or null");
    }
    slot.reward = reward;
  }
  // A slot held for approval that took no reward was, as far as the log knows, never shown:
  // its outcome is unknown, not 0 (the lift report, GET /v1/decisions/lift, leaves such slots
  // out too). An approved slot that was shown and took no reward cannot be told apart; the
  // export does not say which were approved.
  std::string_view status;
  if (!slot.reward && o["status"].get(e) == simdjson::SUCCESS &&
      e.get_string().get(status) == simdjson::SUCCESS && status == "held_for_approval") {
    ++log->held_unrewarded;
    return absl::OkStatus();
  }
  if (!slot.reward) ++log->missing_rewards;

  if (o["context"].get(e) == simdjson::SUCCESS) {
    if (absl::Status s = ParseContext(e, line, builder, &slot.context); !s.ok()) return s;
  }
  log->slots.push_back(std::move(slot));
  return absl::OkStatus();
}

enum class Policy { kUniform, kLogged, kGreedy, kThompson, kBts };

absl::StatusOr<Policy> PolicyByName(std::string_view name) {
  if (name == "uniform") return Policy::kUniform;
  if (name == "logged") return Policy::kLogged;
  if (name == "greedy") return Policy::kGreedy;
  if (name == "thompson") return Policy::kThompson;
  if (name == "bts") return Policy::kBts;
  return absl::InvalidArgumentError(
      ToAbsl(StrCat("unknown policy '", name, "' (expected ", kPolicies, ")")));
}

// The reward model of DM and DR, and greedy's and thompson's policy: the decision engine's
// bandit posterior on the slot's context plus its position, crossed with the action.
class RewardModel {
 public:
  explicit RewardModel(const DecisionLog& log) : positions_(kContextBits) {
    for (const std::string& name : log.actions) hashes_.push_back(Hash64(name));
  }

  // Sets the slot whose candidates the next calls score.
  void Use(const LoggedSlot& slot) {
    base_ = slot.context;
    positions_.Clear();
    positions_.Categorical("position", StrCat(slot.position));
    base_.push_back(positions_.features()[1]);
  }
  void Learn(uint32_t action, double reward) {
    learn::CrossWithAction(base_, hashes_[action], posterior_.options().bits, &crossed_);
    posterior_.Update(crossed_, reward);
  }
  learn::RewardEstimate Predict(uint32_t action) {
    learn::CrossWithAction(base_, hashes_[action], posterior_.options().bits, &crossed_);
    return posterior_.Predict(crossed_);
  }

 private:
  learn::LinearPosterior posterior_{learn::PosteriorOptions{}};
  learn::FeatureBuilder positions_;
  std::vector<uint64_t> hashes_;
  std::vector<learn::Feature> base_, crossed_;
};

}  // namespace

absl::StatusOr<DecisionLog> ParseDecisionLog(std::string_view text, PositionBasis basis) {
  DecisionLog log;
  log.basis = basis;
  simdjson::dom::parser parser;
  learn::FeatureBuilder builder(kContextBits);
  size_t line = 0;
  for (size_t pos = 0; pos < text.size();) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view json = text.substr(pos, end - pos);
    pos = end + 1;
    ++line;
    if (StripWhitespace(json).empty()) continue;
    if (absl::Status s = ParseSlot(json, line, parser, builder, &log); !s.ok()) return s;
  }
  if (log.slots.empty()) return absl::InvalidArgumentError("the log holds no logged slot");
  return log;
}

absl::StatusOr<DecisionLog> ReadDecisionLog(const std::string& path, PositionBasis basis) {
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  absl::StatusOr<DecisionLog> log = ParseDecisionLog(*text, basis);
  if (!log.ok()) return WithPath(path, log.status());
  return log;
}

absl::StatusOr<DecisionLog> ReadOpenBanditLog(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  CsvReader reader(*text);
  std::vector<std::string> header;
  if (!reader.Next(&header)) {
    return WithPath(
        path, reader.status().ok() ? absl::InvalidArgumentError("no header row") : reader.status());
  }
  auto column = [&](std::string_view name) -> std::optional<size_t> {
    for (size_t i = 0; i < header.size(); ++i) {
      if (header[i] == name) return i;
    }
    return std::nullopt;
  };
  // item_id, position, click, propensity_score, user_feature_0..3.
  const std::string_view fixed[] = {"item_id",          "position",       "click",
                                    "propensity_score", "user_feature_0", "user_feature_1",
                                    "user_feature_2",   "user_feature_3"};
  size_t at[8];
  for (size_t k = 0; k < 8; ++k) {
    std::optional<size_t> i = column(fixed[k]);
    if (!i) {
      return WithPath(path, absl::InvalidArgumentError(
                                ToAbsl(StrCat("no column named '", fixed[k], "' in the header"))));
    }
    at[k] = *i;
  }
  // user-item_affinity_0 .. _K-1: one per item, which also says how many items there are.
  constexpr std::string_view kAffinity = "user-item_affinity_";
  std::vector<size_t> affinity;
  for (size_t k = 0;; ++k) {
    std::optional<size_t> i = column(StrCat(kAffinity, k));
    if (!i) break;
    affinity.push_back(*i);
  }
  if (affinity.empty()) {
    return WithPath(path, absl::InvalidArgumentError(
                              ToAbsl(StrCat("no column named '", kAffinity, "0' in the header"))));
  }
  DecisionLog log;
  log.basis = PositionBasis::kMarginal;
  const size_t items = affinity.size();
  std::vector<uint32_t> all(items);
  for (size_t i = 0; i < items; ++i) all[i] = log.Intern(StrCat(i));
  std::vector<std::string> affinity_names;
  for (size_t i = 0; i < items; ++i) affinity_names.push_back(StrCat("affinity_", i));
  learn::FeatureBuilder builder(kContextBits);
  std::vector<std::string> f;
  while (reader.Next(&f)) {
    if (f.size() == 1 && f[0].empty()) continue;
    const size_t line = reader.line();
    auto bad = [&](std::string_view what) { return WithPath(path, LineError(line, what)); };
    if (f.size() != header.size()) {
      return bad(StrCat("has ", f.size(), " fields, the header has ", header.size()));
    }
    LoggedSlot slot;
    slot.line = line;
    std::optional<uint64_t> item = ParseIndex(f[at[0]]);
    if (!item || *item >= items) {
      return bad(StrCat("item_id must be a whole number from 0 to ", items - 1));
    }
    std::optional<uint64_t> position = ParseIndex(f[at[1]]);
    if (!position || *position < 1 || *position > items) {
      return bad(StrCat("position must be a whole number from 1 to ", items));
    }
    std::optional<double> click = ParseNumber(f[at[2]]);
    if (!click) return bad("click must be a number");
    std::optional<double> propensity = ParseNumber(f[at[3]]);
    if (!propensity || !(*propensity > 0 && *propensity <= 1)) {
      return bad("propensity_score must be in (0, 1]");
    }
    slot.position = static_cast<uint32_t>(*position);
    slot.action = *item;
    slot.candidates = all;
    slot.propensity = *propensity;
    slot.reward = *click;
    builder.Clear();
    for (size_t k = 0; k < 4; ++k) builder.Categorical(fixed[4 + k], f[at[4 + k]]);
    for (size_t i = 0; i < items; ++i) {
      std::optional<double> a = ParseNumber(f[affinity[i]]);
      if (!a) return bad(StrCat(kAffinity, i, " must be a number"));
      builder.Numeric(affinity_names[i], *a);
    }
    slot.context.assign(builder.features().begin(), builder.features().end());
    log.slots.push_back(std::move(slot));
  }
  if (!reader.status().ok()) return WithPath(path, reader.status());
  if (log.slots.empty()) return WithPath(path, absl::InvalidArgumentError("no rows"));
  return log;
}

absl::StatusOr<BetaPriors> ReadBetaPriors(const std::string& path, const std::string& campaign) {
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  auto error = [&](std::string_view what) {
    return absl::InvalidArgumentError(ToAbsl(StrCat(path, ": ", what)));
  };
  try {
    const YAML::Node root = YAML::Load(*text);
    if (!root.IsMap() || root.size() == 0) {
      return error("expected campaigns, each {alpha: [...], beta: [...]}");
    }
    std::string names;
    for (const auto& kv : root) StrAppend(&names, names.empty() ? "" : ", ", kv.first.Scalar());
    std::string name = campaign;
    if (name.empty()) {
      if (root.size() != 1) return error(StrCat("name a campaign (--campaign): one of ", names));
      name = root.begin()->first.Scalar();
    }
    const YAML::Node c = root[name];
    if (!c) return error(StrCat("no campaign '", name, "' (the file has ", names, ")"));
    BetaPriors priors;
    for (auto [key, out] : {std::pair{"alpha", &priors.alpha}, std::pair{"beta", &priors.beta}}) {
      const YAML::Node list = c[key];
      if (!list || !list.IsSequence() || list.size() == 0) {
        return error(StrCat(name, ".", key, " must be a list of positive numbers"));
      }
      for (const YAML::Node& v : list) {
        std::optional<double> x = v.IsScalar() ? ParseNumber(v.Scalar()) : std::nullopt;
        if (!x || !(*x > 0)) {
          return error(StrCat("line ", v.Mark().line + 1, ": ", name, ".", key,
                              " must be a list of positive numbers"));
        }
        out->push_back(*x);
      }
    }
    if (priors.alpha.size() != priors.beta.size()) {
      return error(
          StrCat(name, ": ", priors.alpha.size(), " alphas but ", priors.beta.size(), " betas"));
    }
    return priors;
  } catch (const YAML::Exception& e) {
    return error(e.what());
  }
}

std::vector<std::vector<double>> BtsRankProbabilities(const BetaPriors& priors,
                                                      std::span<const uint32_t> items, size_t ranks,
                                                      int simulations, uint64_t seed) {
  const size_t n = items.size();
  std::vector<std::vector<double>> p(n, std::vector<double>(ranks, 0.0));
  const size_t ranked = std::min(ranks, n);
  if (ranked == 0 || simulations <= 0) return p;
  // A Beta(a, b) draw is X / (X + Y) with X ~ Gamma(a), Y ~ Gamma(b).
  std::vector<std::gamma_distribution<double>> x, y;
  for (uint32_t item : items) {
    x.emplace_back(priors.alpha[item]);
    y.emplace_back(priors.beta[item]);
  }
  std::mt19937_64 rng(seed);
  std::vector<double> draw(n);
  std::vector<size_t> order(n);
  std::vector<std::vector<uint64_t>> count(n, std::vector<uint64_t>(ranked, 0));
  for (int s = 0; s < simulations; ++s) {
    for (size_t i = 0; i < n; ++i) {
      const double a = x[i](rng);
      draw[i] = a / (a + y[i](rng));
    }
    std::iota(order.begin(), order.end(), size_t{0});
    std::partial_sort(order.begin(), order.begin() + static_cast<ptrdiff_t>(ranked), order.end(),
                      [&](size_t i, size_t j) { return draw[i] > draw[j]; });
    for (size_t r = 0; r < ranked; ++r) ++count[order[r]][r];
  }
  for (size_t i = 0; i < n; ++i) {
    for (size_t r = 0; r < ranked; ++r) {
      p[i][r] = static_cast<double>(count[i][r]) / static_cast<double>(simulations);
    }
  }
  return p;
}

absl::StatusOr<OpeLogResult> EvaluateDecisionLog(const DecisionLog& log,
                                                 const OpeLogOptions& options) {
  absl::StatusOr<Policy> policy = PolicyByName(options.policy);
  if (!policy.ok()) return policy.status();
  if (!(options.train >= 0 && options.train < 1)) {
    return absl::InvalidArgumentError("the train fraction must be in [0, 1)");
  }
  const bool marginal = log.basis == PositionBasis::kMarginal;
  if (*policy == Policy::kThompson && marginal) {
    return absl::InvalidArgumentError(
        "thompson needs propensities conditional on the earlier positions");
  }
  OpeLogResult result;
  result.lines = log.slots.size();
  result.missing_rewards = log.missing_rewards;
  result.held_lines = log.held_unrewarded;
  if (result.lines == 0) return absl::InvalidArgumentError("the log holds no logged slot");
  result.train_lines = static_cast<size_t>(std::floor(options.train * result.lines));
  if (result.train_lines >= result.lines) {
    return absl::InvalidArgumentError(
        ToAbsl(StrCat("no line left to evaluate after the ", result.train_lines,
                      " training lines (lower the train fraction)")));
  }
  result.evaluated_lines = result.lines - result.train_lines;
  // --train 0: the reward model learns from every line and every line is evaluated.
  result.model_lines = result.train_lines > 0 ? result.train_lines : result.lines;
  const std::span<const LoggedSlot> evaluated = std::span(log.slots).subspan(result.train_lines);

  // bts: each action's prior, by its name's index.
  std::vector<uint32_t> prior_of(log.actions.size(), 0);
  uint32_t max_position = 1;
  for (const LoggedSlot& s : evaluated) max_position = std::max(max_position, s.position);
  if (*policy == Policy::kBts) {
    if (!options.priors) {
      return absl::InvalidArgumentError("policy bts needs Beta priors (--priors FILE)");
    }
    const size_t k = options.priors->alpha.size();
    std::vector<uint8_t> known(log.actions.size(), 0);
    for (size_t a = 0; a < log.actions.size(); ++a) {
      std::optional<uint64_t> i = ParseIndex(log.actions[a]);
      if (i && *i < k) {
        prior_of[a] = static_cast<uint32_t>(*i);
        known[a] = 1;
      }
    }
    for (const LoggedSlot& s : evaluated) {
      for (uint32_t c : s.candidates) {
        if (!known[c]) {
          return LineError(s.line, StrCat("action '", log.actions[c],
                                          "' has no prior: bts names actions by their index in "
                                          "the priors, 0 to ",
                                          k - 1));
        }
      }
    }
  }

  RewardModel model(log);
  for (size_t i = 0; i < result.model_lines; ++i) {
    const LoggedSlot& s = log.slots[i];
    model.Use(s);
    model.Learn(s.candidates[s.action], s.reward.value_or(0));
  }

  std::map<std::vector<uint32_t>, std::vector<std::vector<double>>> bts;  // by candidates
  std::vector<learn::LoggedRound> rounds;
  rounds.reserve(evaluated.size());
  std::vector<learn::RewardEstimate> estimates;
  std::vector<size_t> order;
  for (const LoggedSlot& s : evaluated) {
    const size_t n = s.candidates.size();
    learn::LoggedRound r;
    r.action = s.action;
    r.propensity = s.propensity;
    r.reward = s.reward.value_or(0);
    result.logged_value += r.reward;
    model.Use(s);
    estimates.clear();
    for (uint32_t c : s.candidates) estimates.push_back(model.Predict(c));
    for (const learn::RewardEstimate& e : estimates) r.predicted.push_back(e.mean);
    r.target.assign(n, 0);
    // The candidate the target puts at this position: rank 0 among the candidates open here
    // (conditional basis) or rank position - 1 among all of them (marginal basis).
    const size_t rank = marginal ? s.position - 1 : 0;
    switch (*policy) {
      case Policy::kUniform:
        r.target.assign(n, 1.0 / static_cast<double>(n));
        break;
      case Policy::kLogged:
        for (size_t i = 0; i < n; ++i) {
          r.target[i] =
              i == s.action ? s.propensity : (1 - s.propensity) / static_cast<double>(n - 1);
        }
        break;
      case Policy::kGreedy:
        order.resize(n);
        std::iota(order.begin(), order.end(), size_t{0});
        std::stable_sort(order.begin(), order.end(),
                         [&](size_t i, size_t j) { return estimates[i].mean > estimates[j].mean; });
        if (rank < n) r.target[order[rank]] = 1;
        break;
      case Policy::kThompson:
        for (size_t i = 0; i < n; ++i) r.target[i] = learn::ProbabilityOfBest(estimates, i);
        break;
      case Policy::kBts: {
        auto [it, added] = bts.try_emplace(s.candidates);
        if (added) {
          std::vector<uint32_t> items;
          for (uint32_t c : s.candidates) items.push_back(prior_of[c]);
          it->second = BtsRankProbabilities(*options.priors, items, marginal ? max_position : 1,
                                            options.simulations, options.seed);
        }
        for (size_t i = 0; i < n; ++i) r.target[i] = it->second[i][rank];
        break;
      }
    }
    rounds.push_back(std::move(r));
  }
  result.logged_value /= static_cast<double>(evaluated.size());
  result.estimates = learn::EstimatePolicyValue(rounds, options.bootstrap, options.seed);
  return result;
}

void WriteOpeEstimates(JsonWriter& w, const learn::OpeResult& r) {
  auto estimate = [&](std::string_view key, const learn::OpeEstimate& e) {
    w.Key(key);
    w.StartObject();
    w.Key("value");
    w.Double(e.value);
    w.Key("low");
    w.Double(e.low);
    w.Key("high");
    w.Double(e.high);
    w.EndObject();
  };
  estimate("dm", r.dm);
  estimate("ipw", r.ipw);
  estimate("snipw", r.snipw);
  estimate("dr", r.dr);
}

absl::StatusOr<std::string> RunOpeCommand(const OpeCommand& command) {
  if (absl::StatusOr<Policy> policy = PolicyByName(command.policy); !policy.ok()) {
    return policy.status();
  }
  OpeLogOptions options;
  options.policy = command.policy;
  options.train = command.train;
  options.bootstrap = command.bootstrap;
  options.seed = command.seed;
  options.simulations = command.simulations;
  if (command.policy == "bts") {
    if (command.priors.empty()) {
      return absl::InvalidArgumentError(
          "policy bts needs --priors FILE (Beta priors per action, as in Open Bandit "
          "Pipeline's prior_bts.yaml) and --campaign NAME");
    }
    absl::StatusOr<BetaPriors> priors = ReadBetaPriors(command.priors, command.campaign);
    if (!priors.ok()) return priors.status();
    options.priors = *std::move(priors);
  }
  absl::StatusOr<DecisionLog> log =
      ReadDecisionLog(command.log, command.marginal_positions ? PositionBasis::kMarginal
                                                              : PositionBasis::kConditional);
  if (!log.ok()) return log.status();
  absl::StatusOr<OpeLogResult> r = EvaluateDecisionLog(*log, options);
  if (!r.ok()) return WithPath(command.log, r.status());

  std::string out;
  JsonWriter w(&out);
  w.StartObject();
  w.Key("policy");
  w.String(command.policy);
  w.Key("log");
  w.String(command.log);
  w.Key("lines");
  w.Uint(r->lines);
  w.Key("trainLines");
  w.Uint(r->train_lines);
  w.Key("evaluatedLines");
  w.Uint(r->evaluated_lines);
  w.Key("rewardModelLines");
  w.Uint(r->model_lines);
  w.Key("missingRewards");
  w.Uint(r->missing_rewards);
  w.Key("heldLines");
  w.Uint(r->held_lines);
  w.Key("loggedValue");
  w.Double(r->logged_value);
  WriteOpeEstimates(w, r->estimates);
  w.EndObject();
  return out;
}

}  // namespace whisperer::eval
