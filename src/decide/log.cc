#include "decide/log.h"

#include <atomic>
#include <charconv>

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

std::string DecisionIdString(uint64_t id) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s = "dec_";
  for (int shift = 60; shift >= 0; shift -= 4) s.push_back(kHex[(id >> shift) & 0xf]);
  return s;
}

std::optional<uint64_t> ParseDecisionId(std::string_view s) {
  if (s.size() != 20 || s.substr(0, 4) != "dec_") return std::nullopt;
  uint64_t id = 0;
  auto [p, ec] = std::from_chars(s.data() + 4, s.data() + s.size(), id, 16);
  if (ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  for (char c : s.substr(4)) {
    if (c >= 'A' && c <= 'F') return std::nullopt;  // one spelling per id
  }
  return id;
}

}  // namespace whisperer::decide
