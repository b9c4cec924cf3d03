// The action catalog of a workspace, compiled: the actions the business can take (issue ->
// group -> action -> treatment, the treatment being its form on one channel), their rules, the
// decision points that ask for them, and the settings the engine decides and learns with.
//
// Settings come from the workspace's `decisions.environment` (production, staging,
// development), each with its defaults, and the overrides written beside it:
//   environment   exploration  autonomous  supervised  learning rate
//   production    0.05         0.85        0.65        1
//   staging       0.15         0.85        0.65        1
//   development   0.30         0.85        0.65        1
// Conditions (eligibility, applicability, suitability, weights) are compiled once, against
// state/conditions.h's schema, and type-checked at load: a bad one stops the server with its
// file, line and column.
//
// Thread-safety: a compiled Catalog is immutable.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "config/config.h"
#include "decide/engagement.h"
#include "expr/expr.h"
#include "learn/bandit.h"
#include "state/conditions.h"

namespace whisperer::decide {

enum class Policy : uint8_t { kThompson, kLinUcb, kEpsilonGreedy, kSoftmax };
std::string_view PolicyName(Policy policy);

struct Settings {
  std::string environment;
  double exploration = 0.05;
  double autonomous = config::kDefaultAutonomous;
  double supervised = config::kDefaultSupervised;
  double learning_rate = 1;
  double control_group = 0.02;
  Policy policy = Policy::kThompson;
  double ucb_alpha = 1;
  double temperature = 0.1;
  learn::PosteriorOptions posterior;
  bool sum_rewards = false;  // several rewards of one slot add up (else the first counts)
  std::map<std::string, double, std::less<>> outcomes;
  // Contact policy per channel: at most `max` actions on it per customer within `per_ms`.
  struct ChannelLimit {
    int64_t max = 0;
    int64_t per_ms = 0;
  };
  std::map<std::string, ChannelLimit, std::less<>> channel_limits;
  std::vector<std::string> negative_outcomes;  // besides any reward below 0
  // Goal events: a track event `event` rewards the customer's slots acted on within `within_ms`
  // before it at `points` (empty: any) with `value` (named `outcome`, or "").
  struct Goal {
    std::string event, outcome;
    double value = 1;
    int64_t within_ms = 0;
    std::vector<std::string> points;
  };
  std::vector<Goal> goals;
  // Delivery (decide/engagement.h): channel choice among an action's usable treatments by the
  // customer's engagement; the next best send time in each answer.
  bool channel_choice = false;
  double channel_prior_strength = kDefaultPriorStrength;
  bool send_time = false;
  SendTimeOptions send;
  // Whether a customer's engagement counts are kept (channel choice or send time).
  bool engagement() const { return channel_choice || send_time; }
  // Whether a decision reads or writes per-customer state (contact history, engagement), under
  // the customer's lock stripe (server/decide_service.h).
  bool PerCustomer() const { return contact_policy || engagement(); }
  // Whether any action has a budget.
  bool budgets = false;
  // Whether any contact policy is set, and the longest period one looks back.
  bool contact_policy = false;
  int64_t contact_horizon_ms = 0;
  // Held decisions (server/decide_service.h): how long an approval waits, the rewards an
  // approval and a rejection teach, and the fields a reviewer sees per action kind.
  int64_t approval_expiry_ms = 24 * 3'600'000LL;
  double approve_reward = 1;
  double reject_reward = 0;
  std::map<std::string, std::vector<std::string>, std::less<>> review_templates;
  // The fields of an action kind's template (the default for a kind not configured).
  const std::vector<std::string>& ReviewFields(std::string_view kind) const;
};

struct Treatment {
  std::string id;
  std::string channel;
};

struct Variant {
  std::string id;
  std::string content;
};

struct Action {
  std::string id, issue, group, kind;
  double value = 1, cost = 0, lever = 1;
  std::string consent;  // the purpose it needs, "" for none
  int64_t valid_from_ms = 0, valid_until_ms = 0;
  std::optional<expr::Expr> eligibility, applicability, suitability;
  struct Weight {
    expr::Expr when;
    double weight;
  };
  std::vector<Weight> weights;
  std::vector<Treatment> treatments;
  std::vector<Variant> variants;  // A/B/n content, chosen per decision by Thompson sampling
  std::vector<std::string> variant_ids;
  uint64_t hash = 0;  // of the id: the action's slots in the bandit
  // Contact policy (0: none): at most contact_max acted on per customer within contact_per_ms;
  // none after suppress_negatives negative outcomes within suppress_within_ms.
  int64_t contact_max = 0, contact_per_ms = 0;
  int64_t suppress_negatives = 0, suppress_within_ms = 0;
  // Budget across customers (0: none): acted on per UTC day, and the total cost.
  int64_t budget_per_day = 0;
  double budget_total_spend = 0;
};

struct DecisionPoint {
  std::string id;
  std::vector<size_t> candidates;  // indexes into Catalog::actions, in catalog order
  size_t slots = 1;
  std::optional<size_t> fallback;  // the action an expired approval falls back to
  // A slot acted on without a reward for reward_wait_ms (0: never) gets default_reward.
  int64_t reward_wait_ms = 0;
  double default_reward = 0;
};

struct Catalog {
  Settings settings;
  std::vector<Action> actions;
  std::vector<DecisionPoint> points;

  const DecisionPoint* Point(std::string_view id) const;
  const Action* FindAction(std::string_view id) const;  // null when there is none
};

// InvalidArgument `invalid_config` naming where a condition is wrong, an action needs a consent
// purpose that is neither standard (state/profile.h) nor one of `extra_purposes` (the
// workspace's own), or a decision point ends up with no candidate. With `names`, conditions are
// checked against the workspace's journeys, personas and purposes too (state/conditions.h).
absl::StatusOr<std::shared_ptr<const Catalog>> CompileCatalog(
    const config::DecisionsConfig& c, const std::vector<std::string>& extra_purposes = {},
    const state::ConditionNames* names = nullptr);

}  // namespace whisperer::decide
