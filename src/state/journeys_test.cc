#include "state/journeys.h"

#include <gtest/gtest.h>

#include "common/timestamp.h"
#include "state/funnels.h"

namespace whisperer::state {
namespace {

constexpr int64_t kT0 = 1'700'000'000'000;

JourneySpec Funnel(int64_t version = 1) {
  JourneySpec s;
  s.id = "shop";
  s.version = version;
  s.stages = {
      {"landing", "event.name == 'Landing'", "landing.entry", 3000, "bounced"},
      {"browse", "event.type == 'page'", "browse.entry", 0, ""},
      {"cart", "event.name == 'Product Added'", "cart.entry", 0, ""},
      {"bounced", "false", "bounced.entry", 0, ""},
  };
  s.goal = "event.name == 'Order Completed'";
  s.goal_where = "goal";
  s.exit = "event.name == 'Unsubscribed'";
  s.exit_where = "exit";
  return s;
}

class JourneysTest : public ::testing::Test {
 protected:
  void SetUp() override { Use(Funnel()); }
  // The funnel journey, with re-entry allowed.
  void UseReentry() {
    JourneySpec again = Funnel();
    again.reentry = true;
    Use(again);
  }
  void Use(const JourneySpec& spec) {
    absl::StatusOr<std::shared_ptr<const Journey>> j = CompileJourney(spec);
    ASSERT_TRUE(j.ok()) << j.status();
    journeys_ = {*j};
  }
  // One event at kT0 + offset_ms, received `late_ms` later.
  void Event(std::string_view type, std::string_view name, int64_t offset_ms, int64_t late_ms = 0) {
    std::string json = R"({"type":")" + std::string(type) +
                       R"(","anonymousId":"a","messageId":"m)" + std::to_string(++seq_) +
                       R"(","timestamp":")" + FormatIso8601(kT0 + offset_ms) +
                       R"(","receivedAt":")" + FormatIso8601(kT0 + offset_ms + late_ms) + "\"";
    if (type == "track") json += R"(,"event":")" + std::string(name) + "\"";
    json += "}";
    simdjson::dom::element doc;
    ASSERT_EQ(parser_.parse(json).get(doc), simdjson::SUCCESS);
    absl::StatusOr<EventFacts> facts = ExtractFacts(doc, identity::IdentityRules());
    ASSERT_TRUE(facts.ok());
    FoldEvent(profile_, *facts, nullptr, seq_, FoldOptions());
    AdvanceJourneys(journeys_, profile_, *facts, doc, nullptr, seq_, &effects_);
  }
  const JourneyState& State() { return profile_.journeys.at("shop"); }
  std::vector<std::string> Path() {
    std::vector<std::string> out;
    for (const auto& t : State().history) out.push_back(t.to + "/" + t.reason);
    return out;
  }

  simdjson::dom::parser parser_;
  std::vector<std::shared_ptr<const Journey>> journeys_;
  Profile profile_;
  JourneyEffects effects_;
  std::vector<JourneyDeadline>& deadlines_ = effects_.deadlines;
  uint64_t seq_ = 0;
};

TEST_F(JourneysTest, EntersAdvancesSkipsForwardAndConverts) {
  Event("page", "", 0);  // not the first stage's entry: not in the journey
  EXPECT_EQ(profile_.journeys.count("shop"), 0u);
  Event("track", "Landing", 1000);
  EXPECT_EQ(State().stage, "landing");
  EXPECT_EQ(State().status, "active");
  ASSERT_EQ(deadlines_.size(), 1u);
  EXPECT_EQ(deadlines_[0].deadline_ms, kT0 + 4000);
  Event("track", "Product Added", 2000);  // skips browse
  EXPECT_EQ(State().stage, "cart");
  EXPECT_EQ(State().deadline_ms, 0);
  Event("page", "", 2500);  // never back
  EXPECT_EQ(State().stage, "cart");
  Event("track", "Order Completed", 3000);
  EXPECT_EQ(State().status, "converted");
  EXPECT_EQ(Path(), (std::vector<std::string>{"landing/entry", "cart/advance", "converted/goal"}));
  // The steps the funnels count: entry, landing -> cart after 1 s, cart -> converted.
  ASSERT_EQ(effects_.steps.size(), 3u);
  EXPECT_EQ(effects_.steps[0].from, -1);
  EXPECT_EQ(effects_.steps[1].from, 0);
  EXPECT_EQ(effects_.steps[1].to, 2);
  EXPECT_EQ(effects_.steps[1].in_stage_ms, 1000);
  EXPECT_EQ(effects_.steps[2].to, JourneyStep::kConverted);
  EXPECT_EQ(effects_.steps[2].started_ms, kT0 + 1000);
  EXPECT_EQ(State().history[1].message_id, "m3");
  // Without re-entry a converted customer stays converted.
  Event("track", "Landing", 4000);
  EXPECT_EQ(State().status, "converted");
}

TEST_F(JourneysTest, TimeoutFiresOnlyWhileStillInTheStage) {
  Event("track", "Landing", 0);
  ASSERT_EQ(deadlines_.size(), 1u);
  JourneyDeadline due = deadlines_[0];
  JourneyEffects next;
  ASSERT_TRUE(FireJourneyTimeout(*journeys_[0], profile_, due, &next));
  EXPECT_EQ(State().stage, "bounced");
  EXPECT_EQ(Path().back(), "bounced/timeout");
  EXPECT_EQ(State().history.back().at_ms, kT0 + 3000);
  EXPECT_FALSE(FireJourneyTimeout(*journeys_[0], profile_, due, &next));  // already moved

  Profile other;
  profile_ = other;
  Event("track", "Landing", 0);
  Event("page", "", 500);  // moved on before the deadline
  EXPECT_FALSE(FireJourneyTimeout(*journeys_[0], profile_, deadlines_.back(), &next));
  EXPECT_EQ(State().stage, "browse");
}

TEST_F(JourneysTest, TimeoutOfAnOldEventMovesOnTheEventsClock) {
  // A day-old event enters the landing stage: the timer is set from its receipt, but the move
  // is dated on the events' clock, so the funnel sees 3 s in the stage, not a day.
  Event("track", "Landing", 0, 86'400'000);
  ASSERT_EQ(deadlines_.size(), 1u);
  EXPECT_EQ(deadlines_[0].deadline_ms, kT0 + 86'400'000 + 3000);
  JourneyEffects next;
  ASSERT_TRUE(FireJourneyTimeout(*journeys_[0], profile_, deadlines_[0], &next));
  ASSERT_EQ(next.steps.size(), 1u);
  EXPECT_EQ(next.steps[0].in_stage_ms, 3000);
  EXPECT_EQ(State().history.back().at_ms, kT0 + 3000);
  EXPECT_EQ(State().entered_ms, kT0 + 3000);
  // The next event, an hour after the entry, has been in `bounced` for that hour less 3 s.
  Event("track", "Order Completed", 3'600'000, 86'400'000);
  ASSERT_EQ(effects_.steps.size(), 2u);
  EXPECT_EQ(effects_.steps[1].in_stage_ms, 3'600'000 - 3000);
}

// Conditions see the profile at the event's own time: a customer's first event, however late it
// arrives (history loaded later), is their first moment (profile.since_first_seen 0).
TEST_F(JourneysTest, ConditionsSeeTheProfileAtTheEventsTime) {
  JourneySpec spec = Funnel();
  spec.stages[0].entry = "event.name == 'Landing' and profile.since_first_seen < 1m";
  spec.stages[1].entry = "event.type == 'page' and profile.since_first_seen >= 1h";
  Use(spec);
  Event("track", "Landing", 0, 86'400'000);
  EXPECT_EQ(State().stage, "landing");
  Event("page", "", 3'600'000, 86'400'000);
  EXPECT_EQ(State().stage, "browse");
}

TEST_F(JourneysTest, ExitAndReentry) {
  Event("track", "Landing", 0);
  Event("track", "Unsubscribed", 10);
  EXPECT_EQ(State().status, "exited");
  Event("track", "Landing", 20);
  EXPECT_EQ(State().status, "exited");  // no re-entry
  UseReentry();
  Event("track", "Landing", 30);
  EXPECT_EQ(State().status, "active");
  EXPECT_EQ(Path(), (std::vector<std::string>{"landing/entry", "exited/exit", "landing/entry"}));
  // Each entry comes from outside the journey; the exit left the stage the customer was in.
  EXPECT_EQ(State().history[0].from, "");
  EXPECT_EQ(State().history[1].from, "landing");
  EXPECT_EQ(State().history[2].from, "");
}

TEST_F(JourneysTest, NewVersionKeepsKnownStagesAndExitsRemovedOnes) {
  Event("track", "Landing", 0);
  Event("page", "", 10);
  ASSERT_EQ(State().stage, "browse");
  JourneySpec v2 = Funnel(2);
  v2.stages.insert(v2.stages.begin() + 1, {"intro", "false", "intro.entry", 0, ""});
  Use(v2);
  effects_.steps.clear();
  Event("track", "Something", 20);
  EXPECT_EQ(State().version, 2);
  EXPECT_EQ(State().stage, "browse");
  EXPECT_EQ(State().stage_index, 2);
  // The customer leaves version 1's funnel (from browse, stage 1 there) and enters version
  // 2's at browse (stage 2), in the cohort of their first entry.
  ASSERT_EQ(effects_.steps.size(), 2u);
  EXPECT_EQ(effects_.steps[0].version, 1);
  EXPECT_EQ(effects_.steps[0].from, 1);
  EXPECT_EQ(effects_.steps[0].to, JourneyStep::kExited);
  EXPECT_EQ(effects_.steps[1].version, 2);
  EXPECT_EQ(effects_.steps[1].from, -1);
  EXPECT_EQ(effects_.steps[1].to, 2);
  EXPECT_EQ(effects_.steps[1].started_ms, kT0);
  EXPECT_EQ(Path().back(), "browse/advance");  // no transition: the stage is the same
  JourneySpec v3 = Funnel(3);
  v3.stages.erase(v3.stages.begin() + 1);  // browse is gone
  Use(v3);
  effects_.steps.clear();
  Event("track", "Something", 30);
  EXPECT_EQ(State().status, "exited");
  EXPECT_EQ(Path().back(), "exited/version_changed");
  // The exit counts in the funnel of version 2, where the customer was, not in version 3's.
  ASSERT_EQ(effects_.steps.size(), 1u);
  EXPECT_EQ(effects_.steps[0].to, JourneyStep::kExited);
  EXPECT_EQ(effects_.steps[0].version, 2);
  EXPECT_EQ(State().version, 3);
}

TEST_F(JourneysTest, ATimeoutAfterAVersionChangeMovesTheCustomerToTheNewVersionFirst) {
  // Waiting in landing (3 s under version 1) when version 2 gives it 5 s, with no event since.
  Event("track", "Landing", 0);
  const JourneyDeadline due = deadlines_.back();
  JourneySpec v2 = Funnel(2);
  v2.stages[0].timeout_ms = 5000;
  Use(v2);
  JourneyEffects fired;
  ASSERT_TRUE(FireJourneyTimeout(*journeys_[0], profile_, due, &fired));
  EXPECT_EQ(State().version, 2);
  EXPECT_EQ(State().stage, "bounced");
  EXPECT_EQ(State().history.back().at_ms, kT0 + 5000);  // version 2's `after`
  // Out of version 1's funnel, into version 2's at landing, then on to bounced there.
  ASSERT_EQ(fired.steps.size(), 3u);
  EXPECT_EQ(fired.steps[0].version, 1);
  EXPECT_EQ(fired.steps[0].to, JourneyStep::kExited);
  EXPECT_EQ(fired.steps[1].version, 2);
  EXPECT_EQ(fired.steps[1].from, -1);
  EXPECT_EQ(fired.steps[1].to, 0);
  EXPECT_EQ(fired.steps[2].version, 2);
  EXPECT_EQ(fired.steps[2].from, 0);
  EXPECT_EQ(fired.steps[2].to, 3);

  // Version 3 has no timeout there: moved to it, and nothing more.
  profile_ = Profile();
  Use(Funnel(2));
  Event("track", "Landing", 10'000);
  JourneySpec v3 = Funnel(3);
  v3.stages[0].timeout_ms = 0;
  v3.stages[0].timeout_to.clear();
  Use(v3);
  fired = {};
  ASSERT_TRUE(FireJourneyTimeout(*journeys_[0], profile_, deadlines_.back(), &fired));
  EXPECT_EQ(State().version, 3);
  EXPECT_EQ(State().stage, "landing");
  EXPECT_EQ(State().status, "active");
  EXPECT_EQ(State().deadline_ms, 0);
  EXPECT_EQ(fired.steps.size(), 2u);
}

TEST_F(JourneysTest, MergeKeepsTheFurtherProgress) {
  Profile phone, laptop;
  phone.journeys["shop"].stage = "landing";
  phone.journeys["shop"].stage_index = 0;
  phone.journeys["shop"].status = "active";
  laptop.journeys["shop"].stage = "cart";
  laptop.journeys["shop"].stage_index = 2;
  laptop.journeys["shop"].status = "active";
  laptop.journeys["other"].status = "converted";
  std::vector<std::pair<std::string, JourneyState>> dropped;
  MergeJourneys(phone, laptop, &dropped);
  EXPECT_EQ(phone.journeys.at("shop").stage, "cart");
  EXPECT_EQ(phone.journeys.at("other").status, "converted");
  ASSERT_EQ(dropped.size(), 1u);  // the phone's round in shop, which lost
  EXPECT_EQ(dropped[0].first, "shop");
  EXPECT_EQ(dropped[0].second.stage, "landing");
  Profile converted;
  converted.journeys["shop"].status = "converted";
  converted.journeys["shop"].stage_index = 0;
  MergeJourneys(converted, phone);
  EXPECT_EQ(converted.journeys.at("shop").status, "converted");
}

TEST_F(JourneysTest, ALateEventDoesNotMoveACustomerBackInTime) {
  UseReentry();
  Event("track", "Landing", 0);
  Event("track", "Product Added", 1000);
  ASSERT_EQ(State().stage, "cart");
  EXPECT_FALSE(effects_.late);
  // A purchase dated before the move to cart arrives now: it happened before, and converts
  // nothing. The effects say it came late.
  Event("track", "Order Completed", 500);
  EXPECT_EQ(State().status, "active");
  EXPECT_TRUE(effects_.late);
  effects_.late = false;
  Event("track", "Order Completed", 1500);
  EXPECT_EQ(State().status, "converted");
  EXPECT_FALSE(effects_.late);
  // Nor does a late landing start a new round before the conversion; a later one does.
  Event("track", "Landing", 1200);
  EXPECT_EQ(State().status, "converted");
  Event("track", "Landing", 1600);
  EXPECT_EQ(State().status, "active");
  EXPECT_EQ(Path(), (std::vector<std::string>{"landing/entry", "cart/advance", "converted/goal",
                                              "landing/entry"}));
  // An event at the very time of the latest move still counts.
  Event("track", "Product Added", 1600);
  EXPECT_EQ(State().stage, "cart");
}

TEST_F(JourneysTest, UncountRoundTakesTheLatestRoundOutOfTheFunnel) {
  UseReentry();
  // Round 1: in and out. Round 2: landing, cart after 1 s, converted.
  Event("track", "Landing", 0);
  Event("track", "Unsubscribed", 10);
  Event("track", "Landing", 20);
  Event("track", "Product Added", 1020);
  Event("track", "Order Completed", 1500);
  FunnelCounts counts;
  for (const JourneyStep& s : effects_.steps) CountStep(s, 4, &counts);
  FunnelCounts round1;
  for (size_t i = 0; i < 2; ++i) CountStep(effects_.steps[i], 4, &round1);
  ASSERT_EQ(counts.entered[0], 2u);
  ASSERT_EQ(counts.converted, 1u);

  std::vector<JourneyStep> back;
  UncountRound(*journeys_[0], State(), &back);
  ASSERT_EQ(back.size(), 3u);
  EXPECT_TRUE(back[0].taken_back);
  EXPECT_EQ(back[1].in_stage_ms, 1000);
  EXPECT_EQ(back[1].started_ms, kT0 + 20);
  for (const JourneyStep& s : back) CountStep(s, 4, &counts);
  // What is left is the first round's counts.
  EXPECT_EQ(counts.entered, round1.entered);
  EXPECT_EQ(counts.moved_on, round1.moved_on);
  EXPECT_EQ(counts.time_in_stage, round1.time_in_stage);
  EXPECT_EQ(counts.converted, 0u);
  EXPECT_EQ(counts.exited, 1u);

  // A state of another version is left as counted.
  JourneyState other = State();
  other.version = 7;
  back.clear();
  UncountRound(*journeys_[0], other, &back);
  EXPECT_TRUE(back.empty());
}

TEST(CompileJourney, ErrorsNameWhereTheConditionIsAndTheColumn) {
  JourneySpec s = Funnel();
  s.stages[1].entry = "event.type == 3";
  s.stages[1].entry_where = "w.yaml:12: workspaces[0].journeys[0].stages[1].entry";
  absl::StatusOr<std::shared_ptr<const Journey>> j = CompileJourney(s);
  ASSERT_FALSE(j.ok());
  EXPECT_NE(j.status().message().find(
                "w.yaml:12: workspaces[0].journeys[0].stages[1].entry: column 12: `==` compares "
                "a string with a number"),
            std::string::npos)
      << j.status();
  s = Funnel();
  s.stages[2].timeout_ms = 1000;
  s.stages[2].timeout_to = "landing";  // backwards
  EXPECT_FALSE(CompileJourney(s).ok());
}

}  // namespace
}  // namespace whisperer::state
