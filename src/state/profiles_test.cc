#include "state/profiles.h"

#include <gtest/gtest.h>

#include "common/hash.h"
#include "common/timestamp.h"
#include "storage/keys.h"
#include "testing/temp_dir.h"
#include "testing/tiny_intent_model.h"

namespace whisperer::state {
namespace {

constexpr int64_t kT0 = 1'700'000'000'000;

class ProfileEngineTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open() {
    engine_.reset();
    store_.reset();
    storage::Store::Options o;
    o.path = tmp_.str();
    o.clock = &clock_;
    store_ = *storage::Store::Open(o);
    engine_ = std::make_unique<ProfileEngine>(store_.get(), &clock_, &metrics_);
    ASSERT_TRUE(engine_->Start().ok());
  }

  // Stores one event the way a shard does: event row, profile changes, one batch.
  void Ingest(std::string fields, uint32_t ws = 1, bool write = true) {
    ++seq_;
    std::string json = R"({"messageId":"m)" + std::to_string(seq_) + R"(","timestamp":")" +
                       FormatIso8601(kT0 + static_cast<int64_t>(seq_) * 1000) +
                       R"(","receivedAt":")" + FormatIso8601(kT0) + "\"," + fields + "}";
    rocksdb::WriteBatch batch;
    ASSERT_TRUE(batch.Put(store_->events(), storage::EventKey(ws, seq_), json).ok());
    absl::StatusOr<ProfileEngine::Outcome> s = engine_->Apply(ws, seq_, json, &batch);
    ASSERT_TRUE(s.ok()) << s.status() << json;
    last_outcome_ = *s;
    ASSERT_TRUE(engine_->Finish(&batch).ok());
    if (write) {
      ASSERT_TRUE(store_->Write(&batch).ok());
    } else {
      engine_->Abandon();
    }
  }

  // Workspace 1 with one persona of one rule (`when`), and `settings` otherwise.
  void UsePersona(std::string id, std::string when, WorkspaceProfileSettings settings = {}) {
    PersonaSpec spec;
    spec.id = std::move(id);
    spec.rules = {{std::move(when), "test", 1}};
    absl::StatusOr<std::shared_ptr<const PersonaSet>> personas = CompilePersonas({spec});
    ASSERT_TRUE(personas.ok()) << personas.status();
    settings.personas = *personas;
    engine_->Configure(1, settings);
  }

  uint64_t Find(std::string_view type, std::string_view value, uint32_t ws = 1) {
    absl::StatusOr<std::optional<uint64_t>> id = ProfileEngine::Lookup(*store_, ws, type, value);
    EXPECT_TRUE(id.ok());
    return id.ok() && id->has_value() ? **id : 0;
  }

  Profile Read(uint64_t id, uint32_t ws = 1) {
    absl::StatusOr<Profile> p = ProfileEngine::ReadProfile(*store_, ws, id);
    EXPECT_TRUE(p.ok()) << p.status();
    return p.ok() ? *p : Profile{};
  }

  std::vector<uint64_t> TimelineSeqs(const Profile& p, size_t limit = 100) {
    std::vector<uint64_t> out;
    uint64_t before = 0;
    for (;;) {
      auto page = ProfileEngine::Timeline(*store_, 1, p, before, limit);
      EXPECT_TRUE(page.ok());
      if (!page.ok()) break;
      for (const auto& [seq, json] : page->events) out.push_back(seq);
      if (!page->next_before) break;
      before = *page->next_before;
    }
    return out;
  }

  testing::TempDir tmp_;
  ManualClock clock_{kT0};
  obs::Registry metrics_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<ProfileEngine> engine_;
  uint64_t seq_ = 0;
  ProfileEngine::Outcome last_outcome_ = ProfileEngine::Outcome::kFolded;
};

TEST_F(ProfileEngineTest, TwoDevicesThenIdentifyOnBothIsOneCustomer) {
  Ingest(R"("type":"page","anonymousId":"phone")");
  Ingest(R"("type":"page","anonymousId":"phone")");
  Ingest(R"("type":"page","anonymousId":"laptop")");
  Ingest(R"("type":"track","event":"Product Viewed","anonymousId":"laptop")");
  uint64_t phone = Find("anonymousId", "phone");
  uint64_t laptop = Find("anonymousId", "laptop");
  ASSERT_NE(phone, 0u);
  ASSERT_NE(laptop, 0u);
  EXPECT_NE(phone, laptop);

  Ingest(R"("type":"identify","userId":"u1","anonymousId":"phone","traits":{"email":"A@x.io"})");
  Ingest(R"("type":"identify","userId":"u1","anonymousId":"laptop")");
  uint64_t u1 = Find("userId", "u1");
  EXPECT_EQ(Find("anonymousId", "phone"), u1);
  EXPECT_EQ(Find("anonymousId", "laptop"), u1);
  EXPECT_EQ(Find("email", " a@X.io "), u1);  // lookups normalize too

  Profile p = Read(u1);
  EXPECT_EQ(p.seen.events, 6u);
  EXPECT_EQ(p.event_counts.at("page"), 3u);
  EXPECT_EQ(p.event_counts.at("identify"), 2u);
  EXPECT_EQ(p.identifiers.size(), 4u);
  ASSERT_EQ(p.merges.size(), 1u);
  EXPECT_EQ(p.merges[0].message_id, "m6");
  // The merged-away profile's id still answers, with the survivor.
  uint64_t absorbed = p.merges[0].absorbed;
  EXPECT_EQ(Read(absorbed).id, u1);
  // The whole timeline, newest first, also across pages of 2.
  std::vector<uint64_t> want = {6, 5, 4, 3, 2, 1};
  EXPECT_EQ(TimelineSeqs(p), want);
  EXPECT_EQ(TimelineSeqs(p, 2), want);
}

TEST_F(ProfileEngineTest, AliasMergesPreviousAnonymousId) {
  Ingest(R"("type":"track","event":"A","anonymousId":"anon-9")");
  Ingest(R"("type":"track","event":"B","userId":"u9")");
  Ingest(R"("type":"alias","userId":"u9","previousId":"anon-9")");
  uint64_t u9 = Find("userId", "u9");
  EXPECT_EQ(Find("anonymousId", "anon-9"), u9);
  EXPECT_EQ(Read(u9).seen.events, 3u);
}

TEST_F(ProfileEngineTest, TwoUserIdsAreNotMergedByDefault) {
  Ingest(R"("type":"identify","userId":"u1","anonymousId":"shared-tablet")");
  Ingest(R"("type":"identify","userId":"u2","anonymousId":"shared-tablet")");
  uint64_t u1 = Find("userId", "u1");
  uint64_t u2 = Find("userId", "u2");
  EXPECT_NE(u1, u2);
  EXPECT_EQ(Find("anonymousId", "shared-tablet"), u1);
  EXPECT_EQ(Read(u2).seen.events, 1u);
  EXPECT_EQ(Read(u1).seen.events, 1u);
}

TEST_F(ProfileEngineTest, DeniedCrossDeviceConsentStopsMerges) {
  Ingest(R"("type":"page","anonymousId":"d1","context":{"consent":{"cross_device":false}})");
  Ingest(R"("type":"identify","userId":"u1")");
  Ingest(R"("type":"identify","userId":"u1","anonymousId":"d1")");
  EXPECT_NE(Find("userId", "u1"), Find("anonymousId", "d1"));
}

TEST_F(ProfileEngineTest, TheLinkingEventsOwnDenialOfCrossDeviceStopsItsMerge) {
  ConsentPurposes purposes;
  purposes.AddCategory("C0009", {"cross_device"});
  WorkspaceProfileSettings settings;
  settings.fold.consent = purposes;
  engine_->Configure(1, settings);
  Ingest(R"("type":"page","anonymousId":"laptop")");
  Ingest(R"("type":"identify","userId":"u2")");
  // Denied by a consent manager's category, in the very event that would link the two.
  Ingest(R"("type":"identify","userId":"u2","anonymousId":"laptop",)"
         R"("context":{"consent":{"categoryPreferences":{"C0009":false}}})");
  EXPECT_NE(Find("userId", "u2"), Find("anonymousId", "laptop"));
  EXPECT_FALSE(Read(Find("userId", "u2")).consent.at("cross_device").granted);
  // Granted in the linking event: merged.
  Ingest(R"("type":"page","anonymousId":"phone")");
  Ingest(R"("type":"identify","userId":"u3")");
  Ingest(R"("type":"identify","userId":"u3","anonymousId":"phone",)"
         R"("context":{"consent":{"categoryPreferences":{"C0009":true}}})");
  EXPECT_EQ(Find("userId", "u3"), Find("anonymousId", "phone"));
}

TEST_F(ProfileEngineTest, ConsentApiChangesOnlyKnownPurposes) {
  Ingest(R"("type":"identify","userId":"u1")");
  uint64_t id = Find("userId", "u1");
  rocksdb::WriteBatch batch;
  EXPECT_EQ(engine_->SetConsent(1, id, {{"telepathy", {true, kT0, "api"}}}, &batch).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(engine_->SetConsent(1, 999, {{"analytics", {true, kT0, "api"}}}, &batch).code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(engine_->SetConsent(1, id, {{"marketing_sms", {false, kT0, "api"}}}, &batch).ok());
  ASSERT_TRUE(store_->Write(&batch).ok());
  EXPECT_TRUE(Read(id).Denied("marketing_sms"));

  WorkspaceProfileSettings settings;
  settings.fold.consent.AddPurpose("telepathy");
  engine_->Configure(1, settings);
  rocksdb::WriteBatch batch2;
  EXPECT_TRUE(engine_->SetConsent(1, id, {{"telepathy", {true, kT0, "api"}}}, &batch2).ok());
}

TEST_F(ProfileEngineTest, IgnoredConsentStatementsAreCountedByReason) {
  Ingest(R"("type":"page","anonymousId":"d1","context":{"consent":{"analytics":"maybe",)"
         R"("categoryPreferences":{"Advertising":false,"C0002":true,"marketing_sms":false}}})");
  EXPECT_TRUE(Read(Find("anonymousId", "d1")).Denied("marketing_sms"));
  const std::string rendered = metrics_.Render();
  EXPECT_NE(rendered.find(R"(whisperer_consent_statements_ignored_total{reason="unknown_name"} 2)"),
            std::string::npos)
      << rendered;
  EXPECT_NE(
      rendered.find(R"(whisperer_consent_statements_ignored_total{reason="invalid_value"} 1)"),
      std::string::npos)
      << rendered;
}

TEST_F(ProfileEngineTest, BlockedIdentifiersOnlyLeaveTheEventUnresolved) {
  Ingest(R"("type":"track","event":"X","userId":"undefined")");
  EXPECT_EQ(Find("userId", "undefined"), 0u);
  EXPECT_NE(metrics_.Render().find("whisperer_events_unresolved_total 1"), std::string::npos);
}

TEST_F(ProfileEngineTest, WorkspacesAreSeparateGraphs) {
  Ingest(R"("type":"identify","userId":"u1")", 1);
  Ingest(R"("type":"identify","userId":"u1")", 2);
  uint64_t a = Find("userId", "u1", 1);
  uint64_t b = Find("userId", "u1", 2);
  EXPECT_NE(a, b);
  EXPECT_EQ(ProfileEngine::ReadProfile(*store_, 2, a).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(ProfileEngineTest, AbandonedBatchLeavesNoTraceAndStateComesBackFromTheStore) {
  Ingest(R"("type":"identify","userId":"u1","anonymousId":"a1")");
  Ingest(R"("type":"identify","userId":"u1","anonymousId":"a2")", 1, /*write=*/false);
  EXPECT_EQ(Find("anonymousId", "a2"), 0u);
  Ingest(R"("type":"page","userId":"u1")");
  Profile p = Read(Find("userId", "u1"));
  EXPECT_EQ(p.seen.events, 2u);  // the abandoned event never counted
  EXPECT_EQ(p.identifiers.size(), 2u);
}

TEST_F(ProfileEngineTest, CacheLimitEvictsAndEvictedProfilesComeBackFromTheStore) {
  engine_->SetCacheLimit(10'000);  // room for about a hundred small profiles
  for (int i = 0; i < 500; ++i) {
    Ingest(R"("type":"identify","userId":"u)" + std::to_string(i) + R"(","traits":{"n":1})");
  }
  EXPECT_LT(engine_->cached_profiles(), 200u);
  EXPECT_GT(engine_->cached_profiles(), 0u);
  // Customers whose profiles were dropped return to their profile, not to a new one.
  for (int i = 0; i < 500; ++i) {
    Ingest(R"("type":"page","userId":"u)" + std::to_string(i) + "\"");
  }
  for (int i = 0; i < 500; i += 50) {
    Profile p = Read(Find("userId", "u" + std::to_string(i)));
    EXPECT_EQ(p.seen.events, 2u) << i;
  }
  EXPECT_NE(metrics_.Render().find("whisperer_profile_cache_evictions_total"), std::string::npos);
}

TEST_F(ProfileEngineTest, CacheStaysWithinItsLimitWhileProfilesComeAndGo) {
  // Each profile evicted and written again is a new entry of the cache: its accounting must not
  // drift (a new entry's bytes were once taken off before they were ever added, and the cache
  // grew past its limit by about 50 bytes a return: 1 GB after 20 million).
  engine_->SetCacheLimit(10'000);  // room for about a hundred small profiles
  for (int round = 0; round < 20; ++round) {
    for (int i = 0; i < 500; ++i) {
      Ingest(R"("type":"page","userId":"u)" + std::to_string(i) + "\"");
    }
    EXPECT_LT(engine_->cached_profiles(), 200u) << "round " << round;
  }
}

TEST_F(ProfileEngineTest, ProfilesOfAGroupNotYetWrittenStayCachedPastTheLimit) {
  // The shard set writes a group while the next is resolved (shard/shard_set.h): the next group
  // must find the profiles of the one before in the cache, even when they are over its limit.
  engine_->SetCacheLimit(10'000);  // room for about a hundred small profiles
  auto group = [&](uint64_t first_seq, const char* type, rocksdb::WriteBatch* batch) {
    for (int i = 0; i < 300; ++i) {
      uint64_t seq = first_seq + static_cast<uint64_t>(i);
      std::string json = R"({"type":")" + std::string(type) + R"(","userId":"u)" +
                         std::to_string(i) + R"(","messageId":"m)" + std::to_string(seq) +
                         R"(","timestamp":")" + FormatIso8601(kT0) + R"(","receivedAt":")" +
                         FormatIso8601(kT0) + "\"}";
      ASSERT_TRUE(batch->Put(store_->events(), storage::EventKey(1, seq), json).ok());
      absl::StatusOr<ProfileEngine::Outcome> s = engine_->Apply(1, seq, json, batch);
      ASSERT_TRUE(s.ok()) << s.status();
    }
    ASSERT_TRUE(engine_->Finish(batch).ok());
  };
  rocksdb::WriteBatch first, second;
  group(1, "identify", &first);
  EXPECT_GE(engine_->cached_profiles(), 300u);
  group(301, "page", &second);  // none of `first` is in the store yet
  ASSERT_TRUE(store_->Write(&first).ok());
  ASSERT_TRUE(store_->Write(&second).ok());
  for (int i = 0; i < 300; i += 30) {
    EXPECT_EQ(Read(Find("userId", "u" + std::to_string(i))).seen.events, 2u) << i;
  }
  EXPECT_LT(engine_->cached_profiles(), 400u);  // the first group's went once the second's came
}

TEST_F(ProfileEngineTest, RestartContinuesWhereItStopped) {
  Ingest(R"("type":"identify","userId":"u1")");
  uint64_t first = Find("userId", "u1");
  Open();
  Ingest(R"("type":"identify","userId":"u2")");
  Ingest(R"("type":"page","userId":"u1")");
  EXPECT_GT(Find("userId", "u2"), first);  // ids are never reused
  EXPECT_EQ(Read(first).seen.events, 2u);
}

TEST_F(ProfileEngineTest, BotsMoveNoJourneyAndNoPersona) {
  absl::StatusOr<std::unique_ptr<DeviceDetector>> detector = DeviceDetector::Create();
  ASSERT_TRUE(detector.ok()) << detector.status();
  engine_->SetDeviceDetector(*std::move(detector));
  JourneySpec spec;
  spec.id = "visit";
  spec.stages = {{"landed", "event.type == 'page'", "landed.entry", 0, ""}};
  spec.goal = "event.name == 'Order Completed'";
  spec.goal_where = "goal";
  absl::StatusOr<std::shared_ptr<const Journey>> journey = CompileJourney(spec);
  ASSERT_TRUE(journey.ok()) << journey.status();
  WorkspaceProfileSettings settings;
  settings.journeys = {*journey};
  UsePersona("reader", "event.type == 'page'", settings);
  auto page = [](std::string_view ua) {
    return R"("type":"page","anonymousId":"crawled","context":{"userAgent":")" + std::string(ua) +
           "\"}";
  };
  Ingest(page("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"));
  Profile p = Read(Find("anonymousId", "crawled"));
  EXPECT_EQ(p.bot_events, 1u);
  EXPECT_TRUE(p.journeys.empty());
  EXPECT_EQ(p.persona.id, "");
  // The same page from a person's browser moves both.
  Ingest(
      page("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/120.0.0.0 Safari/537.36"));
  p = Read(Find("anonymousId", "crawled"));
  ASSERT_TRUE(p.journeys.contains("visit"));
  EXPECT_EQ(p.journeys.at("visit").stage, "landed");
  EXPECT_EQ(p.persona.id, "reader");
}

TEST_F(ProfileEngineTest, DevicesFromUserAgentsAndBotsKeptOutOfStats) {
  absl::StatusOr<std::unique_ptr<DeviceDetector>> detector = DeviceDetector::Create();
  ASSERT_TRUE(detector.ok()) << detector.status();
  engine_->SetDeviceDetector(*std::move(detector));
  auto with_ua = [](std::string_view ua) {
    return R"("type":"page","anonymousId":"d","context":{"userAgent":")" + std::string(ua) + "\"}";
  };
  Ingest(
      with_ua("Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
              "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"));
  Ingest(
      with_ua("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like "
              "Gecko) Chrome/120.0.0.0 Safari/537.36"));
  Ingest(with_ua("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"));
  Ingest(with_ua("axios/1.6.2"));  // a server-side SDK: counted, no device
  Profile p = Read(Find("anonymousId", "d"));
  EXPECT_EQ(p.seen.events, 3u);
  EXPECT_EQ(p.bot_events, 1u);
  ASSERT_EQ(p.devices.size(), 2u);
  EXPECT_EQ(p.devices[0].type, "mobile");
  EXPECT_EQ(p.devices[0].os, "iOS");
  EXPECT_EQ(p.devices[0].browser, "Mobile Safari");
  EXPECT_EQ(p.devices[1].type, "desktop");
  EXPECT_EQ(p.devices[1].os, "Windows");
}

// Every key and value of every column family that contains `needle`.
std::vector<std::string> Occurrences(const storage::Store& store, std::string_view needle) {
  std::vector<std::string> out;
  for (rocksdb::ColumnFamilyHandle* cf : store.column_families()) {
    std::unique_ptr<rocksdb::Iterator> it(store.db()->NewIterator(rocksdb::ReadOptions(), cf));
    for (it->SeekToFirst(); it->Valid(); it->Next()) {
      if (it->key().ToStringView().find(needle) != std::string_view::npos ||
          it->value().ToStringView().find(needle) != std::string_view::npos) {
        out.push_back(cf->GetName() + ": " + it->key().ToString());
      }
    }
  }
  return out;
}

TEST_F(ProfileEngineTest, EraseLeavesNothingOfTheCustomerInAnyColumnFamily) {
  Ingest(R"("type":"page","anonymousId":"erase-anon-1")");
  Ingest(R"("type":"identify","userId":"erase-user","anonymousId":"erase-anon-2",)"
         R"("traits":{"email":"erase-me@example.com"})");
  Ingest(R"("type":"identify","userId":"erase-user","anonymousId":"erase-anon-1")");
  Ingest(R"("type":"page","anonymousId":"someone-else")");
  uint64_t id = Find("userId", "erase-user");
  ASSERT_FALSE(Occurrences(*store_, "erase-").empty());
  // Two logged decisions of the customer, one rewarded, as server/decide_service.cc writes them,
  // and one of somebody else.
  {
    rocksdb::WriteBatch log;
    for (uint64_t decision : {11u, 12u}) {
      ASSERT_TRUE(log.Put(store_->decisions(), storage::DecisionKey(1, decision),
                          R"({"decisionPoint":"erase-point"})")
                      .ok());
      ASSERT_TRUE(
          log.Put(store_->decisions(), storage::ProfileDecisionKey(1, id, decision), "").ok());
    }
    ASSERT_TRUE(log.Put(store_->decisions(), storage::RewardPrefix(1, 11, 1) + "erase-reward",
                        R"({"value":1})")
                    .ok());
    ASSERT_TRUE(log.Put(store_->decisions(), storage::DecisionKey(1, 13), "{}").ok());
    // A decision made for the customer as a first-time visitor, before their profile existed,
    // with the contact it made.
    const uint64_t visitor = VisitorHash("userId", "erase-user");
    ASSERT_TRUE(log.Put(store_->decisions(), storage::DecisionKey(1, 14),
                        R"({"decisionPoint":"erase-visitor-point"})")
                    .ok());
    ASSERT_TRUE(
        log.Put(store_->decisions(), storage::ProfileDecisionKey(1, VisitorIndex(visitor), 14), "")
            .ok());
    ASSERT_TRUE(log.Put(store_->decisions(), storage::ContactKey(1, visitor),
                        R"({"contacts":[["erase-visitor-action","web",1]],"negatives":[]})")
                    .ok());
    ASSERT_TRUE(log.Put(store_->decisions(), storage::ContactKey(1, Hash64(ProfileIdString(id))),
                        R"({"contacts":[["erase-action","email",1]],"negatives":[]})")
                    .ok());
    // Decision 11 waits for its reward and 14 for approval; so does 13, somebody else's. Trigger
    // counts of the profile and of the visitor it was (server/experience_service.cc).
    ASSERT_TRUE(log.Put(store_->decisions(), storage::RewardDueKey(1, 5000, 11), "p").ok());
    ASSERT_TRUE(log.Put(store_->decisions(), storage::ApprovalDueKey(1, 6000, 14), "").ok());
    ASSERT_TRUE(log.Put(store_->decisions(), storage::RewardDueKey(1, 5000, 13), "p").ok());
    ASSERT_TRUE(log.Put(store_->caps(), storage::TriggerCountKey(1, id), "count").ok());
    ASSERT_TRUE(
        log.Put(store_->caps(), storage::TriggerCountKey(1, VisitorIndex(visitor)), "count").ok());
    ASSERT_TRUE(log.Put(store_->caps(), storage::TriggerCountKey(1, 999), "count").ok());
    ASSERT_TRUE(store_->Write(&log).ok());
  }

  const size_t cached = engine_->cached_profiles();
  rocksdb::WriteBatch batch;
  absl::StatusOr<ProfileEngine::Erased> erased = engine_->Erase(1, id, false, &batch);
  ASSERT_TRUE(erased.ok()) << erased.status();
  ASSERT_TRUE(store_->Write(&batch).ok());
  EXPECT_EQ(erased->events, 3u);
  EXPECT_EQ(erased->identifiers, 4u);
  EXPECT_EQ(erased->decisions, 3u);
  EXPECT_LT(engine_->cached_profiles(), cached) << "no longer held in memory";
  EXPECT_FALSE(store_->Get(store_->decisions(), storage::DecisionKey(1, 11))->has_value());
  EXPECT_TRUE(store_->Get(store_->decisions(), storage::DecisionKey(1, 13))->has_value());
  EXPECT_FALSE(store_->Get(store_->decisions(), storage::RewardDueKey(1, 5000, 11))->has_value());
  EXPECT_FALSE(store_->Get(store_->decisions(), storage::ApprovalDueKey(1, 6000, 14))->has_value());
  EXPECT_TRUE(store_->Get(store_->decisions(), storage::RewardDueKey(1, 5000, 13))->has_value());
  EXPECT_FALSE(store_->Get(store_->caps(), storage::TriggerCountKey(1, id))->has_value());
  EXPECT_FALSE(store_
                   ->Get(store_->caps(), storage::TriggerCountKey(
                                             1, VisitorIndex(VisitorHash("userId", "erase-user"))))
                   ->has_value());
  EXPECT_TRUE(store_->Get(store_->caps(), storage::TriggerCountKey(1, 999))->has_value());
  EXPECT_NE(std::find(erased->customers.begin(), erased->customers.end(), id),
            erased->customers.end());
  EXPECT_EQ(Occurrences(*store_, "erase-"), std::vector<std::string>{});
  EXPECT_EQ(ProfileEngine::ReadProfile(*store_, 1, id).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_NE(Find("anonymousId", "someone-else"), 0u);  // others untouched

  // Not suppressed: the customer may come back, as a new profile.
  Ingest(R"("type":"identify","userId":"erase-user")");
  EXPECT_EQ(last_outcome_, ProfileEngine::Outcome::kFolded);
  EXPECT_NE(Find("userId", "erase-user"), id);
}

TEST_F(ProfileEngineTest, SuppressedIdentifiersAreNotStoredAgainAcrossRestarts) {
  Ingest(R"("type":"identify","userId":"gone","traits":{"email":"gone@x.io"})");
  uint64_t id = Find("userId", "gone");
  rocksdb::WriteBatch batch;
  ASSERT_TRUE(engine_->Erase(1, id, true, &batch).ok());
  ASSERT_TRUE(store_->Write(&batch).ok());
  EXPECT_EQ(Occurrences(*store_, "gone"), std::vector<std::string>{});  // only hashes kept
  Ingest(
      R"("type":"track","event":"X","userId":"other","context":{"traits":{"email":"GONE@x.io"}})");
  EXPECT_EQ(last_outcome_, ProfileEngine::Outcome::kSuppressed);
  Open();
  Ingest(R"("type":"page","userId":"gone")");
  EXPECT_EQ(last_outcome_, ProfileEngine::Outcome::kSuppressed);
  Ingest(R"("type":"page","userId":"still-here")");
  EXPECT_EQ(last_outcome_, ProfileEngine::Outcome::kFolded);
  // An alias from the erased userId: no longer in the graph, previousId would be taken for an
  // anonymousId and bring it back as one.
  Ingest(R"("type":"alias","userId":"new-name","previousId":"gone")");
  EXPECT_EQ(last_outcome_, ProfileEngine::Outcome::kSuppressed);
  EXPECT_EQ(Find("anonymousId", "gone"), 0u);
  EXPECT_EQ(Find("userId", "new-name"), 0u);
}

TEST_F(ProfileEngineTest, UnmergeSplitsIdentifiersWithTheirEventsAndKeepsThemApart) {
  engine_->models().Configure(1, ModelSettings{});
  Ingest(R"("type":"page","anonymousId":"mine")");
  Ingest(R"("type":"page","anonymousId":"mine")");
  Ingest(R"("type":"track","event":"Order Completed","anonymousId":"not-mine",)"
         R"("properties":{"revenue":10})");
  Ingest(R"("type":"identify","userId":"u1","anonymousId":"mine")");
  Ingest(R"("type":"identify","userId":"u1","anonymousId":"not-mine")");  // the wrong merge
  uint64_t id = Find("userId", "u1");
  ASSERT_EQ(Find("anonymousId", "not-mine"), id);
  ASSERT_EQ(Read(id).seen.events, 5u);
  ASSERT_EQ(Read(id).absorbed.size(), 1u);
  const uint64_t absorbed = Read(id).absorbed[0];  // not-mine's own profile, merged into u1's
  ASSERT_EQ(Read(absorbed).id, id);

  // A refused unmerge changes nothing, the models' pending examples of the profile included.
  const size_t pending = engine_->models().pending(1, ModelKind::kConversion);
  ASSERT_GT(pending, 0u);
  rocksdb::WriteBatch bad;
  EXPECT_EQ(engine_->Unmerge(1, id, {{"anonymousId", "nobody"}}, &bad).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(
      engine_
          ->Unmerge(1, id, {{"anonymousId", "mine"}, {"anonymousId", "not-mine"}, {"userId", "u1"}},
                    &bad)
          .status()
          .code(),
      absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(engine_->models().pending(1, ModelKind::kConversion), pending);

  rocksdb::WriteBatch batch;
  absl::StatusOr<uint64_t> split = engine_->Unmerge(1, id, {{"anonymousId", "not-mine"}}, &batch);
  ASSERT_TRUE(split.ok()) << split.status();
  ASSERT_TRUE(store_->Write(&batch).ok());
  EXPECT_EQ(Find("anonymousId", "not-mine"), *split);
  EXPECT_EQ(Find("anonymousId", "mine"), id);
  Profile kept = Read(id);
  Profile moved = Read(*split);
  EXPECT_EQ(kept.seen.events, 3u);   // two pages and the first identify
  EXPECT_EQ(moved.seen.events, 2u);  // the order and the identify that carried not-mine
  EXPECT_EQ(kept.orders, 0u);
  EXPECT_EQ(moved.orders, 1u);
  EXPECT_EQ(TimelineSeqs(kept), (std::vector<uint64_t>{4, 2, 1}));
  EXPECT_EQ(TimelineSeqs(moved), (std::vector<uint64_t>{5, 3}));
  EXPECT_EQ(kept.separated, std::vector<uint64_t>{*split});
  // The id merged in no longer names either half.
  EXPECT_EQ(ProfileEngine::ReadProfile(*store_, 1, absorbed).status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(kept.absorbed, std::vector<uint64_t>{absorbed});

  // The same linking event again does not re-merge them.
  Ingest(R"("type":"identify","userId":"u1","anonymousId":"not-mine")");
  EXPECT_EQ(Find("anonymousId", "not-mine"), *split);
  EXPECT_EQ(Read(id).seen.events, 4u);
}

// After an unmerge, the side given a device holds the event that logged this customer in on it
// (it carried the device's id too). Erasing the customer erases that event from the other side,
// which is rebuilt from the events it keeps; erasing that side leaves this one as it was.
TEST_F(ProfileEngineTest, EraseTakesItsEventsFromTheProfileAnUnmergeSplitOff) {
  Ingest(R"("type":"page","anonymousId":"laptop-1")");
  Ingest(R"("type":"track","event":"Order Completed","anonymousId":"shared-tablet",)"
         R"("properties":{"revenue":10})");
  Ingest(R"("type":"identify","userId":"erase-split-user","anonymousId":"laptop-1",)"
         R"("traits":{"email":"erase-split@example.com"})");
  Ingest(R"("type":"identify","userId":"erase-split-user","anonymousId":"shared-tablet",)"
         R"("traits":{"email":"erase-split@example.com","plan":"pro"})");
  Ingest(R"("type":"alias","userId":"erase-split-user","previousId":"shared-tablet")");
  const uint64_t id = Find("userId", "erase-split-user");
  ASSERT_EQ(Find("anonymousId", "shared-tablet"), id);
  {
    rocksdb::WriteBatch batch;
    ASSERT_TRUE(engine_
                    ->SetConsent(1, id,
                                 {{"marketing_email", ConsentState{true, kT0 + 60'000, "api:pc"}}},
                                 &batch)
                    .ok());
    ASSERT_TRUE(store_->Write(&batch).ok());
  }
  rocksdb::WriteBatch split_batch;
  absl::StatusOr<uint64_t> tablet =
      engine_->Unmerge(1, id, {{"anonymousId", "shared-tablet"}}, &split_batch);
  ASSERT_TRUE(tablet.ok()) << tablet.status();
  ASSERT_TRUE(store_->Write(&split_batch).ok());
  // The tablet's side: the order, the login on it, and the alias naming it.
  ASSERT_EQ(TimelineSeqs(Read(*tablet)), (std::vector<uint64_t>{5, 4, 2}));
  ASSERT_EQ(Read(*tablet).traits.count("plan"), 1u);
  Ingest(R"("type":"page","anonymousId":"shared-tablet")");  // the tablet's owner, later

  rocksdb::WriteBatch batch;
  absl::StatusOr<ProfileEngine::Erased> erased = engine_->Erase(1, id, false, &batch);
  ASSERT_TRUE(erased.ok()) << erased.status();
  ASSERT_TRUE(store_->Write(&batch).ok());
  EXPECT_EQ(erased->events, 4u);  // the page and the login on the laptop, and two of the tablet's
  EXPECT_EQ(Occurrences(*store_, "erase-split"), std::vector<std::string>{});
  // The tablet's side keeps the order and its later page, rebuilt from them: no trait of the
  // login, the counts of what is left, the consent given through the API kept.
  Profile left = Read(*tablet);
  EXPECT_EQ(TimelineSeqs(left), (std::vector<uint64_t>{6, 2}));
  EXPECT_EQ(left.seen.events, 2u);
  EXPECT_EQ(left.orders, 1u);
  EXPECT_TRUE(left.traits.empty());
  EXPECT_EQ(left.event_counts.count("identify"), 0u);
  EXPECT_FALSE(left.Denied("marketing_email"));
  EXPECT_EQ(left.consent.at("marketing_email").source, "api:pc");
  EXPECT_EQ(left.separated, std::vector<uint64_t>{id});
  EXPECT_EQ(Find("anonymousId", "shared-tablet"), *tablet);
}

// An opt-in stated by an event, then withdrawn through the API: the unmerge that re-reads the
// events keeps the withdrawal on both sides.
TEST_F(ProfileEngineTest, UnmergeKeepsAConsentChangeMadeThroughTheApiOverOlderEvents) {
  Ingest(R"("type":"track","event":"Viewed","userId":"c1","anonymousId":"ca1",)"
         R"("context":{"consent":{"marketing_email":true}})");
  Ingest(R"("type":"page","anonymousId":"ca2")");
  Ingest(R"("type":"track","event":"Link","userId":"c1","anonymousId":"ca2")");
  const uint64_t id = Find("userId", "c1");
  ASSERT_EQ(Find("anonymousId", "ca2"), id);
  rocksdb::WriteBatch consent;
  ASSERT_TRUE(engine_
                  ->SetConsent(1, id,
                               {{"marketing_email", ConsentState{false, kT0 + 60'000, "api:pc"}}},
                               &consent)
                  .ok());
  ASSERT_TRUE(store_->Write(&consent).ok());
  rocksdb::WriteBatch batch;
  absl::StatusOr<uint64_t> split = engine_->Unmerge(1, id, {{"anonymousId", "ca2"}}, &batch);
  ASSERT_TRUE(split.ok()) << split.status();
  ASSERT_TRUE(store_->Write(&batch).ok());
  for (uint64_t side : {id, *split}) {
    const Profile read = Read(side);
    const ConsentState& c = read.consent.at("marketing_email");
    EXPECT_FALSE(c.granted) << side;
    EXPECT_EQ(c.source, "api:pc");
  }
}

TEST_F(ProfileEngineTest, UnmergeLeavesAnEventsConsentWithTheSideOfThatEvent) {
  // One person opts in to email on their events; the events of another, merged by mistake,
  // say nothing about it. Split, the other has no opt-in, and the first keeps theirs.
  Ingest(R"("type":"track","event":"Viewed","userId":"c1","anonymousId":"ea1",)"
         R"("context":{"consent":{"marketing_email":true,"analytics":true}})");
  Ingest(R"("type":"page","anonymousId":"ea2","context":{"consent":{"analytics":false}})");
  Ingest(R"("type":"track","event":"Link","userId":"c1","anonymousId":"ea2")");
  const uint64_t id = Find("userId", "c1");
  ASSERT_EQ(Find("anonymousId", "ea2"), id);
  ASSERT_TRUE(Read(id).consent.at("marketing_email").granted);
  rocksdb::WriteBatch batch;
  absl::StatusOr<uint64_t> split = engine_->Unmerge(1, id, {{"anonymousId", "ea2"}}, &batch);
  ASSERT_TRUE(split.ok()) << split.status();
  ASSERT_TRUE(store_->Write(&batch).ok());
  const Profile other = Read(*split);
  EXPECT_FALSE(other.consent.contains("marketing_email"));
  ASSERT_TRUE(other.consent.contains("analytics"));
  EXPECT_FALSE(other.consent.at("analytics").granted);  // what its own event said
  const Profile kept = Read(id);
  ASSERT_TRUE(kept.consent.contains("marketing_email"));
  EXPECT_TRUE(kept.consent.at("marketing_email").granted);
  EXPECT_TRUE(kept.consent.at("analytics").granted);
}

TEST_F(ProfileEngineTest, ConfiguredTextPropertiesAreScoredOnEveryEvent) {
  WorkspaceProfileSettings settings;
  settings.text_properties = {"comment", "review.body"};
  engine_->Configure(1, settings);
  const text::SentimentAnalyzer& vader = engine_->sentiment();
  Ingest(R"("type":"track","event":"Product Reviewed","anonymousId":"a",)"
         R"("properties":{"review":{"body":"Absolutely love it, great quality!"}})");
  Ingest(R"("type":"track","event":"Support Message","anonymousId":"a",)"
         R"("properties":{"comment":"Terrible, the zipper broke. Very disappointed."})");
  Ingest(R"("type":"track","event":"X","anonymousId":"a","properties":{"comment":12,)"
         R"("review":"no body here"})");  // not strings where configured: nothing scored
  Ingest(R"("type":"page","anonymousId":"a","properties":{"comment":""})");  // empty
  Profile p = Read(Find("anonymousId", "a"));
  const double love = vader.Score("Absolutely love it, great quality!").compound;
  const double broke = vader.Score("Terrible, the zipper broke. Very disappointed.").compound;
  EXPECT_EQ(p.text.count, 2u);
  EXPECT_EQ(p.text.positive, 1u);
  EXPECT_EQ(p.text.negative, 1u);
  EXPECT_NEAR(p.text.mean, (love + broke) / 2, 1e-12);
  EXPECT_EQ(p.text.latest, broke);
  EXPECT_EQ(p.text.latest_property, "comment");
  EXPECT_EQ(p.text.latest_message_id, "m2");
  EXPECT_EQ(p.text.latest_ms, kT0 + 2000);
  EXPECT_TRUE(p.text.intent.empty());  // no intent model

  // Another workspace names no properties: nothing is scored there.
  Ingest(R"("type":"track","event":"Y","anonymousId":"a","properties":{"comment":"I love it"})", 2);
  EXPECT_EQ(Read(Find("anonymousId", "a", 2), 2).text.count, 0u);

  // A merge combines the two customers' texts.
  Ingest(R"("type":"track","event":"Y","anonymousId":"b","properties":{"comment":"Meh."})");
  Ingest(R"("type":"identify","userId":"u","anonymousId":"a")");
  Ingest(R"("type":"identify","userId":"u","anonymousId":"b")");
  p = Read(Find("userId", "u"));
  EXPECT_EQ(p.text.count, 3u);
  EXPECT_EQ(p.text.latest_message_id, "m6");  // the later one
  EXPECT_NEAR(p.text.mean, (love + broke + vader.Score("Meh.").compound) / 3, 1e-12);

  // And the state survives a restart (it is stored with the profile).
  Open();
  EXPECT_EQ(Read(Find("userId", "u")).text.count, 3u);
}

TEST_F(ProfileEngineTest, EventSentimentIsKnownToPersonaConditions) {
  WorkspaceProfileSettings settings;
  settings.text_properties = {"comment"};
  UsePersona("unhappy", "event.sentiment <= -0.5 or profile.sentiment.average < 0", settings);
  Ingest(R"("type":"track","event":"Chat","anonymousId":"a","properties":{"comment":"Thanks!"})");
  EXPECT_EQ(Read(Find("anonymousId", "a")).persona.id, "");
  Ingest(R"("type":"track","event":"Chat","anonymousId":"a",)"
         R"("properties":{"comment":"This is awful, I hate it."})");
  EXPECT_EQ(Read(Find("anonymousId", "a")).persona.id, "unhappy");
}

TEST_F(ProfileEngineTest, AnIntentModelPredictsTheLatestTextsIntent) {
  std::shared_ptr<const text::IntentModel> model = testing::TinyIntentModel();
  ASSERT_NE(model, nullptr);
  WorkspaceProfileSettings settings;
  settings.text_properties = {"message"};
  engine_->Configure(1, settings);
  engine_->Configure(2, settings);
  engine_->SetIntentModel(1, model);
  Ingest(R"("type":"track","event":"Chat","anonymousId":"a",)"
         R"("properties":{"message":"where is my parcel, has it shipped?"})");
  Profile p = Read(Find("anonymousId", "a"));
  EXPECT_EQ(p.text.intent, "track_order");
  EXPECT_GT(p.text.intent_probability, 0.5);
  EXPECT_EQ(p.text.intent_ms, kT0 + 1000);
  Ingest(R"("type":"track","event":"Chat","anonymousId":"a",)"
         R"("properties":{"message":"forget it, I want a refund of my money"})");
  EXPECT_EQ(Read(Find("anonymousId", "a")).text.intent, "refund");
  // Workspace 2 has no model; once removed, workspace 1 neither (the latest intent stays).
  Ingest(R"("type":"track","event":"Chat","anonymousId":"a","properties":{"message":"refund"})", 2);
  p = Read(Find("anonymousId", "a", 2), 2);
  EXPECT_EQ(p.text.count, 1u);
  EXPECT_EQ(p.text.intent, "");
  engine_->SetIntentModel(1, nullptr);
  Ingest(R"("type":"track","event":"Chat","anonymousId":"a",)"
         R"("properties":{"message":"where is my order"})");
  p = Read(Find("anonymousId", "a"));
  EXPECT_EQ(p.text.count, 3u);
  EXPECT_EQ(p.text.intent, "refund");
}

TEST_F(ProfileEngineTest, UnmergeRescoresEachSidesTexts) {
  WorkspaceProfileSettings settings;
  settings.text_properties = {"comment"};
  engine_->Configure(1, settings);
  Ingest(R"("type":"track","event":"C","anonymousId":"mine","properties":{"comment":"great"})");
  Ingest(R"("type":"track","event":"C","anonymousId":"other","properties":{"comment":"awful"})");
  Ingest(R"("type":"identify","userId":"u1","anonymousId":"mine")");
  Ingest(R"("type":"identify","userId":"u1","anonymousId":"other")");
  uint64_t id = Find("userId", "u1");
  ASSERT_EQ(Read(id).text.count, 2u);
  rocksdb::WriteBatch batch;
  absl::StatusOr<uint64_t> split = engine_->Unmerge(1, id, {{"anonymousId", "other"}}, &batch);
  ASSERT_TRUE(split.ok()) << split.status();
  ASSERT_TRUE(store_->Write(&batch).ok());
  Profile kept = Read(id), moved = Read(*split);
  EXPECT_EQ(kept.text.count, 1u);
  EXPECT_EQ(kept.text.positive, 1u);
  EXPECT_EQ(moved.text.count, 1u);
  EXPECT_EQ(moved.text.negative, 1u);
}

TEST_F(ProfileEngineTest, UnmergeGivesEachSideThePersonaOfItsOwnEvents) {
  UsePersona("shopper", "profile.counts.product_added >= 1");
  Ingest(R"("type":"track","event":"Page","anonymousId":"mine")");
  Ingest(R"("type":"track","event":"Product Added","anonymousId":"other")");
  Ingest(R"("type":"identify","userId":"u1","anonymousId":"mine")");
  Ingest(R"("type":"identify","userId":"u1","anonymousId":"other")");
  uint64_t id = Find("userId", "u1");
  ASSERT_EQ(Read(id).persona.id, "shopper");
  rocksdb::WriteBatch batch;
  absl::StatusOr<uint64_t> split = engine_->Unmerge(1, id, {{"anonymousId", "other"}}, &batch);
  ASSERT_TRUE(split.ok()) << split.status();
  ASSERT_TRUE(store_->Write(&batch).ok());
  // The product was added on the split-off device: the persona goes with it, at once.
  EXPECT_EQ(Read(*split).persona.id, "shopper");
  EXPECT_EQ(Read(id).persona.id, "");
}

}  // namespace
}  // namespace whisperer::state
