#include "storage/store.h"

#include <fcntl.h>
#include <pthread.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <filesystem>
#include <mutex>
#include <thread>

#include "common/status.h"
#include "common/strings.h"
#include "common/temp_files.h"
#include "rocksdb/compaction_filter.h"
#include "rocksdb/filter_policy.h"
#include "rocksdb/perf_level.h"
#include "rocksdb/slice_transform.h"
#include "rocksdb/sst_file_writer.h"
#include "rocksdb/table.h"
#include "storage/crc32c.h"
#include "storage/keys.h"

namespace whisperer::storage {
namespace {

constexpr const char* kColumnFamilies[] = {"default",    "events",   "dedupe",   "meta",
                                           "identities", "profiles", "timeline", "funnels",
                                           "catalog",    "caps",     "models",   "decisions"};

// Drops dedupe entries older than the window, so the dedupe column family stays bounded by
// the traffic of one window. Stateless apart from the clock, hence safe on RocksDB's
// compaction threads.
class DedupeExpiryFilter final : public rocksdb::CompactionFilter {
 public:
  DedupeExpiryFilter(const Clock* clock, int64_t window_ms)
      : clock_(clock), window_ms_(window_ms) {}
  bool Filter(int, const rocksdb::Slice&, const rocksdb::Slice& value, std::string*,
              bool*) const override {
    std::optional<DedupeEntry> entry = DecodeDedupeEntry(value.ToStringView());
    return !entry || clock_->NowMillis() - entry->received_at_ms > window_ms_;
  }
  const char* Name() const override { return "whisperer.DedupeExpiryFilter"; }

 private:
  const Clock* clock_;
  int64_t window_ms_;
};

// Where IngestSorted builds its table files, inside the data directory so that ingestion can
// hard-link them instead of copying.
constexpr std::string_view kIngestDir = "ingest";

rocksdb::Options DbOptions() {
  rocksdb::Options o;
  o.create_if_missing = true;
  o.create_missing_column_families = true;
  o.max_background_jobs = 4;
  o.bytes_per_sync = 1 << 20;
  // Not here: it would write the WAL back on the writing thread. See Store::LogWriteback.
  o.wal_bytes_per_sync = 0;
  // Events are written under the shards' one commit lock (shard/shard_set.h); decisions by the
  // HTTP threads, concurrently. Pipelined writes measured no gain.
  o.enable_pipelined_write = false;
  o.max_total_wal_size = 512ull << 20;
  o.keep_log_file_num = 5;
  o.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  return o;
}

std::vector<rocksdb::ColumnFamilyDescriptor> Families(rocksdb::CompactionFilter* dedupe_filter) {
  std::vector<rocksdb::ColumnFamilyDescriptor> out;
  for (const char* name : kColumnFamilies) {
    rocksdb::ColumnFamilyOptions cf;
    rocksdb::BlockBasedTableOptions table;
    std::string_view n(name);
    if (n == "events") {
      // Keys arrive in order, so compactions can often move files down without rewriting
      // them, which needs the same compression on every level: ZSTD at the bottom level saved
      // 20% of the disk but cost compaction three times the CPU, and with it 10% of the ingest
      // rate on 2 cores (bench/, November 2026). Dynamic level sizes send flushed data
      // straight to the lowest level in use. Each workspace's keys arrive in order, so the
      // memtable inserts next to the previous key of the same workspace (a hint per 4-byte
      // workspace prefix) instead of searching the skiplist from its head (no DeleteRange
      // here: see the decision log below).
      cf.write_buffer_size = 64 << 20;
      cf.max_write_buffer_number = 4;
      cf.compression = rocksdb::kLZ4Compression;
      cf.level_compaction_dynamic_level_bytes = true;
      cf.memtable_insert_with_hint_prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(4));
      table.block_size = 32 << 10;
    } else if (n == "dedupe") {
      // Almost every lookup is for a new messageId: bloom filters answer those without
      // reading a block. Each lookup probes every level-0 file and one file per level, so the
      // filters get 20 bits per key (about 0.01% false positives instead of 1% at 10 bits): at
      // 10 bits the blocks read for false positives cost a fifth of the shard thread's time.
      // Entries arrive as whole table files (state/dedupe.h); the memtable holds only deletes.
      // Hashes do not compress: the tables are written uncompressed. With this and the events'
      // insert hint, 10 million events cost the server 8% less CPU (10.3 µs per event instead of
      // 11.2; bench/ingest_load, November 2026).
      cf.write_buffer_size = 32 << 20;
      cf.memtable_prefix_bloom_size_ratio = 0.1;
      cf.memtable_whole_key_filtering = true;
      cf.compaction_filter = dedupe_filter;
      cf.compression = rocksdb::kNoCompression;
      table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(20));
      table.whole_key_filtering = true;
    } else if (n == "identities" || n == "profiles") {
      // Point lookups, most of them for identifiers seen for the first time.
      table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
      table.whole_key_filtering = true;
      cf.compression = rocksdb::kLZ4Compression;
    } else if (n == "decisions") {
      // Mostly the decision log: a few kilobytes per decision, written at thousands of
      // decisions per second and never changed. Its values go to blob files at flush
      // (BlobDB), so compactions move keys and blob references instead of rewriting the
      // records: with them in the tables, flushes and compactions took a fifth of the CPU of
      // /v1/decide (bench/, November 2026). Garbage collection relocates what is still live in
      // the oldest blob files during compactions, so erased decisions leave the disk too.
      cf.write_buffer_size = 64 << 20;
      cf.max_write_buffer_number = 4;
      cf.compression = rocksdb::kLZ4Compression;
      cf.enable_blob_files = true;
      cf.min_blob_size = 512;
      cf.blob_compression_type = rocksdb::kLZ4Compression;
      cf.enable_blob_garbage_collection = true;
      // Most keys of a kind arrive in order (decision ids, expiry and due times increase), but
      // the kinds interleave: the insert hint is kept per workspace and kind (the 5-byte prefix
      // [workspace][letter], storage/keys.h), so a decision's record goes in next to the one
      // before it instead of being searched for from the skiplist's head. /v1/decide took 8-10%
      // less server CPU per decision with it (bench/, November 2026). No DeleteRange in a
      // column family with an insert hint (here or events): Debian 12's RocksDB 7.8 shares the
      // hints between the point and the range-deletion skiplists and corrupts the memtable
      // (facebook/rocksdb#5118, fixed upstream in 2024 by #12558).
      cf.memtable_insert_with_hint_prefix_extractor.reset(rocksdb::NewFixedPrefixTransform(5));
    } else if (n == "timeline") {
      cf.compression = rocksdb::kLZ4Compression;  // empty values: keys only
    }
    cf.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
    out.emplace_back(name, cf);
  }
  return out;
}

}  // namespace

std::optional<BackgroundPriority> BackgroundPriorityNamed(std::string_view name) {
  if (name == "idle") return BackgroundPriority::kIdle;
  if (name == "low") return BackgroundPriority::kLow;
  if (name == "normal") return BackgroundPriority::kNormal;
  return std::nullopt;
}

absl::Status Store::FromRocks(const rocksdb::Status& s, std::string_view what) {
  if (s.ok()) return absl::OkStatus();
  std::string message = StrCat(what, ": ", s.ToString());
  // RocksDB reports a held directory lock as "IO error: While lock file: <dir>/LOCK: ...".
  if (s.IsIOError() && s.ToString().find("/LOCK") != std::string::npos) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "data_dir_in_use",
                     StrCat(message, " (is another whisperer process using it?)"));
  }
  if (s.IsNoSpace() || s.IsBusy() || s.IsTryAgain() || s.IsIOError()) {
    return MakeError(absl::StatusCode::kUnavailable, "storage_unavailable", message);
  }
  return MakeError(absl::StatusCode::kInternal, "storage_error", message);
}

// Writes the write-ahead log back to disk in small steps, from a thread of its own.
//
// Left alone, the kernel writes dirty pages back in bursts (every 5 s, those older than 30 s),
// and on the 2-core bench machine (bench/, November 2026) a burst held up everything running:
// /v1/track p99 at 5,000 requests/s was 2.3-4.1 ms (median 3.1) in nine runs, against 1.4-2.6 ms
// (median 1.7) in six with RocksDB's wal_bytes_per_sync at 1 MiB. That option, though, writes
// back on the thread that writes the log, which under ingest is the shard thread the rate is
// bound by: it cost that thread 0.3 us per event, and ingest 7%. This thread starts the same
// writeback (sync_file_range SYNC_FILE_RANGE_WRITE: start it, do not wait) every 100 ms: p99
// 1.1-2.6 ms in eight runs, ingest unchanged.
class Store::LogWriteback {
 public:
  static constexpr std::chrono::milliseconds kInterval{100};

  LogWriteback(rocksdb::DB* db, std::string dir) : db_(db), dir_(std::move(dir)) {
    thread_ = std::thread([this] {
      pthread_setname_np(pthread_self(), "wal-writeback");
      std::unique_lock lock(mu_);
      while (!cv_.wait_for(lock, kInterval, [this] { return stop_; })) StepLocked();
    });
  }

  ~LogWriteback() {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
    if (fd_ >= 0) close(fd_);
  }

  uint64_t Step() {
    std::lock_guard lock(mu_);
    return StepLocked();
  }

 private:
  uint64_t StepLocked() {
    std::unique_ptr<rocksdb::LogFile> log;
    if (!db_->GetCurrentWalFile(&log).ok() || log == nullptr) return 0;
    if (log->LogNumber() != number_) {
      if (fd_ >= 0) {
        sync_file_range(fd_, 0, 0, SYNC_FILE_RANGE_WRITE);  // the rest of the previous log
        close(fd_);
      }
      fd_ = open((dir_ + log->PathName()).c_str(), O_RDONLY | O_CLOEXEC);
      number_ = fd_ >= 0 ? log->LogNumber() : 0;  // not opened: tried again next time
    }
    if (fd_ < 0) return 0;
    sync_file_range(fd_, 0, 0, SYNC_FILE_RANGE_WRITE);
    return number_;
  }

  rocksdb::DB* db_;
  std::string dir_;
  std::mutex mu_;  // the thread's steps, WriteBackLog's and stopping
  std::condition_variable cv_;
  int fd_ = -1;          // GUARDED_BY(mu_): the current log, read-only
  uint64_t number_ = 0;  // GUARDED_BY(mu_): its number
  bool stop_ = false;    // GUARDED_BY(mu_)
  std::thread thread_;
};

uint64_t Store::WriteBackLog() { return log_writeback_ ? log_writeback_->Step() : 0; }

absl::StatusOr<std::unique_ptr<Store>> Store::Open(const Options& options) {
  std::unique_ptr<Store> store(new Store());
  store->options_ = options;
  std::error_code ec;
  std::filesystem::create_directories(options.path, ec);
  if (ec) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "data_dir_unusable",
                     StrCat("cannot create data directory ", options.path, ": ", ec.message()));
  }
  store->dedupe_filter_ =
      std::make_unique<DedupeExpiryFilter>(options.clock, options.dedupe_window_ms);
  if (options.background_priority != BackgroundPriority::kNormal) {
    // Each pool thread takes the priority on starting its next job.
    const rocksdb::CpuPriority priority = options.background_priority == BackgroundPriority::kIdle
                                              ? rocksdb::CpuPriority::kIdle
                                              : rocksdb::CpuPriority::kLow;
    for (rocksdb::Env::Priority pool : {rocksdb::Env::HIGH, rocksdb::Env::LOW}) {
      rocksdb::Status s = rocksdb::Env::Default()->LowerThreadPoolCPUPriority(pool, priority);
      if (!s.ok()) return FromRocks(s, "lowering the priority of flushes and compactions");
    }
  }
  rocksdb::DB* db = nullptr;
  rocksdb::Status s = rocksdb::DB::Open(
      DbOptions(), options.path, Families(store->dedupe_filter_.get()), &store->handles_, &db);
  if (!s.ok()) return FromRocks(s, StrCat("opening ", options.path));
  store->db_.reset(db);
  store->checksums_accelerated_ = Crc32cAccelerated();
  // With sync the log is on disk at every write already.
  if (!options.sync) store->log_writeback_ = std::make_unique<LogWriteback>(db, options.path);
  // Table files IngestSorted was building when the process stopped.
  std::filesystem::remove_all(std::filesystem::path(options.path) / kIngestDir, ec);
  // A server started on a nearly full disk says so at once, not at its first write.
  if (options.min_free_bytes > 0) store->FreeBytes();
  return store;
}

absl::StatusOr<std::unique_ptr<Store>> Store::OpenFollower(const std::string& path) {
  if (!std::filesystem::exists(std::filesystem::path(path) / "CURRENT")) {
    return MakeError(absl::StatusCode::kNotFound, "no_data",
                     StrCat("no whisperer data directory at ", path));
  }
  std::unique_ptr<Store> store(new Store());
  store->options_.path = path;
  absl::StatusOr<std::string> scratch = MakeTempDirectory("whisperer-follower");
  if (!scratch.ok()) return scratch.status();
  store->follower_dir_ = *scratch;
  rocksdb::Options o = DbOptions();
  o.create_if_missing = false;
  o.create_missing_column_families = false;
  o.max_open_files = -1;  // required for a secondary to keep seeing files the primary compacts
  rocksdb::DB* db = nullptr;
  rocksdb::Status s =
      rocksdb::DB::OpenAsSecondary(o, path, *scratch, Families(nullptr), &store->handles_, &db);
  if (!s.ok()) return FromRocks(s, StrCat("opening ", path, " read-only"));
  store->db_.reset(db);
  return store;
}

Store::~Store() {
  log_writeback_.reset();  // before the database closes
  if (db_) {
    for (auto* h : handles_) db_->DestroyColumnFamilyHandle(h).PermitUncheckedError();
    db_->Close().PermitUncheckedError();
    db_.reset();
  }
  if (!follower_dir_.empty()) {
    std::error_code ec;
    std::filesystem::remove_all(follower_dir_, ec);
  }
}

void Store::DisablePerfCountersOnThisThread() {
  rocksdb::SetPerfLevel(rocksdb::PerfLevel::kDisable);
}

namespace {

// How often CheckSpace reads the free space: at most every 100 ms, and after 16 MiB written
// (at the bench's 130 MB/s of ingest, about eight readings a second; statvfs costs a few
// microseconds).
constexpr int64_t kSpaceReadIntervalMs = 100;
constexpr uint64_t kSpaceReadBytes = uint64_t{16} << 20;

absl::StatusOr<uint64_t> StatvfsFreeBytes(const std::string& path) {
  struct statvfs st;
  if (statvfs(path.c_str(), &st) != 0) {
    return absl::UnavailableError(StrCat("statvfs ", path, ": ", std::strerror(errno)));
  }
  return uint64_t{st.f_bavail} * st.f_frsize;
}

}  // namespace

void Store::ReadFreeSpace(int64_t now_ms) {
  absl::StatusOr<uint64_t> free =
      options_.free_bytes ? options_.free_bytes(options_.path) : StatvfsFreeBytes(options_.path);
  space_read_ms_.store(now_ms, std::memory_order_relaxed);
  written_since_read_.store(0, std::memory_order_relaxed);
  // A reading that fails says nothing about the space: the last answer stands.
  if (!free.ok()) return;
  free_bytes_.store(*free, std::memory_order_relaxed);
  const bool low = *free < options_.min_free_bytes;
  if (low == space_low_.load(std::memory_order_relaxed)) return;
  space_low_.store(low, std::memory_order_release);
  if (options_.on_space_change) options_.on_space_change(low, *free);
}

absl::Status Store::CheckSpace(size_t bytes) {
  if (options_.min_free_bytes == 0) return absl::OkStatus();
  const uint64_t written = written_since_read_.fetch_add(bytes, std::memory_order_relaxed) + bytes;
  // options_.clock: the wall clock in the server (a step back reads at once), a manual one in
  // tests.
  const int64_t now = options_.clock->NowMillis();
  const int64_t read = space_read_ms_.load(std::memory_order_relaxed);
  if (read == kNeverRead || now - read >= kSpaceReadIntervalMs || now < read ||
      written >= kSpaceReadBytes) {
    std::unique_lock lock(space_mu_, std::try_to_lock);
    if (lock.owns_lock()) ReadFreeSpace(now);
  }
  if (!space_low_.load(std::memory_order_acquire)) return absl::OkStatus();
  return MakeError(
      absl::StatusCode::kUnavailable, "storage_unavailable",
      StrCat("the disk of ", options_.path, " has ",
             free_bytes_.load(std::memory_order_relaxed) >> 20,
             " MiB free, less than storage.min_free_mb (", options_.min_free_bytes >> 20,
             " MiB): writes are refused until space is freed"));
}

uint64_t Store::FreeBytes() {
  std::lock_guard lock(space_mu_);
  ReadFreeSpace(options_.clock->NowMillis());
  return free_bytes_.load(std::memory_order_relaxed);
}

absl::Status Store::Write(rocksdb::WriteBatch* batch) {
  // A batch that only deletes goes through: its tombstones are keys only, the reserve holds
  // them, and erasures and clean-ups (the models' pending examples, read back once at start)
  // must not fail for want of the space they will free.
  if (batch->HasPut() || batch->HasMerge()) {
    if (absl::Status s = CheckSpace(batch->GetDataSize()); !s.ok()) return s;
  }
  rocksdb::WriteOptions wo;
  wo.sync = options_.sync;
  return Apply(wo, batch, "writing");
}

absl::Status Store::Apply(const rocksdb::WriteOptions& wo, rocksdb::WriteBatch* batch,
                          std::string_view what) {
  absl::Status status;
  if (options_.write_fault) status = options_.write_fault(*batch);
  if (status.ok()) status = FromRocks(db_->Write(wo, batch), what);
  if (!status.ok() && options_.on_write_error) options_.on_write_error(status);
  return status;
}

absl::StatusOr<std::optional<std::string>> Store::GetMeta(std::string_view key) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), meta(), key, &value);
  if (s.IsNotFound()) return std::nullopt;
  if (!s.ok()) return FromRocks(s, StrCat("reading ", key));
  return value;
}

absl::Status Store::PutMeta(std::string_view key, std::string_view value) {
  if (absl::Status s = CheckSpace(key.size() + value.size()); !s.ok()) return s;
  rocksdb::WriteBatch batch;
  if (auto s = batch.Put(meta(), key, value); !s.ok()) return FromRocks(s, "meta");
  rocksdb::WriteOptions wo;
  wo.sync = true;  // rare and must outlive power loss: keys printed to a user are final
  return Apply(wo, &batch, StrCat("writing ", key));
}

absl::Status Store::ScanMeta(
    std::string_view prefix,
    const std::function<void(std::string_view, std::string_view)>& fn) const {
  return ScanPrefix(meta(), prefix, [&](std::string_view key, std::string_view value) {
    fn(key, value);
    return true;
  });
}

absl::Status Store::ScanPrefix(
    rocksdb::ColumnFamilyHandle* cf, std::string_view prefix,
    const std::function<bool(std::string_view, std::string_view)>& fn) const {
  return ScanPrefixFrom(cf, prefix, prefix, fn);
}

absl::Status Store::ScanPrefixFrom(
    rocksdb::ColumnFamilyHandle* cf, std::string_view prefix, std::string_view start,
    const std::function<bool(std::string_view, std::string_view)>& fn) const {
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), cf));
  for (it->Seek(start); it->Valid() && it->key().starts_with(prefix); it->Next()) {
    if (!fn(it->key().ToStringView(), it->value().ToStringView())) break;
  }
  return FromRocks(it->status(), "scanning");
}

absl::StatusOr<std::optional<std::string>> Store::Get(rocksdb::ColumnFamilyHandle* cf,
                                                      std::string_view key) const {
  std::string value;
  rocksdb::Status s = db_->Get(rocksdb::ReadOptions(), cf, key, &value);
  if (s.IsNotFound()) return std::nullopt;
  if (!s.ok()) return FromRocks(s, "reading");
  return value;
}

absl::StatusOr<std::optional<std::string>> Store::GetEvent(uint32_t workspace_id,
                                                           uint64_t sequence) const {
  return Get(events(), EventKey(workspace_id, sequence));
}

absl::Status Store::ScanEvents(uint32_t workspace_id, uint64_t after,
                               const std::function<bool(uint64_t, std::string_view)>& fn) const {
  if (after == UINT64_MAX) return absl::OkStatus();  // no sequence comes after it
  rocksdb::ReadOptions ro;
  std::string upper =
      workspace_id == UINT32_MAX ? std::string(13, '\xff') : WorkspacePrefix(workspace_id + 1);
  rocksdb::Slice upper_slice(upper);
  ro.iterate_upper_bound = &upper_slice;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro, events()));
  for (it->Seek(EventKey(workspace_id, after + 1)); it->Valid(); it->Next()) {
    std::optional<EventKeyParts> parts = DecodeEventKey(it->key().ToStringView());
    if (!parts) continue;
    if (!fn(parts->sequence, it->value().ToStringView())) break;
  }
  return FromRocks(it->status(), "scanning events");
}

absl::Status Store::ScanEventsAfter(
    uint64_t after, const std::function<bool(uint32_t, uint64_t, std::string_view)>& fn) const {
  if (after == UINT64_MAX) return absl::OkStatus();
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), events()));
  it->SeekToFirst();
  while (it->Valid()) {
    std::optional<EventKeyParts> first = DecodeEventKey(it->key().ToStringView());
    if (!first) return absl::InternalError("scanning events: a malformed event key");
    uint32_t ws = first->workspace_id;
    // Lands on this workspace's first event above `after`, or on the next workspace's first.
    it->Seek(EventKey(ws, after + 1));
    for (; it->Valid(); it->Next()) {
      std::optional<EventKeyParts> parts = DecodeEventKey(it->key().ToStringView());
      if (!parts || parts->workspace_id != ws) break;
      if (!fn(ws, parts->sequence, it->value().ToStringView())) return absl::OkStatus();
    }
  }
  return FromRocks(it->status(), "scanning events");
}

absl::Status Store::IngestSorted(
    rocksdb::ColumnFamilyHandle* cf,
    std::span<const std::pair<std::string_view, std::string_view>> rows) {
  if (rows.empty()) return absl::OkStatus();
  size_t bytes = 0;
  for (const auto& [key, value] : rows) bytes += key.size() + value.size();
  if (absl::Status s = CheckSpace(bytes); !s.ok()) return s;
  std::filesystem::path dir = std::filesystem::path(options_.path) / kIngestDir;
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return absl::UnavailableError(StrCat("creating ", dir.string(), ": ", ec.message()));
  std::string file = (dir / StrCat(ingested_files_.fetch_add(1), ".sst")).string();
  // The file's pages stay in the page cache (invalidate_page_cache = false). With the default,
  // the writer dropped them, and each bloom-filter false positive of a dedupe lookup became a
  // disk read on the shard thread: 10M events on 2 cores (bench/, November 2026), the shard
  // thread spent a fifth of its time blocked in pread.
  rocksdb::SstFileWriter writer(rocksdb::EnvOptions(), db_->GetOptions(cf), cf,
                                /*invalidate_page_cache=*/false);
  rocksdb::Status s = writer.Open(file);
  for (size_t i = 0; s.ok() && i < rows.size(); ++i) {
    s = writer.Put(rows[i].first, rows[i].second);
  }
  if (s.ok()) s = writer.Finish();  // also fsyncs the file
  if (s.ok()) {
    rocksdb::IngestExternalFileOptions io;
    io.move_files = true;  // hard-links the file into the database instead of copying it
    s = db_->IngestExternalFile(cf, {file}, io);
  }
  std::filesystem::remove(file, ec);
  return FromRocks(s, StrCat("ingesting ", rows.size(), " rows"));
}

absl::StatusOr<uint64_t> Store::MaxEventSequence() const {
  // Each workspace's events are one range; the last key of each range has its highest sequence.
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions(), events()));
  uint64_t max_seq = 0;
  for (it->SeekToFirst(); it->Valid();) {
    uint32_t ws = GetBigEndian32(it->key().data());
    if (ws == UINT32_MAX) {
      it->SeekToLast();
    } else {
      it->SeekForPrev(WorkspacePrefix(ws + 1));
    }
    if (!it->Valid()) break;
    if (auto parts = DecodeEventKey(it->key().ToStringView())) {
      max_seq = std::max(max_seq, parts->sequence);
    }
    if (ws == UINT32_MAX) break;
    it->Seek(WorkspacePrefix(ws + 1));
  }
  if (!it->status().ok()) return FromRocks(it->status(), "scanning events");
  return max_seq;
}

uint64_t Store::SizeBytes() const {
  uint64_t total = 0;
  for (auto* h : handles_) {
    uint64_t v = 0;
    if (db_->GetIntProperty(h, rocksdb::DB::Properties::kTotalSstFilesSize, &v)) total += v;
    if (db_->GetIntProperty(h, rocksdb::DB::Properties::kTotalBlobFileSize, &v)) total += v;
  }
  // The live write-ahead log is not a RocksDB property: add the sizes of its files.
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator(options_.path, ec)) {
    if (entry.path().extension() == ".log") total += entry.file_size(ec);
  }
  return total;
}

absl::Status Store::CatchUp() { return FromRocks(db_->TryCatchUpWithPrimary(), "catching up"); }

absl::Status Store::Flush() {
  rocksdb::FlushOptions fo;
  fo.wait = true;
  if (auto s = db_->Flush(fo, handles_); !s.ok()) return FromRocks(s, "flushing");
  return FromRocks(db_->SyncWAL(), "syncing the write-ahead log");
}

}  // namespace whisperer::storage
