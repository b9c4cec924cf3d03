// Journeys: configured paths a customer moves along (for example hook -> browse -> product view
// -> cart), evaluated on every event of the customer and by timers.
//
// A journey has stages in order, each with an entry condition (expr/expr.h over the names of
// state/conditions.h) and optionally a timeout; a goal condition; an optional exit condition;
// and whether a customer may enter again after finishing. Per profile and journey the state is
// the current stage, its status (active, converted, exited), when the stage was entered, the
// deadline of its timeout, and the history of transitions with the event (or timer) that
// caused each. On each event, after the profile was updated:
//   1. a state of an older journey version keeps its stage when the new version has a stage of
//      that id, and exits (reason `version_changed`) when it does not;
//   2. an active customer converts when the goal holds, else exits when the exit holds, else
//      moves forward to the furthest later stage whose entry holds (stages may be skipped, never
//      gone back to);
//   3. a customer not in the journey (or finished, when re-entry is allowed) enters at the first
//      stage when its entry holds.
// An event dated before the customer's latest transition in the journey (it arrived late) does
// neither 2 nor 3 there: transitions run forward in event time.
// A stage with a timeout moves on (to a later stage, or out) when its deadline passes with no
// transition: the profile engine keeps the deadlines and fires them from a timer, not only when
// the next event arrives. Deadlines count from the server's receive time of the entering event.
// When two profiles merge, each journey keeps the further progress (converted beats any stage;
// a later stage beats an earlier one).
//
// Written here rather than with a workflow library because it runs inside the per-event fold,
// in microseconds, on state that is part of the profile.
//
// Thread-safety: a compiled Journey is immutable; the functions change only the profile given.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "expr/expr.h"
#include "simdjson.h"
#include "state/conditions.h"
#include "state/profile.h"

namespace whisperer::state {

// A journey as configured, with where each condition was written (for errors).
struct JourneySpec {
  std::string id;
  int64_t version = 1;
  std::string version_where;  // where the version was written, for errors
  struct Stage {
    std::string id;
    std::string entry;
    std::string entry_where;
    int64_t timeout_ms = 0;
    std::string timeout_to;  // a later stage's id, or "exit"
  };
  std::vector<Stage> stages;
  std::string goal, goal_where;
  std::string exit, exit_where;  // exit may be empty
  bool reentry = false;
};

struct Journey {
  struct Stage {
    std::string id;
    expr::Expr entry;
    int64_t timeout_ms = 0;
    int timeout_to = -1;  // stage index; kToExit; -1 none
  };
  static constexpr int kToExit = -2;

  std::string id;
  int64_t version = 1;
  std::string version_where;  // JourneySpec's
  std::vector<Stage> stages;
  expr::Expr goal;
  std::optional<expr::Expr> exit;
  bool reentry = false;

  int StageIndex(std::string_view stage_id) const;
};

// Compiles every condition against state::ConditionSchema() (and `names`, when given:
// state/conditions.h). Errors name where the condition was written and the column:
// "whisperer.yaml:40: workspaces[0].journeys[0].goal: column 3: ...".
absl::StatusOr<std::shared_ptr<const Journey>> CompileJourney(
    const JourneySpec& spec, const ConditionNames* names = nullptr);

// A deadline to schedule: `journey` of the profile times out of `stage` at `deadline_ms`.
struct JourneyDeadline {
  std::string journey;
  std::string stage;
  int64_t deadline_ms = 0;
};

// One move of a customer in a journey, for the funnels (state/funnels.h).
struct JourneyStep {
  const Journey* journey = nullptr;
  int from = -1;            // the stage left; -1 when entering the journey
  int to = 0;               // the stage entered; kConverted or kExited
  int64_t in_stage_ms = 0;  // how long the customer was in `from`
  int64_t started_ms = 0;   // when this round through the journey began (the cohort)
  std::string device;       // device type of the entering event
  std::string source;       // UTM source of the entering event
  std::string persona;      // the customer's persona when entering ("" for none)
  int64_t version = 0;      // the journey version whose funnel counts it
  bool taken_back = false;  // counted out again: a round a merge dropped (UncountRound)
  static constexpr int kConverted = -3;
  static constexpr int kExited = -4;
};

// What a change of journey state asks of the engine: deadlines to schedule, steps to count.
struct JourneyEffects {
  std::vector<JourneyDeadline> deadlines;
  std::vector<JourneyStep> steps;
  // The event was dated before the customer's latest move in a journey they are in, so it moved
  // them in none of those (it arrived late, or history was sent out of time order).
  bool late = false;
};

// Steps 1-3 above for one event already folded into `profile`.
void AdvanceJourneys(const std::vector<std::shared_ptr<const Journey>>& journeys, Profile& profile,
                     const EventFacts& facts, simdjson::dom::element event,
                     const DeviceFacts* device, uint64_t sequence, JourneyEffects* effects);

// Fires a timeout: when `profile` is still active in `stage` of `journey` with that deadline,
// moves it to the stage's timeout target. Returns whether anything changed.
bool FireJourneyTimeout(const Journey& journey, Profile& profile, const JourneyDeadline& due,
                        JourneyEffects* effects);

// Appends the deadline of every journey stage `profile` is in that has a running timeout.
void RunningDeadlines(const Profile& profile, std::vector<JourneyDeadline>* deadlines);

// Keeps the further progress of each journey in `survivor` (MergeProfiles calls it). The state
// that lost, of a journey both were in, goes to `dropped` (when given) with the journey's id.
void MergeJourneys(Profile& survivor, const Profile& loser,
                   std::vector<std::pair<std::string, JourneyState>>* dropped = nullptr);

// The steps that counted the current round of `state` in the funnel of `journey` (read from its
// history), marked taken_back: counting them takes the round out of the funnel, as when a merge
// drops it (the merged customer is one customer, counted once, with the further progress).
// Nothing when the state is of another version of the journey (its round was counted in that
// version's funnel, partly) or its round's start is no longer in its history.
void UncountRound(const Journey& journey, const JourneyState& state,
                  std::vector<JourneyStep>* steps);

}  // namespace whisperer::state
