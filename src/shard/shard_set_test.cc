#include "shard/shard_set.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <thread>

#include "common/strings.h"
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
    o.write_fault = write_fault_;
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
  std::function<absl::Status(const rocksdb::WriteBatch&)> write_fault_;
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

// With a profile engine, the shard thread hands each group's write to the writer thread and
// resolves the next group meanwhile (groups above commit_on_caller_max_events).
class ShardSetWithProfilesTest : public ShardSetTest {
 protected:
  void SetUp() override {
    ShardSetTest::SetUp();
    profiles_ = std::make_unique<state::ProfileEngine>(store_.get(), &clock_, &metrics_);
  }
  // A track event of `user` named `name`, with message id `id`.
  static api::Event Track(const std::string& user, const std::string& id,
                          const std::string& name = "Viewed") {
    api::Event e = Event(user, id);
    e.json = R"({"type":"track","event":")" + name + R"(","userId":")" + user +
             R"(","messageId":")" + id +
             R"(","timestamp":"2024-06-01T12:00:00.000Z","receivedAt":"2024-06-01T12:00:00.000Z"})";
    return e;
  }
  // The events folded into the profile of `user` (0 when there is none).
  uint64_t ProfileEvents(const std::string& user) {
    absl::StatusOr<std::optional<uint64_t>> id =
        state::ProfileEngine::Lookup(*store_, 1, "userId", user);
    if (!id.ok() || !id->has_value()) return 0;
    absl::StatusOr<state::Profile> p = state::ProfileEngine::ReadProfile(*store_, 1, **id);
    return p.ok() ? p->seen.events : 0;
  }
  // Erases the profile of `user` as DELETE /v1/profiles/{id} does, between the shards' groups.
  void Erase(ShardSet& shards, const std::string& user, bool suppress) {
    absl::StatusOr<std::optional<uint64_t>> id =
        state::ProfileEngine::Lookup(*store_, 1, "userId", user);
    ASSERT_TRUE(id.ok() && id->has_value());
    ASSERT_TRUE(shards
                    .WriteExclusive([&](rocksdb::WriteBatch* batch) {
                      return profiles_->Erase(1, **id, suppress, batch).status();
                    })
                    .ok());
  }

  std::unique_ptr<state::ProfileEngine> profiles_;
};

TEST_F(ShardSetWithProfilesTest, RetriesOfAGroupStillBeingWrittenAreDuplicates) {
  ShardSet shards(store_.get(), &clock_, &metrics_, {.num_shards = 1});
  shards.SetProfileEngine(profiles_.get());
  ASSERT_TRUE(shards.Start().ok());
  // Four senders send the same 30 requests of 40 events at once: most copies of a request meet
  // the original in the group being written, or in the one being resolved.
  constexpr int kRequests = 30, kEvents = 40;
  std::atomic<size_t> stored{0}, duplicates{0};
  std::vector<std::thread> senders;
  for (int t = 0; t < 4; ++t) {
    senders.emplace_back([&] {
      for (int r = 0; r < kRequests; ++r) {
        std::vector<api::Event> events;
        for (int i = 0; i < kEvents; ++i) {
          events.push_back(
              Track("u" + std::to_string(r), std::to_string(r) + "-" + std::to_string(i)));
        }
        IngestResult result = shards.SubmitAndWait(1, std::move(events));
        EXPECT_TRUE(result.status.ok()) << result.status;
        stored += result.stored;
        duplicates += result.duplicates;
      }
    });
  }
  for (auto& t : senders) t.join();
  shards.Stop();
  EXPECT_EQ(stored.load(), size_t{kRequests * kEvents});
  EXPECT_EQ(duplicates.load(), size_t{3 * kRequests * kEvents});
  EXPECT_EQ(Stored(1).size(), size_t{kRequests * kEvents});
  for (int r = 0; r < kRequests; ++r) EXPECT_EQ(ProfileEvents("u" + std::to_string(r)), 40u);
}

TEST_F(ShardSetWithProfilesTest, EventsOfAnErasedProfileSentAgainAreStoredAgain) {
  ShardSet shards(store_.get(), &clock_, &metrics_, {.num_shards = 1});
  shards.SetProfileEngine(profiles_.get());
  ASSERT_TRUE(shards.Start().ok());
  // A group large enough to be handed to the writer thread: the shard remembers it as its last.
  auto events = [] {
    std::vector<api::Event> out;
    for (int i = 0; i < 40; ++i) out.push_back(Track("erased", "e-" + std::to_string(i)));
    return out;
  };
  IngestResult first = shards.SubmitAndWait(1, events());
  ASSERT_TRUE(first.status.ok()) << first.status;
  ASSERT_EQ(first.stored, 40u);
  ASSERT_NO_FATAL_FAILURE(Erase(shards, "erased", /*suppress=*/false));
  // Erased with their dedupe entries: sent again, they are new events of a new profile.
  IngestResult again = shards.SubmitAndWait(1, events());
  ASSERT_TRUE(again.status.ok()) << again.status;
  EXPECT_EQ(again.stored, 40u);
  EXPECT_EQ(again.duplicates, 0u);
  shards.Stop();
  EXPECT_EQ(ProfileEvents("erased"), 40u);
}

TEST_F(ShardSetWithProfilesTest, EventsOfASuppressedCustomerAreReportedAsNotStored) {
  ShardSet shards(store_.get(), &clock_, &metrics_, {.num_shards = 1});
  shards.SetProfileEngine(profiles_.get());
  ASSERT_TRUE(shards.Start().ok());
  ASSERT_TRUE(shards.SubmitAndWait(1, {Track("gone", "g-0")}).status.ok());
  ASSERT_NO_FATAL_FAILURE(Erase(shards, "gone", /*suppress=*/true));
  const size_t before = Stored(1).size();
  IngestResult r = shards.SubmitAndWait(
      1, {Track("gone", "g-1"), Track("kept", "k-1"), Track("gone", "g-2"), Track("kept", "k-1")});
  ASSERT_TRUE(r.status.ok()) << r.status;
  EXPECT_EQ(r.stored, 1u);
  EXPECT_EQ(r.suppressed, 2u);
  EXPECT_EQ(r.duplicates, 1u);
  shards.Stop();
  EXPECT_EQ(Stored(1).size(), before + 1);
}

TEST_F(ShardSetWithProfilesTest, AProfileChangedByEveryGroupCountsEveryEvent) {
  // One customer in every group: each group reads the profile the group in the air changed.
  ShardSet shards(store_.get(), &clock_, &metrics_, {.num_shards = 1});
  shards.SetProfileEngine(profiles_.get());
  ASSERT_TRUE(shards.Start().ok());
  std::atomic<size_t> stored{0};
  std::vector<std::thread> senders;
  for (int t = 0; t < 4; ++t) {
    senders.emplace_back([&, t] {
      for (int r = 0; r < 25; ++r) {
        std::vector<api::Event> events;
        for (int i = 0; i < 20; ++i) {
          events.push_back(Track("hot", StrCat(t, "-", r, "-", i)));
        }
        IngestResult result = shards.SubmitAndWait(1, std::move(events));
        EXPECT_TRUE(result.status.ok()) << result.status;
        stored += result.stored;
      }
    });
  }
  for (auto& t : senders) t.join();
  shards.Stop();
  EXPECT_EQ(stored.load(), 4u * 25 * 20);
  EXPECT_EQ(ProfileEvents("hot"), 4u * 25 * 20);
}

TEST_F(ShardSetWithProfilesTest, AFailedWriteFailsItsGroupAndWhatWasResolvedOnIt) {
  // Events named "poison" mark their group's batch, and the store fails every marked write
  // (as a full disk would fail it).
  profiles_.reset();
  store_.reset();
  // Poisoned writes take a while to fail, so that the next group is resolved meanwhile.
  write_fault_ = [](const rocksdb::WriteBatch& batch) {
    if (batch.Data().find("test/poison") == std::string::npos) return absl::OkStatus();
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    return absl::UnavailableError("injected write failure");
  };
  Open();
  profiles_ = std::make_unique<state::ProfileEngine>(store_.get(), &clock_, &metrics_);
  profiles_->SetEventSink([this](uint32_t, uint64_t, uint64_t, const state::EventFacts& facts,
                                 rocksdb::WriteBatch* batch) {
    if (facts.name == "poison") {
      ASSERT_TRUE(batch->Put(store_->meta(), "test/poison", "").ok());
    }
  });
  ShardSet shards(store_.get(), &clock_, &metrics_, {.num_shards = 1});
  shards.SetProfileEngine(profiles_.get());
  ASSERT_TRUE(shards.Start().ok());
  // Each round sends a poisoned request and, without waiting, a clean one: the clean one
  // fails too when it was resolved while the poisoned one was being written, and is stored
  // otherwise. Either way the profile counts exactly what was acknowledged.
  size_t acknowledged = 0, failed_with = 0;
  for (int round = 0; round < 20; ++round) {
    std::vector<api::Event> poisoned, clean;
    for (int i = 0; i < 20; ++i) {
      std::string n = std::to_string(round) + "-" + std::to_string(i);
      poisoned.push_back(Track("u", "p" + n, "poison"));
      clean.push_back(Track("u", "c" + n));
    }
    std::promise<IngestResult> first, second;
    ASSERT_TRUE(shards.Submit(1, poisoned, [&](IngestResult r) { first.set_value(r); }).ok());
    ASSERT_TRUE(shards.Submit(1, clean, [&](IngestResult r) { second.set_value(r); }).ok());
    IngestResult p = first.get_future().get();
    IngestResult c = second.get_future().get();
    EXPECT_FALSE(p.status.ok());
    EXPECT_EQ(p.stored, 0u);
    if (c.status.ok()) {
      EXPECT_EQ(c.stored, 20u);
      acknowledged += c.stored;
    }
    // What failed is not a duplicate of anything: sent again alone, it is stored.
    if (!c.status.ok()) {
      ++failed_with;
      IngestResult again = shards.SubmitAndWait(1, clean);
      ASSERT_TRUE(again.status.ok()) << again.status;
      EXPECT_EQ(again.stored, 20u);
      acknowledged += again.stored;
    }
  }
  shards.Stop();
  EXPECT_GT(failed_with, 0u);
  EXPECT_EQ(Stored(1).size(), acknowledged);
  EXPECT_EQ(ProfileEvents("u"), acknowledged);
}

}  // namespace
}  // namespace whisperer::shard
