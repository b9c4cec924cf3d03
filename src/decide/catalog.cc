#include "decide/catalog.h"

#include <algorithm>

#include "common/hash.h"
#include "common/status.h"
#include "common/strings.h"
#include "state/conditions.h"
#include "state/profile.h"

namespace whisperer::decide {
namespace {

absl::StatusOr<std::optional<expr::Expr>> Optional(const std::string& source,
                                                   const config::SourceRef& ref,
                                                   const state::ConditionNames* names) {
  if (source.empty()) return std::optional<expr::Expr>();
  absl::StatusOr<expr::Expr> e = state::CompileCondition(source, ref.Describe(), names);
  if (!e.ok()) return e.status();
  return std::optional<expr::Expr>(*std::move(e));
}

Settings SettingsOf(const config::DecisionsConfig& c) {
  Settings s;
  s.environment = c.environment;
  s.exploration = c.environment == "development" ? 0.30 : c.environment == "staging" ? 0.15 : 0.05;
  if (c.exploration >= 0) s.exploration = c.exploration;
  if (c.autonomous >= 0) s.autonomous = c.autonomous;
  if (c.supervised >= 0) s.supervised = c.supervised;
  if (c.learning_rate > 0) s.learning_rate = c.learning_rate;
  s.control_group = c.control_group;
  s.policy = c.policy == "linucb"           ? Policy::kLinUcb
             : c.policy == "epsilon_greedy" ? Policy::kEpsilonGreedy
             : c.policy == "softmax"        ? Policy::kSoftmax
                                            : Policy::kThompson;
  s.ucb_alpha = c.ucb_alpha;
  s.temperature = c.temperature;
  s.posterior.bits = c.bits;
  s.posterior.prior_variance = c.prior_variance;
  s.posterior.noise = c.noise;
  s.posterior.learning_rate = s.learning_rate;
  s.sum_rewards = c.aggregate == "sum";
  for (const auto& [name, value] : c.outcomes) s.outcomes.emplace(name, value);
  for (const auto& [channel, limit] : c.channel_limits) {
    s.channel_limits.emplace(channel, Settings::ChannelLimit{limit.max, limit.per_ms});
    s.contact_policy = true;
    s.contact_horizon_ms = std::max(s.contact_horizon_ms, limit.per_ms);
  }
  s.negative_outcomes = c.negative_outcomes;
  s.channel_choice = c.channel_choice;
  s.channel_prior_strength = c.channel_prior_strength;
  s.send_time = c.send_time;
  s.send.smoothing = c.send_smoothing;
  s.send.exploration = c.send_exploration;
  s.send.min_lead_ms = c.send_min_lead_ms;
  s.send.default_hour = static_cast<int>(c.send_default_hour);
  for (const config::GoalConfig& g : c.goals) {
    s.goals.push_back({g.event, g.outcome, g.value, g.within_ms, g.decision_points});
  }
  s.approval_expiry_ms = c.approval_expiry_ms;
  s.approve_reward = c.approve_reward;
  s.reject_reward = c.reject_reward;
  for (const auto& [kind, fields] : c.review_templates) s.review_templates.emplace(kind, fields);
  return s;
}

}  // namespace

std::string_view PolicyName(Policy policy) {
  switch (policy) {
    case Policy::kThompson:
      return "thompson";
    case Policy::kLinUcb:
      return "linucb";
    case Policy::kEpsilonGreedy:
      return "epsilon_greedy";
    case Policy::kSoftmax:
      return "softmax";
  }
  return "thompson";
}

const std::vector<std::string>& Settings::ReviewFields(std::string_view kind) const {
  static const std::vector<std::string> kDefault = {"action", "treatment", "priority", "confidence",
                                                    "explanation"};
  auto it = review_templates.find(kind);
  return it == review_templates.end() ? kDefault : it->second;
}

const DecisionPoint* Catalog::Point(std::string_view id) const {
  for (const DecisionPoint& p : points) {
    if (p.id == id) return &p;
  }
  return nullptr;
}

const Action* Catalog::FindAction(std::string_view id) const {
  for (const Action& a : actions) {
    if (a.id == id) return &a;
  }
  return nullptr;
}

absl::StatusOr<std::shared_ptr<const Catalog>> CompileCatalog(
    const config::DecisionsConfig& c, const std::vector<std::string>& extra_purposes,
    const state::ConditionNames* names) {
  auto catalog = std::make_shared<Catalog>();
  catalog->settings = SettingsOf(c);
  for (const config::ActionConfig& ac : c.actions) {
    Action a;
    a.id = ac.id;
    a.issue = ac.issue;
    a.group = ac.group;
    a.kind = ac.kind;
    a.value = ac.value;
    a.cost = ac.cost;
    a.lever = ac.lever;
    a.consent = ac.consent;
    if (!a.consent.empty() && !state::IsConsentPurpose(a.consent, extra_purposes)) {
      return MakeError(absl::StatusCode::kInvalidArgument, "invalid_config",
                       StrCat(ac.consent_ref.Describe(), ": `", a.consent,
                              "` is not a consent purpose of this workspace (standard ones, or "
                              "add it under consent.purposes)"),
                       ac.consent_ref.path);
    }
    a.valid_from_ms = ac.valid_from_ms;
    a.valid_until_ms = ac.valid_until_ms;
    auto compile = [names](const std::string& source, const config::SourceRef& ref,
                           std::optional<expr::Expr>* out) -> absl::Status {
      absl::StatusOr<std::optional<expr::Expr>> e = Optional(source, ref, names);
      if (!e.ok()) return e.status();
      *out = *std::move(e);
      return absl::OkStatus();
    };
    if (absl::Status s = compile(ac.eligibility, ac.eligibility_ref, &a.eligibility); !s.ok()) {
      return s;
    }
    if (absl::Status s = compile(ac.applicability, ac.applicability_ref, &a.applicability);
        !s.ok()) {
      return s;
    }
    if (absl::Status s = compile(ac.suitability, ac.suitability_ref, &a.suitability); !s.ok()) {
      return s;
    }
    for (const config::ActionConfig::Weight& w : ac.weights) {
      absl::StatusOr<expr::Expr> when =
          state::CompileCondition(w.when, w.when_ref.Describe(), names);
      if (!when.ok()) return when.status();
      a.weights.push_back({*std::move(when), w.weight});
    }
    for (const config::ActionConfig::Treatment& t : ac.treatments) {
      a.treatments.push_back({t.id, t.channel});
    }
    a.hash = Hash64(a.id);
    a.contact_max = ac.contact_max;
    a.contact_per_ms = ac.contact_per_ms;
    a.suppress_negatives = ac.suppress_negatives;
    a.suppress_within_ms = ac.suppress_within_ms;
    for (const config::ActionConfig::Variant& v : ac.variants) {
      a.variants.push_back({v.id, v.content});
      a.variant_ids.push_back(v.id);
    }
    a.budget_per_day = ac.budget_per_day;
    a.budget_total_spend = ac.budget_total_spend;
    if (a.budget_per_day > 0 || a.budget_total_spend > 0) catalog->settings.budgets = true;
    Settings& s = catalog->settings;
    if (a.contact_max > 0 || a.suppress_negatives > 0) s.contact_policy = true;
    s.contact_horizon_ms = std::max({s.contact_horizon_ms, a.contact_per_ms, a.suppress_within_ms});
    catalog->actions.push_back(std::move(a));
  }
  for (const config::DecisionPointConfig& pc : c.points) {
    DecisionPoint p;
    p.id = pc.id;
    p.slots = static_cast<size_t>(pc.slots);
    p.reward_wait_ms = pc.reward_wait_ms;
    p.default_reward = pc.default_reward;
    for (size_t i = 0; i < catalog->actions.size(); ++i) {
      if (catalog->actions[i].id == pc.fallback) p.fallback = i;
    }
    for (size_t i = 0; i < catalog->actions.size(); ++i) {
      const Action& a = catalog->actions[i];
      auto named = [](const std::vector<std::string>& list, const std::string& v) {
        return std::find(list.begin(), list.end(), v) != list.end();
      };
      if (named(pc.actions, a.id) || named(pc.issues, a.issue) || named(pc.groups, a.group)) {
        p.candidates.push_back(i);
      }
    }
    if (p.candidates.empty()) {
      return MakeError(absl::StatusCode::kInvalidArgument, "invalid_config",
                       StrCat(pc.ref.Describe(),
                              ": no action of the catalog is a candidate here "
                              "(check its actions, issues and groups)"),
                       pc.ref.path);
    }
    catalog->points.push_back(std::move(p));
  }
  return std::shared_ptr<const Catalog>(std::move(catalog));
}

}  // namespace whisperer::decide
