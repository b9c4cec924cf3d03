#include "state/personas.h"

#include <algorithm>
#include <map>
#include <utility>

#include "state/conditions.h"

namespace whisperer::state {
namespace {

void KeepLatest(std::vector<PersonaChange>& history) {
  if (history.size() > kMaxPersonaHistory) {
    history.erase(history.begin(), history.end() - static_cast<ptrdiff_t>(kMaxPersonaHistory));
  }
}

}  // namespace

absl::StatusOr<std::shared_ptr<const PersonaSet>> CompilePersonas(
    const std::vector<PersonaSpec>& specs, const ConditionNames* names) {
  auto set = std::make_shared<PersonaSet>();
  for (const PersonaSpec& spec : specs) {
    Persona p;
    p.id = spec.id;
    p.min_confidence = spec.min_confidence;
    for (const PersonaSpec::Rule& rule : spec.rules) {
      absl::StatusOr<expr::Expr> when = CompileCondition(rule.when, rule.where, names);
      if (!when.ok()) return when.status();
      p.rules.push_back({*std::move(when), rule.weight});
      p.total_weight += rule.weight;
    }
    set->push_back(std::move(p));
  }
  return std::shared_ptr<const PersonaSet>(std::move(set));
}

std::vector<PersonaScore> ScorePersonas(const PersonaSet& personas,
                                        const expr::Bindings& bindings) {
  std::vector<PersonaScore> scores;
  scores.reserve(personas.size());
  for (const Persona& p : personas) {
    PersonaScore& s = scores.emplace_back();
    s.persona = &p;
    s.held.reserve(p.rules.size());
    double weight = 0;
    for (const Persona::Rule& rule : p.rules) {
      bool held = rule.when.Eval(bindings);
      s.held.push_back(held);
      if (held) weight += rule.weight;
    }
    s.score = p.total_weight > 0 ? weight / p.total_weight : 0;
  }
  return scores;
}

const PersonaScore* BestPersona(const std::vector<PersonaScore>& scores) {
  const PersonaScore* best = nullptr;
  for (const PersonaScore& s : scores) {
    if (s.score < s.persona->min_confidence || s.score <= 0) continue;
    if (best == nullptr || s.score > best->score) best = &s;  // ties: the first declared
  }
  return best;
}

bool UpdatePersona(const PersonaSet& personas, const expr::Bindings& bindings, Profile& profile,
                   int64_t at_ms, uint64_t sequence, std::string_view message_id) {
  if (personas.empty()) return false;
  std::vector<PersonaScore> scores = ScorePersonas(personas, bindings);
  const PersonaScore* best = BestPersona(scores);
  PersonaState& state = profile.persona;
  std::string id = best != nullptr ? best->persona->id : std::string();
  state.confidence = best != nullptr ? best->score : 0;
  if (id == state.id) return false;
  state.id = std::move(id);
  state.since_ms = at_ms;
  state.history.push_back({state.id, state.confidence, at_ms, sequence, std::string(message_id)});
  KeepLatest(state.history);
  return true;
}

std::vector<std::string> DiscoveryFeatureNames(const std::vector<std::string>& event_names) {
  std::vector<std::string> names = {
      "profile.events",       "profile.sessions.count", "profile.sessions.average_views",
      "profile.orders.count", "profile.orders.revenue", "profile.returning"};
  for (const std::string& e : event_names) names.push_back(ShareConditionName(e));
  return names;
}

std::vector<double> DiscoveryFeatures(const Profile& p,
                                      const std::vector<std::string>& event_names) {
  const auto d = [](uint64_t v) { return static_cast<double>(v); };
  std::vector<double> f = {
      d(p.seen.events),
      d(p.sessions.count),
      p.sessions.count == 0 ? 0.0 : d(p.sessions.views) / d(p.sessions.count),
      d(p.orders),
      p.revenue,
      p.sessions.count > 1 ? 1.0 : 0.0,
  };
  // As profile.shares.<name> reads them: every stored name that spells the same condition name
  // ("Product Viewed", "product viewed") counts.
  std::map<std::string, uint64_t> counts;
  for (const auto& [name, n] : p.event_counts) counts[CountName(name)] += n;
  for (const std::string& e : event_names) {
    auto it = counts.find(CountName(e));
    f.push_back(it == counts.end() || p.seen.events == 0 ? 0.0 : d(it->second) / d(p.seen.events));
  }
  return f;
}

std::string ShareConditionName(std::string_view event_name) {
  return "profile.shares." + CountName(event_name);
}

void MergePersonas(Profile& survivor, const Profile& loser) {
  PersonaState& s = survivor.persona;
  const PersonaState& l = loser.persona;
  if (s.id.empty() && !l.id.empty()) {
    s.id = l.id;
    s.confidence = l.confidence;
    s.since_ms = l.since_ms;
  }
  s.history.insert(s.history.end(), l.history.begin(), l.history.end());
  std::stable_sort(
      s.history.begin(), s.history.end(),
      [](const PersonaChange& a, const PersonaChange& b) { return a.at_ms < b.at_ms; });
  KeepLatest(s.history);
}

}  // namespace whisperer::state
