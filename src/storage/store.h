// Store: the embedded RocksDB database of one data directory.
//
// Column families (see storage/keys.h for the key layouts):
//   events  the append-only event log, a workspace's events contiguous and in commit order;
//   dedupe  hash of (workspace, messageId) -> (sequence, receivedAt, messageId), expired by a
//           compaction filter after the dedupe window;
//   meta    small named values: workspace ids (`workspace/<name>`), generated keys
//           (`keys/<workspace>/<write|admin>`) and the profile id counter;
//   identities  the identity graph: identifier -> profile id;
//   profiles    profile id -> the profile (state/profile.h), or where a merged profile went;
//   timeline    (profile, sequence) -> nothing: a profile's events as a range;
//   funnels     (journey, version, cohort day, dimension, value) -> counts (state/funnels.h);
//   catalog     [workspace u32][item id] -> the item's stock and offer (JSON, server/
//               experience_service.h), the real data behind urgency triggers;
//   caps        [workspace u32][profile u64][what] -> [UTC day i64][count i64]: per-customer
//               daily counts behind caps (the experience API's triggers).
//   models      [workspace u32][model name]\0 then L (the live model), V[version u64] (a
//               version's record) or I[version u64] (a version's state): state/models.h.
//   decisions   [workspace u32] then D[decision id u64] (the decision's record), P[profile u64]
//               [decision id u64] (a profile's decisions, in time order), R[decision id u64]
//               [slot u8][reward key] (its rewards) or B[decision point] (a decision point's
//               bandit): decide/log.h.
// Later column families (journeys, config) are added to kColumnFamilies.
//
// Durability: Write() returns OK only once the batch is in the write-ahead log, so an
// acknowledged write survives kill -9 of the process. With `sync` the WAL is also fsynced per
// write, which survives power loss. Group commit happens one level up: each shard writes all
// it has queued as one batch (shard/shard_set.h).
//
// Thread-safety: all methods may be called from any thread once Open() returned. A read-write
// Store holds the directory's lock; a follower (OpenFollower) only reads, and may run while a
// server holds the lock.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "common/clock.h"
#include "rocksdb/db.h"
#include "rocksdb/write_batch.h"

namespace whisperer::storage {

enum class BackgroundPriority { kIdle, kLow, kNormal };
// "idle", "low" or "normal" (the config's storage.background_priority); nullopt otherwise.
std::optional<BackgroundPriority> BackgroundPriorityNamed(std::string_view name);

class Store {
 public:
  static constexpr uint64_t kDefaultMinFreeBytes = uint64_t{128} << 20;

  struct Options {
    // Created when missing.
    std::string path = "./data";
    // fsync the write-ahead log on every group commit: survives power loss, costs latency.
    bool sync = false;
    // CPU priority of RocksDB's flush and compaction threads, which are shared by every store
    // of the process (they can be lowered, never raised again).
    //  - kIdle (default): SCHED_IDLE, they run only on a core no other thread wants, and a
    //    request thread that wakes up never waits for a flush or compaction to yield. On the
    //    2-core bench machine (bench/, November 2026), old and new binaries run alternately:
    //    /v1/decide p99 at 5,000 requests/s 2.02-2.54 ms (median 2.20) in six runs against
    //    1.87-2.91 ms (median 2.61); /v1/track p99 median 1.58 ms against 1.82 in four; ingest
    //    rates unchanged within the noise. They cannot starve for long: when they fall behind,
    //    RocksDB slows the writes down, which frees the cores for them.
    //  - kLow: nice 19, still scheduled in turn with everything else.
    //  - kNormal: left as they are. For a host where other processes keep every core busy,
    //    where idle threads would never run and writes would stall.
    BackgroundPriority background_priority = BackgroundPriority::kIdle;
    // Dedupe entries older than this are dropped by compaction (and ignored before that).
    int64_t dedupe_window_ms = 7LL * 24 * 3600 * 1000;
    const Clock* clock = &SystemClock::Get();
    // Writes (Write, PutMeta, IngestSorted) are refused with Unavailable, code
    // storage_unavailable, while the file system of `path` has fewer bytes free than this; 0
    // never refuses. A Write that only deletes is let through. RocksDB must not run out of disk: on
    // Debian, librocksdb is built with its assertions on, and after a failed append to the
    // write-ahead log or a table file the next use of that file aborts the process (seen with a
    // full tmpfs, November 2026). The reserve also leaves room for the flushes and compactions of
    // what was already written (a flush writes up to a 64 MiB memtable, compressed). The free space
    // is read (statvfs) at most every 100 ms (of `clock`) or after 16 MiB written, whichever comes
    // first.
    uint64_t min_free_bytes = kDefaultMinFreeBytes;
    // Bytes free for this process on the file system of `path`; statvfs when unset (tests
    // replace it).
    std::function<absl::StatusOr<uint64_t>(const std::string& path)> free_bytes;
    // Called when writes start being refused for want of space (low = true) and when they
    // resume, with the bytes free; from the writing thread. The server logs it.
    std::function<void(bool low, uint64_t free_bytes)> on_space_change;
    // Called with the error of every Write or PutMeta that RocksDB (or write_fault) failed, from
    // the writing thread; not for writes refused for want of space (on_space_change says those).
    // The server logs it.
    std::function<void(const absl::Status&)> on_write_error;
    // Fault injection for tests: asked before every Write() and PutMeta(); a non-OK answer fails
    // that write with it, and nothing of the batch is written (as when the write-ahead log
    // cannot be appended to). Unset in the server.
    std::function<absl::Status(const rocksdb::WriteBatch&)> write_fault;
  };

  static absl::StatusOr<std::unique_ptr<Store>> Open(const Options& options);
  // Opens `path` read-only as a RocksDB secondary instance, which sees what a running server
  // has written up to the call (and after CatchUp()).
  static absl::StatusOr<std::unique_ptr<Store>> OpenFollower(const std::string& path);

  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  rocksdb::DB* db() const { return db_.get(); }
  rocksdb::ColumnFamilyHandle* events() const { return handles_[1]; }
  rocksdb::ColumnFamilyHandle* dedupe() const { return handles_[2]; }
  rocksdb::ColumnFamilyHandle* meta() const { return handles_[3]; }
  rocksdb::ColumnFamilyHandle* identities() const { return handles_[4]; }
  rocksdb::ColumnFamilyHandle* profiles() const { return handles_[5]; }
  rocksdb::ColumnFamilyHandle* timeline() const { return handles_[6]; }
  rocksdb::ColumnFamilyHandle* funnels() const { return handles_[7]; }
  rocksdb::ColumnFamilyHandle* catalog() const { return handles_[8]; }
  rocksdb::ColumnFamilyHandle* caps() const { return handles_[9]; }
  rocksdb::ColumnFamilyHandle* models() const { return handles_[10]; }
  rocksdb::ColumnFamilyHandle* decisions() const { return handles_[11]; }
  // Every column family, for scans that must cover them all (erasure checks).
  const std::vector<rocksdb::ColumnFamilyHandle*>& column_families() const { return handles_; }
  bool sync() const { return options_.sync; }
  // Whether RocksDB's checksums run on the crc32 instruction (storage/crc32c.h).
  bool checksums_accelerated() const { return checksums_accelerated_; }
  int64_t dedupe_window_ms() const { return options_.dedupe_window_ms; }
  const std::string& path() const { return options_.path; }

  // RocksDB counts per-operation statistics in thread-local storage by default, which costs a
  // few percent of a writer's time through the shared library; threads that write or read on
  // the hot path turn it off.
  static void DisablePerfCountersOnThisThread();

  // Applies `batch` atomically; OK means it is in the write-ahead log.
  absl::Status Write(rocksdb::WriteBatch* batch);

  absl::StatusOr<std::optional<std::string>> GetMeta(std::string_view key) const;
  absl::Status PutMeta(std::string_view key, std::string_view value);

  // Calls `fn(key, value)` for the meta rows whose key starts with `prefix`, in key order.
  absl::Status ScanMeta(std::string_view prefix,
                        const std::function<void(std::string_view, std::string_view)>& fn) const;

  // Calls `fn(key, value)` for the rows of `cf` whose key starts with `prefix`, in key order,
  // until it returns false.
  absl::Status ScanPrefix(rocksdb::ColumnFamilyHandle* cf, std::string_view prefix,
                          const std::function<bool(std::string_view, std::string_view)>& fn) const;
  // The same from the first key at or after `start` (which begins with `prefix`).
  absl::Status ScanPrefixFrom(
      rocksdb::ColumnFamilyHandle* cf, std::string_view prefix, std::string_view start,
      const std::function<bool(std::string_view, std::string_view)>& fn) const;
  // A point read in `cf`; nullopt when the key is absent.
  absl::StatusOr<std::optional<std::string>> Get(rocksdb::ColumnFamilyHandle* cf,
                                                 std::string_view key) const;
  absl::StatusOr<std::optional<std::string>> GetEvent(uint32_t workspace_id,
                                                      uint64_t sequence) const;

  // Calls `fn(sequence, json)` for the events of `workspace_id` with a sequence above `after`,
  // in sequence order, until `fn` returns false or the events end.
  absl::Status ScanEvents(uint32_t workspace_id, uint64_t after,
                          const std::function<bool(uint64_t, std::string_view)>& fn) const;

  // Calls `fn(workspace_id, sequence, json)` for the events of every workspace with a sequence
  // above `after`, workspace by workspace, until `fn` returns false. Seeks past each
  // workspace's older events, so it reads only what it returns.
  absl::Status ScanEventsAfter(
      uint64_t after, const std::function<bool(uint32_t, uint64_t, std::string_view)>& fn) const;

  // Adds `rows` (key, value), sorted by key without repeats, to `cf` as one table file built
  // beside the database and ingested whole: no memtable inserts, no flush. The rows are newer
  // than everything in `cf`. Durable when it returns OK.
  absl::Status IngestSorted(rocksdb::ColumnFamilyHandle* cf,
                            std::span<const std::pair<std::string_view, std::string_view>> rows);

  // The highest event sequence stored in any workspace, 0 when there are none.
  absl::StatusOr<uint64_t> MaxEventSequence() const;

  // Bytes on disk: table files plus live write-ahead log.
  uint64_t SizeBytes() const;

  // Bytes free on the data directory's file system, read now (statvfs); the reading also
  // serves the writes' check. The last good reading when this one fails, 0 before any.
  uint64_t FreeBytes();

  // For followers: read what the primary wrote since the last call.
  absl::Status CatchUp();

  // Flushes memtables and syncs the WAL; the Store stays usable. Called on graceful shutdown.
  absl::Status Flush();

  // Starts writing the current write-ahead log back to disk without waiting for it, as a
  // thread of the read-write Store does every 100 ms (unless Options::sync). Returns the log's
  // number, 0 when there is none (a follower, or with sync).
  uint64_t WriteBackLog();

  // A RocksDB status as the store reports it, with the message "<what>: <RocksDB's>":
  // data_dir_in_use (FailedPrecondition) for a data directory another process holds,
  // storage_unavailable (Unavailable) for I/O errors, a full disk or a busy database, and
  // storage_error (Internal) for the rest.
  static absl::Status FromRocks(const rocksdb::Status& s, std::string_view what);

 private:
  class LogWriteback;

  Store() = default;

  // Writes `batch` (Write, PutMeta): write_fault first, on_write_error told of a failure.
  absl::Status Apply(const rocksdb::WriteOptions& wo, rocksdb::WriteBatch* batch,
                     std::string_view what);
  // OK, or storage_unavailable while the disk has less than options_.min_free_bytes free.
  // `bytes`: what the caller is about to write, counted towards the next reading.
  absl::Status CheckSpace(size_t bytes);
  // Reads the free space now (under space_mu_) and says when writes stop or resume.
  void ReadFreeSpace(int64_t now_ms);

  Options options_;
  std::atomic<uint64_t> ingested_files_{0};  // names IngestSorted's files
  std::string follower_dir_;                 // the secondary instance's own scratch directory
  std::unique_ptr<rocksdb::CompactionFilter> dedupe_filter_;
  std::vector<rocksdb::ColumnFamilyHandle*> handles_;  // in kColumnFamilies order
  std::unique_ptr<rocksdb::DB> db_;
  std::unique_ptr<LogWriteback> log_writeback_;  // read-write and not sync only
  // CheckSpace's state: the last reading, when it was taken, the bytes written since, and
  // whether writes are refused. Readings are taken under space_mu_ by one thread at a time;
  // the others go on with the last one.
  std::mutex space_mu_;
  std::atomic<uint64_t> free_bytes_{0};
  static constexpr int64_t kNeverRead = std::numeric_limits<int64_t>::min();
  std::atomic<int64_t> space_read_ms_{kNeverRead};
  std::atomic<uint64_t> written_since_read_{0};
  std::atomic<bool> space_low_{false};
  bool checksums_accelerated_ = false;
};

}  // namespace whisperer::storage
