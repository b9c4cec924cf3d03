// Key encodings of the column families. Integers are big-endian so that byte order is numeric
// order and a workspace's rows are one contiguous range.
//
//   events   [workspace u32][sequence u64]        -> normalized event JSON
//   dedupe   [workspace u32][messageId bytes]     -> [sequence u64][receivedAt ms i64]
//   meta     utf-8 name (see storage/store.h)     -> value
//
// Sequences are assigned once, increasing, across all workspaces: a workspace's events read in
// key order are in arrival order. Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace whisperer::storage {

void PutBigEndian32(std::string* out, uint32_t v);
void PutBigEndian64(std::string* out, uint64_t v);
uint32_t GetBigEndian32(const char* p);
uint64_t GetBigEndian64(const char* p);

std::string EventKey(uint32_t workspace_id, uint64_t sequence);
// The 4-byte prefix every key of `workspace_id` starts with; WorkspacePrefix(id + 1) is the
// first key after them.
std::string WorkspacePrefix(uint32_t workspace_id);

struct EventKeyParts {
  uint32_t workspace_id;
  uint64_t sequence;
};
std::optional<EventKeyParts> DecodeEventKey(std::string_view key);

std::string DedupeKey(uint32_t workspace_id, std::string_view message_id);

struct DedupeEntry {
  uint64_t sequence;
  int64_t received_at_ms;
};
std::string EncodeDedupeEntry(const DedupeEntry& entry);
std::optional<DedupeEntry> DecodeDedupeEntry(std::string_view value);

}  // namespace whisperer::storage
