#include "storage/store.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <map>
#include <random>

#include "common/status.h"
#include "common/strings.h"
#include "rocksdb/slice_transform.h"
#include "rocksdb/utilities/options_util.h"
#include "storage/keys.h"
#include "testing/old_formats.h"
#include "testing/temp_dir.h"

namespace whisperer::storage {
namespace {

class StoreTest : public ::testing::Test {
 protected:
  Store::Options Opts() {
    Store::Options o;
    o.path = dir_.string();
    o.clock = &clock_;
    o.dedupe_window_ms = 1000;
    return o;
  }
  testing::TempDir tmp_;  // declared first: removed after the store closes
  std::filesystem::path dir_ = tmp_.path();
  ManualClock clock_{1'000'000};
};

TEST_F(StoreTest, MetaPersistsAcrossReopen) {
  {
    auto store = Store::Open(Opts());
    ASSERT_TRUE(store.ok()) << store.status();
    EXPECT_FALSE((*store)->GetMeta("x")->has_value());
    ASSERT_TRUE((*store)->PutMeta("x", "1").ok());
  }
  auto store = Store::Open(Opts());
  ASSERT_TRUE(store.ok());
  EXPECT_EQ(**(*store)->GetMeta("x"), "1");
}

// RocksDB's checksums go to storage/crc32c.cc, on the crc32 instruction where the CPU has it,
// and what they wrote reads back after a reopen (the WAL's records are checked on replay).
// Memtable inserts start next to the previous key of the same prefix: the workspace for events,
// the workspace and the kind of row for the decision log (the OPTIONS file RocksDB keeps says
// what the column families were opened with).
TEST_F(StoreTest, EventsAndDecisionsInsertNextToThePreviousKeyOfTheirPrefix) {
  { ASSERT_TRUE(Store::Open(Opts()).ok()); }
  rocksdb::DBOptions db;
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  rocksdb::ConfigOptions config;
  ASSERT_TRUE(rocksdb::LoadLatestOptions(config, dir_.string(), &db, &families).ok());
  std::map<std::string, std::string> hint;
  for (const auto& f : families) {
    const auto& extractor = f.options.memtable_insert_with_hint_prefix_extractor;
    hint[f.name] = extractor ? extractor->AsString() : "";
  }
  EXPECT_EQ(hint["events"], "rocksdb.FixedPrefix.4");
  EXPECT_EQ(hint["decisions"], "rocksdb.FixedPrefix.5");
  EXPECT_EQ(hint["profiles"], "");
}

TEST_F(StoreTest, ChecksumsRunOnTheCrc32InstructionWhereTheCpuHasIt) {
  {
    auto store = *Store::Open(Opts());
    __builtin_cpu_init();
    EXPECT_EQ(store->checksums_accelerated(), static_cast<bool>(__builtin_cpu_supports("sse4.2")));
    rocksdb::WriteBatch batch;
    ASSERT_TRUE(batch.Put(store->meta(), "k", std::string(100'000, 'v')).ok());
    ASSERT_TRUE(store->Write(&batch).ok());
  }
  auto store = *Store::Open(Opts());
  EXPECT_EQ(**store->GetMeta("k"), std::string(100'000, 'v'));
}

// The write-ahead log is written back in steps by a thread of the Store, which follows the
// log RocksDB is writing (the /v1/track latency bench in bench/ depends on it).
TEST_F(StoreTest, TheCurrentLogIsWrittenBack) {
  auto store = *Store::Open(Opts());
  rocksdb::WriteBatch batch;
  ASSERT_TRUE(batch.Put(store->events(), "k1", std::string(4096, 'x')).ok());
  ASSERT_TRUE(store->Write(&batch).ok());
  std::unique_ptr<rocksdb::LogFile> log;
  ASSERT_TRUE(store->db()->GetCurrentWalFile(&log).ok());
  EXPECT_EQ(store->WriteBackLog(), log->LogNumber());
  // A flush starts a new log; the next step follows it.
  ASSERT_TRUE(store->Flush().ok());
  ASSERT_TRUE(store->Write(&batch).ok());
  std::unique_ptr<rocksdb::LogFile> next;
  ASSERT_TRUE(store->db()->GetCurrentWalFile(&next).ok());
  EXPECT_GT(next->LogNumber(), log->LogNumber());
  EXPECT_EQ(store->WriteBackLog(), next->LogNumber());
}

TEST_F(StoreTest, WithSyncThereIsNoLogWriteback) {
  Store::Options o = Opts();
  o.sync = true;
  auto store = *Store::Open(o);
  EXPECT_EQ(store->WriteBackLog(), 0u);
}

TEST_F(StoreTest, SecondOpenIsRefusedClearly) {
  auto first = Store::Open(Opts());
  ASSERT_TRUE(first.ok());
  auto second = Store::Open(Opts());
  ASSERT_FALSE(second.ok());
  EXPECT_EQ(ErrorCodeOf(second.status()), "data_dir_in_use");
}

TEST_F(StoreTest, MaxEventSequenceAcrossWorkspaces) {
  auto store = *Store::Open(Opts());
  EXPECT_EQ(*store->MaxEventSequence(), 0u);
  rocksdb::WriteBatch batch;
  ASSERT_TRUE(batch.Put(store->events(), EventKey(1, 5), "a").ok());
  ASSERT_TRUE(batch.Put(store->events(), EventKey(1, 9), "b").ok());
  ASSERT_TRUE(batch.Put(store->events(), EventKey(2, 7), "c").ok());
  ASSERT_TRUE(batch.Put(store->events(), EventKey(3, 2), "d").ok());
  ASSERT_TRUE(store->Write(&batch).ok());
  EXPECT_EQ(*store->MaxEventSequence(), 9u);
  EXPECT_GT(store->SizeBytes(), 0u);
}

TEST_F(StoreTest, TheDecisionLogLivesInBlobFilesCountedInTheSize) {
  auto store = *Store::Open(Opts());
  std::mt19937_64 rng(1);
  std::vector<std::string> records;
  rocksdb::WriteBatch batch;
  for (uint64_t id = 1; id <= 200; ++id) {
    std::string record(2000, ' ');
    for (char& c : record) c = static_cast<char>('a' + rng() % 26);  // barely compressible
    ASSERT_TRUE(batch.Put(store->decisions(), DecisionKey(1, id), record).ok());
    records.push_back(std::move(record));
  }
  ASSERT_TRUE(store->Write(&batch).ok());
  ASSERT_TRUE(store->Flush().ok());
  uint64_t blob = 0, log = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir_)) {
    if (entry.path().extension() == ".blob") blob += entry.file_size();
    if (entry.path().extension() == ".log") log += entry.file_size();
  }
  EXPECT_GT(blob, 200u * 1000);  // the records, LZ4 or not
  EXPECT_GE(store->SizeBytes(), blob + log);
  for (uint64_t id : {1, 200}) {
    EXPECT_EQ(**store->Get(store->decisions(), DecisionKey(1, id)), records[id - 1]);
  }
}

TEST_F(StoreTest, ScanEventsIsOneWorkspaceInOrder) {
  auto store = *Store::Open(Opts());
  rocksdb::WriteBatch batch;
  for (uint64_t seq : {3, 1, 2}) {
    ASSERT_TRUE(batch.Put(store->events(), EventKey(5, seq), "e" + std::to_string(seq)).ok());
  }
  ASSERT_TRUE(batch.Put(store->events(), EventKey(6, 4), "other").ok());
  ASSERT_TRUE(store->Write(&batch).ok());
  std::vector<std::string> seen;
  auto collect = [&](uint64_t, std::string_view json) {
    seen.emplace_back(json);
    return true;
  };
  ASSERT_TRUE(store->ScanEvents(5, 0, collect).ok());
  EXPECT_EQ(seen, (std::vector<std::string>{"e1", "e2", "e3"}));
  seen.clear();
  ASSERT_TRUE(store
                  ->ScanEvents(5, 1,
                               [&](uint64_t seq, std::string_view json) {
                                 seen.emplace_back(json);
                                 return seq < 2;
                               })
                  .ok());
  EXPECT_EQ(seen, (std::vector<std::string>{"e2"}));
  seen.clear();  // no sequence comes after the largest
  ASSERT_TRUE(store->ScanEvents(5, UINT64_MAX, collect).ok());
  EXPECT_TRUE(seen.empty());
}

TEST_F(StoreTest, ScanEventsAfterSkipsEachWorkspacesOlderEvents) {
  auto store = *Store::Open(Opts());
  rocksdb::WriteBatch batch;
  for (auto [ws, seq] : std::vector<std::pair<uint32_t, uint64_t>>{
           {1, 1}, {1, 4}, {1, 6}, {2, 2}, {2, 3}, {3, 5}, {4, 7}}) {
    ASSERT_TRUE(batch.Put(store->events(), EventKey(ws, seq), std::to_string(seq)).ok());
  }
  ASSERT_TRUE(store->Write(&batch).ok());
  std::vector<std::pair<uint32_t, uint64_t>> seen;
  auto collect = [&](uint32_t ws, uint64_t seq, std::string_view json) {
    EXPECT_EQ(json, std::to_string(seq));
    seen.emplace_back(ws, seq);
    return true;
  };
  ASSERT_TRUE(store->ScanEventsAfter(3, collect).ok());
  EXPECT_EQ(seen, (std::vector<std::pair<uint32_t, uint64_t>>{{1, 4}, {1, 6}, {3, 5}, {4, 7}}));
  seen.clear();
  ASSERT_TRUE(store->ScanEventsAfter(7, collect).ok());
  EXPECT_TRUE(seen.empty());
  ASSERT_TRUE(store
                  ->ScanEventsAfter(0,
                                    [&](uint32_t ws, uint64_t seq, std::string_view) {
                                      seen.emplace_back(ws, seq);
                                      return seen.size() < 2;
                                    })
                  .ok());
  EXPECT_EQ(seen, (std::vector<std::pair<uint32_t, uint64_t>>{{1, 1}, {1, 4}}));
}

TEST_F(StoreTest, IngestSortedRowsAreReadableAndNewerThanEarlierWrites) {
  {
    auto store = *Store::Open(Opts());
    rocksdb::WriteBatch batch;
    ASSERT_TRUE(batch.Put(store->dedupe(), "b", "old").ok());
    ASSERT_TRUE(store->Write(&batch).ok());
    std::vector<std::pair<std::string_view, std::string_view>> rows = {
        {"a", "1"}, {"b", "2"}, {"c", "3"}};
    ASSERT_TRUE(store->IngestSorted(store->dedupe(), rows).ok());
    EXPECT_TRUE(store->IngestSorted(store->dedupe(), {}).ok());
    // Not sorted: refused, nothing of it ingested.
    std::vector<std::pair<std::string_view, std::string_view>> unsorted = {{"z", "1"}, {"y", "2"}};
    EXPECT_FALSE(store->IngestSorted(store->dedupe(), unsorted).ok());
  }
  auto store = *Store::Open(Opts());  // durable across a reopen
  for (auto [key, value] :
       std::vector<std::pair<std::string, std::string>>{{"a", "1"}, {"b", "2"}, {"c", "3"}}) {
    auto got = store->Get(store->dedupe(), key);
    ASSERT_TRUE(got.ok() && got->has_value()) << key;
    EXPECT_EQ(**got, value);
  }
  EXPECT_FALSE(store->Get(store->dedupe(), "z")->has_value());
  EXPECT_FALSE(std::filesystem::exists(dir_ / "ingest") &&
               !std::filesystem::is_empty(dir_ / "ingest"));
}

// While the disk has less than min_free_bytes free, every kind of write is refused with
// storage_unavailable and writes nothing; once space is freed, writes resume (at the next
// reading, at most 100 ms later). The server is told of both changes.
TEST_F(StoreTest, WritesAreRefusedWhileTheDiskIsLowAndResumeOnceSpaceIsFreed) {
  std::atomic<uint64_t> free{1'000'000};
  std::vector<std::pair<bool, uint64_t>> changes;
  Store::Options o = Opts();
  o.min_free_bytes = 500'000;
  o.free_bytes = [&free](const std::string& path) -> absl::StatusOr<uint64_t> {
    EXPECT_FALSE(path.empty());
    return free.load();
  };
  o.on_space_change = [&changes](bool low, uint64_t bytes) { changes.emplace_back(low, bytes); };
  auto store = *Store::Open(o);
  auto put = [&](std::string_view key) {
    rocksdb::WriteBatch batch;
    EXPECT_TRUE(batch.Put(store->dedupe(), key, "v").ok());
    return store->Write(&batch);
  };
  ASSERT_TRUE(put("before").ok());
  EXPECT_TRUE(changes.empty());

  free = 300'000;
  EXPECT_EQ(store->FreeBytes(), 300'000u);  // a reading now, as a metrics scrape takes
  absl::Status refused = put("during");
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(ErrorCodeOf(refused), "storage_unavailable");
  EXPECT_NE(refused.message().find("storage.min_free_mb"), std::string_view::npos)
      << refused.message();
  EXPECT_EQ(ErrorCodeOf(store->PutMeta("k", "v")), "storage_unavailable");
  std::vector<std::pair<std::string_view, std::string_view>> rows = {{"r", "1"}};
  EXPECT_EQ(ErrorCodeOf(store->IngestSorted(store->dedupe(), rows)), "storage_unavailable");
  EXPECT_FALSE(store->Get(store->dedupe(), "during")->has_value());
  EXPECT_FALSE(store->GetMeta("k")->has_value());
  EXPECT_FALSE(store->Get(store->dedupe(), "r")->has_value());
  rocksdb::WriteBatch deletes;  // only deletes: let through
  ASSERT_TRUE(deletes.Delete(store->dedupe(), "before").ok());
  ASSERT_TRUE(store->Write(&deletes).ok());
  EXPECT_FALSE(store->Get(store->dedupe(), "before")->has_value());
  ASSERT_EQ(changes.size(), 1u);
  EXPECT_EQ(changes[0], std::make_pair(true, uint64_t{300'000}));

  free = 2'000'000;
  clock_.Advance(99);
  ASSERT_FALSE(put("still").ok());  // the reading of 100 ms ago stands
  clock_.Advance(1);
  ASSERT_TRUE(put("after").ok());
  EXPECT_TRUE(store->Get(store->dedupe(), "after")->has_value());
  ASSERT_EQ(changes.size(), 2u);
  EXPECT_EQ(changes[1], std::make_pair(false, uint64_t{2'000'000}));
}

// The space is read again after 16 MiB written, without waiting for the interval: a burst of
// large writes cannot run far past the reserve.
TEST_F(StoreTest, SpaceIsReadAgainAfterSixteenMebibytesWritten) {
  std::atomic<uint64_t> free{1'000'000};
  std::atomic<int> readings{0};
  Store::Options o = Opts();
  o.min_free_bytes = 500'000;
  o.free_bytes = [&](const std::string&) -> absl::StatusOr<uint64_t> {
    ++readings;
    return free.load();
  };
  auto store = *Store::Open(o);
  rocksdb::WriteBatch small;
  ASSERT_TRUE(small.Put(store->dedupe(), "a", "1").ok());
  ASSERT_TRUE(store->Write(&small).ok());
  const int after_first = readings.load();
  free = 0;
  ASSERT_TRUE(store->Write(&small).ok());  // within the interval: the last reading stands
  EXPECT_EQ(readings.load(), after_first);
  rocksdb::WriteBatch big;
  ASSERT_TRUE(big.Put(store->dedupe(), "big", std::string(16 << 20, 'x')).ok());
  EXPECT_EQ(ErrorCodeOf(store->Write(&big)), "storage_unavailable");
  EXPECT_EQ(readings.load(), after_first + 1);
  EXPECT_FALSE(store->Get(store->dedupe(), "big")->has_value());
}

// min_free_bytes 0 never refuses; a store opened on a low disk says so at once; a reading
// that fails leaves the last answer in place.
TEST_F(StoreTest, NoReserveNeverRefusesAndALowDiskIsReportedAtOpen) {
  {
    Store::Options o = Opts();
    o.min_free_bytes = 0;
    o.free_bytes = [](const std::string&) -> absl::StatusOr<uint64_t> { return 0; };
    auto store = *Store::Open(o);
    rocksdb::WriteBatch batch;
    ASSERT_TRUE(batch.Put(store->dedupe(), "a", "1").ok());
    EXPECT_TRUE(store->Write(&batch).ok());
  }
  std::vector<bool> changes;
  std::atomic<bool> fail{false};
  Store::Options o = Opts();
  o.min_free_bytes = 500'000;
  o.free_bytes = [&fail](const std::string&) -> absl::StatusOr<uint64_t> {
    if (fail) return absl::UnavailableError("statvfs failed");
    return 1000;
  };
  o.on_space_change = [&changes](bool low, uint64_t) { changes.push_back(low); };
  auto store = *Store::Open(o);
  EXPECT_EQ(changes, std::vector<bool>{true});
  fail = true;
  EXPECT_EQ(store->FreeBytes(), 1000u);
  rocksdb::WriteBatch batch;
  ASSERT_TRUE(batch.Put(store->dedupe(), "a", "1").ok());
  EXPECT_EQ(ErrorCodeOf(store->Write(&batch)), "storage_unavailable");
}

// A write that fails is reported to on_write_error (the server logs it); one refused for want
// of space is not (on_space_change reported that).
TEST_F(StoreTest, FailedWritesAreReportedRefusedOnesAreNot) {
  std::vector<std::string> errors;
  bool fail = true;
  uint64_t free = 1'000'000;
  Store::Options o = Opts();
  o.min_free_bytes = 500'000;
  o.free_bytes = [&free](const std::string&) -> absl::StatusOr<uint64_t> { return free; };
  o.write_fault = [&fail](const rocksdb::WriteBatch&) {
    return fail ? MakeError(absl::StatusCode::kUnavailable, "storage_unavailable", "disk gone")
                : absl::OkStatus();
  };
  o.on_write_error = [&errors](const absl::Status& s) { errors.push_back(ErrorCodeOf(s)); };
  auto store = *Store::Open(o);
  rocksdb::WriteBatch batch;
  ASSERT_TRUE(batch.Put(store->dedupe(), "a", "1").ok());
  EXPECT_FALSE(store->Write(&batch).ok());
  EXPECT_EQ(errors, std::vector<std::string>{"storage_unavailable"});
  EXPECT_FALSE(store->PutMeta("k", "v").ok());  // a meta row as well
  EXPECT_EQ(errors.size(), 2u);
  EXPECT_FALSE(store->GetMeta("k")->has_value());
  errors.pop_back();
  fail = false;
  EXPECT_TRUE(store->Write(&batch).ok());
  free = 0;
  store->FreeBytes();
  EXPECT_FALSE(store->Write(&batch).ok());
  EXPECT_EQ(errors.size(), 1u);
}

// The real reading (statvfs) of the test's directory.
TEST_F(StoreTest, FreeBytesReadsTheFileSystem) {
  auto store = *Store::Open(Opts());
  EXPECT_GT(store->FreeBytes(), 0u);
}

// Lookups that a bloom filter lets through read the ingested file: its pages must still be in
// the page cache, not on disk only (store.cc, IngestSorted).
TEST_F(StoreTest, IngestedFileStaysInThePageCache) {
  auto store = *Store::Open(Opts());
  std::vector<std::string> keys, values;
  for (int i = 0; i < 40'000; ++i) {  // about 4 MB: the writer used to drop every 1 MB
    keys.push_back(DedupeKey(1, StrCat("message-", 1'000'000 + i)));
    values.push_back(std::string(64, 'v'));
  }
  std::sort(keys.begin(), keys.end());
  std::vector<std::pair<std::string_view, std::string_view>> rows;
  for (size_t i = 0; i < keys.size(); ++i) rows.emplace_back(keys[i], values[i]);
  ASSERT_TRUE(store->IngestSorted(store->dedupe(), rows).ok());

  std::vector<rocksdb::LiveFileMetaData> files;
  store->db()->GetLiveFilesMetaData(&files);
  std::string path;
  for (const auto& f : files) {
    if (f.column_family_name == "dedupe") path = f.db_path + f.name;
  }
  ASSERT_FALSE(path.empty());
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  ASSERT_GE(fd, 0) << path;
  struct stat st;
  ASSERT_EQ(fstat(fd, &st), 0);
  ASSERT_GT(st.st_size, 2 << 20);
  void* map = mmap(nullptr, st.st_size, PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  ASSERT_NE(map, MAP_FAILED);
  const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
  std::vector<unsigned char> resident((st.st_size + page - 1) / page);
  ASSERT_EQ(mincore(map, st.st_size, resident.data()), 0);
  munmap(map, st.st_size);
  size_t in_cache = 0;
  for (unsigned char r : resident) in_cache += r & 1;
  EXPECT_GE(in_cache * 10, resident.size() * 9) << in_cache << " of " << resident.size();
}

// The scheduling policies of this process's threads named `name`.
std::vector<int> PoliciesOfThreads(std::string_view name) {
  std::vector<int> out;
  for (const auto& task : std::filesystem::directory_iterator("/proc/self/task")) {
    std::ifstream comm(task.path() / "comm");
    std::string thread_name;
    std::getline(comm, thread_name);
    if (thread_name != name) continue;
    out.push_back(sched_getscheduler(std::stoi(task.path().filename().string())));
  }
  return out;
}

TEST(BackgroundPriorityTest, NamedAsInTheConfig) {
  EXPECT_EQ(BackgroundPriorityNamed("idle"), BackgroundPriority::kIdle);
  EXPECT_EQ(BackgroundPriorityNamed("low"), BackgroundPriority::kLow);
  EXPECT_EQ(BackgroundPriorityNamed("normal"), BackgroundPriority::kNormal);
  EXPECT_EQ(BackgroundPriorityNamed("Idle"), std::nullopt);
  EXPECT_EQ(BackgroundPriorityNamed(""), std::nullopt);
}

TEST_F(StoreTest, FlushesAndCompactionsRunAtIdlePriority) {
  Store::Options o = Opts();
  ASSERT_EQ(o.background_priority, BackgroundPriority::kIdle);  // the default
  auto store = *Store::Open(o);
  rocksdb::WriteBatch batch;
  ASSERT_TRUE(batch.Put(store->events(), EventKey(1, 1), "event").ok());
  ASSERT_TRUE(store->Write(&batch).ok());
  ASSERT_TRUE(store->Flush().ok());  // a job of the flush pool
  ASSERT_TRUE(store->db()->CompactRange({}, store->events(), nullptr, nullptr).ok());  // compaction
  // The thread that ran each job took the priority before running it.
  for (std::string_view pool : {"rocksdb:high", "rocksdb:low"}) {
    std::vector<int> policies = PoliciesOfThreads(pool);
    EXPECT_NE(std::find(policies.begin(), policies.end(), SCHED_IDLE), policies.end()) << pool;
  }
}

TEST_F(StoreTest, FollowerSeesWritesOfRunningPrimary) {
  auto primary = *Store::Open(Opts());
  rocksdb::WriteBatch batch;
  ASSERT_TRUE(batch.Put(primary->events(), EventKey(1, 1), "first").ok());
  ASSERT_TRUE(primary->Write(&batch).ok());
  auto follower = Store::OpenFollower(dir_.string());
  ASSERT_TRUE(follower.ok()) << follower.status();
  std::string v;
  ASSERT_TRUE((*follower)->db()->Get({}, (*follower)->events(), EventKey(1, 1), &v).ok());
  EXPECT_EQ(v, "first");
  rocksdb::WriteBatch more;
  ASSERT_TRUE(more.Put(primary->events(), EventKey(1, 2), "second").ok());
  ASSERT_TRUE(primary->Write(&more).ok());
  ASSERT_TRUE((*follower)->CatchUp().ok());
  ASSERT_TRUE((*follower)->db()->Get({}, (*follower)->events(), EventKey(1, 2), &v).ok());
  EXPECT_EQ(v, "second");
}

TEST_F(StoreTest, FollowerOfMissingDirectoryIsNotFound) {
  auto follower = Store::OpenFollower(dir_.string());
  EXPECT_EQ(follower.status().code(), absl::StatusCode::kNotFound);
}

TEST_F(StoreTest, CompactionDropsExpiredDedupeEntries) {
  auto store = *Store::Open(Opts());
  rocksdb::WriteBatch batch;
  ASSERT_TRUE(batch.Put(store->dedupe(), DedupeKey(1, "old"), EncodeDedupeEntry(1'000'000)).ok());
  ASSERT_TRUE(batch.Put(store->dedupe(), DedupeKey(1, "new"), EncodeDedupeEntry(1'001'500)).ok());
  // Entries of the old format (with sequence and messageId) expire the same way.
  ASSERT_TRUE(batch
                  .Put(store->dedupe(), DedupeKey(1, "old-format-old"),
                       testing::OldDedupeEntry(1, 1'000'000, "old-format-old"))
                  .ok());
  ASSERT_TRUE(batch
                  .Put(store->dedupe(), DedupeKey(1, "old-format-new"),
                       testing::OldDedupeEntry(2, 1'001'500, "old-format-new"))
                  .ok());
  ASSERT_TRUE(store->Write(&batch).ok());
  clock_.Set(1'002'000);  // "old" is 2000 ms old, past the 1000 ms window; "new" 500 ms.
  ASSERT_TRUE(store->Flush().ok());
  ASSERT_TRUE(store->db()->CompactRange({}, store->dedupe(), nullptr, nullptr).ok());
  std::string v;
  EXPECT_TRUE(store->db()->Get({}, store->dedupe(), DedupeKey(1, "old"), &v).IsNotFound());
  EXPECT_TRUE(store->db()->Get({}, store->dedupe(), DedupeKey(1, "new"), &v).ok());
  EXPECT_TRUE(
      store->db()->Get({}, store->dedupe(), DedupeKey(1, "old-format-old"), &v).IsNotFound());
  EXPECT_TRUE(store->db()->Get({}, store->dedupe(), DedupeKey(1, "old-format-new"), &v).ok());
}

}  // namespace
}  // namespace whisperer::storage
