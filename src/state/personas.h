// Personas: what kind of customer this is, from weighted rules over the profile.
//
// A persona is a list of rules, each a condition (expr/expr.h over the names of
// state/conditions.h) with a weight. After every event (not a bot's) is folded into the profile,
// each persona's score is the weight of its rules that hold divided by the weight of all its rules,
// so 0..1. The customer's persona is the one with the highest score among those at or above
// their `min_confidence`; a tie goes to the persona declared first; when none qualifies the
// customer has no persona. The score is the persona's confidence. Each change of persona is
// kept in the profile's persona history with the event that caused it; a change of confidence
// alone is not.
//
// Written here rather than with a rules library because it runs inside the per-event fold, on
// conditions compiled once at config load.
//
// Thread-safety: a compiled PersonaSet is immutable; UpdatePersona changes only the profile
// given.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "expr/expr.h"
#include "state/conditions.h"
#include "state/profile.h"

namespace whisperer::state {

// A persona as configured, with where each condition was written (for errors).
struct PersonaSpec {
  std::string id;
  struct Rule {
    std::string when;
    std::string where;
    double weight = 1;
  };
  std::vector<Rule> rules;
  double min_confidence = 0.5;
};

struct Persona {
  std::string id;
  struct Rule {
    expr::Expr when;
    double weight = 1;
  };
  std::vector<Rule> rules;
  double total_weight = 0;
  double min_confidence = 0.5;
};

using PersonaSet = std::vector<Persona>;

// Compiles every rule against state::ConditionSchema() (and `names`, when given). Errors name
// where the rule was written and the column, as CompileJourney's do.
absl::StatusOr<std::shared_ptr<const PersonaSet>> CompilePersonas(
    const std::vector<PersonaSpec>& specs, const ConditionNames* names = nullptr);

// Each persona's score for the customer `bindings` describes, in declaration order, and which
// of its rules held (for explanations).
struct PersonaScore {
  const Persona* persona = nullptr;
  double score = 0;
  std::vector<bool> held;  // per rule
};
std::vector<PersonaScore> ScorePersonas(const PersonaSet& personas, const expr::Bindings& bindings);

// The winner of `scores` as described above, or null when none qualifies.
const PersonaScore* BestPersona(const std::vector<PersonaScore>& scores);

// Scores the personas and sets profile.persona, recording a change of persona in its history.
// Returns whether the persona changed.
bool UpdatePersona(const PersonaSet& personas, const expr::Bindings& bindings, Profile& profile,
                   int64_t at_ms, uint64_t sequence, std::string_view message_id);

// Behavioural features of a profile for persona discovery (`whisperer personas discover`), each
// named by the condition that reads it, so what describes a cluster can be written into a
// persona rule as it is: profile.events, profile.sessions.count,
// profile.sessions.average_views, profile.orders.count, profile.orders.revenue,
// profile.returning (0 or 1), then profile.shares.<name> for each of `event_names` (as stored,
// such as "Product Viewed", or as condition names, such as "product_viewed"; either way every
// stored name with the same condition name counts): shares rather than counts, so that what a
// customer does is told apart from how much.
std::vector<std::string> DiscoveryFeatureNames(const std::vector<std::string>& event_names);
std::vector<double> DiscoveryFeatures(const Profile& profile,
                                      const std::vector<std::string>& event_names);
// The condition name of an event's share: "Product Viewed" -> profile.shares.product_viewed.
std::string ShareConditionName(std::string_view event_name);

// Keeps the persona history of both in `survivor` (MergeProfiles calls it): the histories are
// joined in time order; the current persona stays the survivor's unless it has none.
void MergePersonas(Profile& survivor, const Profile& loser);

}  // namespace whisperer::state
