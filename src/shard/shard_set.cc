#include "shard/shard_set.h"

#include <pthread.h>

#include <algorithm>
#include <future>

#include "absl/container/flat_hash_set.h"
#include "common/cores.h"
#include "common/status.h"
#include "common/strings.h"
#include "identity/routing.h"
#include "obs/log.h"
#include "storage/keys.h"

namespace whisperer::shard {

// One Submit() call, shared by its per-shard parts.
struct ShardSet::Request {
  std::atomic<size_t> remaining;
  std::atomic<size_t> stored{0};
  std::atomic<size_t> duplicates{0};
  std::atomic<size_t> suppressed{0};
  std::mutex mu;
  absl::Status status;  // GUARDED_BY(mu)
  IngestCallback done;

  void Finish(size_t stored_here, size_t duplicates_here, size_t suppressed_here,
              const absl::Status& s) {
    stored += stored_here;
    duplicates += duplicates_here;
    suppressed += suppressed_here;
    if (!s.ok()) {
      std::lock_guard lock(mu);
      if (status.ok()) status = s;
    }
    if (remaining.fetch_sub(1) == 1) {
      IngestResult result;
      result.stored = stored.load();
      result.duplicates = duplicates.load();
      result.suppressed = suppressed.load();
      {
        std::lock_guard lock(mu);
        result.status = status;
      }
      done(std::move(result));
    }
  }
};

struct ShardSet::Part {
  std::shared_ptr<Request> request;
  uint32_t workspace_id;
  std::vector<api::Event> events;
  size_t suppressed = 0;  // new events of suppressed customers: acknowledged, not stored
};

// A committed group on its way to the store: built by Shard::Commit under the commit lock,
// written by the writer thread.
struct ShardSet::Flight {
  explicit Flight(size_t reserve_bytes) : batch(reserve_bytes) {}

  rocksdb::WriteBatch batch;
  state::DedupeIndex::Keys keys;                      // of every event of the group
  std::vector<bool> duplicate;                        // per event
  std::vector<state::DedupeIndex::NewEntry> entries;  // of the stored events, views into keys
  absl::flat_hash_set<std::string_view> fresh;        // their keys, for the shard's next group
  std::vector<Part> group;                            // the parts to complete once written
  bool written = false;                               // GUARDED_BY(ShardSet::flight_mu_)
  absl::Status status;                                // GUARDED_BY(ShardSet::flight_mu_)
};

class ShardSet::Shard {
 public:
  // What a Put of an event adds to a batch besides the value: tag, column family id, key with
  // its length, value length (each a varint of at most 5 bytes).
  static constexpr size_t kRecordOverhead = 1 + 5 + 1 + storage::kEventKeyBytes + 5;

  Shard(ShardSet* set, size_t index) : set_(set), index_(index) {}

  void Start() {
    thread_ = std::thread([this] {
      pthread_setname_np(pthread_self(), StrCat("shard-", index_).c_str());
      storage::Store::DisablePerfCountersOnThisThread();
      Run();
    });
  }

  void Stop() {
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
    }
    cv_.notify_one();
    if (thread_.joinable()) thread_.join();
  }

  // Queues `part` for the shard thread, or, when `may_commit_here` and the shard is idle (nothing
  // queued, no commit running), commits it on the calling thread before returning.
  absl::Status Enqueue(Part part, bool may_commit_here) {
    std::vector<Part> group;
    bool notify = false;
    {
      std::lock_guard lock(mu_);
      if (stopping_) {
        return MakeError(absl::StatusCode::kUnavailable, "shutting_down",
                         "the server is shutting down");
      }
      if (queued_events_ + part.events.size() > set_->options_.max_queued_events) {
        return MakeError(absl::StatusCode::kUnavailable, "overloaded",
                         StrCat("shard ", index_, " has ", queued_events_,
                                " events waiting to be written; retry later"));
      }
      if (may_commit_here && !committing_ && queue_.empty()) {
        committing_ = true;
        group.push_back(std::move(part));
      } else {
        queued_events_ += part.events.size();
        queue_.push_back(std::move(part));
        notify = !committing_;  // else the committer wakes the shard thread when it is done
      }
    }
    if (group.empty()) {
      if (notify) cv_.notify_one();
      return absl::OkStatus();
    }
    // Perf counters off, as on the shard threads: nothing reads them.
    storage::Store::DisablePerfCountersOnThisThread();
    bool wake = false;
    for (int round = 0;; ++round) {
      Commit(group, /*hand_off=*/false);
      group.clear();
      std::lock_guard lock(mu_);
      // What arrived meanwhile is committed here too when it is small, once: the shard thread
      // would cost another wake-up.
      if (round == 0 && !stopping_ && !queue_.empty() &&
          queued_events_ <= set_->options_.commit_on_caller_max_events) {
        group.swap(queue_);
        queued_events_ = 0;
        continue;
      }
      committing_ = false;
      wake = stopping_ || !queue_.empty();  // what arrived meanwhile, or a Stop waiting for us
      break;
    }
    if (wake) cv_.notify_one();
    return absl::OkStatus();
  }

  // Under the commit lock, once every group handed off is written and in the dedupe index
  // (LandLocked): the next commit need not check its events against this shard's last group.
  // An erasure calls it, so that a messageId it deleted is not taken for a retry of its event.
  void ForgetLastFlightLocked() { last_flight_.reset(); }

 private:
  void Run() {
    std::vector<Part> group;
    for (;;) {
      {
        std::unique_lock lock(mu_);
        cv_.wait(lock, [&] { return !committing_ && (stopping_ || !queue_.empty()); });
        // Stopping, everything queued before is committed, and no caller is committing.
        if (queue_.empty()) return;
        group.swap(queue_);
        queued_events_ = 0;
        committing_ = true;
      }
      // Without profiles, the write is most of a commit and both cores are busy anyway: the
      // hand-off only adds wake-ups (2M events on 2 cores, November 2026: 290,000 instead of
      // 310,000 events/s).
      Commit(group, /*hand_off=*/set_->profiles_ != nullptr);
      group.clear();
      std::lock_guard lock(mu_);
      committing_ = false;
    }
  }

  // Commits `group`. On the shard thread (`hand_off`) the batch goes to the writer thread, which
  // writes it and completes the requests while this thread resolves the next group; a caller
  // committing its own small request (Enqueue) writes it here, which spares the wake-ups.
  void Commit(std::vector<Part>& group, bool hand_off) {
    std::vector<state::MessageRef> refs;
    for (const Part& part : group) {
      for (const api::Event& e : part.events) refs.push_back({part.workspace_id, e.message_id});
    }
    // Reserved for the events up front: growing a batch of megabytes by doubling copied it
    // over and over (a fifth of the shard thread's copying, bench/ November 2026).
    size_t event_bytes = 0;
    for (const Part& part : group) {
      for (const api::Event& e : part.events) event_bytes += e.json.size() + kRecordOverhead;
    }
    std::vector<bool> found;
    state::DedupeIndex::Keys keys;
    absl::Status status = set_->dedupe_.FindDuplicates(refs, &found, &keys);
    const bool any_fresh = std::find(found.begin(), found.end(), false) != found.end();
    auto flight = std::make_shared<Flight>(status.ok() && any_fresh ? event_bytes : 0);
    flight->duplicate = std::move(found);
    flight->keys = std::move(keys);
    std::vector<bool>& duplicate = flight->duplicate;
    rocksdb::WriteBatch& batch = flight->batch;
    std::vector<state::DedupeIndex::NewEntry>& entries = flight->entries;

    std::unique_lock lock(set_->commit_mu_);
    // A group handed off before and already written is landed now, so that a failure of its
    // write (which its own requests heard of) drops the caches before this group is resolved.
    if (set_->FlightWrittenLocked()) (void)set_->LandLocked();
    // The index knows written events only. This shard's previous group may still be on its way
    // to the store (it was handed off when this group's lookups began): a retry of one of its
    // events is a duplicate too. Should that write fail, this group fails with it (below).
    if (last_flight_ != nullptr && status.ok()) {
      if (set_->FlightOk(*last_flight_)) {
        for (size_t i = 0; i < refs.size(); ++i) {
          if (!duplicate[i] && last_flight_->fresh.contains(flight->keys[i])) duplicate[i] = true;
        }
      }
    }
    last_flight_.reset();
    size_t fresh = 0;
    for (bool d : duplicate) fresh += !d;
    if (status.ok() && fresh > 0) {
      // Sequences are handed out and written in the order of this lock, so commit order is
      // sequence order: a reader that sees sequence N sees every event below N (no holes appear
      // behind a cursor). A failed write leaves a gap in the numbering, never a reordering.
      uint64_t sequence = set_->next_sequence_.fetch_add(fresh);
      entries.reserve(fresh);
      size_t i = 0;
      for (Part& part : group) {
        for (const api::Event& e : part.events) {
          if (!status.ok()) break;
          if (duplicate[i]) {
            ++i;
            continue;
          }
          bool store_event = true;
          if (set_->profiles_ != nullptr) {
            absl::StatusOr<state::ProfileEngine::Outcome> applied =
                set_->profiles_->Apply(part.workspace_id, sequence, e.json, &batch);
            // A storage error fails the group; an event the engine cannot read stays stored,
            // counted and logged, without a profile.
            if (!applied.ok()) {
              if (applied.status().code() == absl::StatusCode::kUnavailable ||
                  applied.status().code() == absl::StatusCode::kInternal) {
                status = applied.status();
                break;
              }
              set_->profile_errors_->Inc();
              obs::LogEvent(spdlog::level::warn, "profile_update_failed",
                            {{"sequence", std::to_string(sequence)},
                             {"error", ToStd(applied.status().message())}});
            } else if (*applied == state::ProfileEngine::Outcome::kSuppressed) {
              store_event = false;  // acknowledged, never stored (erased with suppress=true)
              ++part.suppressed;
            }
          }
          if (store_event) {
            rocksdb::Status put = batch.Put(set_->store_->events(),
                                            storage::EventKey(part.workspace_id, sequence), e.json);
            if (!put.ok()) status = absl::InternalError(put.ToString());
            entries.push_back({flight->keys[i], sequence, e.received_at_ms});
          }
          ++sequence;
          ++i;
        }
      }
      if (status.ok() && set_->profiles_ != nullptr) status = set_->profiles_->Finish(&batch);
    }
    // The group handed off before must be written before this one is written or acknowledged:
    // this group's profiles were resolved on top of it, and its duplicates may be its events.
    // (Should it have failed, LandLocked dropped the profile caches, this group's changes too.)
    absl::Status landed = set_->LandLocked();
    if (!status.ok() && landed.ok() && fresh > 0 && set_->profiles_ != nullptr) {
      set_->profiles_->Abandon();
    }
    if (status.ok()) status = landed;
    if (status.ok() && fresh > 0 && hand_off) {
      for (const state::DedupeIndex::NewEntry& entry : entries) flight->fresh.insert(entry.key);
      flight->group = std::move(group);
      last_flight_ = flight;
      set_->HandOffLocked(std::move(flight));
      return;
    }
    if (status.ok() && fresh > 0) {
      status = set_->store_->Write(&batch);
      if (status.ok()) set_->dedupe_.Record(entries);
      if (!status.ok() && set_->profiles_ != nullptr) set_->profiles_->Abandon();
    }
    lock.unlock();
    set_->Complete(group, duplicate, status);
  }

  ShardSet* set_;
  size_t index_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Part> queue_;   // GUARDED_BY(mu_)
  size_t queued_events_ = 0;  // GUARDED_BY(mu_)
  bool stopping_ = false;     // GUARDED_BY(mu_)
  // The last group this shard handed to the writer thread; used by the next commit only, under
  // the commit lock.
  std::shared_ptr<Flight> last_flight_;
  // A group of this shard is being committed, by the shard thread or by a caller (Enqueue):
  // at most one at a time, so the shard's state keeps a single writer.
  bool committing_ = false;  // GUARDED_BY(mu_)
};

ShardSet::ShardSet(storage::Store* store, const Clock* clock, obs::Registry* metrics,
                   Options options)
    : store_(store), clock_(clock), options_(options), dedupe_(store, clock) {
  if (options_.num_shards == 0) {
    options_.num_shards = HalfTheCores();
  }
  if (store_->sync()) options_.commit_on_caller_max_events = 0;
  ingested_ = &metrics->GetCounter("whisperer_events_ingested_total",
                                   "Events stored durably (acknowledged to clients).");
  deduplicated_ = &metrics->GetCounter(
      "whisperer_events_deduplicated_total",
      "Events not stored again because their messageId was stored within the dedupe window.");
  profile_errors_ = &metrics->GetCounter(
      "whisperer_profile_update_errors_total",
      "Stored events that could not be folded into a profile (logged as profile_update_failed).");
  commit_events_ =
      &metrics->GetHistogram("whisperer_shard_commit_events", "Events per group commit of a shard.",
                             {}, {1, 10, 100, 1000, 10000, 100000});
  for (size_t i = 0; i < options_.num_shards; ++i) {
    shards_.push_back(std::make_unique<Shard>(this, i));
  }
}

ShardSet::~ShardSet() { Stop(); }

void ShardSet::Complete(std::vector<Part>& group, const std::vector<bool>& duplicate,
                        const absl::Status& status) {
  size_t i = 0, stored_all = 0;
  for (Part& part : group) {
    size_t fresh = 0, dups = 0;
    for (size_t k = 0; k < part.events.size(); ++k, ++i) {
      if (status.ok()) (duplicate[i] ? dups : fresh)++;
    }
    const size_t suppressed = status.ok() ? part.suppressed : 0;
    if (status.ok()) {
      stored_all += fresh - suppressed;
      deduplicated_->Inc(dups);
    }
    part.request->Finish(fresh - suppressed, dups, suppressed, status);
  }
  if (status.ok()) ingested_->Inc(stored_all);
  commit_events_->Observe(static_cast<double>(i));
}

bool ShardSet::FlightWrittenLocked() {
  if (flight_ == nullptr) return false;
  std::lock_guard lock(flight_mu_);
  return flight_->written;
}

bool ShardSet::FlightOk(const Flight& flight) {
  std::lock_guard lock(flight_mu_);
  return !flight.written || flight.status.ok();
}

void ShardSet::HandOffLocked(std::shared_ptr<Flight> flight) {
  flight_ = flight;
  {
    std::lock_guard lock(flight_mu_);
    to_write_ = std::move(flight);
  }
  flight_cv_.notify_all();
}

absl::Status ShardSet::LandLocked() {
  if (flight_ == nullptr) return absl::OkStatus();
  absl::Status status;
  {
    std::unique_lock lock(flight_mu_);
    flight_cv_.wait(lock, [&] { return flight_->written; });
    status = flight_->status;
  }
  flight_.reset();
  // The caches hold what the failed group changed (and what the groups resolved since did).
  if (!status.ok() && profiles_ != nullptr) profiles_->Abandon();
  return status;
}

void ShardSet::RunWriter() {
  // Perf counters off, as on the shard threads: nothing reads them.
  storage::Store::DisablePerfCountersOnThisThread();
  for (;;) {
    std::shared_ptr<Flight> flight;
    {
      std::unique_lock lock(flight_mu_);
      flight_cv_.wait(lock, [&] { return writer_stopping_ || to_write_ != nullptr; });
      if (to_write_ == nullptr) return;  // stopping, and everything handed off is written
      flight = std::move(to_write_);
    }
    absl::Status status = store_->Write(&flight->batch);
    if (status.ok()) dedupe_.Record(flight->entries);
    // What completing the requests needs is taken out first: once `written` is set, the next
    // commit may go on and let go of the flight.
    std::vector<Part> group = std::move(flight->group);
    std::vector<bool> duplicate = std::move(flight->duplicate);  // the next commit needs `fresh`
    flight->batch.Clear();
    {
      std::lock_guard lock(flight_mu_);
      flight->written = true;
      flight->status = status;
    }
    flight_cv_.notify_all();
    Complete(group, duplicate, status);
  }
}

absl::Status ShardSet::WriteExclusive(const std::function<absl::Status(rocksdb::WriteBatch*)>& fn) {
  std::lock_guard lock(commit_mu_);
  // What `fn` reads of the store must include every group committed before (a failure of the
  // last one is its requests' to report; the caches are dropped and `fn` starts from the store).
  (void)LandLocked();
  for (const std::unique_ptr<Shard>& shard : shards_) shard->ForgetLastFlightLocked();
  state::DedupeIndex::DeletionScope deleting(&dedupe_);
  rocksdb::WriteBatch batch;
  absl::Status status = fn(&batch);
  if (status.ok() && batch.Count() > 0) status = store_->Write(&batch);
  if (status.ok()) dedupe_.Forget(batch);
  if (!status.ok() && profiles_ != nullptr) profiles_->Abandon();
  return status;
}

absl::Status ShardSet::Start() {
  if (profiles_ != nullptr) {
    if (absl::Status s = profiles_->Start(); !s.ok()) return s;
  }
  absl::StatusOr<uint64_t> max_seq = store_->MaxEventSequence();
  if (!max_seq.ok()) return max_seq.status();
  next_sequence_ = *max_seq + 1;
  if (absl::Status s = dedupe_.Start(); !s.ok()) return s;
  writer_stopping_ = false;
  writer_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "shard-writer");
    RunWriter();
  });
  for (auto& shard : shards_) shard->Start();
  running_ = true;
  return absl::OkStatus();
}

void ShardSet::Stop() {
  if (!running_.exchange(false)) return;
  for (auto it = shards_.rbegin(); it != shards_.rend(); ++it) (*it)->Stop();
  {
    std::lock_guard lock(commit_mu_);
    (void)LandLocked();  // its requests hear how it went
  }
  {
    std::lock_guard lock(flight_mu_);
    writer_stopping_ = true;
  }
  flight_cv_.notify_all();
  if (writer_.joinable()) writer_.join();
  dedupe_.Stop();
}

absl::Status ShardSet::Submit(uint32_t workspace_id, std::vector<api::Event> events,
                              IngestCallback done) {
  if (!running_) {
    return MakeError(absl::StatusCode::kUnavailable, "shutting_down", "the server is not running");
  }
  if (events.empty()) {
    done(IngestResult{});
    return absl::OkStatus();
  }
  std::vector<std::vector<api::Event>> by_shard(shards_.size());
  if (shards_.size() == 1) {
    by_shard[0] = std::move(events);
  } else {
    for (api::Event& e : events) {
      by_shard[identity::ShardFor(e, shards_.size())].push_back(std::move(e));
    }
  }
  size_t parts = 0;
  for (const auto& v : by_shard) parts += !v.empty();
  auto request = std::make_shared<Request>();
  request->remaining = parts;
  request->done = std::move(done);
  // Parts queued before a refusal still complete; the refusal is reported through `done` too
  // so the caller hears exactly once.
  bool queued_any = false;
  for (size_t s = 0; s < by_shard.size(); ++s) {
    if (by_shard[s].empty()) continue;
    bool may_commit_here = parts == 1 && by_shard[s].size() <= options_.commit_on_caller_max_events;
    absl::Status status =
        shards_[s]->Enqueue(Part{request, workspace_id, std::move(by_shard[s])}, may_commit_here);
    if (!status.ok()) {
      if (!queued_any) return status;  // nothing queued: the caller answers, `done` is dropped
      request->Finish(0, 0, 0, status);
    }
    queued_any = true;
  }
  return absl::OkStatus();
}

IngestResult ShardSet::SubmitAndWait(uint32_t workspace_id, std::vector<api::Event> events) {
  std::promise<IngestResult> promise;
  std::future<IngestResult> future = promise.get_future();
  absl::Status status = Submit(workspace_id, std::move(events),
                               [&promise](IngestResult r) { promise.set_value(std::move(r)); });
  if (!status.ok()) return IngestResult{.status = status};
  return future.get();
}

}  // namespace whisperer::shard
