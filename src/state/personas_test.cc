#include "state/personas.h"

#include <gtest/gtest.h>

#include <map>

#include "common/timestamp.h"
#include "state/conditions.h"
#include "state/journeys.h"

namespace whisperer::state {
namespace {

constexpr int64_t kT0 = 1'700'000'000'000;

std::vector<PersonaSpec> Specs() {
  return {
      {"deal_seeker",
       {{"profile.counts.coupon_applied >= 1", "deal.0", 2},
        {"profile.counts.products_sorted >= 1", "deal.1", 1},
        {"profile.orders.count == 0", "deal.2", 1}},
       0.5},
      {"loyal",
       {{"profile.orders.count >= 2", "loyal.0", 3}, {"profile.returning", "loyal.1", 1}},
       0.75},
  };
}

class PersonasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    absl::StatusOr<std::shared_ptr<const PersonaSet>> set = CompilePersonas(Specs());
    ASSERT_TRUE(set.ok()) << set.status();
    personas_ = *set;
  }
  // One track event `offset_ms` after kT0, folded in and the personas updated.
  bool Track(std::string_view name, int64_t offset_ms, std::string_view properties = "{}") {
    std::string json = R"({"type":"track","anonymousId":"a","messageId":"m)" +
                       std::to_string(++seq_) + R"(","event":")" + std::string(name) +
                       R"(","timestamp":")" + FormatIso8601(kT0 + offset_ms) +
                       R"(","properties":)" + std::string(properties) + "}";
    simdjson::dom::element doc;
    EXPECT_EQ(parser_.parse(json).get(doc), simdjson::SUCCESS);
    absl::StatusOr<EventFacts> facts = ExtractFacts(doc, identity::IdentityRules());
    EXPECT_TRUE(facts.ok());
    FoldEvent(profile_, *facts, nullptr, seq_, FoldOptions());
    EventBindings bindings(*facts, doc, profile_, nullptr, facts->received_at_ms);
    return UpdatePersona(*personas_, bindings, profile_, facts->timestamp_ms, seq_,
                         facts->message_id);
  }

  simdjson::dom::parser parser_;
  std::shared_ptr<const PersonaSet> personas_;
  Profile profile_;
  uint64_t seq_ = 0;
};

TEST_F(PersonasTest, ScoreIsTheWeightOfTheRulesThatHold) {
  // No coupon, no sort, no order: only the last deal_seeker rule (1 of 4) holds: below 0.5.
  EXPECT_FALSE(Track("Product Viewed", 0));
  EXPECT_EQ(profile_.persona.id, "");
  // A coupon: (2 + 1) / 4 = 0.75.
  EXPECT_TRUE(Track("Coupon Applied", 1000));
  EXPECT_EQ(profile_.persona.id, "deal_seeker");
  EXPECT_DOUBLE_EQ(profile_.persona.confidence, 0.75);
  EXPECT_EQ(profile_.persona.since_ms, kT0 + 1000);
  // Sorting by price too: 4 / 4; the persona stays, only its confidence changes.
  EXPECT_FALSE(Track("Products Sorted", 2000));
  EXPECT_DOUBLE_EQ(profile_.persona.confidence, 1.0);
  ASSERT_EQ(profile_.persona.history.size(), 1u);
  EXPECT_EQ(profile_.persona.history[0].persona, "deal_seeker");
  EXPECT_EQ(profile_.persona.history[0].message_id, "m2");
}

TEST_F(PersonasTest, HighestScoreWinsAndChangesAreKept) {
  Track("Coupon Applied", 0);
  ASSERT_EQ(profile_.persona.id, "deal_seeker");
  // Two orders: deal_seeker drops to 2 / 4 = 0.5 (still qualifies); loyal is 3 / 4 = 0.75.
  Track("Order Completed", 1000, R"({"revenue": 10})");
  EXPECT_EQ(profile_.persona.id, "deal_seeker");  // loyal: one order, 0 / 4
  EXPECT_TRUE(Track("Order Completed", 2000, R"({"revenue": 10})"));
  EXPECT_EQ(profile_.persona.id, "loyal");
  EXPECT_DOUBLE_EQ(profile_.persona.confidence, 0.75);
  ASSERT_EQ(profile_.persona.history.size(), 2u);
  EXPECT_EQ(profile_.persona.history[1].persona, "loyal");
  EXPECT_EQ(profile_.persona.history[1].sequence, 3u);
}

TEST_F(PersonasTest, TiesGoToTheFirstDeclared) {
  absl::StatusOr<std::shared_ptr<const PersonaSet>> set =
      CompilePersonas({{"a", {{"profile.events >= 1", "a.0", 1}}, 0.5},
                       {"b", {{"profile.events >= 1", "b.0", 5}}, 0.5}});
  ASSERT_TRUE(set.ok());
  personas_ = *set;
  Track("Anything", 0);
  EXPECT_EQ(profile_.persona.id, "a");
}

TEST_F(PersonasTest, NoneQualifyingAnyMoreIsAChangeToNone) {
  absl::StatusOr<std::shared_ptr<const PersonaSet>> set =
      CompilePersonas({{"new_visitor", {{"profile.events < 2", "n.0", 1}}, 0.5}});
  ASSERT_TRUE(set.ok());
  personas_ = *set;
  EXPECT_TRUE(Track("First", 0));
  EXPECT_EQ(profile_.persona.id, "new_visitor");
  EXPECT_TRUE(Track("Second", 1000));
  EXPECT_EQ(profile_.persona.id, "");
  ASSERT_EQ(profile_.persona.history.size(), 2u);
  EXPECT_EQ(profile_.persona.history[1].persona, "");
}

TEST_F(PersonasTest, ErrorsNameWhereTheRuleWasWritten) {
  absl::StatusOr<std::shared_ptr<const PersonaSet>> set = CompilePersonas(
      {{"x",
        {{"profile.orders.count >= 'many'", "whisperer.yaml:9: personas[0].rules[0].when", 1}},
        0.5}});
  ASSERT_FALSE(set.ok());
  EXPECT_NE(set.status().message().find("whisperer.yaml:9: personas[0].rules[0].when: column"),
            std::string::npos)
      << set.status();
}

TEST_F(PersonasTest, MergeJoinsHistoriesAndKeepsTheSurvivorsPersona) {
  Profile survivor, loser;
  survivor.persona = {"", 0, 0, {{"x", 0.6, kT0 + 30, 3, "m3"}, {"", 0, kT0 + 50, 5, "m5"}}};
  loser.persona = {"loyal", 0.8, kT0 + 40, {{"loyal", 0.8, kT0 + 40, 4, "m4"}}};
  MergePersonas(survivor, loser);
  EXPECT_EQ(survivor.persona.id, "loyal");  // the survivor had none
  ASSERT_EQ(survivor.persona.history.size(), 3u);
  EXPECT_EQ(survivor.persona.history[0].message_id, "m3");
  EXPECT_EQ(survivor.persona.history[1].message_id, "m4");
  EXPECT_EQ(survivor.persona.history[2].message_id, "m5");
}

TEST_F(PersonasTest, DiscoveryFeaturesAreNamedAsTheConditionsThatReadThem) {
  Track("Coupon Applied", 0);
  Track("Order Completed", 1000, R"({"revenue": 30})");
  Track("Coupon Applied", 2000);
  Track("Coupon Applied", 3000);
  std::vector<std::string> events = {"Coupon Applied", "Never Sent"};
  std::vector<std::string> names = DiscoveryFeatureNames(events);
  std::vector<double> values = DiscoveryFeatures(profile_, events);
  ASSERT_EQ(names.size(), values.size());
  std::map<std::string, double> f;
  for (size_t i = 0; i < names.size(); ++i) f[names[i]] = values[i];
  EXPECT_EQ(f.at("profile.events"), 4);
  EXPECT_EQ(f.at("profile.sessions.count"), 1);
  EXPECT_EQ(f.at("profile.orders.count"), 1);
  EXPECT_EQ(f.at("profile.orders.revenue"), 30);
  EXPECT_EQ(f.at("profile.returning"), 0);
  EXPECT_EQ(f.at("profile.shares.coupon_applied"), 0.75);
  EXPECT_EQ(f.at("profile.shares.never_sent"), 0);
  // Another spelling of the same event counts under the same condition name, as
  // profile.shares.coupon_applied reads it.
  Track("coupon applied", 4000);
  std::vector<double> spelled = DiscoveryFeatures(profile_, {"coupon_applied"});
  EXPECT_EQ(spelled.back(), 0.8);
  EXPECT_EQ(DiscoveryFeatureNames({"coupon_applied"}).back(), "profile.shares.coupon_applied");
  // Every name compiles as a condition (profile.returning is a bool, the others numbers).
  for (const std::string& n : names) {
    std::string condition = n == "profile.returning" ? n : n + " >= 0";
    EXPECT_TRUE(CompileCondition(condition, "test").ok()) << n;
  }
}

TEST_F(PersonasTest, JourneyStepsCarryThePersonaOfTheEnteringCustomer) {
  JourneySpec spec;
  spec.id = "j";
  spec.stages = {{"start", "event.name == 'Start'", "s", 0, ""}};
  spec.goal = "event.name == 'Done'";
  spec.goal_where = "goal";
  absl::StatusOr<std::shared_ptr<const Journey>> j = CompileJourney(spec);
  ASSERT_TRUE(j.ok());
  Track("Coupon Applied", 0);
  std::string json = R"({"type":"track","anonymousId":"a","messageId":"x","event":"Start",)"
                     R"("timestamp":")" +
                     FormatIso8601(kT0 + 1000) + "\"}";
  simdjson::dom::element doc;
  ASSERT_EQ(parser_.parse(json).get(doc), simdjson::SUCCESS);
  absl::StatusOr<EventFacts> facts = ExtractFacts(doc, identity::IdentityRules());
  ASSERT_TRUE(facts.ok());
  JourneyEffects effects;
  AdvanceJourneys({*j}, profile_, *facts, doc, nullptr, 9, &effects);
  ASSERT_EQ(effects.steps.size(), 1u);
  EXPECT_EQ(effects.steps[0].persona, "deal_seeker");
  EXPECT_EQ(profile_.journeys.at("j").entry_persona, "deal_seeker");
}

}  // namespace
}  // namespace whisperer::state
