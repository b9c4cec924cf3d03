#include "state/dedupe.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>
#include <unordered_map>

#include "common/timestamp.h"
#include "storage/keys.h"
#include "testing/old_formats.h"
#include "testing/temp_dir.h"

namespace whisperer::state {
namespace {

class DedupeTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }
  void Open() {
    storage::Store::Options o;
    o.path = dir_.string();
    o.clock = &clock_;
    o.dedupe_window_ms = 10'000;
    store_ = *storage::Store::Open(o);
  }
  // Records `id` as stored by `index` at `at`, the way a shard does after its write.
  static void Record(DedupeIndex& index, uint32_t ws, std::string_view id, uint64_t seq,
                     int64_t at) {
    std::string key = storage::DedupeKey(ws, id);
    std::vector<DedupeIndex::NewEntry> entries = {{key, seq, at}};
    index.Record(entries);
  }
  // Writes an event row the way a shard does (its dedupe entry only in memory).
  void WriteEvent(uint32_t ws, uint64_t seq, std::string_view id, int64_t at) {
    rocksdb::WriteBatch batch;
    std::string json = "{\"messageId\":\"" + std::string(id) + "\",\"receivedAt\":\"" +
                       FormatIso8601(at) + "\",\"type\":\"track\"}";
    ASSERT_TRUE(batch.Put(store_->events(), storage::EventKey(ws, seq), json).ok());
    ASSERT_TRUE(store_->Write(&batch).ok());
  }
  std::vector<bool> Duplicates(const DedupeIndex& index, std::vector<MessageRef> refs) {
    std::vector<bool> dup;
    DedupeIndex::Keys keys;
    EXPECT_TRUE(index.FindDuplicates(refs, &dup, &keys).ok());
    return dup;
  }
  bool InColumnFamily(uint32_t ws, std::string_view id) {
    absl::StatusOr<std::optional<std::string>> v =
        store_->Get(store_->dedupe(), storage::DedupeKey(ws, id));
    return v.ok() && v->has_value();
  }
  testing::TempDir tmp_;  // declared first: removed after the store closes
  std::filesystem::path dir_ = tmp_.path();
  ManualClock clock_{100'000};
  std::unique_ptr<storage::Store> store_;
};

TEST_F(DedupeTest, RecordedWithinWindowIsDuplicate) {
  DedupeIndex index(store_.get(), &clock_);
  ASSERT_TRUE(index.Start().ok());
  Record(index, 1, "m1", 1, 100'000);
  std::vector<MessageRef> refs = {{1, "m1"}, {1, "m2"}, {2, "m1"}};
  EXPECT_EQ(Duplicates(index, refs), (std::vector<bool>{true, false, false}));  // per workspace
  clock_.Advance(10'001);                                                       // past the window
  EXPECT_EQ(Duplicates(index, refs), (std::vector<bool>{false, false, false}));
}

TEST_F(DedupeTest, RepeatsWithinOneGroup) {
  DedupeIndex index(store_.get(), &clock_);
  ASSERT_TRUE(index.Start().ok());
  std::vector<MessageRef> refs = {{1, "a"}, {1, "b"}, {1, "a"}, {1, "a"}};
  EXPECT_EQ(Duplicates(index, refs), (std::vector<bool>{false, false, true, true}));
}

TEST_F(DedupeTest, StopWritesEverythingAndTheNextStartReadsNothingBack) {
  {
    DedupeIndex index(store_.get(), &clock_);
    ASSERT_TRUE(index.Start().ok());
    WriteEvent(1, 1, "m1", 100'000);
    Record(index, 1, "m1", 1, 100'000);
    EXPECT_EQ(index.held(), 1u);
    EXPECT_FALSE(InColumnFamily(1, "m1"));  // in memory only, for now
    index.Stop();
    EXPECT_EQ(index.held(), 0u);
    EXPECT_TRUE(InColumnFamily(1, "m1"));
  }
  store_.reset();
  Open();
  DedupeIndex index(store_.get(), &clock_);
  ASSERT_TRUE(index.Start().ok());
  EXPECT_EQ(index.held(), 0u);  // the checkpoint covers sequence 1
  EXPECT_EQ(Duplicates(index, {{1, "m1"}, {1, "m2"}}), (std::vector<bool>{true, false}));
}

TEST_F(DedupeTest, StartReadsBackWhatACrashLeftOnlyInMemory) {
  {
    DedupeIndex index(store_.get(), &clock_);
    ASSERT_TRUE(index.Start().ok());  // checkpoint: nothing stored yet
    index.Stop();
  }
  // Events stored after the checkpoint whose entries died with the process.
  WriteEvent(1, 1, "m1", 100'000);
  WriteEvent(1, 2, "m2", 95'000);
  WriteEvent(7, 3, "m3", 80'000);  // older than the window by now
  store_.reset();
  Open();
  DedupeIndex index(store_.get(), &clock_);
  ASSERT_TRUE(index.Start().ok());
  EXPECT_EQ(index.held(), 3u);
  EXPECT_EQ(Duplicates(index, {{1, "m1"}, {1, "m2"}, {7, "m3"}, {7, "m1"}}),
            (std::vector<bool>{true, true, false, false}));
}

TEST_F(DedupeTest, AStoreWithoutACheckpointHasEverythingInTheColumnFamily) {
  // Stores written before entries were held in memory: their events are not read back.
  WriteEvent(1, 1, "m1", 100'000);
  DedupeIndex index(store_.get(), &clock_);
  ASSERT_TRUE(index.Start().ok());
  EXPECT_EQ(index.held(), 0u);
}

TEST_F(DedupeTest, CheckpointsOnceEnoughEntriesAreHeld) {
  DedupeIndex index(store_.get(), &clock_, {.checkpoint_entries = 2});
  ASSERT_TRUE(index.Start().ok());
  Record(index, 1, "a", 1, 100'000);
  Record(index, 1, "b", 2, 100'000);
  for (int i = 0; i < 500 && index.held() > 0; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  EXPECT_EQ(index.held(), 0u);
  EXPECT_TRUE(InColumnFamily(1, "a"));
  EXPECT_TRUE(InColumnFamily(1, "b"));
  EXPECT_EQ(Duplicates(index, {{1, "a"}, {1, "b"}, {1, "c"}}),
            (std::vector<bool>{true, true, false}));
}

TEST_F(DedupeTest, ForgottenEntriesAreGoneFromMemoryAndStore) {
  DedupeIndex index(store_.get(), &clock_);
  ASSERT_TRUE(index.Start().ok());
  Record(index, 1, "a", 1, 100'000);
  Record(index, 1, "b", 2, 100'000);
  {
    DedupeIndex::DeletionScope deleting(&index);
    rocksdb::WriteBatch batch;
    ASSERT_TRUE(batch.Delete(store_->dedupe(), storage::DedupeKey(1, "a")).ok());
    ASSERT_TRUE(batch.Delete(store_->events(), storage::EventKey(1, 1)).ok());
    ASSERT_TRUE(store_->Write(&batch).ok());
    index.Forget(batch);
  }
  EXPECT_EQ(index.held(), 1u);
  index.Stop();  // the checkpoint does not bring "a" back
  EXPECT_FALSE(InColumnFamily(1, "a"));
  EXPECT_EQ(Duplicates(index, {{1, "a"}, {1, "b"}}), (std::vector<bool>{false, true}));
}

TEST_F(DedupeTest, OldEntryMustMatchTheMessageIdExactly) {
  // An entry of the old format (with its messageId) under this key for another messageId, as
  // after a hash collision, does not make the new event a duplicate; one for the same
  // messageId does, within the window, as an entry of the new format does.
  rocksdb::WriteBatch batch;
  ASSERT_TRUE(batch
                  .Put(store_->dedupe(), storage::DedupeKey(1, "real"),
                       testing::OldDedupeEntry(1, 100'000, "impostor"))
                  .ok());
  ASSERT_TRUE(batch
                  .Put(store_->dedupe(), storage::DedupeKey(1, "kept"),
                       testing::OldDedupeEntry(2, 100'000, "kept"))
                  .ok());
  ASSERT_TRUE(
      batch.Put(store_->dedupe(), storage::DedupeKey(1, "new"), storage::EncodeDedupeEntry(100'000))
          .ok());
  ASSERT_TRUE(store_->Write(&batch).ok());
  clock_.Set(105'000);
  DedupeIndex index(store_.get(), &clock_);
  ASSERT_TRUE(index.Start().ok());
  EXPECT_EQ(Duplicates(index, {{1, "real"}, {1, "kept"}, {1, "new"}, {1, "other"}}),
            (std::vector<bool>{false, true, true, false}));
  clock_.Set(111'000);  // past the 10 s window: none is a retry any more
  EXPECT_EQ(Duplicates(index, {{1, "kept"}, {1, "new"}}), (std::vector<bool>{false, false}));
}

TEST_F(DedupeTest, CheckpointWritesEntriesInKeyOrderWithTheirReceivedAt) {
  // The checkpoint sorts by the keys' first 8 bytes (workspace and 4 hash bytes), then the
  // rest. Two messageIds whose keys tie on those 8 bytes (found by search: about 80,000
  // tries), among 2,000 others over two workspaces: the table file must be sorted
  // (IngestSorted refuses otherwise) and every entry must read back.
  std::unordered_map<std::string, std::string> by_prefix;
  std::string tied[2];
  for (uint64_t i = 0; tied[0].empty(); ++i) {
    std::string id = "tie-" + std::to_string(i);
    auto [it, inserted] = by_prefix.emplace(storage::DedupeKey(1, id).substr(0, 8), id);
    if (!inserted) tied[0] = it->second, tied[1] = id;
  }
  DedupeIndex index(store_.get(), &clock_);
  ASSERT_TRUE(index.Start().ok());
  Record(index, 1, tied[1], 1, 999'999);
  for (uint64_t i = 0; i < 2000; ++i) {
    Record(index, 1 + static_cast<uint32_t>(i % 2), "m-" + std::to_string(i), i + 2,
           1'000'000 + static_cast<int64_t>(i));
  }
  Record(index, 1, tied[0], 2002, 999'998);
  index.Stop();
  std::unique_ptr<rocksdb::Iterator> it(
      store_->db()->NewIterator(rocksdb::ReadOptions(), store_->dedupe()));
  std::string previous;
  size_t rows = 0;
  for (it->SeekToFirst(); it->Valid(); it->Next(), ++rows) {
    EXPECT_LT(previous, it->key().ToString());
    previous = it->key().ToString();
    EXPECT_EQ(it->value().size(), storage::kDedupeEntryBytes);
  }
  EXPECT_EQ(rows, 2002u);
  for (int k = 0; k < 2; ++k) {
    std::string v;
    ASSERT_TRUE(store_->db()->Get({}, store_->dedupe(), storage::DedupeKey(1, tied[k]), &v).ok());
    EXPECT_EQ(storage::DecodeDedupeEntry(v)->received_at_ms, 999'998 + k);
  }
  // Read back from the table file (nothing held in memory): every one a retry, in one lookup
  // with the tied pair and ids never seen.
  DedupeIndex reopened(store_.get(), &clock_);
  ASSERT_TRUE(reopened.Start().ok());
  ASSERT_EQ(reopened.held(), 0u);
  clock_.Set(1'000'000);
  std::vector<MessageRef> refs;
  std::vector<bool> expected;
  std::vector<std::string> ids;
  for (uint64_t i = 0; i < 2000; ++i) ids.push_back("m-" + std::to_string(i));
  for (uint64_t i = 0; i < 2000; ++i) {
    refs.push_back({1 + static_cast<uint32_t>(i % 2), ids[i]});
    expected.push_back(true);
    refs.push_back({2 - static_cast<uint32_t>(i % 2), ids[i]});  // the other workspace
    expected.push_back(false);
  }
  refs.push_back({1, tied[0]});
  refs.push_back({1, tied[1]});
  expected.insert(expected.end(), {true, true});
  EXPECT_EQ(Duplicates(reopened, refs), expected);
  for (uint64_t i : {0u, 777u, 1999u}) {
    std::string v;
    ASSERT_TRUE(
        store_->db()
            ->Get({}, store_->dedupe(),
                  storage::DedupeKey(1 + static_cast<uint32_t>(i % 2), "m-" + std::to_string(i)),
                  &v)
            .ok());
    EXPECT_EQ(storage::DecodeDedupeEntry(v)->received_at_ms, 1'000'000 + static_cast<int64_t>(i));
  }
}

}  // namespace
}  // namespace whisperer::state
