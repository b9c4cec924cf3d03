#include "decide/catalog.h"

#include <gtest/gtest.h>

#include "common/status.h"
#include "common/strings.h"

namespace whisperer::decide {
namespace {

absl::StatusOr<std::shared_ptr<const Catalog>> Compile(std::string_view yaml) {
  absl::StatusOr<config::Config> c = config::ParseConfig(yaml, "w.yaml");
  if (!c.ok()) return c.status();
  return CompileCatalog(c->workspaces.at(0).decisions);
}

constexpr char kShop[] = R"(
workspaces:
  - name: shop
    decisions:
      environment: staging
      thresholds: {autonomous: 0.9}
      actions:
        - id: winback
          issue: retention
          group: discounts
          value: 10
          eligibility: "profile.orders.count > 0"
          treatments: [{id: winback_mail, channel: email}]
        - id: tips
          issue: engagement
          group: content
          kind: content
          treatments: [{id: tips_web, channel: web}, {id: tips_push, channel: push}]
        - id: survey
          issue: engagement
          group: research
          kind: message
          treatments: [{id: survey_mail, channel: email}]
      decision_points:
        - {id: home, issues: [engagement], slots: 2}
        - {id: churn_mail, actions: [winback], groups: [research]}
)";

TEST(Catalog, CompilesActionsAndDecisionPointsWithTheEnvironmentsDefaults) {
  absl::StatusOr<std::shared_ptr<const Catalog>> c = Compile(kShop);
  ASSERT_TRUE(c.ok()) << c.status();
  const Catalog& catalog = **c;
  EXPECT_EQ(catalog.settings.environment, "staging");
  EXPECT_EQ(catalog.settings.exploration, 0.15);  // staging's default
  EXPECT_EQ(catalog.settings.autonomous, 0.9);    // written
  EXPECT_EQ(catalog.settings.supervised, 0.65);   // default
  EXPECT_EQ(catalog.settings.policy, Policy::kThompson);
  ASSERT_EQ(catalog.actions.size(), 3u);
  EXPECT_TRUE(catalog.actions[0].eligibility.has_value());
  EXPECT_FALSE(catalog.actions[1].eligibility.has_value());
  EXPECT_EQ(catalog.actions[1].treatments.size(), 2u);
  EXPECT_NE(catalog.actions[0].hash, catalog.actions[1].hash);
  const DecisionPoint* home = catalog.Point("home");
  ASSERT_NE(home, nullptr);
  EXPECT_EQ(home->candidates, (std::vector<size_t>{1, 2}));  // the engagement issue
  EXPECT_EQ(home->slots, 2u);
  EXPECT_EQ(catalog.Point("churn_mail")->candidates, (std::vector<size_t>{0, 2}));
  EXPECT_EQ(catalog.Point("nowhere"), nullptr);
  EXPECT_EQ(catalog.settings.outcomes.at("clicked"), 1);
  // Approvals: a day to wait, and the default review template for every kind.
  EXPECT_EQ(catalog.settings.approval_expiry_ms, 24 * 3'600'000LL);
  EXPECT_EQ(
      catalog.settings.ReviewFields("offer"),
      (std::vector<std::string>{"action", "treatment", "priority", "confidence", "explanation"}));
  EXPECT_FALSE(catalog.Point("home")->fallback.has_value());
}

TEST(Catalog, ApprovalSettingsAndFallbacks) {
  absl::StatusOr<std::shared_ptr<const Catalog>> c = Compile(R"(
workspaces:
  - name: shop
    decisions:
      approvals:
        expire_after: 2h
        feedback: {approve: 0.5, reject: -1}
        templates: {content: [action, cost]}
      actions:
        - {id: a, issue: i, group: g, kind: content, treatments: [{id: t, channel: web}]}
        - {id: b, issue: i, group: g, treatments: [{id: u, channel: web}]}
      decision_points:
        - {id: p, issues: [i], fallback: b}
)");
  ASSERT_TRUE(c.ok()) << c.status();
  const Settings& s = (*c)->settings;
  EXPECT_EQ(s.approval_expiry_ms, 2 * 3'600'000LL);
  EXPECT_EQ(s.approve_reward, 0.5);
  EXPECT_EQ(s.reject_reward, -1);
  EXPECT_EQ(s.ReviewFields("content"), (std::vector<std::string>{"action", "cost"}));
  EXPECT_EQ(s.ReviewFields("offer").size(), 5u);
  EXPECT_EQ((*c)->Point("p")->fallback, 1u);
}

TEST(Catalog, RefusesConditionsThatDoNotTypeCheckAndEmptyDecisionPoints) {
  absl::StatusOr<std::shared_ptr<const Catalog>> bad = Compile(R"(
workspaces:
  - name: shop
    decisions:
      actions:
        - id: a
          issue: i
          group: g
          suitability: "profile.orders.count > 'many'"
          treatments: [{id: t, channel: web}]
)");
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(ErrorCodeOf(bad.status()), "invalid_config");
  EXPECT_NE(bad.status().message().find("w.yaml:9: workspaces[0].decisions.actions[0].suitability"),
            absl::string_view::npos)
      << bad.status();
  absl::StatusOr<std::shared_ptr<const Catalog>> empty = Compile(R"(
workspaces:
  - name: shop
    decisions:
      actions:
        - {id: a, issue: i, group: g, treatments: [{id: t, channel: web}]}
      decision_points:
        - {id: p, issues: [other]}
)");
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.status().message(),
            "w.yaml:8: workspaces[0].decisions.decision_points[0].issues[0]: no action of this "
            "workspace has the issue `other`");
  // So is a group no action has, next to one that has some.
  absl::StatusOr<std::shared_ptr<const Catalog>> typo = Compile(R"(
workspaces:
  - name: shop
    decisions:
      actions:
        - {id: a, issue: i, group: g, treatments: [{id: t, channel: web}]}
      decision_points:
        - {id: p, issues: [i], groups: [g, gg]}
)");
  ASSERT_FALSE(typo.ok());
  EXPECT_NE(typo.status().message().find("decision_points[0].groups[1]: no action of this "
                                         "workspace has the group `gg`"),
            absl::string_view::npos)
      << typo.status();
}

TEST(Catalog, ConsentPurposesMustBeKnown) {
  constexpr char kYaml[] = R"(
workspaces:
  - name: shop
    decisions:
      actions:
        - {id: a, issue: i, group: g, consent: loyalty, treatments: [{id: t, channel: web}]}
)";
  absl::StatusOr<config::Config> c = config::ParseConfig(kYaml, "w.yaml");
  ASSERT_TRUE(c.ok());
  absl::StatusOr<std::shared_ptr<const Catalog>> unknown =
      CompileCatalog(c->workspaces[0].decisions);
  ASSERT_FALSE(unknown.ok());
  EXPECT_NE(unknown.status().message().find(
                "w.yaml:6: workspaces[0].decisions.actions[0].consent: `loyalty` is not a consent"),
            absl::string_view::npos)
      << unknown.status();
  EXPECT_TRUE(CompileCatalog(c->workspaces[0].decisions, {"loyalty"}).ok());
}

TEST(Catalog, RewardsAndDeliverySettings) {
  absl::StatusOr<std::shared_ptr<const Catalog>> c = Compile(R"(
workspaces:
  - name: shop
    decisions:
      channels: {prior_strength: 4}
      send_time: {exploration: 0.2, smoothing: 3, min_lead: 15m, default_hour: 8}
      rewards:
        goals:
          - {event: Order Completed, outcome: converted, within: 2d, decision_points: [home]}
          - {event: Signed Up, value: 0.5}
      actions:
        - id: a
          issue: i
          group: g
          variants: [{id: v1, content: one}, {id: v2}]
          treatments: [{id: t, channel: web}]
      decision_points:
        - {id: home, actions: [a], reward_wait: 30m, default_reward: -0.1}
)");
  ASSERT_TRUE(c.ok()) << c.status();
  const Settings& s = (*c)->settings;
  EXPECT_TRUE(s.channel_choice);
  EXPECT_EQ(s.channel_prior_strength, 4);
  EXPECT_TRUE(s.send_time);
  EXPECT_TRUE(s.engagement());
  EXPECT_TRUE(s.PerCustomer());
  EXPECT_EQ(s.send.exploration, 0.2);
  EXPECT_EQ(s.send.smoothing, 3);
  EXPECT_EQ(s.send.min_lead_ms, 15 * 60'000);
  EXPECT_EQ(s.send.default_hour, 8);
  ASSERT_EQ(s.goals.size(), 2u);
  EXPECT_EQ(s.goals[0].event, "Order Completed");
  EXPECT_EQ(s.goals[0].outcome, "converted");
  EXPECT_EQ(s.goals[0].value, 1);  // converted's value
  EXPECT_EQ(s.goals[0].within_ms, 2 * 86'400'000);
  EXPECT_EQ(s.goals[0].points, std::vector<std::string>{"home"});
  EXPECT_EQ(s.goals[1].value, 0.5);
  EXPECT_EQ(s.goals[1].within_ms, 7 * 86'400'000);  // the default window
  const Action& a = (*c)->actions[0];
  ASSERT_EQ(a.variants.size(), 2u);
  EXPECT_EQ(a.variants[0].content, "one");
  EXPECT_EQ(a.variant_ids, (std::vector<std::string>{"v1", "v2"}));
  const DecisionPoint* home = (*c)->Point("home");
  EXPECT_EQ(home->reward_wait_ms, 30 * 60'000);
  EXPECT_EQ(home->default_reward, -0.1);
  absl::StatusOr<std::shared_ptr<const Catalog>> plain = Compile(kShop);
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE((*plain)->settings.engagement());
  EXPECT_EQ((*plain)->Point("home")->reward_wait_ms, 0);
}

TEST(Catalog, ConfigErrorsNameTheKey) {
  struct Case {
    const char* yaml;
    const char* expected;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"policy: greedy", "must be thompson, linucb, epsilon_greedy or softmax"},
           {"environment: prod", "must be production, staging or development"},
           {"actions: [{id: a, issue: i, group: g, treatments: [{id: t, channel: fax}]}]",
            "must be email, sms, push, in_app, web or phone"},
           {"actions: [{id: a, issue: i, group: g}]", "an action needs a list of treatments"},
           {"actions: [{id: a, group: g, treatments: [{id: t, channel: web}]}]",
            "an action needs an issue and a group"},
           {"decision_points: [{id: p, actions: [missing]}]", "names no action of this workspace"},
           {"thresholds: {autonomous: 0.5, supervised: 0.7}",
            "supervised (0.7) must not be above autonomous (0.5)"},
           {"rewards: {outcomes: {clicked: 2}}", "must be a number from -1 to 1"},
           {"rewards: {aggregate: max}", "must be first or sum"},
           {"approvals: {templates: {offer: [action, secrets]}}",
            "must be action, treatment, priority, confidence, explanation, cost, issue or group"},
           {"approvals: {expire_after: 10ms}", "must be at least 1s"},
           {"actions: [{id: a, issue: i, group: g, budget: {total_spend: 5}, "
            "treatments: [{id: t, channel: web}]}]",
            "a spend budget needs the action's cost"},
           {"actions: [{id: a, issue: i, group: g, budget: {}, treatments: [{id: t, channel: "
            "web}]}]",
            "needs per_day or total_spend"},
           {"contact_policy: {channels: {email: {max: 1}}}", "needs max (1 to 1000) and per"},
           {"approvals: {feedback: {reject: -2}}", "must be a number from -1 to 1"},
           {"actions: [{id: a, issue: i, group: g, treatments: [{id: t, channel: web}]}]\n"
            "      decision_points: [{id: p, actions: [a], fallback: b}]",
            "names no action of this workspace"},
           {"rewards: {goals: [{event: Bought, outcome: won}]}",
            "names no outcome of rewards.outcomes"},
           {"rewards: {goals: [{event: Bought, outcome: clicked, value: 1}]}",
            "give either outcome or value, not both"},
           {"rewards: {goals: [{outcome: clicked}]}", "names the goal's track event"},
           {"rewards: {goals: [{event: Bought, within: 0s}]}", "must be positive"},
           {"rewards: {goals: [{event: Bought, decision_points: [nowhere]}]}",
            "names no decision point of this workspace"},
           {"decision_points: [{id: p, issues: [i], reward_wait: soon}]", "is not a duration"},
           {"decision_points: [{id: p, issues: [i], default_reward: 3}]",
            "must be a number from -1 to 1"},
           {"actions: [{id: a, issue: i, group: g, variants: [{id: v}], "
            "treatments: [{id: t, channel: web}]}]",
            "at least two variants"},
           {"send_time: {default_hour: 24}", "must be a whole number from 0 to 23"},
           {"channels: {prior_strength: 0}", "must be a number from"},
       }) {
    absl::StatusOr<config::Config> parsed = config::ParseConfig(
        StrCat("workspaces:\n  - name: shop\n    decisions:\n      ", c.yaml, "\n"), "w.yaml");
    ASSERT_FALSE(parsed.ok()) << c.yaml;
    EXPECT_NE(parsed.status().message().find(c.expected), absl::string_view::npos)
        << c.yaml << ": " << parsed.status();
  }
}

}  // namespace
}  // namespace whisperer::decide
