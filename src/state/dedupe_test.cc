#include "state/dedupe.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <thread>

#include "common/timestamp.h"
#include "storage/keys.h"
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
    MessageRef ref{ws, id};
    std::string key = storage::DedupeKey(ws, id);
    std::vector<DedupeIndex::NewEntry> entries = {{&ref, key, seq, at}};
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

TEST_F(DedupeTest, StoredEntryMustMatchTheMessageIdExactly) {
  // A dedupe entry under this key for another messageId (as after a hash collision) does not
  // make the new event a duplicate, whether it is in the store or in memory.
  rocksdb::WriteBatch batch;
  ASSERT_TRUE(batch
                  .Put(store_->dedupe(), storage::DedupeKey(1, "real"),
                       storage::EncodeDedupeEntry({1, 100'000, "impostor"}))
                  .ok());
  ASSERT_TRUE(store_->Write(&batch).ok());
  DedupeIndex index(store_.get(), &clock_);
  ASSERT_TRUE(index.Start().ok());
  EXPECT_EQ(Duplicates(index, {{1, "real"}}), (std::vector<bool>{false}));
  MessageRef impostor{2, "impostor"};
  std::string key = storage::DedupeKey(2, "real");
  std::vector<DedupeIndex::NewEntry> entries = {{&impostor, key, 2, 100'000}};
  index.Record(entries);
  EXPECT_EQ(Duplicates(index, {{2, "real"}}), (std::vector<bool>{false}));
}

}  // namespace
}  // namespace whisperer::state
