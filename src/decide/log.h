// Decision ids. The decision log's keys are storage/keys.h's (DecisionKey and the others).
//
// A decision id is the millisecond it was made times 65,536 plus a counter, so ids sort in time
// order and a time range is a key range. Written as "dec_" and 16 hex digits.
//
// Thread-safety: pure functions; NextDecisionId is atomic.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace whisperer::decide {

uint64_t NextDecisionId(int64_t now_ms);
inline uint64_t FirstDecisionIdAt(int64_t ms) { return static_cast<uint64_t>(ms) << 16; }
inline int64_t DecisionMillis(uint64_t id) { return static_cast<int64_t>(id >> 16); }
std::string DecisionIdString(uint64_t id);
std::optional<uint64_t> ParseDecisionId(std::string_view s);

}  // namespace whisperer::decide
