#include "state/dedupe.h"

#include <gtest/gtest.h>

#include <filesystem>

#include "storage/keys.h"
#include "testing/temp_dir.h"

namespace whisperer::state {
namespace {

class DedupeTest : public ::testing::Test {
 protected:
  void SetUp() override {
    storage::Store::Options o;
    o.path = dir_.string();
    o.clock = &clock_;
    o.dedupe_window_ms = 10'000;
    store_ = *storage::Store::Open(o);
  }
  void Store(uint32_t ws, std::string_view id, int64_t at) {
    rocksdb::WriteBatch batch;
    MessageRef ref{ws, id};
    std::string key = storage::DedupeKey(ws, id);
    std::vector<DedupeIndex::NewEntry> entries = {{&ref, key, 1, at}};
    ASSERT_TRUE(DedupeIndex(store_.get(), &clock_).Record(entries, &batch).ok());
    ASSERT_TRUE(store_->Write(&batch).ok());
  }
  testing::TempDir tmp_;  // declared first: removed after the store closes
  std::filesystem::path dir_ = tmp_.path();
  ManualClock clock_{100'000};
  std::unique_ptr<storage::Store> store_;
};

TEST_F(DedupeTest, StoredWithinWindowIsDuplicate) {
  Store(1, "m1", 100'000);
  DedupeIndex index(store_.get(), &clock_);
  std::vector<MessageRef> refs = {{1, "m1"}, {1, "m2"}, {2, "m1"}};
  std::vector<bool> dup;
  DedupeIndex::Keys keys;
  ASSERT_TRUE(index.FindDuplicates(refs, &dup, &keys).ok());
  EXPECT_EQ(dup, (std::vector<bool>{true, false, false}));  // workspaces are separate
  clock_.Advance(10'001);                                   // past the window
  ASSERT_TRUE(index.FindDuplicates(refs, &dup, &keys).ok());
  EXPECT_EQ(dup, (std::vector<bool>{false, false, false}));
}

TEST_F(DedupeTest, RepeatsWithinOneGroup) {
  DedupeIndex index(store_.get(), &clock_);
  std::vector<MessageRef> refs = {{1, "a"}, {1, "b"}, {1, "a"}, {1, "a"}};
  std::vector<bool> dup;
  DedupeIndex::Keys keys;
  ASSERT_TRUE(index.FindDuplicates(refs, &dup, &keys).ok());
  EXPECT_EQ(dup, (std::vector<bool>{false, false, true, true}));
}

}  // namespace
}  // namespace whisperer::state

namespace whisperer::state {
namespace {

TEST_F(DedupeTest, StoredEntryMustMatchTheMessageIdExactly) {
  // A dedupe entry under this key for another messageId (as after a hash collision) does not
  // make the new event a duplicate.
  rocksdb::WriteBatch batch;
  ASSERT_TRUE(batch
                  .Put(store_->dedupe(), storage::DedupeKey(1, "real"),
                       storage::EncodeDedupeEntry({1, 100'000, "impostor"}))
                  .ok());
  ASSERT_TRUE(store_->Write(&batch).ok());
  DedupeIndex index(store_.get(), &clock_);
  std::vector<MessageRef> refs = {{1, "real"}};
  std::vector<bool> dup;
  DedupeIndex::Keys keys;
  ASSERT_TRUE(index.FindDuplicates(refs, &dup, &keys).ok());
  EXPECT_EQ(dup, (std::vector<bool>{false}));
}

}  // namespace
}  // namespace whisperer::state
