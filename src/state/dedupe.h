// DedupeIndex: which events are retries of events already stored, by (workspace, messageId),
// within the dedupe window.
//
// The index lives in the store's `dedupe` column family, written in the same WriteBatch as the
// events it covers, so an event and its dedupe entry are durable together: a retry after a lost
// response is recognised even across a crash. Entries older than the window are ignored here and
// dropped by compaction (storage/store.cc).
//
// Thread-safety: FindDuplicates and Record are safe from any thread, but the check-then-write
// of one messageId must not race with another check-then-write of the same messageId. Shards
// guarantee this: an event and its retries carry the same identifiers and so go to the same
// shard, whose single thread checks and writes in order. Not covered: two *different* events
// of different profiles that claim the same messageId at the same moment may both be stored
// (a client bug; Segment's own dedupe has the same window).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "common/clock.h"
#include "rocksdb/write_batch.h"
#include "storage/keys.h"
#include "storage/store.h"

namespace whisperer::state {

struct MessageRef {
  uint32_t workspace_id;
  std::string_view message_id;
};

class DedupeIndex {
 public:
  DedupeIndex(storage::Store* store, const Clock* clock) : store_(store), clock_(clock) {}

  // The dedupe keys of a group, kDedupeKeyBytes each, in one buffer.
  class Keys {
   public:
    std::string_view operator[](size_t i) const {
      return std::string_view(bytes_).substr(i * storage::kDedupeKeyBytes,
                                             storage::kDedupeKeyBytes);
    }

   private:
    friend class DedupeIndex;
    std::string bytes_;
  };

  // Sets (*duplicate)[i] when refs[i] was stored within the window or equals an earlier ref,
  // and fills `keys` with their dedupe keys (for Record).
  absl::Status FindDuplicates(std::span<const MessageRef> refs, std::vector<bool>* duplicate,
                              Keys* keys) const;

  struct NewEntry {
    const MessageRef* ref;
    std::string_view key;  // from FindDuplicates' Keys
    uint64_t sequence;
    int64_t received_at_ms;
  };
  // Adds the entries of newly stored events to `batch`, in key order: the memtable then inserts
  // each key next to the previous one's search path instead of searching from the top, which
  // matters because keys are random hashes.
  absl::Status Record(std::vector<NewEntry>& entries, rocksdb::WriteBatch* batch) const;

 private:
  storage::Store* store_;
  const Clock* clock_;
};

}  // namespace whisperer::state
