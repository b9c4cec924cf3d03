// The decision log's keys in the `decisions` column family (storage/store.h), and decision ids.
//
//   [workspace u32] D [decision id u64]                      the decision's record (JSON)
//   [workspace u32] P [profile u64] [decision id u64]        a profile's decisions, in time order
//   [workspace u32] R [decision id u64] [slot u8] [reward key]  a reward of one slot (JSON)
//   [workspace u32] B [decision point id]                    the decision point's bandit
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

std::string DecisionKey(uint32_t workspace_id, uint64_t decision);
std::string ProfileDecisionKey(uint32_t workspace_id, uint64_t profile, uint64_t decision);
std::string ProfileDecisionPrefix(uint32_t workspace_id, uint64_t profile);
std::string RewardPrefix(uint32_t workspace_id, uint64_t decision, uint8_t slot);
std::string BanditKey(uint32_t workspace_id, std::string_view point);
// The decision id in the last 8 bytes of a D or P key.
uint64_t DecisionOfKey(std::string_view key);

uint64_t NextDecisionId(int64_t now_ms);
inline uint64_t FirstDecisionIdAt(int64_t ms) { return static_cast<uint64_t>(ms) << 16; }
inline int64_t DecisionMillis(uint64_t id) { return static_cast<int64_t>(id >> 16); }
std::string DecisionIdString(uint64_t id);
std::optional<uint64_t> ParseDecisionId(std::string_view s);

}  // namespace whisperer::decide
