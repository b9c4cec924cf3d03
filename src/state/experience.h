// Real-time adaptation: the rules table of POST /v1/experience, and the live view counts behind
// its "viewing now" trigger.
//
// Adaptation rules: each has a condition (expr/expr.h over state/conditions.h, so device,
// journey stage, persona and intent are all available), a priority and hints to set (layout,
// content_density, loading_priority, navigation, trust_signals, next_content, ... any name).
// Adapt() evaluates every rule; for each hint the rule with the highest priority among those
// that hold wins, a tie going to the rule declared first, and the losers are kept with the
// reason they lost, so the answer can explain itself.
//
// LiveViews: who viewed which catalog item recently, from `Product Viewed` events
// (properties.product_id), recorded by the profile engine as events are folded, by the time
// the server received them. Held in memory only, for the last hour at most: after a restart the
// counts start from zero.
//
// Thread-safety: a compiled AdaptationSet is immutable. LiveViews is safe from any thread.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "expr/expr.h"
#include "state/conditions.h"

namespace whisperer::state {

struct AdaptationSpec {
  std::string id;
  std::string when;
  std::string where;  // where the condition was written, for errors
  int64_t priority = 0;
  std::vector<std::pair<std::string, std::string>> hints;
};

struct AdaptationRule {
  std::string id;
  expr::Expr when;
  int64_t priority = 0;
  std::vector<std::pair<std::string, std::string>> hints;
};
using AdaptationSet = std::vector<AdaptationRule>;

// Compiles every rule's condition (checked against `names` too, when given).
absl::StatusOr<std::shared_ptr<const AdaptationSet>> CompileAdaptations(
    const std::vector<AdaptationSpec>& specs, const ConditionNames* names = nullptr);

struct HintChoice {
  std::string hint;
  std::string value;
  const AdaptationRule* winner = nullptr;
  struct Lost {
    const AdaptationRule* rule;
    std::string value;
    std::string reason;  // "lower priority" or "same priority, declared later"
  };
  std::vector<Lost> lost;
};

// The hints of the rules that hold for `bindings`, one choice per hint, by hint name.
std::vector<HintChoice> Adapt(const AdaptationSet& rules, const expr::Bindings& bindings);

class LiveViews {
 public:
  static constexpr int64_t kMaxWindowMs = 3'600'000;

  void Record(uint32_t workspace_id, std::string_view item, uint64_t profile_id, int64_t at_ms);
  // Distinct customers other than `except` (0: none) who viewed `item` within `window_ms`
  // before `now_ms`.
  size_t Viewers(uint32_t workspace_id, std::string_view item, uint64_t except, int64_t now_ms,
                 int64_t window_ms) const;
  // Viewers held for `item`, expired ones not yet dropped included (tests).
  size_t held(uint32_t workspace_id, std::string_view item) const;

 private:
  using Key = std::pair<uint32_t, std::string>;
  // Per item: each viewer's latest view. Record runs on the shard thread for every product
  // view, so it costs O(1) amortised: views older than kMaxWindowMs before the item's newest
  // are dropped only when the table has doubled since the last sweep (scanning every viewer
  // of the last hour on every view made a popular item quadratic).
  struct Item {
    absl::flat_hash_map<uint64_t, int64_t> latest;  // viewer -> latest view (ms)
    int64_t newest_ms = INT64_MIN;
    size_t sweep_at = kMinSweep;
  };
  static constexpr size_t kMinSweep = 64;
  mutable std::mutex mu_;
  absl::flat_hash_map<Key, Item> views_;  // GUARDED_BY(mu_)
};

}  // namespace whisperer::state
