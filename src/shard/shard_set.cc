#include "shard/shard_set.h"

#include <pthread.h>

#include <future>

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
  std::mutex mu;
  absl::Status status;  // GUARDED_BY(mu)
  IngestCallback done;

  void Finish(size_t stored_here, size_t duplicates_here, const absl::Status& s) {
    stored += stored_here;
    duplicates += duplicates_here;
    if (!s.ok()) {
      std::lock_guard lock(mu);
      if (status.ok()) status = s;
    }
    if (remaining.fetch_sub(1) == 1) {
      IngestResult result;
      result.stored = stored.load();
      result.duplicates = duplicates.load();
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
      Commit(group);
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
      Commit(group);
      group.clear();
      std::lock_guard lock(mu_);
      committing_ = false;
    }
  }

  void Commit(std::vector<Part>& group) {
    std::vector<state::MessageRef> refs;
    for (const Part& part : group) {
      for (const api::Event& e : part.events) refs.push_back({part.workspace_id, e.message_id});
    }
    std::vector<bool> duplicate;
    state::DedupeIndex::Keys keys;
    absl::Status status = set_->dedupe_.FindDuplicates(refs, &duplicate, &keys);
    size_t fresh = 0;
    for (bool d : duplicate) fresh += !d;

    // Reserved for the events up front: growing a batch of megabytes by doubling copied it
    // over and over (a fifth of the shard thread's copying, bench/ November 2026).
    size_t event_bytes = 0;
    for (const Part& part : group) {
      for (const api::Event& e : part.events) event_bytes += e.json.size() + kRecordOverhead;
    }
    rocksdb::WriteBatch batch(status.ok() && fresh > 0 ? event_bytes : 0);
    if (status.ok() && fresh > 0) {
      // Sequences are handed out and written under one lock, so commit order is sequence
      // order: a reader that sees sequence N sees every event below N (no holes appear behind
      // a cursor). A failed write leaves a gap in the numbering, never a reordering.
      std::lock_guard lock(set_->commit_mu_);
      uint64_t sequence = set_->next_sequence_.fetch_add(fresh);
      std::vector<state::DedupeIndex::NewEntry> entries;
      entries.reserve(fresh);
      size_t i = 0;
      for (const Part& part : group) {
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
            }
          }
          if (store_event) {
            rocksdb::Status put = batch.Put(set_->store_->events(),
                                            storage::EventKey(part.workspace_id, sequence), e.json);
            if (!put.ok()) status = absl::InternalError(put.ToString());
            entries.push_back({keys[i], sequence, e.received_at_ms});
          }
          ++sequence;
          ++i;
        }
      }
      if (status.ok() && set_->profiles_ != nullptr) status = set_->profiles_->Finish(&batch);
      if (status.ok()) status = set_->store_->Write(&batch);
      if (status.ok()) set_->dedupe_.Record(entries);
      if (!status.ok() && set_->profiles_ != nullptr) set_->profiles_->Abandon();
    }

    set_->commit_events_->Observe(static_cast<double>(refs.size()));
    size_t i = 0;
    for (Part& part : group) {
      size_t stored = 0, dups = 0;
      for (size_t k = 0; k < part.events.size(); ++k, ++i) {
        if (status.ok()) (duplicate[i] ? dups : stored)++;
      }
      if (status.ok()) {
        set_->ingested_->Inc(stored);
        set_->deduplicated_->Inc(dups);
      }
      part.request->Finish(stored, dups, status);
    }
  }

  ShardSet* set_;
  size_t index_;
  std::thread thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Part> queue_;   // GUARDED_BY(mu_)
  size_t queued_events_ = 0;  // GUARDED_BY(mu_)
  bool stopping_ = false;     // GUARDED_BY(mu_)
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

absl::Status ShardSet::WriteExclusive(const std::function<absl::Status(rocksdb::WriteBatch*)>& fn) {
  std::lock_guard lock(commit_mu_);
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
  for (auto& shard : shards_) shard->Start();
  running_ = true;
  return absl::OkStatus();
}

void ShardSet::Stop() {
  if (!running_.exchange(false)) return;
  for (auto it = shards_.rbegin(); it != shards_.rend(); ++it) (*it)->Stop();
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
      request->Finish(0, 0, status);
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
  if (!status.ok()) return IngestResult{0, 0, status};
  return future.get();
}

}  // namespace whisperer::shard
