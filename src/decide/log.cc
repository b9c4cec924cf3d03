#include "decide/log.h"

#include <algorithm>
#include <atomic>

#include "common/strings.h"

namespace whisperer::decide {

uint64_t NextDecisionId(int64_t now_ms) {
  static std::atomic<uint64_t> last{0};
  uint64_t candidate = FirstDecisionIdAt(now_ms);
  uint64_t seen = last.load();
  // Strictly increasing, even when the clock steps back or many decisions share a millisecond.
  while (true) {
    const uint64_t next = std::max(candidate, seen + 1);
    if (last.compare_exchange_weak(seen, next)) return next;
  }
}

std::string DecisionIdString(uint64_t id) { return "dec_" + Hex16(id); }

std::optional<uint64_t> ParseDecisionId(std::string_view s) {
  if (s.substr(0, 4) != "dec_") return std::nullopt;
  return ParseHex16(s.substr(4));
}

}  // namespace whisperer::decide
