#include "state/models.h"

#include <gtest/gtest.h>

#include <limits>

#include "simdjson.h"
#include "state/profile_codec.h"
#include "storage/keys.h"
#include "testing/temp_dir.h"
#include "testing/tiny_intent_model.h"

namespace whisperer::state {
namespace {

constexpr int64_t kT0 = 1'700'000'000'000;
constexpr int64_t kHour = 3'600'000;

class ModelEngineTest : public ::testing::Test {
 protected:
  void SetUp() override { Open(); }

  void Open() {
    engine_.reset();
    store_.reset();
    storage::Store::Options o;
    o.path = tmp_.str();
    o.clock = &clock_;
    store_ = *storage::Store::Open(o);
    engine_ = std::make_unique<ModelEngine>(store_.get(), &clock_);
    engine_->Configure(1, settings_);
    ASSERT_TRUE(engine_->Start().ok());
  }

  // One event of customer `id` at `at_ms`, folded the way the profile engine does first.
  void Event(uint64_t id, int64_t at_ms, std::string_view name = "Page Viewed") {
    Profile& p = profiles_[id];
    p.id = id;
    if (p.seen.events == 0) p.seen.first_ms = at_ms;
    p.seen.last_ms = std::max(p.seen.last_ms, at_ms);
    ++p.seen.events;
    if (p.sessions.count == 0 || at_ms - p.sessions.current_last_ms > 30 * 60'000) {
      if (p.sessions.count > 0) p.sessions.previous_last_ms = p.sessions.current_last_ms;
      ++p.sessions.count;
      p.sessions.current_start_ms = at_ms;
      p.sessions.current_events = 0;
    }
    ++p.sessions.current_events;
    p.sessions.current_last_ms = at_ms;
    ++p.event_counts[std::string(name)];
    EventFacts facts;
    facts.type = api::EventType::kTrack;
    facts.name = name;
    facts.timestamp_ms = at_ms;
    facts.received_at_ms = at_ms;
    engine_->OnEvent(1, p, facts);
  }

  // Writes the pending examples, as a clean shutdown does.
  void SavePending() {
    rocksdb::WriteBatch batch;
    ASSERT_TRUE(engine_->SavePending(&batch).ok());
    ASSERT_TRUE(store_->Write(&batch).ok());
  }

  void Checkpoint(bool force = true) {
    rocksdb::WriteBatch batch;
    ASSERT_TRUE(engine_->Checkpoint(&batch, force).ok());
    ASSERT_TRUE(store_->Write(&batch).ok());
  }

  testing::TempDir tmp_;
  ManualClock clock_{kT0};
  ModelSettings settings_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<ModelEngine> engine_;
  std::map<uint64_t, Profile> profiles_;
};

TEST_F(ModelEngineTest, ConversionLabelsArriveLateAndNeverFromTheFuture) {
  // Customer 1 converts a day after the scored moment: positive, learned when the goal arrives.
  Event(1, kT0);
  EXPECT_EQ(engine_->pending(1, ModelKind::kConversion), 1u);
  EXPECT_EQ(engine_->learned(1, ModelKind::kConversion), 0u);
  Event(1, kT0 + 24 * kHour, "Order Completed");
  EXPECT_EQ(engine_->learned(1, ModelKind::kConversion), 1u);
  EXPECT_EQ(engine_->pending(1, ModelKind::kConversion), 0u);
  // The goal event itself is not kept as a moment that leads to a goal.
  EXPECT_EQ(engine_->pending(1, ModelKind::kConversion), 0u);

  // Customer 2 is scored, then nothing for 8 days: when any later event of the workspace moves
  // event time past the 7-day window, the example is learned as a negative.
  Event(2, kT0 + kHour);
  Event(3, kT0 + 2 * kHour);
  EXPECT_EQ(engine_->learned(1, ModelKind::kConversion), 1u);
  Event(3, kT0 + 8 * 24 * kHour);
  // Customer 2's and customer 3's first windows have both passed.
  EXPECT_EQ(engine_->learned(1, ModelKind::kConversion), 3u);
  // The scores are on the profile.
  EXPECT_EQ(profiles_[3].scores.at_ms, kT0 + 8 * 24 * kHour);
  EXPECT_GT(profiles_[3].scores.conversion, 0.0);
  EXPECT_LT(profiles_[3].scores.conversion, 1.0);
}

TEST_F(ModelEngineTest, HistoryLoadedAfterLiveTrafficIsLabelledByTheCustomersOwnEvents) {
  // Live traffic first: the workspace's clock is at `now`.
  const int64_t now = kT0 + 100 * 24 * kHour;
  Event(1, now);
  EXPECT_EQ(engine_->pending(1, ModelKind::kConversion), 1u);
  // Then customer 2's history, from 90 days before. By the workspace's clock its windows ended
  // long ago, but the customer's own events decide: a page 12 hours later decides nothing yet
  // (it used to label the example 0 at once)...
  Event(2, now - 90 * 24 * kHour);
  Event(2, now - 90 * 24 * kHour + 12 * kHour);
  EXPECT_EQ(engine_->learned(1, ModelKind::kConversion), 0u);
  EXPECT_EQ(engine_->pending(1, ModelKind::kConversion), 2u);
  // ...and the order a day later is a conversion within the window.
  Event(2, now - 89 * 24 * kHour, "Order Completed");
  EXPECT_EQ(engine_->learned(1, ModelKind::kConversion), 1u);
  EXPECT_EQ(engine_->pending(1, ModelKind::kConversion), 1u);
  // Live traffic goes on: customer 1's window passes; customer 2's churn example from the
  // history (its order) still waits for customer 2's next event.
  Event(1, now + 8 * 24 * kHour);
  EXPECT_EQ(engine_->learned(1, ModelKind::kConversion), 2u);
  EXPECT_EQ(engine_->pending(1, ModelKind::kChurn), 2u);
}

TEST_F(ModelEngineTest, PendingExamplesSurviveACleanRestartOnce) {
  Event(1, kT0);
  Event(2, kT0 + kHour);
  EXPECT_EQ(engine_->pending(1, ModelKind::kConversion), 2u);
  {
    rocksdb::WriteBatch batch;  // a clean shutdown: SaveModels
    ASSERT_TRUE(engine_->Checkpoint(&batch, true).ok());
    ASSERT_TRUE(engine_->SavePending(&batch).ok());
    ASSERT_TRUE(store_->Write(&batch).ok());
  }
  Open();
  EXPECT_EQ(engine_->pending(1, ModelKind::kConversion), 2u);
  EXPECT_EQ(engine_->pending(1, ModelKind::kChurn), 2u);
  // Customer 1 converts within the window: the restored example is labelled and learned.
  Event(1, kT0 + 24 * kHour, "Order Completed");
  EXPECT_EQ(engine_->learned(1, ModelKind::kConversion), 1u);
  // The window of customer 2's restored example expires with event time.
  Event(3, kT0 + 9 * 24 * kHour);
  EXPECT_EQ(engine_->learned(1, ModelKind::kConversion), 2u);

  // Read once: a restart without a clean shutdown finds none (they were not saved again).
  Open();
  EXPECT_EQ(engine_->pending(1, ModelKind::kConversion), 0u);

  // Pending examples hashed into another table size are dropped, not misread.
  Event(4, kT0 + 10 * 24 * kHour);
  SavePending();
  settings_.ftrl.bits = 4;
  Open();
  EXPECT_EQ(engine_->pending(1, ModelKind::kConversion), 0u);
  // From a smaller table to a larger one too (every index fits, but means another feature).
  Event(5, kT0 + 20 * 24 * kHour);
  ASSERT_EQ(engine_->pending(1, ModelKind::kConversion), 1u);
  SavePending();
  settings_.ftrl.bits = 18;
  Open();
  EXPECT_EQ(engine_->pending(1, ModelKind::kConversion), 0u);
  // The same table keeps them.
  Event(6, kT0 + 30 * 24 * kHour);
  SavePending();
  Open();
  EXPECT_EQ(engine_->pending(1, ModelKind::kConversion), 1u);
}

TEST_F(ModelEngineTest, ChurnIsInactivityOrTheCancelEvent) {
  settings_.cancel_event = "Subscription Cancelled";
  settings_.sample_every_ms = 1;  // every event is a moment, for this test
  Open();
  Event(1, kT0);
  Event(1, kT0 + kHour);                                // active again within 30 days: not churned
  Event(1, kT0 + 2 * kHour, "Subscription Cancelled");  // churned: explicit cancel
  EXPECT_EQ(engine_->learned(1, ModelKind::kChurn), 2u);
  // The cancel moment itself is not an example; the customer's next event after 31 days of
  // silence resolves nothing more for customer 1 (no pending), so nothing is learned then.
  EXPECT_EQ(engine_->pending(1, ModelKind::kChurn), 0u);
  Event(2, kT0 + 3 * kHour);
  Event(2, kT0 + 3 * kHour + 31 * 24 * kHour);  // came back after the churn window: churned
  EXPECT_EQ(engine_->learned(1, ModelKind::kChurn), 3u);
}

TEST_F(ModelEngineTest, LearnsWhatLeadsToTheGoal) {
  settings_.sample_every_ms = 1;
  settings_.conversion_window_ms = 2 * kHour;
  settings_.ftrl.alpha = 0.3;
  Open();
  // A customer every 10 minutes: those who add to cart buy 5 minutes later; browsers never do.
  int64_t t = kT0;
  for (uint64_t id = 1; id <= 3000; ++id) {
    bool buyer = id % 3 == 0;
    Event(id, t += 10 * 60'000, buyer ? "Product Added" : "Page Viewed");
    if (buyer) Event(id, t + 5 * 60'000, "Order Completed");
  }
  Event(999'999, t + 30 * 24 * kHour);  // moves event time on: the last windows pass
  EXPECT_GT(engine_->learned(1, ModelKind::kConversion), 2900u);
  Checkpoint();
  Profile buyer, browser;
  buyer.id = 1;
  buyer.seen = {kT0, kT0, 1};
  buyer.sessions.count = 1;
  buyer.sessions.current_events = 1;
  buyer.event_counts["Product Added"] = 1;
  browser = buyer;
  browser.event_counts = {{"Page Viewed", 1}};
  auto b = engine_->Explain(1, ModelKind::kConversion, buyer, 3);
  auto n = engine_->Explain(1, ModelKind::kConversion, browser, 3);
  ASSERT_TRUE(b && n);
  EXPECT_GT(b->probability, 0.7);
  EXPECT_LT(n->probability, 0.2);
  ASSERT_FALSE(b->factors.empty());
  EXPECT_EQ(b->factors[0].feature, "count=Product Added");
  EXPECT_GT(b->factors[0].contribution, 0);
}

// Readers keep the copy they took however often the models are published after, and a copy no
// reader holds any more is the memory the next publish reuses.
TEST_F(ModelEngineTest, PublishedCopiesStayPutWhileHeldAndAreReusedAfter) {
  settings_.sample_every_ms = 1;
  settings_.conversion_window_ms = kHour;
  Open();
  int64_t t = kT0;
  uint64_t id = 0;
  auto learn_some = [&] {  // 20 more labelled examples
    for (int i = 0; i < 20; ++i) {
      Event(++id, t += 60'000, "Product Added");
      Event(id, t + 1'000, "Order Completed");
    }
    Event(++id, t += 2 * kHour);  // the windows pass
  };
  auto published = [&] { return engine_->PublishedModel(1, ModelKind::kConversion).first; };
  learn_some();
  Checkpoint();
  std::shared_ptr<const learn::FtrlModel> first = published();
  ASSERT_NE(first, nullptr);
  const uint64_t first_examples = first->examples();
  const std::string first_image = first->Serialize();
  EXPECT_EQ(first_examples, engine_->learned(1, ModelKind::kConversion));
  const learn::FtrlModel* second_address = nullptr;
  {
    learn_some();
    Checkpoint();
    second_address = published().get();
    // `first` is held: the next publish may not write over it.
    learn_some();
    Checkpoint();
    EXPECT_NE(published().get(), first.get());
    EXPECT_NE(published().get(), second_address);
  }
  EXPECT_EQ(first->examples(), first_examples);
  EXPECT_EQ(first->Serialize(), first_image);
  // Nobody holds the second copy now: the next publish writes the live model over it.
  learn_some();
  Checkpoint();
  EXPECT_EQ(published().get(), second_address);
  EXPECT_EQ(published()->examples(), engine_->learned(1, ModelKind::kConversion));
  EXPECT_GT(published()->examples(), first_examples);
}

TEST_F(ModelEngineTest, VersionsPersistAndRollBack) {
  settings_.version_every = 100;
  settings_.sample_every_ms = 1;
  Open();
  int64_t t = kT0;
  for (uint64_t i = 0; i < 250; ++i) {
    Event(1, t += kHour);  // each event resolves the previous moment: not churned
  }
  ASSERT_GE(engine_->learned(1, ModelKind::kChurn), 249u);
  Checkpoint(false);  // versions were cut: written even before 30 s passed
  std::string json;
  JsonWriter w(&json);
  ASSERT_TRUE(engine_->WriteModel(1, ModelKind::kChurn, true, w));
  simdjson::dom::parser parser;
  simdjson::dom::element doc = parser.parse(json);
  EXPECT_EQ(uint64_t(doc["version"]), 2u);
  EXPECT_EQ(simdjson::dom::array(doc["versions"]).size(), 2u);
  EXPECT_EQ(uint64_t(doc["versions"].at(0)["metrics"]["examples"]), 100u);

  // A restart finds the model and its versions.
  uint64_t learned = engine_->learned(1, ModelKind::kChurn);
  Open();
  EXPECT_EQ(engine_->learned(1, ModelKind::kChurn), learned);

  rocksdb::WriteBatch batch;
  absl::StatusOr<ModelVersion> v = engine_->Rollback(1, ModelKind::kChurn, 1, &batch);
  ASSERT_TRUE(v.ok()) << v.status();
  ASSERT_TRUE(store_->Write(&batch).ok());
  EXPECT_EQ(v->version, 3u);
  EXPECT_EQ(v->reason, "rollback");
  EXPECT_EQ(v->restored, 1u);
  EXPECT_EQ(engine_->learned(1, ModelKind::kChurn), 100u);  // version 1's state
  rocksdb::WriteBatch none;
  EXPECT_EQ(engine_->Rollback(1, ModelKind::kChurn, 42, &none).status().code(),
            absl::StatusCode::kNotFound);
  Open();
  EXPECT_EQ(engine_->learned(1, ModelKind::kChurn), 100u);
}

TEST_F(ModelEngineTest, ForgottenProfilesAreNotLabelled) {
  Event(1, kT0);
  EXPECT_EQ(engine_->pending(1, ModelKind::kChurn), 1u);
  engine_->Forget(1, 1);
  EXPECT_EQ(engine_->pending(1, ModelKind::kChurn), 0u);
  Event(2, kT0 + 40 * 24 * kHour);  // customer 1's window would have passed: nothing learned
  EXPECT_EQ(engine_->learned(1, ModelKind::kChurn), 0u);
}

TEST_F(ModelEngineTest, TheRegistryCountsPendingExamplesWithoutTheForgottenOnes) {
  auto registry_pending = [&] {
    std::string json;
    JsonWriter w(&json);
    EXPECT_TRUE(engine_->WriteModel(1, ModelKind::kChurn, false, w));
    simdjson::dom::parser parser;
    return uint64_t(parser.parse(json)["pendingExamples"]);
  };
  Event(1, kT0);
  Event(2, kT0);
  Checkpoint();
  EXPECT_EQ(registry_pending(), 2u);
  // An erasure, with no event after it: the next (unforced) checkpoint publishes the count.
  engine_->Forget(1, 1);
  clock_.Advance(2'000);
  Checkpoint(/*force=*/false);
  EXPECT_EQ(registry_pending(), 1u);
}

TEST_F(ModelEngineTest, InterventionWindowFromReturnGaps) {
  EXPECT_FALSE(engine_->InterventionWindowDays(1).has_value());
  // 30 customers come back after 1..30 days.
  for (uint64_t id = 1; id <= 30; ++id) {
    Event(id, kT0);
    Event(id, kT0 + static_cast<int64_t>(id) * 24 * kHour);
  }
  Checkpoint();
  auto window = engine_->InterventionWindowDays(1);
  ASSERT_TRUE(window.has_value());
  EXPECT_NEAR(window->first, 15, 1.01);
  EXPECT_NEAR(window->second, 27, 1.01);
}

TEST_F(ModelEngineTest, IntentKeepsTheLatestImagesAndRollsBack) {
  const std::string image = whisperer::testing::TinyIntentModel()->Serialize();
  auto train = [&](uint64_t examples) {
    IntentVersion v;
    v.examples = examples;
    absl::StatusOr<IntentVersion> stored = ModelEngine::StoreIntent(*store_, 1, v, image);
    ASSERT_TRUE(stored.ok()) << stored.status();
    EXPECT_EQ(stored->image, stored->version);
  };
  auto versions = [&] {
    std::string json;
    JsonWriter w(&json);
    EXPECT_TRUE(engine_->WriteIntent(1, /*with_versions=*/true, w));
    simdjson::dom::parser parser;
    std::vector<std::tuple<uint64_t, std::string, uint64_t, bool>> out;
    for (simdjson::dom::element v : parser.parse(json)["versions"].get_array()) {
      uint64_t restored = 0;  // absent unless a rollback
      if (v["restoredVersion"].get(restored) != simdjson::SUCCESS) restored = 0;
      out.emplace_back(uint64_t(v["version"]), std::string(std::string_view(v["reason"])), restored,
                       bool(v["stored"]));
    }
    return out;
  };
  for (uint64_t i = 1; i <= 4; ++i) train(10 * i);
  Open();
  EXPECT_NE(engine_->intent_model(1), nullptr);
  using V = std::tuple<uint64_t, std::string, uint64_t, bool>;
  // Four trainings: the first one's image is dropped (kKeptIntentImages = 3).
  EXPECT_EQ(versions(), (std::vector<V>{
                            {1, "train", 0, false},
                            {2, "train", 0, true},
                            {3, "train", 0, true},
                            {4, "train", 0, true},
                        }));
  rocksdb::WriteBatch batch;
  EXPECT_EQ(engine_->RollbackIntent(1, 1, &batch).status().code(),
            absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(engine_->RollbackIntent(1, 9, &batch).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(batch.Count(), 0u);  // refusals write nothing
  absl::StatusOr<IntentVersion> back = engine_->RollbackIntent(1, 2, &batch);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->version, 5u);
  EXPECT_EQ(back->examples, 20u);  // version 2's figures
  EXPECT_EQ(back->image, 2u);
  ASSERT_TRUE(store_->Write(&batch).ok());
  EXPECT_EQ(std::get<2>(versions().back()), 2u);
  // A restart answers with version 5, which is version 2's model; a fifth training keeps its
  // image and those of the two latest other trainings (6, 4, 2): version 3's image goes.
  train(60);
  Open();
  EXPECT_NE(engine_->intent_model(1), nullptr);
  EXPECT_EQ(versions(), (std::vector<V>{
                            {1, "train", 0, false},
                            {2, "train", 0, true},
                            {3, "train", 0, false},
                            {4, "train", 0, true},
                            {5, "rollback", 2, true},
                            {6, "train", 0, true},
                        }));
}

TEST(ProfileRfmTest, SummarizesTheOrdersInWeeks) {
  Profile p;
  EXPECT_FALSE(ProfileRfm(p, kT0).has_value());  // no orders
  // Four orders on three days: the first day's 30 is the trial, left out of the spend.
  p.orders = 4;
  p.order_days = 3;
  p.revenue = 90;
  p.first_day_revenue = 30;
  p.first_order_ms = kT0;
  p.last_order_ms = kT0 + 14 * 24 * kHour;
  std::optional<learn::RfmSummary> rfm = ProfileRfm(p, kT0 + 28 * 24 * kHour);
  ASSERT_TRUE(rfm.has_value());
  EXPECT_EQ(rfm->x, 2);
  EXPECT_DOUBLE_EQ(rfm->t_x, 2);
  EXPECT_DOUBLE_EQ(rfm->T, 4);
  EXPECT_DOUBLE_EQ(rfm->monetary, 30);
  p.orders = 1;
  p.order_days = 1;
  rfm = ProfileRfm(p, kT0 + 7 * 24 * kHour);
  EXPECT_EQ(rfm->x, 0);
  EXPECT_EQ(rfm->monetary, 0);
}

TEST_F(ModelEngineTest, LifetimeValueFitsInstallsPersistsAndRollsBack) {
  // Customers with 1 to 4 orders a few weeks apart, stored the way the profile engine stores
  // them.
  rocksdb::WriteBatch batch;
  for (uint64_t id = 1; id <= 200; ++id) {
    Profile p;
    p.id = id;
    p.seen = {kT0, kT0, 1};
    p.orders = p.order_days = 1 + id % 4;
    // Each customer has a typical order value of their own, from 10 to 120.
    p.first_day_revenue = 10.0 + static_cast<double>((id * 37) % 111);
    p.revenue = static_cast<double>(p.orders) * p.first_day_revenue;
    p.first_order_ms = kT0 + static_cast<int64_t>(id % 10) * 24 * kHour;
    p.last_order_ms = p.first_order_ms + static_cast<int64_t>(p.orders - 1) * 21 * 24 * kHour;
    std::string encoded;
    EncodeProfile(p, &encoded);
    ASSERT_TRUE(batch.Put(store_->profiles(), storage::ProfileKey(1, id), encoded).ok());
  }
  {
    // One customer whose orders summed past a double (three of 1e308): counted, left out of the
    // spend model, and no obstacle to everyone else's fit.
    Profile p;
    p.id = 201;
    p.seen = {kT0, kT0, 1};
    p.orders = p.order_days = 3;
    p.first_day_revenue = 1e308;
    p.revenue = std::numeric_limits<double>::infinity();
    p.first_order_ms = kT0;
    p.last_order_ms = kT0 + 42 * 24 * kHour;
    std::string encoded;
    EncodeProfile(p, &encoded);
    ASSERT_TRUE(batch.Put(store_->profiles(), storage::ProfileKey(1, p.id), encoded).ok());
  }
  ASSERT_TRUE(store_->Write(&batch).ok());
  const int64_t now = kT0 + 120 * 24 * kHour;
  absl::StatusOr<ClvFit> fit = ModelEngine::FitClv(*store_, 1, now);
  ASSERT_TRUE(fit.ok()) << fit.status();
  EXPECT_EQ(fit->customers, 201u);
  EXPECT_EQ(fit->repeaters, 150u);
  EXPECT_GT(fit->model.purchases.r, 0);
  EXPECT_GT(fit->model.spend.p, 0);
  EXPECT_EQ(ModelEngine::FitClv(*store_, 2, now).status().code(),
            absl::StatusCode::kInvalidArgument);  // an empty workspace: nothing to fit on

  EXPECT_EQ(engine_->ClvDueAt(1), settings_.clv_refit_every_ms);  // never fitted: due at once
  rocksdb::WriteBatch install;
  absl::StatusOr<ClvFit> v1 = engine_->InstallClv(1, *fit, &install);
  ASSERT_TRUE(v1.ok());
  ASSERT_TRUE(store_->Write(&install).ok());
  EXPECT_EQ(v1->version, 1u);
  EXPECT_EQ(engine_->ClvDueAt(1), now + settings_.clv_refit_every_ms);

  // A customer's value, from the installed version.
  Profile customer;
  customer.id = 9;
  customer.orders = customer.order_days = 3;
  customer.revenue = 75;
  customer.first_day_revenue = 25;
  customer.first_order_ms = kT0;
  customer.last_order_ms = kT0 + 60 * 24 * kHour;
  customer.seen = {kT0, customer.last_order_ms, 3};
  std::string json;
  JsonWriter w(&json);
  engine_->WriteScores(1, customer, now, w);
  simdjson::dom::parser parser;
  simdjson::dom::element ltv = parser.parse(json)["lifetimeValue"];
  EXPECT_EQ(uint64_t(ltv["version"]), 1u);
  EXPECT_GT(double(ltv["probabilityAlive"]), 0.0);
  EXPECT_LE(double(ltv["probabilityAlive"]), 1.0);
  EXPECT_GT(double(ltv["expectedPurchases"]), 0.0);
  EXPECT_GT(double(ltv["expectedValue"]), 0.0);
  EXPECT_EQ(double(ltv["historicalValue"]), 75.0);

  // Refunds booked as negative repeat orders: the population's spend, never a negative value.
  Profile refunder = customer;
  refunder.revenue = -10'000;  // repeat orders worth -5,012.5 each
  std::string refund_json;
  JsonWriter rw(&refund_json);
  engine_->WriteScores(1, refunder, now, rw);
  simdjson::dom::element refund_ltv = parser.parse(refund_json)["lifetimeValue"];
  EXPECT_GT(double(refund_ltv["expectedSpendPerPurchase"]), 0.0) << refund_json;
  EXPECT_GT(double(refund_ltv["expectedValue"]), 0.0) << refund_json;

  // A profile with bot traffic only has no moment to score (not one dated 1970).
  Profile bots;
  bots.id = 10;
  std::string bots_json;
  JsonWriter bw(&bots_json);
  engine_->WriteScores(1, bots, now, bw);
  EXPECT_EQ(bots_json, "null");

  // The offline command's path stores version 2 beside it; a restart reads both.
  ClvFit second = *fit;
  second.model.purchases.r *= 2;
  // The one-price limit's log-likelihood (+infinity, stored as null) reads back.
  second.model.spend.log_likelihood = std::numeric_limits<double>::infinity();
  ASSERT_TRUE(ModelEngine::StoreClv(*store_, 1, second).ok());
  Open();
  rocksdb::WriteBatch rollback;
  absl::StatusOr<ClvFit> v3 = engine_->RollbackClv(1, 1, &rollback);
  ASSERT_TRUE(v3.ok()) << v3.status();
  ASSERT_TRUE(store_->Write(&rollback).ok());
  EXPECT_EQ(v3->version, 3u);
  EXPECT_EQ(v3->restored, 1u);
  EXPECT_EQ(v3->model.purchases.r, fit->model.purchases.r);
  EXPECT_EQ(engine_->RollbackClv(1, 9, &rollback).status().code(), absl::StatusCode::kNotFound);
  std::string model_json;
  JsonWriter mw(&model_json);
  ASSERT_TRUE(engine_->WriteClv(1, true, mw));
  simdjson::dom::element doc = parser.parse(model_json);
  EXPECT_EQ(uint64_t(doc["version"]), 3u);
  EXPECT_EQ(simdjson::dom::array(doc["versions"]).size(), 3u);
  EXPECT_EQ(double(doc["refitEveryHours"]),
            static_cast<double>(settings_.clv_refit_every_ms) / 3'600'000);

  settings_.clv_refit_every_ms = 30 * 60'000;  // not whole hours
  Open();
  model_json.clear();
  JsonWriter half(&model_json);
  ASSERT_TRUE(engine_->WriteClv(1, false, half));
  EXPECT_EQ(double(parser.parse(model_json)["refitEveryHours"]), 0.5);
}

TEST_F(ModelEngineTest, ALateOlderEventNeverMovesTheScoresBack) {
  Event(1, kT0 + 2 * kHour);
  Event(1, kT0);  // sent late
  EXPECT_EQ(profiles_[1].scores.at_ms, kT0 + 2 * kHour);
  EXPECT_EQ(profiles_[1].scores.sampled_ms[0], kT0 + 2 * kHour);
}

TEST_F(ModelEngineTest, OffMeansNoScores) {
  settings_.enabled = false;
  Open();
  Event(1, kT0);
  EXPECT_EQ(profiles_[1].scores.at_ms, 0);
  EXPECT_EQ(engine_->Settings(1), nullptr);
  Profile p;
  EXPECT_FALSE(engine_->Explain(1, ModelKind::kChurn, p, 3).has_value());
}

}  // namespace
}  // namespace whisperer::state
