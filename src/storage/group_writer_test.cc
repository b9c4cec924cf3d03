#include "storage/group_writer.h"

#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <optional>
#include <thread>

#include "rocksdb/db.h"
#include "testing/temp_dir.h"

namespace whisperer::storage {
namespace {

class GroupWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    Store::Options o;
    o.path = tmp_.path().string();
    o.clock = &clock_;
    auto store = Store::Open(o);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = std::move(*store);
  }
  rocksdb::WriteBatch Batch(std::string_view key) {
    rocksdb::WriteBatch b;
    EXPECT_TRUE(b.Put(store_->decisions(), key, std::string("v:").append(key)).ok());
    return b;
  }
  std::optional<std::string> Value(rocksdb::ColumnFamilyHandle* cf, std::string_view key) {
    return *store_->Get(cf, key);
  }

  testing::TempDir tmp_;  // declared first: removed after the store closes
  ManualClock clock_{1'000'000};
  std::unique_ptr<Store> store_;
};

TEST_F(GroupWriterTest, ALoneWriterWritesAndAnswersBeforeReturning) {
  GroupWriter writer(store_.get());
  std::optional<absl::Status> result;
  writer.Write(Batch("a"), [&](absl::Status s) {
    // The batch is readable by the time it is reported written.
    EXPECT_EQ(Value(store_->decisions(), "a"), "v:a");
    result = s;
  });
  ASSERT_TRUE(result.has_value());
  EXPECT_TRUE(result->ok()) << *result;
  EXPECT_EQ(writer.batches(), 1u);
  EXPECT_EQ(writer.groups(), 1u);
}

// While one thread writes, others queue and return at once; the writing thread then writes
// everything queued as one write, every operation of every column family included, and
// answers each on its own thread.
TEST_F(GroupWriterTest, BatchesQueuedDuringAWriteGoOutAsOneWriteFromTheWritingThread) {
  GroupWriter writer(store_.get());
  {
    rocksdb::WriteBatch old;
    ASSERT_TRUE(old.Put(store_->meta(), "gone", "x").ok());
    ASSERT_TRUE(store_->Write(&old).ok());
  }
  std::promise<void> in_done;
  std::promise<void> release;
  std::thread::id writer_thread;
  std::thread first([&] {
    writer_thread = std::this_thread::get_id();
    writer.Write(Batch("first"), [&](absl::Status s) {
      EXPECT_TRUE(s.ok()) << s;
      in_done.set_value();
      release.get_future().wait();
    });
  });
  in_done.get_future().wait();  // `first` is inside its write: the writer is busy

  std::atomic<int> answered{0};
  std::vector<std::thread::id> answered_on;
  std::mutex mu;
  auto done = [&](absl::Status s) {
    EXPECT_TRUE(s.ok()) << s;
    std::lock_guard lock(mu);
    answered_on.push_back(std::this_thread::get_id());
    ++answered;
  };
  writer.Write(Batch("second"), done);
  rocksdb::WriteBatch mixed;
  ASSERT_TRUE(mixed.Put(store_->profiles(), "p", "profile").ok());
  ASSERT_TRUE(mixed.Delete(store_->meta(), "gone").ok());
  writer.Write(std::move(mixed), done);
  writer.Write(Batch("third"), done);
  EXPECT_EQ(answered.load(), 0);  // queued, not waited for
  EXPECT_FALSE(Value(store_->decisions(), "second").has_value());

  release.set_value();
  first.join();
  EXPECT_EQ(answered.load(), 3);
  for (std::thread::id id : answered_on) EXPECT_EQ(id, writer_thread);
  EXPECT_EQ(Value(store_->decisions(), "first"), "v:first");
  EXPECT_EQ(Value(store_->decisions(), "second"), "v:second");
  EXPECT_EQ(Value(store_->decisions(), "third"), "v:third");
  EXPECT_EQ(Value(store_->profiles(), "p"), "profile");
  EXPECT_FALSE(Value(store_->meta(), "gone").has_value());
  EXPECT_EQ(writer.batches(), 4u);
  EXPECT_EQ(writer.groups(), 2u);  // the first alone, then the three queued behind it
}

// A group that cannot be written fails every batch of it, and applies none. Here one batch
// names a column family this store does not have (a handle of another database).
TEST_F(GroupWriterTest, AGroupThatCannotBeWrittenFailsEveryBatchAndAppliesNone) {
  testing::TempDir other_dir;
  rocksdb::Options o;
  o.create_if_missing = true;
  o.create_missing_column_families = true;
  std::vector<rocksdb::ColumnFamilyDescriptor> families;
  families.emplace_back(rocksdb::kDefaultColumnFamilyName, rocksdb::ColumnFamilyOptions());
  for (int i = 1; i <= 40; ++i) families.emplace_back("cf" + std::to_string(i), o);
  std::vector<rocksdb::ColumnFamilyHandle*> handles;
  rocksdb::DB* raw = nullptr;
  ASSERT_TRUE(
      rocksdb::DB::Open(o, (other_dir.path() / "db").string(), families, &handles, &raw).ok());
  std::unique_ptr<rocksdb::DB> other(raw);
  ASSERT_EQ(handles.back()->GetID(), 40u);  // no column family of the store has that id

  GroupWriter writer(store_.get());
  std::promise<void> in_done;
  std::promise<void> release;
  std::thread first([&] {
    writer.Write(Batch("first"), [&](absl::Status) {
      in_done.set_value();
      release.get_future().wait();
    });
  });
  in_done.get_future().wait();
  std::vector<absl::Status> results;
  writer.Write(Batch("good"), [&](absl::Status s) { results.push_back(s); });
  rocksdb::WriteBatch bad;
  ASSERT_TRUE(bad.Put(handles.back(), "k", "v").ok());
  writer.Write(std::move(bad), [&](absl::Status s) { results.push_back(s); });
  release.set_value();
  first.join();
  ASSERT_EQ(results.size(), 2u);
  for (const absl::Status& s : results) {
    EXPECT_EQ(s.code(), absl::StatusCode::kInternal) << s;
    EXPECT_NE(s.message().find("unknown column family 40"), std::string_view::npos) << s;
  }
  EXPECT_FALSE(Value(store_->decisions(), "good").has_value());
  for (rocksdb::ColumnFamilyHandle* h : handles)
    ASSERT_TRUE(other->DestroyColumnFamilyHandle(h).ok());
  // The writer goes on working.
  std::optional<absl::Status> after;
  writer.Write(Batch("after"), [&](absl::Status s) { after = s; });
  ASSERT_TRUE(after.has_value());
  EXPECT_TRUE(after->ok()) << *after;
  EXPECT_EQ(Value(store_->decisions(), "after"), "v:after");
}

// Many threads writing at once: every batch is written and answered exactly once.
TEST_F(GroupWriterTest, ConcurrentWritersLoseNothing) {
  GroupWriter writer(store_.get());
  constexpr int kThreads = 4;
  constexpr int kEach = 300;
  std::atomic<int> answered{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kEach; ++i) {
        writer.Write(Batch(std::to_string(t) + "/" + std::to_string(i)), [&](absl::Status s) {
          EXPECT_TRUE(s.ok()) << s;
          ++answered;
        });
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(answered.load(), kThreads * kEach);
  EXPECT_EQ(writer.batches(), static_cast<size_t>(kThreads * kEach));
  EXPECT_LE(writer.groups(), writer.batches());
  for (int t = 0; t < kThreads; ++t) {
    for (int i = 0; i < kEach; ++i) {
      const std::string key = std::to_string(t) + "/" + std::to_string(i);
      ASSERT_EQ(Value(store_->decisions(), key), "v:" + key);
    }
  }
}

}  // namespace
}  // namespace whisperer::storage
