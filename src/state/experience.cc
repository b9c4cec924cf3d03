#include "state/experience.h"

#include <algorithm>
#include <map>

#include "state/conditions.h"

namespace whisperer::state {

absl::StatusOr<std::shared_ptr<const AdaptationSet>> CompileAdaptations(
    const std::vector<AdaptationSpec>& specs) {
  auto set = std::make_shared<AdaptationSet>();
  for (const AdaptationSpec& spec : specs) {
    absl::StatusOr<expr::Expr> when = CompileCondition(spec.when, spec.where);
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
  auto& viewers = views_[Key{workspace_id, std::string(item)}];
  std::erase_if(viewers, [&](const auto& v) {
    return v.first == profile_id || at_ms - v.second > kMaxWindowMs;
  });
  viewers.emplace_back(profile_id, at_ms);
}

size_t LiveViews::Viewers(uint32_t workspace_id, std::string_view item, uint64_t except,
                          int64_t now_ms, int64_t window_ms) const {
  std::lock_guard lock(mu_);
  auto it = views_.find(Key{workspace_id, std::string(item)});
  if (it == views_.end()) return 0;
  size_t n = 0;
  for (const auto& [profile, at] : it->second) {
    n += profile != except && now_ms - at <= window_ms && at <= now_ms;
  }
  return n;
}

}  // namespace whisperer::state
