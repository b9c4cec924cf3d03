#include "shard/shard_set.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <thread>

#include "storage/keys.h"
#include "testing/temp_dir.h"

namespace whisperer::shard {
namespace {

class ShardSetTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }
  void Open(bool sync = false) {
    storage::Store::Options o;
    o.path = dir_.string();
    o.clock = &clock_;
    o.sync = sync;
    store_ = *storage::Store::Open(o);
  }
  static api::Event Event(std::string user, std::string message_id) {
    api::Event e;
    e.user_id = std::move(user);
    e.message_id = message_id;
    e.json = "{\"messageId\":\"" + message_id + "\"}";
    return e;
  }
  std::vector<std::string> Stored(uint32_t ws) {
    std::vector<std::string> out;
    std::unique_ptr<rocksdb::Iterator> it(store_->db()->NewIterator({}, store_->events()));
    std::string prefix = storage::WorkspacePrefix(ws);
    for (it->Seek(prefix); it->Valid() && it->key().starts_with(prefix); it->Next()) {
      out.push_back(it->value().ToString());
    }
    return out;
  }

  testing::TempDir tmp_;  // declared first: removed after the store closes
  std::filesystem::path dir_ = tmp_.path();
  ManualClock clock_{1'000'000};
  obs::Registry metrics_;
  std::unique_ptr<storage::Store> store_;
};

TEST_F(ShardSetTest, StoresAndDeduplicates) {
  ShardSet shards(store_.get(), &clock_, &metrics_, {.num_shards = 2});
  ASSERT_TRUE(shards.Start().ok());
  std::vector<api::Event> events;
  for (int i = 0; i < 100; ++i)
    events.push_back(Event("u" + std::to_string(i % 7), "m" + std::to_string(i)));
  IngestResult r = shards.SubmitAndWait(1, events);
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.stored, 100u);
  EXPECT_EQ(r.duplicates, 0u);
  // The retry of the whole request stores nothing again.
  r = shards.SubmitAndWait(1, events);
  EXPECT_EQ(r.stored, 0u);
  EXPECT_EQ(r.duplicates, 100u);
  // The same messageId in another workspace is another event.
  r = shards.SubmitAndWait(2, {Event("u", "m0")});
  EXPECT_EQ(r.stored, 1u);
  EXPECT_EQ(Stored(1).size(), 100u);
  EXPECT_EQ(Stored(2).size(), 1u);
  EXPECT_EQ(shards.last_sequence(), 101u);
}

TEST_F(ShardSetTest, SequenceSurvivesRestart) {
  {
    ShardSet shards(store_.get(), &clock_, &metrics_, {.num_shards = 2});
    ASSERT_TRUE(shards.Start().ok());
    EXPECT_EQ(shards.SubmitAndWait(1, {Event("a", "1"), Event("b", "2")}).stored, 2u);
  }
  store_.reset();
  Open();
  ShardSet shards(store_.get(), &clock_, &metrics_, {.num_shards = 3});
  ASSERT_TRUE(shards.Start().ok());
  EXPECT_EQ(shards.last_sequence(), 2u);
  // Dedupe state is durable too.
  EXPECT_EQ(shards.SubmitAndWait(1, {Event("a", "1"), Event("c", "3")}).stored, 1u);
  EXPECT_EQ(shards.last_sequence(), 3u);
}

TEST_F(ShardSetTest, ConcurrentRetriesStoreOnce) {
  ShardSet shards(store_.get(), &clock_, &metrics_, {.num_shards = 2});
  ASSERT_TRUE(shards.Start().ok());
  std::vector<std::thread> threads;
  std::atomic<size_t> stored{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 200; ++i) {
        stored += shards.SubmitAndWait(1, {Event("u" + std::to_string(i), "m" + std::to_string(i))})
                      .stored;
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(stored.load(), 200u);
  EXPECT_EQ(Stored(1).size(), 200u);
}

TEST_F(ShardSetTest, EmptySubmitCompletesAndStoppedRefuses) {
  ShardSet shards(store_.get(), &clock_, &metrics_, {.num_shards = 1});
  ASSERT_TRUE(shards.Start().ok());
  EXPECT_TRUE(shards.SubmitAndWait(1, {}).status.ok());
  shards.Stop();
  IngestResult r = shards.SubmitAndWait(1, {Event("u", "m")});
  EXPECT_EQ(r.status.code(), absl::StatusCode::kUnavailable);
}

TEST_F(ShardSetTest, FullQueueIsUnavailable) {
  ShardSet shards(store_.get(), &clock_, &metrics_,
                  {.num_shards = 1, .max_queued_events = 2, .commit_on_caller_max_events = 0});
  ASSERT_TRUE(shards.Start().ok());
  bool called = false;
  absl::Status s = shards.Submit(1, {Event("u", "1"), Event("u", "2"), Event("u", "3")},
                                 [&](IngestResult) { called = true; });
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_FALSE(called);
}

TEST_F(ShardSetTest, SmallRequestOfAnIdleShardIsCommittedByTheCaller) {
  ShardSet shards(store_.get(), &clock_, &metrics_,
                  {.num_shards = 1, .commit_on_caller_max_events = 2});
  ASSERT_TRUE(shards.Start().ok());
  // Which thread ran `done`, and whether it ran before Submit returned.
  auto submit = [&](std::vector<api::Event> events) {
    std::promise<std::pair<std::thread::id, bool>> ran;
    std::atomic<bool> returned{false};
    absl::Status s = shards.Submit(1, std::move(events), [&](IngestResult r) {
      EXPECT_TRUE(r.status.ok()) << r.status;
      ran.set_value({std::this_thread::get_id(), returned.load()});
    });
    returned = true;
    EXPECT_TRUE(s.ok()) << s;
    return ran.get_future().get();
  };
  auto [thread, after_return] = submit({Event("u", "1"), Event("u", "2")});
  EXPECT_EQ(thread, std::this_thread::get_id());
  EXPECT_FALSE(after_return);
  // Over the limit: the shard thread commits it.
  std::tie(thread, after_return) = submit({Event("u", "3"), Event("u", "4"), Event("u", "5")});
  EXPECT_NE(thread, std::this_thread::get_id());
  EXPECT_EQ(Stored(1).size(), 5u);
  EXPECT_EQ(shards.last_sequence(), 5u);
}

TEST_F(ShardSetTest, WithAStoreThatSyncsTheShardThreadCommitsEverything) {
  store_.reset();
  Open(/*sync=*/true);
  ShardSet shards(store_.get(), &clock_, &metrics_, {.num_shards = 1});
  ASSERT_TRUE(shards.Start().ok());
  std::promise<std::thread::id> ran;
  ASSERT_TRUE(shards
                  .Submit(1, {Event("u", "1")},
                          [&](IngestResult) { ran.set_value(std::this_thread::get_id()); })
                  .ok());
  EXPECT_NE(ran.get_future().get(), std::this_thread::get_id());
  EXPECT_EQ(Stored(1).size(), 1u);
}

TEST_F(ShardSetTest, StopWaitsForACommitOnACallersThread) {
  ShardSet shards(store_.get(), &clock_, &metrics_, {.num_shards = 1});
  ASSERT_TRUE(shards.Start().ok());
  // `done` runs inside the caller's commit; holding it there holds the commit open.
  std::promise<void> in_commit, release;
  std::thread caller([&] {
    absl::Status s = shards.Submit(1, {Event("u", "1")}, [&](IngestResult r) {
      EXPECT_TRUE(r.status.ok()) << r.status;
      in_commit.set_value();
      release.get_future().wait();
    });
    EXPECT_TRUE(s.ok()) << s;
  });
  in_commit.get_future().wait();
  std::atomic<bool> stopped{false};
  std::thread stopper([&] {
    shards.Stop();
    stopped = true;
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_FALSE(stopped.load());
  release.set_value();
  stopper.join();
  caller.join();
  EXPECT_TRUE(stopped.load());
  EXPECT_EQ(Stored(1).size(), 1u);
}

TEST_F(ShardSetTest, ConcurrentSubmitsAndStopCompleteEveryAcceptedRequest) {
  ShardSet shards(store_.get(), &clock_, &metrics_, {.num_shards = 1});
  ASSERT_TRUE(shards.Start().ok());
  std::atomic<size_t> accepted{0}, completed{0}, stored{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0;; ++i) {
        std::string id = std::to_string(t) + "-" + std::to_string(i);
        absl::Status s = shards.Submit(1, {Event("u" + id, id)}, [&](IngestResult r) {
          stored += r.stored;
          ++completed;
        });
        if (!s.ok()) {
          EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
          return;
        }
        ++accepted;
      }
    });
  }
  while (completed.load() < 200) std::this_thread::yield();
  shards.Stop();
  size_t completed_at_stop = completed.load();
  for (auto& t : threads) t.join();
  // Every accepted request completed before Stop returned, and none after.
  EXPECT_EQ(completed_at_stop, accepted.load());
  EXPECT_EQ(completed.load(), accepted.load());
  EXPECT_EQ(Stored(1).size(), stored.load());
  EXPECT_EQ(stored.load(), accepted.load());
}

}  // namespace
}  // namespace whisperer::shard
