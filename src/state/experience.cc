#include "state/experience.h"

#include <algorithm>
#include <map>

#include "state/conditions.h"

namespace whisperer::state {

absl::StatusOr<std::shared_ptr<const AdaptationSet>> CompileAdaptations(
    const std::vector<AdaptationSpec>& specs, const ConditionNames* names) {
  auto set = std::make_shared<AdaptationSet>();
  for (const AdaptationSpec& spec : specs) {
    absl::StatusOr<expr::Expr> when = CompileCondition(spec.when, spec.where, names);
    if (!when.ok()) return when.status();
    set->push_back({spec.id, *std::move(when), spec.priority, spec.hints});
  }
  return std::shared_ptr<const AdaptationSet>(std::move(set));
}

std::vector<HintChoice> Adapt(const AdaptationSet& rules, const expr::Bindings& bindings) {
  std::map<std::string, HintChoice> choices;
  for (const AdaptationRule& rule : rules) {  // in declaration order
    if (!rule.when.Eval(bindings)) continue;
    for (const auto& [hint, value] : rule.hints) {
      auto [it, fresh] = choices.try_emplace(hint);
      HintChoice& c = it->second;
      if (fresh) {
        c.hint = hint;
        c.value = value;
        c.winner = &rule;
      } else if (rule.priority > c.winner->priority) {
        c.lost.push_back({c.winner, c.value, "lower priority"});
        c.value = value;
        c.winner = &rule;
      } else {
        c.lost.push_back({&rule, value,
                          rule.priority == c.winner->priority ? "same priority, declared later"
                                                              : "lower priority"});
      }
    }
  }
  std::vector<HintChoice> out;
  out.reserve(choices.size());
  for (auto& [hint, c] : choices) out.push_back(std::move(c));
  return out;
}

void LiveViews::Record(uint32_t workspace_id, std::string_view item, uint64_t profile_id,
                       int64_t at_ms) {
  std::lock_guard lock(mu_);
  Item& views = views_[Key{workspace_id, std::string(item)}];
  auto [it, inserted] = views.latest.try_emplace(profile_id, at_ms);
  if (!inserted) it->second = std::max(it->second, at_ms);
  views.newest_ms = std::max(views.newest_ms, at_ms);
  if (views.latest.size() < views.sweep_at) return;
  for (auto v = views.latest.begin(); v != views.latest.end();) {
    if (views.newest_ms - v->second > kMaxWindowMs) {
      views.latest.erase(v++);
    } else {
      ++v;
    }
  }
  views.sweep_at = std::max(kMinSweep, 2 * views.latest.size());
}

size_t LiveViews::Viewers(uint32_t workspace_id, std::string_view item, uint64_t except,
                          int64_t now_ms, int64_t window_ms) const {
  std::lock_guard lock(mu_);
  auto it = views_.find(Key{workspace_id, std::string(item)});
  if (it == views_.end()) return 0;
  size_t n = 0;
  for (const auto& [profile, at] : it->second.latest) {
    n += profile != except && now_ms - at <= window_ms && at <= now_ms;
  }
  return n;
}

size_t LiveViews::held(uint32_t workspace_id, std::string_view item) const {
  std::lock_guard lock(mu_);
  auto it = views_.find(Key{workspace_id, std::string(item)});
  return it == views_.end() ? 0 : it->second.latest.size();
}

}  // namespace whisperer::state
