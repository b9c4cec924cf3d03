#include "state/dedupe.h"

#include <pthread.h>
#include <simdjson.h>

#include <algorithm>
#include <cstring>
#include <string>
#include <utility>

#include "common/strings.h"
#include "common/timestamp.h"
#include "obs/log.h"
#include "storage/keys.h"

namespace whisperer::state {
namespace {

// The highest sequence whose dedupe entry is in a table file (8 bytes, big-endian).
constexpr std::string_view kCheckpointKey = "dedupe/checkpoint";

}  // namespace

size_t DedupeIndex::KeyHash::operator()(const Key& k) const {
  uint64_t h;
  std::memcpy(&h, k.data() + 4, sizeof(h));
  uint32_t ws;
  std::memcpy(&ws, k.data(), sizeof(ws));
  return static_cast<size_t>(h ^ (uint64_t{ws} * 0x9E3779B97F4A7C15ull));
}

DedupeIndex::Key DedupeIndex::ToKey(std::string_view key) {
  Key k{};
  std::memcpy(k.data(), key.data(), std::min(key.size(), k.size()));
  return k;
}

void DedupeIndex::Table::Add(const Key& key, uint64_t sequence, int64_t received_at_ms) {
  index.insert_or_assign(key, received_at_ms);
  max_sequence = std::max(max_sequence, sequence);
}

DedupeIndex::DedupeIndex(storage::Store* store, const Clock* clock, Options options)
    : store_(store), clock_(clock), options_(options), active_(std::make_unique<Table>()) {}

DedupeIndex::~DedupeIndex() { Stop(); }

absl::Status DedupeIndex::Start() {
  if (absl::Status s = Recover(); !s.ok()) return s;
  thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "dedupe");
    storage::Store::DisablePerfCountersOnThisThread();
    Run();
  });
  return absl::OkStatus();
}

absl::Status DedupeIndex::Recover() {
  absl::StatusOr<std::optional<std::string>> meta = store_->GetMeta(kCheckpointKey);
  if (!meta.ok()) return meta.status();
  uint64_t checkpoint = 0;
  if (meta->has_value() && (*meta)->size() == 8) {
    checkpoint = storage::GetBigEndian64((*meta)->data());
  } else {
    // A new store, or one written before entries were held in memory: every entry is in the
    // column family. Recorded now, ahead of any event in the write-ahead log.
    absl::StatusOr<uint64_t> max_seq = store_->MaxEventSequence();
    if (!max_seq.ok()) return max_seq.status();
    checkpoint = *max_seq;
    std::string value;
    storage::PutBigEndian64(&value, checkpoint);
    if (absl::Status s = store_->PutMeta(kCheckpointKey, value); !s.ok()) return s;
  }
  simdjson::dom::parser parser;
  std::lock_guard lock(mu_);
  std::string key;
  absl::Status status =
      store_->ScanEventsAfter(checkpoint, [&](uint32_t ws, uint64_t seq, std::string_view json) {
        simdjson::dom::element doc;
        std::string_view message_id, received_at;
        // Every stored event was normalized (api/segment_parser.h) and has both.
        if (parser.parse(json).get(doc) != simdjson::SUCCESS ||
            doc["messageId"].get(message_id) != simdjson::SUCCESS ||
            doc["receivedAt"].get(received_at) != simdjson::SUCCESS) {
          return true;
        }
        std::optional<int64_t> at = ParseIso8601(received_at);
        key.clear();
        storage::AppendDedupeKey(&key, ws, message_id);
        active_->Add(ToKey(key), seq, at.value_or(clock_->NowMillis()));
        return true;
      });
  if (!status.ok()) return status;
  if (!active_->index.empty()) {
    obs::LogEvent(spdlog::level::info, "dedupe_recovered",
                  {{"entries", std::to_string(active_->index.size())},
                   {"after_sequence", std::to_string(checkpoint)}});
  }
  return absl::OkStatus();
}

void DedupeIndex::Stop() {
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
  }
  cv_.notify_all();
  if (thread_.joinable()) thread_.join();
  std::lock_guard checkpoint(checkpoint_mu_);
  // A table left by a failed checkpoint first, then everything recorded since.
  absl::Status status = CheckpointLocked();
  if (status.ok()) status = CheckpointLocked();
  if (!status.ok()) {
    obs::LogEvent(spdlog::level::err, "dedupe_checkpoint_failed",
                  {{"error", ToStd(status.message())},
                   {"effect", "entries are read back from the event log at the next start"}});
  }
}

void DedupeIndex::Run() {
  std::unique_lock lock(mu_);
  bool failing = false;
  while (!stopping_) {
    auto due = [&] {
      return frozen_ != nullptr || active_->index.size() >= options_.checkpoint_entries ||
             (!active_->index.empty() &&
              std::chrono::steady_clock::now() - active_->started >= options_.checkpoint_interval);
    };
    // Retries of a failed checkpoint wait a second; otherwise Record wakes the thread.
    auto wait = failing ? std::chrono::milliseconds(1000)
                        : std::min<std::chrono::milliseconds>(options_.checkpoint_interval,
                                                              std::chrono::milliseconds(1000));
    cv_.wait_for(lock, wait, [&] { return stopping_ || (!failing && due()); });
    if (stopping_ || !due()) continue;
    lock.unlock();
    absl::Status status;
    {
      std::lock_guard checkpoint(checkpoint_mu_);
      status = CheckpointLocked();
    }
    if (!status.ok() && !failing) {
      obs::LogEvent(spdlog::level::err, "dedupe_checkpoint_failed",
                    {{"error", ToStd(status.message())},
                     {"effect", "entries stay in memory; retrying every second"}});
    }
    failing = !status.ok();
    lock.lock();
  }
}

absl::Status DedupeIndex::CheckpointLocked() {
  {
    std::lock_guard lock(mu_);
    if (frozen_ == nullptr) {
      if (active_->index.empty()) return absl::OkStatus();
      frozen_ = std::move(active_);
      active_ = std::make_unique<Table>();
    }
  }
  // frozen_ changes only under checkpoint_mu_, which the caller holds: read it without mu_.
  const Table& table = *frozen_;
  struct Entry {
    const Key* key;
    int64_t received_at_ms;
  };
  std::vector<Entry> entries;
  entries.reserve(table.index.size());
  for (const auto& [key, at] : table.index) entries.push_back({&key, at});
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    return storage::DedupeKeyLess(a.key->data(), b.key->data());
  });
  std::string values;
  values.reserve(entries.size() * storage::kDedupeEntryBytes);
  for (const Entry& e : entries) storage::AppendDedupeEntry(&values, e.received_at_ms);
  std::vector<std::pair<std::string_view, std::string_view>> rows;
  rows.reserve(entries.size());
  for (size_t i = 0; i < entries.size(); ++i) {
    rows.emplace_back(std::string_view(entries[i].key->data(), entries[i].key->size()),
                      std::string_view(values).substr(i * storage::kDedupeEntryBytes,
                                                      storage::kDedupeEntryBytes));
  }
  if (absl::Status s = store_->IngestSorted(store_->dedupe(), rows); !s.ok()) return s;
  std::string value;
  storage::PutBigEndian64(&value, table.max_sequence);
  if (absl::Status s = store_->PutMeta(kCheckpointKey, value); !s.ok()) return s;
  std::lock_guard lock(mu_);
  frozen_.reset();
  return absl::OkStatus();
}

void DedupeIndex::PrefetchLocked(const Key& key) const {
  active_->index.prefetch(key);
  if (frozen_ != nullptr) frozen_->index.prefetch(key);
}

const int64_t* DedupeIndex::HeldLocked(const Key& key) const {
  for (const Table* table : {active_.get(), frozen_.get()}) {
    if (table == nullptr) continue;
    auto it = table->index.find(key);
    if (it != table->index.end()) return &it->second;
  }
  return nullptr;
}

absl::Status DedupeIndex::FindDuplicates(std::span<const MessageRef> refs,
                                         std::vector<bool>* duplicate, Keys* keys_out) const {
  duplicate->assign(refs.size(), false);
  const Keys& keys = *keys_out;
  keys_out->bytes_.clear();
  if (refs.empty()) return absl::OkStatus();
  keys_out->bytes_.reserve(refs.size() * storage::kDedupeKeyBytes);
  for (const MessageRef& ref : refs) {
    storage::AppendDedupeKey(&keys_out->bytes_, ref.workspace_id, ref.message_id);
  }
  const int64_t now = clock_->NowMillis();
  auto within_window = [&](int64_t received_at_ms) {
    return now - received_at_ms <= store_->dedupe_window_ms();
  };
  auto is_retry = [&](size_t i, std::string_view value) {
    auto entry = storage::DecodeDedupeEntry(value);
    // An entry of the old format carries its messageId (storage/keys.h): compared as before.
    return entry && (entry->message_id.empty() || entry->message_id == refs[i].message_id) &&
           within_window(entry->received_at_ms);
  };
  // Earlier refs of this group by key; a key hit counts only when the messageId matches too.
  // Then the entries held in memory; the store is asked only about the rest.
  std::vector<size_t> ask;
  {
    absl::flat_hash_map<std::string_view, size_t> seen;
    seen.reserve(refs.size());
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < refs.size(); ++i) {
      if (i + kPrefetchAhead < refs.size()) PrefetchLocked(ToKey(keys[i + kPrefetchAhead]));
      auto [it, inserted] = seen.emplace(keys[i], i);
      if (!inserted && refs[it->second].message_id == refs[i].message_id) {
        (*duplicate)[i] = true;
        continue;
      }
      if (const int64_t* received_at_ms = HeldLocked(ToKey(keys[i]))) {
        (*duplicate)[i] = within_window(*received_at_ms);
      } else {
        ask.push_back(i);
      }
    }
  }
  if (ask.empty()) return absl::OkStatus();
  // In key order, which spares MultiGet sorting them with its comparator.
  std::sort(ask.begin(), ask.end(), [&keys](size_t a, size_t b) {
    return storage::DedupeKeyLess(keys[a].data(), keys[b].data());
  });
  std::vector<rocksdb::Slice> slices;
  slices.reserve(ask.size());
  for (size_t i : ask) slices.emplace_back(keys[i].data(), keys[i].size());
  std::vector<rocksdb::PinnableSlice> values(ask.size());
  std::vector<rocksdb::Status> statuses(ask.size());
  store_->db()->MultiGet(rocksdb::ReadOptions(), store_->dedupe(), slices.size(), slices.data(),
                         values.data(), statuses.data(), /*sorted_input=*/true);
  for (size_t j = 0; j < ask.size(); ++j) {
    if (statuses[j].IsNotFound()) continue;
    if (!statuses[j].ok()) {
      return absl::UnavailableError(StrCat("reading the dedupe index: ", statuses[j].ToString()));
    }
    (*duplicate)[ask[j]] = is_retry(ask[j], values[j].ToStringView());
  }
  return absl::OkStatus();
}

void DedupeIndex::Record(std::span<const NewEntry> entries) {
  if (entries.empty()) return;
  bool wake;
  {
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < entries.size(); ++i) {
      if (i + kPrefetchAhead < entries.size()) {
        active_->index.prefetch(ToKey(entries[i + kPrefetchAhead].key));
      }
      active_->Add(ToKey(entries[i].key), entries[i].sequence, entries[i].received_at_ms);
    }
    wake = active_->index.size() >= options_.checkpoint_entries;
  }
  if (wake) cv_.notify_one();
}

void DedupeIndex::Forget(const rocksdb::WriteBatch& batch) {
  // The dedupe keys `batch` deletes.
  class Deletes : public rocksdb::WriteBatch::Handler {
   public:
    explicit Deletes(uint32_t cf) : cf_(cf) {}
    rocksdb::Status DeleteCF(uint32_t cf, const rocksdb::Slice& key) override {
      if (cf == cf_ && key.size() == storage::kDedupeKeyBytes)
        keys.push_back(ToKey(key.ToStringView()));
      return rocksdb::Status::OK();
    }
    // Every other kind of record is passed over: the Handler's defaults answer
    // InvalidArgument for some (a range deletion, which an erasure writes for the timeline),
    // and that stopped the iteration before the dedupe deletes were read.
    rocksdb::Status PutCF(uint32_t, const rocksdb::Slice&, const rocksdb::Slice&) override {
      return rocksdb::Status::OK();
    }
    rocksdb::Status DeleteRangeCF(uint32_t, const rocksdb::Slice&, const rocksdb::Slice&) override {
      return rocksdb::Status::OK();
    }
    rocksdb::Status SingleDeleteCF(uint32_t, const rocksdb::Slice&) override {
      return rocksdb::Status::OK();
    }
    rocksdb::Status MergeCF(uint32_t, const rocksdb::Slice&, const rocksdb::Slice&) override {
      return rocksdb::Status::OK();
    }
    std::vector<Key> keys;

   private:
    uint32_t cf_;
  } deletes(store_->dedupe()->GetID());
  if (!batch.Iterate(&deletes).ok() || deletes.keys.empty()) return;
  std::lock_guard lock(mu_);
  for (const Key& key : deletes.keys) {
    active_->index.erase(key);
    if (frozen_ != nullptr) frozen_->index.erase(key);
  }
}

size_t DedupeIndex::held() const {
  std::lock_guard lock(mu_);
  return active_->index.size() + (frozen_ != nullptr ? frozen_->index.size() : 0);
}

}  // namespace whisperer::state
