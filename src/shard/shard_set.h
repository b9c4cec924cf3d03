// ShardSet: the single-writer owners of profiles. Each shard is one thread that owns the
// profiles routed to it (identity/routing.h) and is the only writer of their state, so the
// pipeline needs no locks on that state.
//
// For each request, Submit() splits the events by shard and queues one part per shard. A shard
// thread takes everything queued since its last commit (group commit). A small request that
// falls to one shard while that shard is idle is committed by the submitting thread itself
// instead (Options::commit_on_caller_max_events), as RocksDB's write thread lets a lone writer
// lead its own group: the hand-off to the shard thread and back costs two wake-ups, which on a
// busy 2-core machine were most of a single /v1/track's latency. Either way one group of a
// shard is committed at a time, so the shard's state keeps a single writer. A commit, in order:
//   1. drops retries: DedupeIndex on (workspace, messageId);
//   2. assigns sequence numbers (global, increasing) to the new events and
//   3. resolves each new event to its customer and folds it into the profile
//      (state/profiles.h), when a ProfileEngine is attached;
//   4. writes events and the profile changes in one WriteBatch; steps 2-4 run under one lock
//      shared by all shards so that commit order is sequence order and profiles see events in
//      that order; Store::Write returns once the batch is in the write-ahead log (and fsynced
//      with storage.sync); then the events' dedupe entries are recorded (in memory, written out
//      in bulk and recovered from the event log: state/dedupe.h);
//   5. completes each request whose last part this was: `done` runs on the writing thread.
// With a profile engine, a shard thread hands step 4 and 5 of its group to the writer thread
// and resolves its next group meanwhile (a caller committing its own request writes it
// itself). At most one group is in the air: the next commit waits for it to be written
// before its own group is written or acknowledged, so the order of writes stays the order of
// sequences. Resolving a group ahead of the write of the one before is safe because the
// profile engine reads what that group changed from its cache (it never evicts the profiles
// of the group being finished), and because a retry of an event still in the air is found in
// that group's keys (the dedupe index knows written events only). Measured on 2 cores with
// 1M customers (November 2026): 76,000 instead of 70,000 events/s; without profiles the
// hand-off only added wake-ups, so the shard thread writes itself.
//
// A failed write fails every request in the group with Unavailable, and the group resolved on
// top of it fails too (its profile changes build on the lost ones); the profile engine's
// caches are then dropped and the next group starts from what the store holds. Parts of such a
// request that other shards committed stay stored, and the client's retry is deduplicated, so
// a retry completes the request exactly once.
//
// Thread-safety: Submit may be called from any thread. Start/Stop from the owning thread only;
// Stop drains what was queued before it and waits for commits running on callers' threads, then
// joins the shard threads (reverse of Start).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "api/event.h"
#include "common/clock.h"
#include "obs/metrics.h"
#include "state/dedupe.h"
#include "state/profiles.h"
#include "storage/store.h"

namespace whisperer::shard {

struct IngestResult {
  size_t stored = 0;      // new events now durable
  size_t duplicates = 0;  // retries of events stored earlier, not stored again
  size_t suppressed = 0;  // new events of erased and suppressed customers: not stored
  absl::Status status;    // not OK when a write failed; nothing of it was acknowledged
};

using IngestCallback = std::function<void(IngestResult)>;

class ShardSet {
 public:
  struct Options {
    // Number of shard threads. 0 = half the cores (common/cores.h).
    size_t num_shards = 0;
    // Events a shard may hold queued before Submit answers Unavailable (503, retry later).
    size_t max_queued_events = 200'000;
    // A request of at most this many events that all fall to one shard is committed on the
    // submitting thread when that shard has nothing queued and no commit running. 0 = always
    // hand off to the shard thread, which is what a store that fsyncs every write
    // (storage.sync) gets whatever this says: the submitting HTTP thread would wait out the
    // fsync instead of serving its other connections.
    size_t commit_on_caller_max_events = 16;
  };

  ShardSet(storage::Store* store, const Clock* clock, obs::Registry* metrics, Options options);
  ~ShardSet();

  // Attaches the profile engine (before Start). Without one, events are only stored.
  void SetProfileEngine(state::ProfileEngine* profiles) { profiles_ = profiles; }

  // Recovers the sequence counter from the store and starts the shard threads.
  absl::Status Start();
  // Completes everything already queued, then stops. Idempotent.
  void Stop();

  // Queues `events` of `workspace_id`. `done` runs exactly once when every event is durable or
  // the write failed: on a shard thread, or on the caller's thread (before Submit returns) when
  // the caller committed the events itself (Options::commit_on_caller_max_events), when there
  // are no events, or when a shard refused its part after others had been queued.
  // Returns Unavailable, without calling `done`, when stopped or over max_queued_events.
  absl::Status Submit(uint32_t workspace_id, std::vector<api::Event> events, IngestCallback done);

  // Submit and wait for the result (import, tests).
  IngestResult SubmitAndWait(uint32_t workspace_id, std::vector<api::Event> events);

  // Runs `fn` under the commit lock, so that it sees and changes state no event is changing at
  // the same time, then writes what it put into the batch. Used by API calls that change
  // profiles (consent, unmerge, erasure). When the write fails the profile engine's caches
  // are dropped.
  absl::Status WriteExclusive(const std::function<absl::Status(rocksdb::WriteBatch*)>& fn);

  size_t size() const { return shards_.size(); }
  uint64_t last_sequence() const { return next_sequence_.load() - 1; }

 private:
  struct Request;
  struct Part;
  struct Flight;
  class Shard;

  // Reports the group's outcome to its requests (on the thread that wrote it). A part's
  // `suppressed` new events were not stored (their customers are suppressed): reported as such
  // to its request, not counted as ingested.
  void Complete(std::vector<Part>& group, const std::vector<bool>& duplicate,
                const absl::Status& status);
  // With commit_mu_ held: whether the group handed off last is written (false when none).
  bool FlightWrittenLocked();
  // Whether `flight` was written, or may still be: false once its write failed.
  bool FlightOk(const Flight& flight);
  // With commit_mu_ held and no flight in the air (LandLocked): gives `flight` to the writer.
  void HandOffLocked(std::shared_ptr<Flight> flight);
  // With commit_mu_ held: waits until the group handed off last is written and returns how the
  // write went (OK when there is none). After a failure the profile engine's caches are dropped:
  // they hold that group's changes.
  absl::Status LandLocked();
  void RunWriter();

  storage::Store* store_;
  state::ProfileEngine* profiles_ = nullptr;
  const Clock* clock_;
  Options options_;
  state::DedupeIndex dedupe_;
  std::atomic<uint64_t> next_sequence_{1};
  // Held from sequence allocation to the end of Store::Write, or to the hand-off of the group to
  // the writer thread (see Shard::Commit).
  std::mutex commit_mu_;
  // The writer thread writes the batch of a group handed off by a shard thread while that
  // thread resolves its next group; at most one group is in the air (see Shard::Commit).
  std::shared_ptr<Flight> flight_;  // GUARDED_BY(commit_mu_): handed off, not yet landed
  std::mutex flight_mu_;
  std::condition_variable flight_cv_;
  std::shared_ptr<Flight> to_write_;  // GUARDED_BY(flight_mu_)
  bool writer_stopping_ = false;      // GUARDED_BY(flight_mu_)
  std::thread writer_;
  std::atomic<bool> running_{false};
  std::vector<std::unique_ptr<Shard>> shards_;
  obs::Counter* ingested_ = nullptr;
  obs::Counter* deduplicated_ = nullptr;
  obs::Histogram* commit_events_ = nullptr;
  obs::Counter* profile_errors_ = nullptr;
};

}  // namespace whisperer::shard
