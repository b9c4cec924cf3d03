// DedupeIndex: which events are retries of events already stored, by (workspace, messageId),
// within the dedupe window.
//
// Entries of recent events are held in memory and written to the store's `dedupe` column
// family in bulk, as one sorted table file per checkpoint (Store::IngestSorted), instead of one
// memtable insert per event. The keys are random hashes, so inserting them into RocksDB's
// skiplist one by one cost the shard thread more than everything else it does together (bench/,
// November 2026: 2M events, shard thread 10.9 s with per-event inserts, 4.2 s without).
//
// Durability comes from the event log, not from the index: every event whose entry is only in
// memory is stored, with its messageId and receivedAt, in the `events` column family, which is
// in the write-ahead log before the event is acknowledged. The meta row `dedupe/checkpoint`
// names the highest sequence whose entry is in a table file; Start() reads the events above it
// back into memory, so after kill -9 a retry is still recognised. A clean Stop() checkpoints
// everything, so a restart has nothing to read back.
//
// A checkpoint is taken when `checkpoint_entries` entries are held or `checkpoint_interval`
// passed, on a thread of the index; the shard threads never wait for it. While a table is being
// written, lookups see both it and the entries recorded since.
//
// Entries older than the window are ignored here and dropped by compaction (storage/store.cc).
//
// Thread-safety: all methods may be called from any thread, but the check-then-record of one
// messageId must not race with another check-then-record of the same messageId. Shards
// guarantee this: an event and its retries carry the same identifiers and so go to the same
// shard, which checks and records in order (while a group's write, and so its Record, is still
// on the writer thread, the shard checks its next group against that group's keys itself:
// shard/shard_set.h). Not covered: two *different* events
// of different profiles that claim the same messageId at the same moment may both be stored
// (a client bug; Segment's own dedupe has the same window).
#pragma once

#include <array>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/container/flat_hash_map.h"
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
  struct Options {
    // Entries held in memory before they are written out (about 40 bytes each). Every table
    // file overlaps all others (the keys are hashes), so each compaction of the column family
    // rewrites it whole: fewer, larger files cost far less (10M events on 2 cores, November
    // 2026: compaction threads 1.6 us per event with 2^18 entries per file, 0.25 us with 2^20
    // counting 40 s after the load). Start() reads back at most this many events after a
    // crash (2^20: about 2 s).
    size_t checkpoint_entries = 1 << 20;
    // Entries are written out at least this often, which bounds what Start() reads back.
    std::chrono::milliseconds checkpoint_interval{30'000};
  };

  DedupeIndex(storage::Store* store, const Clock* clock) : DedupeIndex(store, clock, Options()) {}
  DedupeIndex(storage::Store* store, const Clock* clock, Options options);
  // Stop().
  ~DedupeIndex();
  DedupeIndex(const DedupeIndex&) = delete;
  DedupeIndex& operator=(const DedupeIndex&) = delete;

  // Reads the entries of events stored after the last checkpoint back into memory and starts
  // the checkpoint thread. Call once, before the first FindDuplicates.
  absl::Status Start();
  // Stops the checkpoint thread and writes every entry held in memory to the store; a failure
  // is logged (the entries are read back at the next start). Idempotent; the index answers
  // lookups afterwards but takes no more checkpoints.
  void Stop();

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
    std::string_view key;  // from FindDuplicates' Keys
    uint64_t sequence;
    int64_t received_at_ms;
  };
  // Remembers the entries of newly stored events. Call once their write succeeded, in sequence
  // order (shards do: under their commit lock, or on their writer thread, which writes one
  // group at a time in order).
  void Record(std::span<const NewEntry> entries);

  // For writes that delete dedupe entries (erasure): construct one before building the batch
  // and keep it until the batch is written, then pass the batch to Forget(). It waits for a
  // checkpoint in progress and holds the next one off, so that no table file written from
  // memory can bring a deleted entry back.
  class DeletionScope {
   public:
    explicit DeletionScope(DedupeIndex* index) : lock_(index->checkpoint_mu_) {}

   private:
    std::lock_guard<std::mutex> lock_;
  };
  // Drops from memory the dedupe entries that `batch` (now written) deletes. Call within a
  // DeletionScope.
  void Forget(const rocksdb::WriteBatch& batch);

  // Entries held in memory (tests, metrics).
  size_t held() const;

 private:
  using Key = std::array<char, storage::kDedupeKeyBytes>;
  struct KeyHash {
    // Keys are already hashes (storage/keys.h): their first 8 hash bytes serve as they are.
    size_t operator()(const Key& k) const;
  };
  // Entries recorded since the last checkpoint: key -> receivedAt (ms).
  struct Table {
    absl::flat_hash_map<Key, int64_t, KeyHash> index;
    uint64_t max_sequence = 0;
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();

    void Add(const Key& key, uint64_t sequence, int64_t received_at_ms);
  };

  static Key ToKey(std::string_view key);
  // The receivedAt of the entry held in memory under `key`, or null. Called with mu_ held.
  const int64_t* HeldLocked(const Key& key) const;
  // The tables hold up to millions of random keys, so most lookups and inserts miss the cache:
  // a group's lookups and inserts first ask for the slots of the key this many places ahead,
  // so that the misses overlap instead of following one another. Called with mu_ held.
  static constexpr size_t kPrefetchAhead = 8;
  void PrefetchLocked(const Key& key) const;
  void Run();
  // Writes the frozen table to the store, freezing the active one first when there is none,
  // then records the checkpoint. Called with checkpoint_mu_ held.
  absl::Status CheckpointLocked();
  absl::Status Recover();

  storage::Store* store_;
  const Clock* clock_;
  Options options_;

  // Held by a checkpoint from freezing to recording it, and by DeletionScope.
  std::mutex checkpoint_mu_;

  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::unique_ptr<Table> active_;  // GUARDED_BY(mu_)
  // Being written to a table file. Changed only with checkpoint_mu_ held too, so a checkpoint
  // reads it without mu_.
  std::unique_ptr<Table> frozen_;  // GUARDED_BY(mu_)
  bool stopping_ = false;          // GUARDED_BY(mu_)
  std::thread thread_;
};

}  // namespace whisperer::state
