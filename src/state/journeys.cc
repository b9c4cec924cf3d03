#include "state/journeys.h"

#include <algorithm>

#include "common/status.h"
#include "common/strings.h"
#include "state/conditions.h"

namespace whisperer::state {
namespace {

constexpr std::string_view kActive = "active";
constexpr std::string_view kConverted = "converted";
constexpr std::string_view kExited = "exited";

// Progress for merges: converted beats every stage, a later stage an earlier one.
int Rank(const JourneyState& s) {
  if (s.status == kConverted) return 1 << 20;
  return s.stage_index + 1;
}

void Record(JourneyState& s, std::string to, int64_t at_ms, uint64_t sequence,
            std::string_view message_id, std::string_view reason) {
  JourneyTransition t;
  t.from = s.stage;
  t.to = std::move(to);
  t.at_ms = at_ms;
  t.sequence = sequence;
  t.message_id = std::string(message_id);
  t.reason = std::string(reason);
  s.history.push_back(std::move(t));
  if (s.history.size() > kMaxJourneyHistory) s.history.erase(s.history.begin());
}

JourneyStep StepOf(const Journey& j, const JourneyState& s, int from, int to, int64_t at_ms) {
  JourneyStep step;
  step.journey = &j;
  step.from = from;
  step.to = to;
  step.in_stage_ms = from >= 0 ? std::max<int64_t>(0, at_ms - s.entered_ms) : 0;
  step.started_ms = s.started_ms;
  step.device = s.entry_device;
  step.source = s.entry_source;
  step.persona = s.entry_persona;
  step.version = j.version;
  return step;
}

// Enters stage `index` (also the first entry), scheduling its timeout.
void EnterStage(const Journey& j, JourneyState& s, int index, int64_t at_ms, int64_t now_ms,
                uint64_t sequence, std::string_view message_id, std::string_view reason,
                JourneyEffects* effects) {
  const Journey::Stage& stage = j.stages[static_cast<size_t>(index)];
  bool entering = s.status != kActive;
  effects->steps.push_back(StepOf(j, s, entering ? -1 : s.stage_index, index, at_ms));
  Record(s, stage.id, at_ms, sequence, message_id, reason);
  s.version = j.version;
  s.stage = stage.id;
  s.stage_index = index;
  s.status = std::string(kActive);
  s.entered_ms = at_ms;
  s.deadline_ms = stage.timeout_ms > 0 ? now_ms + stage.timeout_ms : 0;
  if (s.deadline_ms != 0) effects->deadlines.push_back({j.id, stage.id, s.deadline_ms});
}

void Finish(const Journey& j, JourneyState& s, std::string_view status, int64_t at_ms,
            uint64_t sequence, std::string_view message_id, std::string_view reason,
            JourneyEffects* effects) {
  effects->steps.push_back(
      StepOf(j, s, s.stage_index,
             status == kConverted ? JourneyStep::kConverted : JourneyStep::kExited, at_ms));
  Record(s, std::string(status), at_ms, sequence, message_id, reason);
  s.status = std::string(status);
  s.deadline_ms = 0;
}

// A state of another version of `j` keeps its stage when the stage still exists. Either way an
// active customer leaves the funnel of the version they were in as an exit; one who keeps a
// stage enters this version's funnel there, in their cohort.
void ChangeVersion(const Journey& j, JourneyState& s, int64_t at, uint64_t sequence,
                   std::string_view message_id, JourneyEffects* effects) {
  int index = j.StageIndex(s.stage);
  if (s.status == kActive && index < 0) {
    Finish(j, s, kExited, at, sequence, message_id, "version_changed", effects);
    effects->steps.back().version = s.version;
  } else if (index >= 0) {
    if (s.status == kActive) {
      JourneyStep left = StepOf(j, s, s.stage_index, JourneyStep::kExited, at);
      left.version = s.version;
      effects->steps.push_back(std::move(left));
      effects->steps.push_back(StepOf(j, s, -1, index, at));
    }
    s.stage_index = index;
  }
  s.version = j.version;
}

}  // namespace

int Journey::StageIndex(std::string_view stage_id) const {
  for (size_t i = 0; i < stages.size(); ++i) {
    if (stages[i].id == stage_id) return static_cast<int>(i);
  }
  return -1;
}

absl::StatusOr<std::shared_ptr<const Journey>> CompileJourney(const JourneySpec& spec,
                                                              const ConditionNames* names) {
  absl::StatusOr<expr::Expr> goal = CompileCondition(spec.goal, spec.goal_where, names);
  if (!goal.ok()) return goal.status();
  auto j = std::make_shared<Journey>(
      Journey{spec.id, spec.version, spec.version_where, {}, *std::move(goal), {}, spec.reentry});
  if (!spec.exit.empty()) {
    absl::StatusOr<expr::Expr> exit = CompileCondition(spec.exit, spec.exit_where, names);
    if (!exit.ok()) return exit.status();
    j->exit = *std::move(exit);
  }
  for (const JourneySpec::Stage& st : spec.stages) {
    absl::StatusOr<expr::Expr> entry = CompileCondition(st.entry, st.entry_where, names);
    if (!entry.ok()) return entry.status();
    j->stages.push_back({st.id, *std::move(entry), st.timeout_ms, -1});
  }
  for (size_t i = 0; i < spec.stages.size(); ++i) {
    const std::string& to = spec.stages[i].timeout_to;
    if (to.empty()) continue;
    int index = to == "exit" ? Journey::kToExit : j->StageIndex(to);
    if (index != Journey::kToExit && index <= static_cast<int>(i)) {
      return MakeError(absl::StatusCode::kInvalidArgument, "invalid_config",
                       StrCat("journey ", spec.id, ": the timeout of stage ", spec.stages[i].id,
                              " must go to a later stage or `exit`"));
    }
    j->stages[i].timeout_to = index;
  }
  return std::shared_ptr<const Journey>(std::move(j));
}

void AdvanceJourneys(const std::vector<std::shared_ptr<const Journey>>& journeys, Profile& profile,
                     const EventFacts& facts, simdjson::dom::element event,
                     const DeviceFacts* device, uint64_t sequence, JourneyEffects* effects) {
  if (journeys.empty()) return;
  const int64_t at = facts.timestamp_ms;
  const int64_t now = facts.received_at_ms;
  // The conditions see the profile at the event's time, as FoldEvent counted it (a first event
  // is the customer's first moment, however late it arrives).
  EventBindings bindings(facts, event, profile, device, at);
  for (const auto& jp : journeys) {
    const Journey& j = *jp;
    auto it = profile.journeys.find(j.id);
    JourneyState* s = it == profile.journeys.end() ? nullptr : &it->second;
    // 1. A state of another version is moved to this one.
    if (s != nullptr && s->version != j.version) {
      ChangeVersion(j, *s, at, sequence, facts.message_id, effects);
    }
    // An event dated before the customer's latest move in this journey (one that arrives late:
    // an offline phone's queue, say) happened before that move: it neither moves them on nor
    // starts a new round, so history and time in stage run forward and a purchase made before
    // this round began does not convert it.
    if (s != nullptr && !s->history.empty() && at < s->history.back().at_ms) {
      effects->late = true;
      continue;
    }
    // 2. Active: goal, exit, or forward to the furthest stage whose entry holds.
    if (s != nullptr && s->status == kActive) {
      if (j.goal.Eval(bindings)) {
        Finish(j, *s, kConverted, at, sequence, facts.message_id, "goal", effects);
      } else if (j.exit && j.exit->Eval(bindings)) {
        Finish(j, *s, kExited, at, sequence, facts.message_id, "exit", effects);
      } else {
        for (int i = static_cast<int>(j.stages.size()) - 1; i > s->stage_index; --i) {
          if (j.stages[static_cast<size_t>(i)].entry.Eval(bindings)) {
            EnterStage(j, *s, i, at, now, sequence, facts.message_id, "advance", effects);
            break;
          }
        }
      }
      continue;
    }
    // 3. Not in the journey, or finished and allowed back in.
    if (s != nullptr && !j.reentry) continue;
    if (!j.stages.front().entry.Eval(bindings)) continue;
    if (s == nullptr) s = &profile.journeys[j.id];
    s->status.clear();  // a new round, from outside the journey
    s->stage.clear();
    s->started_ms = at;
    s->entry_device = device != nullptr ? device->type : "";
    s->entry_source = std::string(facts.utm_source);
    s->entry_persona = profile.persona.id;
    EnterStage(j, *s, 0, at, now, sequence, facts.message_id, "entry", effects);
  }
}

bool FireJourneyTimeout(const Journey& journey, Profile& profile, const JourneyDeadline& due,
                        JourneyEffects* effects) {
  auto it = profile.journeys.find(journey.id);
  if (it == profile.journeys.end()) return false;
  JourneyState& s = it->second;
  if (s.status != kActive || s.stage != due.stage || s.deadline_ms != due.deadline_ms) {
    return false;  // moved on since the timer was set
  }
  if (s.version != journey.version) {
    // The journey's version changed while the customer waited, with no event of theirs since:
    // the timer moves them to this version first (the funnels count it as an event would),
    // then this version's timeout of the stage, if it has one, moves them on.
    const int kept = journey.StageIndex(s.stage);
    const int64_t after = kept >= 0 ? journey.stages[static_cast<size_t>(kept)].timeout_ms : 0;
    ChangeVersion(journey, s, s.entered_ms + after, 0, "", effects);
    if (s.status != kActive || after == 0) {
      s.deadline_ms = 0;
      return true;
    }
  }
  int index = journey.StageIndex(s.stage);
  if (index < 0) return false;
  const Journey::Stage& stage = journey.stages[static_cast<size_t>(index)];
  // The deadline is on the server's clock, but the stage was entered on the events' clock
  // (the two differ for a batch of old events): the move happens `timeout` after the entry on
  // the events' clock, so that history and time in stage stay on one clock.
  const int64_t at = s.entered_ms + stage.timeout_ms;
  if (stage.timeout_to == Journey::kToExit) {
    Finish(journey, s, kExited, at, 0, "", "timeout", effects);
  } else if (stage.timeout_to > index) {
    EnterStage(journey, s, stage.timeout_to, at, due.deadline_ms, 0, "", "timeout", effects);
  } else {
    return false;
  }
  return true;
}

void RunningDeadlines(const Profile& profile, std::vector<JourneyDeadline>* deadlines) {
  for (const auto& [id, s] : profile.journeys) {
    if (s.status == kActive && s.deadline_ms != 0)
      deadlines->push_back({id, s.stage, s.deadline_ms});
  }
}

void MergeJourneys(Profile& survivor, const Profile& loser,
                   std::vector<std::pair<std::string, JourneyState>>* dropped) {
  for (const auto& [id, theirs] : loser.journeys) {
    auto it = survivor.journeys.find(id);
    if (it == survivor.journeys.end()) {
      survivor.journeys.emplace(id, theirs);
    } else if (Rank(theirs) > Rank(it->second)) {
      if (dropped != nullptr) dropped->emplace_back(id, std::move(it->second));
      it->second = theirs;
    } else if (dropped != nullptr) {
      dropped->emplace_back(id, theirs);
    }
  }
}

void UncountRound(const Journey& journey, const JourneyState& state,
                  std::vector<JourneyStep>* steps) {
  if (state.version != journey.version || state.status.empty()) return;
  // The round began with the latest entry (a transition from outside the journey).
  auto start = std::find_if(state.history.rbegin(), state.history.rend(),
                            [](const JourneyTransition& t) { return t.from.empty(); });
  if (start == state.history.rend() || start->at_ms != state.started_ms) return;
  int64_t entered_ms = 0;  // of the stage being left
  for (auto t = start.base() - 1; t != state.history.end(); ++t) {
    JourneyStep step;
    step.journey = &journey;
    step.from = t->from.empty() ? -1 : journey.StageIndex(t->from);
    step.to = t->to == kConverted ? JourneyStep::kConverted
              : t->to == kExited  ? JourneyStep::kExited
                                  : journey.StageIndex(t->to);
    // Stages renamed since, or a move counted in another version's funnel: left as counted.
    if ((!t->from.empty() && step.from < 0) || step.to == -1 || t->reason == "version_changed") {
      return;
    }
    step.in_stage_ms = step.from >= 0 ? std::max<int64_t>(0, t->at_ms - entered_ms) : 0;
    step.started_ms = state.started_ms;
    step.device = state.entry_device;
    step.source = state.entry_source;
    step.persona = state.entry_persona;
    step.version = journey.version;
    step.taken_back = true;
    steps->push_back(std::move(step));
    entered_ms = t->at_ms;
  }
}

}  // namespace whisperer::state
