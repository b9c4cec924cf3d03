#include "state/experience.h"

#include <gtest/gtest.h>

#include "state/conditions.h"

namespace whisperer::state {
namespace {

constexpr int64_t kT0 = 1'700'000'000'000;

class AdaptTest : public ::testing::Test {
 protected:
  std::vector<HintChoice> Run(const std::vector<AdaptationSpec>& specs) {
    absl::StatusOr<std::shared_ptr<const AdaptationSet>> set = CompileAdaptations(specs);
    EXPECT_TRUE(set.ok()) << set.status();
    rules_ = *set;
    EventBindings b(facts_, doc_, profile_, &device_, kT0);
    return Adapt(*rules_, b);
  }

  simdjson::dom::parser parser_;
  simdjson::dom::element doc_ = parser_.parse(std::string(R"({"type":"page"})"));
  EventFacts facts_;
  Profile profile_;
  DeviceFacts device_{"mobile", "iOS", "17", "Mobile Safari", "17", false};
  std::shared_ptr<const AdaptationSet> rules_;
};

TEST_F(AdaptTest, HigherPriorityWinsTiesGoToTheFirstAndLosersAreExplained) {
  profile_.journeys["shop"].stage = "cart";
  profile_.journeys["shop"].status = "active";
  std::vector<HintChoice> c = Run({
      {"mobile",
       "event.device.type == 'mobile'",
       "r0",
       10,
       {{"layout", "single_column"}, {"density", "low"}}},
      {"cart", "profile.journeys.shop == 'cart'", "r1", 20, {{"layout", "checkout_focus"}}},
      {"also_mobile", "event.device.type == 'mobile'", "r2", 10, {{"density", "medium"}}},
      {"desktop", "event.device.type == 'desktop'", "r3", 99, {{"layout", "wide"}}},
  });
  ASSERT_EQ(c.size(), 2u);  // by hint name
  EXPECT_EQ(c[0].hint, "density");
  EXPECT_EQ(c[0].value, "low");
  EXPECT_EQ(c[0].winner->id, "mobile");
  ASSERT_EQ(c[0].lost.size(), 1u);
  EXPECT_EQ(c[0].lost[0].rule->id, "also_mobile");
  EXPECT_EQ(c[0].lost[0].reason, "same priority, declared later");
  EXPECT_EQ(c[1].hint, "layout");
  EXPECT_EQ(c[1].value, "checkout_focus");
  EXPECT_EQ(c[1].winner->id, "cart");
  ASSERT_EQ(c[1].lost.size(), 1u);  // desktop did not hold: not a loser
  EXPECT_EQ(c[1].lost[0].rule->id, "mobile");
  EXPECT_EQ(c[1].lost[0].value, "single_column");
  EXPECT_EQ(c[1].lost[0].reason, "lower priority");
}

TEST_F(AdaptTest, JourneyConditionReadsStageOrStatus) {
  profile_.journeys["shop"].stage = "cart";
  profile_.journeys["shop"].status = "converted";
  std::vector<HintChoice> c = Run({
      {"done", "profile.journeys.shop == 'converted'", "r0", 0, {{"next", "cross_sell"}}},
      {"never", "exists(profile.journeys.other)", "r1", 0, {{"next", "x"}}},
  });
  ASSERT_EQ(c.size(), 1u);
  EXPECT_EQ(c[0].value, "cross_sell");
}

TEST_F(AdaptTest, ConditionErrorsNameWhereTheRuleIs) {
  absl::StatusOr<std::shared_ptr<const AdaptationSet>> set = CompileAdaptations(
      {{"x", "profile.persona > 3", "whisperer.yaml:7: adaptations[0].when", 0, {{"a", "b"}}}});
  ASSERT_FALSE(set.ok());
  EXPECT_NE(set.status().message().find("whisperer.yaml:7: adaptations[0].when: column"),
            std::string::npos)
      << set.status();
}

TEST(LiveViews, CountsDistinctOtherViewersWithinTheWindow) {
  LiveViews v;
  v.Record(1, "sku", 10, kT0);
  v.Record(1, "sku", 11, kT0 + 1000);
  v.Record(1, "sku", 10, kT0 + 2000);  // the same customer again: once
  v.Record(1, "sku", 12, kT0 - 20 * 60'000);
  v.Record(2, "sku", 13, kT0);  // another workspace
  EXPECT_EQ(v.Viewers(1, "sku", 0, kT0 + 2000, 15 * 60'000), 2u);
  EXPECT_EQ(v.Viewers(1, "sku", 10, kT0 + 2000, 15 * 60'000), 1u);  // not counting oneself
  EXPECT_EQ(v.Viewers(1, "sku", 0, kT0 + 2000, 30 * 60'000), 3u);
  EXPECT_EQ(v.Viewers(1, "sku", 0, kT0 + 15 * 60'000 + 1500, 15 * 60'000), 1u);  // 11's expired
  EXPECT_EQ(v.Viewers(1, "sku", 0, kT0 + 17 * 60'000, 15 * 60'000), 0u);
  EXPECT_EQ(v.Viewers(1, "other", 0, kT0, 15 * 60'000), 0u);
}

TEST(LiveViews, AViewerRecordedOutOfOrderKeepsTheLatestView) {
  LiveViews v;
  v.Record(1, "sku", 10, kT0 + 10 * 60'000);
  v.Record(1, "sku", 10, kT0);  // an older view arriving later does not move it back
  EXPECT_EQ(v.Viewers(1, "sku", 0, kT0 + 12 * 60'000, 5 * 60'000), 1u);
}

TEST(LiveViews, ViewsOlderThanAnHourBeforeTheNewestAreDroppedAsTheItemGrows) {
  LiveViews v;
  for (uint64_t p = 1; p <= 1000; ++p) v.Record(1, "sku", p, kT0);
  EXPECT_EQ(v.held(1, "sku"), 1000u);  // within the hour: all kept
  // Two hours later, 3,000 other viewers: the first thousand go at a sweep, and what is held
  // stays within twice the live viewers.
  for (uint64_t p = 1001; p <= 4000; ++p) v.Record(1, "sku", p, kT0 + 2 * 3'600'000);
  EXPECT_LE(v.held(1, "sku"), 2 * 3000u);
  EXPECT_LT(v.held(1, "sku"), 4000u);
  EXPECT_EQ(v.Viewers(1, "sku", 0, kT0 + 2 * 3'600'000, 3 * 3'600'000), 3000u);
  // One viewer seen again keeps a single entry.
  v.Record(1, "sku", 1001, kT0 + 2 * 3'600'000 + 1);
  EXPECT_EQ(v.Viewers(1, "sku", 0, kT0 + 2 * 3'600'000 + 1, 60'000), 3000u);
}

}  // namespace
}  // namespace whisperer::state
