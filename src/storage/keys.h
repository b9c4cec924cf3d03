// Key encodings of the column families. Integers are big-endian so that byte order is numeric
// order and a workspace's rows are one contiguous range.
//
//   events   [workspace u32][sequence u64]        -> normalized event JSON
//   dedupe   [workspace u32][hash128(messageId)]  -> [receivedAt ms i64]
//   meta     utf-8 name (see storage/store.h)     -> value
//   identities [workspace u32][type length u8][type][value] -> [profile u64]
//   profiles   [workspace u32][profile u64]       -> the profile's binary form
//                                                    (state/profile_codec.h), or
//                                                    'M'[profile u64] when merged into that
//                                                    profile
//   timeline   [workspace u32][profile u64][sequence u64] -> empty
//
// Dedupe keys are fixed-width (20 bytes) rather than the messageId itself, which may be up to
// 256 bytes: short keys make every comparison and every index entry cheaper, and the hot path
// packs a group's keys into one buffer. The key stands for the messageId: the 128-bit
// fingerprint is trusted as the identity graph trusts it (common/hash.h), so the value is only
// what expiry needs, 8 bytes. Stores written before November 2026 also hold
// [sequence u64][receivedAt][messageId] values; those are still read, and their messageId is
// still compared on a hit. (Keeping the messageId in every entry made the dedupe index 2.5
// times larger, and writing, sorting and compacting it cost ingest about a tenth of its CPU.)
//
// Sequences are assigned once, increasing, across all workspaces, and written in commit order
// (shard/shard_set.h): a workspace's events read in key order are in the order they were
// acknowledged. Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>

#include "common/hash.h"

namespace whisperer::storage {

void PutBigEndian32(std::string* out, uint32_t v);
void PutBigEndian64(std::string* out, uint64_t v);
// Inline: hot comparisons (DedupeKeyLess) read keys through them; compilers make each one load
// and a byte swap.
inline uint32_t GetBigEndian32(const char* p) {
  auto b = reinterpret_cast<const unsigned char*>(p);
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | b[3];
}
inline uint64_t GetBigEndian64(const char* p) {
  return (uint64_t{GetBigEndian32(p)} << 32) | GetBigEndian32(p + 4);
}

std::string EventKey(uint32_t workspace_id, uint64_t sequence);
inline constexpr size_t kEventKeyBytes = 12;
// The 4-byte prefix every key of `workspace_id` starts with; WorkspacePrefix(id + 1) is the
// first key after them.
std::string WorkspacePrefix(uint32_t workspace_id);

struct EventKeyParts {
  uint32_t workspace_id;
  uint64_t sequence;
};
std::optional<EventKeyParts> DecodeEventKey(std::string_view key);

// 20 bytes: workspace, then two independently seeded 64-bit hashes of the messageId.
std::string DedupeKey(uint32_t workspace_id, std::string_view message_id);
// Appends the same 20 bytes to `out` (hot path: many keys in one buffer, no allocation each).
void AppendDedupeKey(std::string* out, uint32_t workspace_id, std::string_view message_id);
inline constexpr size_t kDedupeKeyBytes = 20;
// Byte order of two dedupe keys (kDedupeKeyBytes each), the first 8 bytes compared as one
// number: sorting a group's keys with memcmp was most of the cost of sorting them.
inline bool DedupeKeyLess(const char* a, const char* b) {
  const uint64_t x = GetBigEndian64(a), y = GetBigEndian64(b);
  if (x != y) return x < y;
  return std::memcmp(a + 8, b + 8, kDedupeKeyBytes - 8) < 0;
}

struct DedupeEntry {
  int64_t received_at_ms;
  // Only in entries of the old format (see above); empty otherwise. Points into the value.
  std::string_view message_id;
};
inline constexpr size_t kDedupeEntryBytes = 8;
std::string IdentityKey(uint32_t workspace_id, std::string_view type, std::string_view value);
// Fingerprint128(IdentityKey(...)) without building the key: what the in-memory identity graph
// is keyed by, looked up for every identifier of every event.
Hash128 IdentityFingerprint(uint32_t workspace_id, std::string_view type, std::string_view value);
std::string ProfileKey(uint32_t workspace_id, uint64_t profile);
// The `caps` row of a customer's experience triggers shown today: [workspace u32][customer
// u64]"triggers", the customer being a profile id or a first-time visitor's state::VisitorIndex.
std::string TriggerCountKey(uint32_t workspace_id, uint64_t customer);
std::string TimelineKey(uint32_t workspace_id, uint64_t profile, uint64_t sequence);
inline constexpr size_t kTimelineKeyBytes = 20;
// The meta key that marks an erased identifier as suppressed: "suppressed/" + [workspace u32]
// + [type length u8][type] + two 64-bit hashes of the value (the value itself is not kept).
std::string SuppressionKey(uint32_t workspace_id, std::string_view type, std::string_view value);
inline constexpr std::string_view kSuppressionPrefix = "suppressed/";
// The value of a profile row that was merged into `survivor`.
std::string MergedIntoValue(uint64_t survivor);

// The decision log (the `decisions` column family, decide/log.h):
//   [workspace u32] D [decision id u64]                        the decision's record (JSON)
//   [workspace u32] P [profile u64] [decision id u64]          a profile's decisions, in time
//                                                              order (a first-time visitor's
//                                                              under state::VisitorIndex)
//   [workspace u32] R [decision id u64] [slot u8] [reward key] a reward of one slot (JSON)
//   [workspace u32] B [decision point id]                      the decision point's bandit
//   [workspace u32] A [decision id u64]                        the approval of a held decision
//   [workspace u32] Q [expires at u64] [decision id u64]       pending approvals by expiry
//   [workspace u32] C [customer hash u64]                      a customer's contact history
//   [workspace u32] U [action id]                              an action's budget use
//   [workspace u32] V [decision id u64]                        a deferred decision's activation
//   [workspace u32] W [due at u64] [decision id u64]           decisions whose reward wait ends
//   [workspace u32] E [customer hash u64]                      a customer's engagement counts
//   [workspace u32] G                                          the workspace's engagement counts
//   [workspace u32] H                                          content variants' counts
//   [workspace u32] K [action id]                              an action edited over HTTP
//   [workspace u32] O [event sequence u64]                     a goal event not yet applied
//   [workspace u32] X [customer hash u64]                      the hash a customer's control
//                                                              group is drawn by (u64)
std::string DecisionKey(uint32_t workspace_id, uint64_t decision);
std::string ProfileDecisionPrefix(uint32_t workspace_id, uint64_t profile);
std::string ProfileDecisionKey(uint32_t workspace_id, uint64_t profile, uint64_t decision);
// Every reward of a decision (no slot), or of one slot.
std::string RewardPrefix(uint32_t workspace_id, uint64_t decision);
std::string RewardPrefix(uint32_t workspace_id, uint64_t decision, uint8_t slot);
std::string BanditKey(uint32_t workspace_id, std::string_view point);
std::string ApprovalKey(uint32_t workspace_id, uint64_t decision);
// [workspace u32] C [customer hash u64]: a customer's contact history (decide/contacts.h).
std::string ContactKey(uint32_t workspace_id, uint64_t customer_hash);
// [workspace u32] X [customer hash u64]: the hash the customer's control group was first drawn
// by, kept so that it stays theirs when a visitor gets a profile or profiles merge.
std::string ControlBucketKey(uint32_t workspace_id, uint64_t customer_hash);
// [workspace u32] U [action id]: an action's budget use (server/decide_service.h).
std::string BudgetKey(uint32_t workspace_id, std::string_view action);
std::string ApprovalDuePrefix(uint32_t workspace_id);
std::string ApprovalDueKey(uint32_t workspace_id, int64_t expires_ms, uint64_t decision);
std::string ActivationKey(uint32_t workspace_id, uint64_t decision);
// E, G and H (decide/engagement.h).
std::string EngagementKey(uint32_t workspace_id, uint64_t customer_hash);
std::string WorkspaceEngagementKey(uint32_t workspace_id);
std::string VariantStatsKey(uint32_t workspace_id);
// K: the actions edited through /v1/actions (their JSON, or {"deleted":true}).
std::string ActionEditPrefix(uint32_t workspace_id);
std::string ActionEditKey(uint32_t workspace_id, std::string_view action);
// O: goal events written with the event, deleted once their rewards are applied
// (server/decide_service.h).
std::string GoalPendingPrefix(uint32_t workspace_id);
std::string GoalPendingKey(uint32_t workspace_id, uint64_t sequence);
std::string RewardDuePrefix(uint32_t workspace_id);
std::string RewardDueKey(uint32_t workspace_id, int64_t due_ms, uint64_t decision);
// The time in a Q or W key (after its prefix).
inline int64_t DueOfKey(std::string_view key) {
  return static_cast<int64_t>(GetBigEndian64(key.data() + key.size() - 2 * sizeof(uint64_t)));
}
// The decision id in the last 8 bytes of a D, P, A, Q, V or W key.
uint64_t DecisionOfKey(std::string_view key);
// The survivor named by a profile row, or nullopt when the row is a profile.
std::optional<uint64_t> DecodeMergedInto(std::string_view value);

// The value written for an event received at `received_at_ms` (kDedupeEntryBytes).
std::string EncodeDedupeEntry(int64_t received_at_ms);
// Appends the same bytes to `out` (checkpoints: many values in one buffer).
void AppendDedupeEntry(std::string* out, int64_t received_at_ms);
// Either format; nullopt for a value of neither.
std::optional<DedupeEntry> DecodeDedupeEntry(std::string_view value);

}  // namespace whisperer::storage
