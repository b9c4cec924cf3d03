#include "state/intent.h"

#include <gtest/gtest.h>

#include <cmath>

#include "common/timestamp.h"
#include "state/conditions.h"

namespace whisperer::state {
namespace {

constexpr int64_t kT0 = 1'700'000'000'000;

class IntentTest : public ::testing::Test {
 protected:
  // A track event `offset_ms` after kT0, folded into the profile.
  void Track(std::string_view name, int64_t offset_ms, std::string_view properties = "{}") {
    Fold(R"({"type":"track","event":")" + std::string(name) + R"(","properties":)" +
             std::string(properties) + ",",
         offset_ms);
  }
  void Page(int64_t offset_ms) { Fold(R"({"type":"page",)", offset_ms); }
  void Fold(const std::string& head, int64_t offset_ms) {
    std::string json = head + R"("anonymousId":"a","messageId":"m)" + std::to_string(++seq_) +
                       R"(","timestamp":")" + FormatIso8601(kT0 + offset_ms) + "\"}";
    simdjson::dom::element doc;
    ASSERT_EQ(parser_.parse(json).get(doc), simdjson::SUCCESS) << json;
    absl::StatusOr<EventFacts> facts = ExtractFacts(doc, identity::IdentityRules());
    ASSERT_TRUE(facts.ok());
    FoldEvent(profile_, *facts, nullptr, seq_, FoldOptions());
  }
  static double Sat(double x, double h) { return x / (x + h); }

  simdjson::dom::parser parser_;
  Profile profile_;
  uint64_t seq_ = 0;
};

TEST_F(IntentTest, ClassifiesSegmentEcommerceEvents) {
  simdjson::dom::parser parser;
  EXPECT_EQ(ClassifySignals(api::EventType::kTrack, "Product Added", nullptr),
            1u << static_cast<int>(Signal::kCartAdd));
  EXPECT_EQ(ClassifySignals(api::EventType::kPage, "Product Added", nullptr), 0u);
  // An event that may sort by price, without properties (it crashed the server).
  EXPECT_EQ(ClassifySignals(api::EventType::kTrack, "Product List Filtered", nullptr),
            1u << static_cast<int>(Signal::kListView));
  simdjson::dom::element sorts =
      parser.parse(std::string(R"({"sorts":[{"type":"price","value":"asc"}]})"));
  EXPECT_EQ(
      ClassifySignals(api::EventType::kTrack, "Product List Filtered", &sorts),
      (1u << static_cast<int>(Signal::kListView)) | (1u << static_cast<int>(Signal::kPriceSort)));
  simdjson::dom::parser parser2;
  simdjson::dom::element by_name = parser2.parse(std::string(R"({"sort":"name"})"));
  EXPECT_EQ(ClassifySignals(api::EventType::kTrack, "Products Sorted", &by_name), 0u);
}

TEST_F(IntentTest, PurchaseIntentIsTheDocumentedNoisyOr) {
  EXPECT_EQ(ComputeIntent(profile_, IntentScope::kProfile, kT0).purchase_intent.score, 0);
  Track("Product Viewed", 0);
  Track("Product Viewed", 1000);
  Track("Product Added", 2000);
  Intent i = ComputeIntent(profile_, IntentScope::kProfile, kT0 + 2000);
  double expected = 1 - (1 - 0.2 * Sat(2, 2)) * (1 - 0.5 * Sat(1, 1));
  EXPECT_DOUBLE_EQ(i.purchase_intent.score, expected);
  ASSERT_EQ(i.purchase_intent.drivers.size(), 2u);
  EXPECT_EQ(i.purchase_intent.drivers[0].feature, "cart adds");  // the stronger first
  EXPECT_DOUBLE_EQ(i.purchase_intent.drivers[0].contribution, 0.25);
  EXPECT_EQ(i.purchase_intent.drivers[1].feature, "product views");
  EXPECT_DOUBLE_EQ(i.purchase_intent.drivers[1].value, 2);
  // conversion = logistic(-3 + 3 * purchase intent) for a first-time visitor without orders.
  EXPECT_DOUBLE_EQ(i.conversion_probability, 1 / (1 + std::exp(3 - 3 * expected)));
}

TEST_F(IntentTest, ScoresOnlyGivesTheSameScoresWithoutDrivers) {
  Track("Product Viewed", 0);
  Track("Product Added", 1000);
  Track("Coupon Applied", 2000);
  Track("Reviews Viewed", 3000);
  for (IntentScope scope : {IntentScope::kProfile, IntentScope::kSession}) {
    Intent full = ComputeIntent(profile_, scope, kT0 + 3000);
    Intent scores = ComputeIntent(profile_, scope, kT0 + 3000, IntentDetail::kScoresOnly);
    for (auto signal : {&Intent::purchase_intent, &Intent::urgency, &Intent::price_sensitivity,
                        &Intent::research_depth}) {
      EXPECT_GT((full.*signal).score, 0);
      EXPECT_FALSE((full.*signal).drivers.empty());
      EXPECT_EQ((scores.*signal).score, (full.*signal).score);
      EXPECT_TRUE((scores.*signal).drivers.empty());
    }
    EXPECT_EQ(scores.conversion_probability, full.conversion_probability);
  }
}

TEST_F(IntentTest, SessionCountsStartAgainAndProfileCountsDoNot) {
  Track("Coupon Applied", 0);
  Track("Product List Filtered", 1000, R"({"sorts":[{"type":"price"}]})");
  const int64_t next_day = 20 * 3'600'000;  // a new session 20 hours later
  Page(next_day);
  Intent all = ComputeIntent(profile_, IntentScope::kProfile, kT0 + next_day);
  Intent now = ComputeIntent(profile_, IntentScope::kSession, kT0 + next_day);
  EXPECT_DOUBLE_EQ(all.price_sensitivity.score, 1 - (1 - 0.5 * 0.5) * (1 - 0.4 * 0.5));
  EXPECT_EQ(now.price_sensitivity.score, 0);
  // Back within a day: that urgency term holds in both scopes; one event in its first minute.
  double urgency = 1 - (1 - 0.4 * Sat(1, 4)) * (1 - 0.3 * 0.5);
  EXPECT_DOUBLE_EQ(now.urgency.score, urgency);
  EXPECT_DOUBLE_EQ(all.urgency.score, urgency);
  // Returning raises the conversion probability.
  EXPECT_DOUBLE_EQ(all.conversion_probability, 1 / (1 + std::exp(3 - 0.8)));
}

TEST_F(IntentTest, ResearchDepthFromViewsComparisonsAndReviews) {
  for (int i = 0; i < 5; ++i) Page(i * 60'000);
  Track("Products Compared", 300'000);
  Track("Reviews Viewed", 360'000);
  Intent i = ComputeIntent(profile_, IntentScope::kSession, kT0 + 360'000);
  double expected =
      1 - (1 - 0.3 * Sat(5, 5)) * (1 - 0.4 * 0.5) * (1 - 0.3 * 0.5) * (1 - 0.2 * Sat(6, 5));
  EXPECT_DOUBLE_EQ(i.research_depth.score, expected);
}

TEST_F(IntentTest, ConditionsReadTheSignals) {
  Track("Checkout Started", 0);
  simdjson::dom::element doc = parser_.parse(std::string(R"({"type":"track"})"));
  EventFacts facts;
  EventBindings b(facts, doc, profile_, nullptr, kT0);
  auto holds = [&](std::string_view condition) {
    absl::StatusOr<expr::Expr> e = CompileCondition(condition, "test");
    EXPECT_TRUE(e.ok()) << e.status();
    return e.ok() && e->Eval(b);
  };
  // 0.7 * 1/2
  EXPECT_TRUE(
      holds("profile.intent.purchase_intent > 0.3499 and "
            "profile.intent.purchase_intent < 0.3501"));
  EXPECT_TRUE(
      holds("session.intent.purchase_intent > 0.3499 and "
            "session.intent.purchase_intent < 0.3501"));
  EXPECT_TRUE(holds("session.intent.urgency > 0.25 and profile.intent.price_sensitivity == 0"));
  EXPECT_TRUE(holds("profile.intent.conversion_probability < 0.2"));
  EXPECT_TRUE(holds("profile.intent.research_depth == 0"));
}

TEST_F(IntentTest, MergeSumsEvidence) {
  Track("Product Added", 0);
  Profile other;
  other.id = 2;
  other.signals[static_cast<size_t>(Signal::kCartAdd)] = 2;
  MergeProfiles(profile_, std::move(other), {});
  EXPECT_EQ(profile_.signals[static_cast<size_t>(Signal::kCartAdd)], 3u);
}

}  // namespace
}  // namespace whisperer::state
