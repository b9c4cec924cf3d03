#include "decide/decider.h"

#include <gtest/gtest.h>

#include <map>

#include "common/strings.h"
#include "state/conditions.h"

namespace whisperer::decide {
namespace {

constexpr int64_t kNow = 1'700'000'000'000;

std::shared_ptr<const Catalog> Compile(std::string_view decisions) {
  absl::StatusOr<config::Config> c = config::ParseConfig(
      StrCat("workspaces:\n  - name: shop\n    decisions:\n", decisions), "w.yaml");
  EXPECT_TRUE(c.ok()) << c.status();
  absl::StatusOr<std::shared_ptr<const Catalog>> catalog =
      CompileCatalog(c->workspaces.at(0).decisions);
  EXPECT_TRUE(catalog.ok()) << catalog.status();
  return *catalog;
}

class DeciderTest : public ::testing::Test {
 protected:
  void Use(std::string_view decisions) {
    catalog_ = Compile(decisions);
    posterior_ = std::make_unique<learn::LinearPosterior>(catalog_->settings.posterior);
  }

  Decision Run(std::string_view point, size_t slots = 1, std::vector<std::string> channels = {}) {
    learn::FeatureBuilder b(catalog_->settings.posterior.bits, true);
    b.Categorical("plan", plan_);
    features_.assign(b.features().begin(), b.features().end());
    names_ = b.names();
    facts_.type = api::EventType::kPage;
    bindings_.emplace(facts_, body_, profile_, nullptr, kNow);
    DecideInput in;
    in.catalog = catalog_.get();
    in.point = catalog_->Point(point);
    in.slots = slots;
    in.channels = std::move(channels);
    in.bindings = &*bindings_;
    in.profile = &profile_;
    in.now_ms = kNow;
    in.features = features_;
    in.feature_names = names_;
    in.customer_hash = customer_hash_;
    in.contacts = contacts_ ? &*contacts_ : nullptr;
    in.budget_spent = budget_spent_;
    return Decide(in, *posterior_, rng_);
  }

  // Teaches the posterior that `action` pays `reward` for this customer.
  void Teach(std::string_view action, double reward, int times) {
    learn::FeatureBuilder b(catalog_->settings.posterior.bits);
    b.Categorical("plan", plan_);
    std::vector<learn::Feature> crossed;
    for (const Action& a : catalog_->actions) {
      if (a.id != action) continue;
      learn::CrossWithAction(b.features(), a.hash, catalog_->settings.posterior.bits, &crossed);
      for (int i = 0; i < times; ++i) posterior_->Update(crossed, reward);
    }
  }

  std::string_view ActionOf(const SlotChoice& c) const { return catalog_->actions[c.action].id; }

  std::shared_ptr<const Catalog> catalog_;
  std::unique_ptr<learn::LinearPosterior> posterior_;
  state::Profile profile_;
  state::EventFacts facts_;
  simdjson::dom::parser parser_;
  simdjson::dom::element body_ = parser_.parse(std::string_view("{}"));
  std::optional<state::EventBindings> bindings_;
  std::string plan_ = "pro";
  std::vector<learn::Feature> features_;
  std::vector<std::string> names_;
  uint64_t customer_hash_ = 999'999;  // outside any control group below 100 %
  std::optional<ContactHistory> contacts_;
  std::vector<uint8_t> budget_spent_;
  std::mt19937_64 rng_{42};
};

constexpr char kCatalog[] = R"(
      exploration: 0
      actions:
        - id: winback
          issue: retention
          group: offers
          value: 10
          lever: 2
          eligibility: "profile.orders.count > 0"
          treatments: [{id: winback_mail, channel: email}]
        - id: vip
          issue: retention
          group: offers
          consent: marketing_sms
          treatments: [{id: vip_sms, channel: sms}]
        - id: expired
          issue: retention
          group: offers
          valid: {until: 2020-01-01T00:00:00Z}
          treatments: [{id: expired_web, channel: web}]
        - id: tips
          issue: retention
          group: content
          weights: [{when: "profile.events == 0", weight: 3}]
          treatments: [{id: tips_web, channel: web}, {id: tips_push, channel: push}]
        - id: survey
          issue: retention
          group: content
          treatments: [{id: survey_push, channel: push}]
      decision_points:
        - {id: home, issues: [retention]}
)";

TEST_F(DeciderTest, FiltersEachCandidateWithItsReason) {
  Use(kCatalog);
  Decision d = Run("home");
  EXPECT_EQ(d.candidates, 5u);
  std::map<std::string, std::string> reasons;
  for (const Filtered& f : d.filtered) {
    reasons[catalog_->actions[f.action].id] = std::string(f.reason);
  }
  EXPECT_EQ(reasons, (std::map<std::string, std::string>{
                         {"winback", "not_eligible"},
                         {"vip", "no_consent"},
                         {"expired", "not_valid_now"},
                     }));
  ASSERT_EQ(d.slots.size(), 1u);
  // Granted consent and an order make them candidates; a channel list filters treatments.
  profile_.consent["marketing_sms"] = {true, kNow, "api"};
  profile_.orders = 1;
  d = Run("home", 5, {"push"});
  reasons.clear();
  for (const Filtered& f : d.filtered) {
    reasons[catalog_->actions[f.action].id] = std::string(f.reason);
  }
  EXPECT_EQ(reasons, (std::map<std::string, std::string>{
                         {"winback", "no_channel"},
                         {"vip", "no_channel"},
                         {"expired", "not_valid_now"},
                     }));
  ASSERT_EQ(d.slots.size(), 2u);  // five slots asked, two candidates left
  for (const SlotChoice& c : d.slots) EXPECT_EQ(c.treatment->channel, "push");

  // A customer who denied push marketing gets no push treatment, whatever the action: tips
  // falls back to the web, survey (push only) is filtered for consent.
  profile_.consent["marketing_push"] = {false, kNow, "api"};
  d = Run("home", 5);
  reasons.clear();
  for (const Filtered& f : d.filtered) {
    reasons[catalog_->actions[f.action].id] = std::string(f.reason);
  }
  EXPECT_EQ(reasons["survey"], "no_consent");
  for (const SlotChoice& c : d.slots) {
    EXPECT_NE(c.treatment->channel, "push") << ActionOf(c);
    if (ActionOf(c) == "tips") {
      EXPECT_EQ(c.treatment->id, "tips_web");
    }
  }
  EXPECT_EQ(ChannelPurpose("push"), "marketing_push");
  EXPECT_EQ(ChannelPurpose("web"), "");
}

TEST_F(DeciderTest, ExploitsWhatItLearnedAndSaysHowSure) {
  Use(kCatalog);
  Teach("tips", 1, 200);
  Teach("survey", 0, 200);
  Decision d = Run("home");
  ASSERT_EQ(d.slots.size(), 1u);
  const SlotChoice& c = d.slots[0];
  EXPECT_EQ(ActionOf(c), "tips");
  EXPECT_EQ(c.treatment->id, "tips_web");  // the first treatment on an allowed channel
  EXPECT_FALSE(c.explore);
  EXPECT_GT(c.propensity_term, 0.9);
  EXPECT_EQ(c.weight, 3);  // profile.events == 0 holds
  EXPECT_DOUBLE_EQ(c.priority, c.propensity_term * 3 * 1 * 1);
  EXPECT_GT(c.confidence, 0.99);
  EXPECT_DOUBLE_EQ(c.propensity, c.confidence);  // Thompson, no uniform exploration
  EXPECT_EQ(c.autonomy, "autonomous");
  ASSERT_FALSE(c.factors.empty());
  EXPECT_GT(c.factors[0].contribution, 0);
  EXPECT_FALSE(c.features.empty());
}

TEST_F(DeciderTest, UnsureDecisionsAreHeldForApproval) {
  Use(kCatalog);  // nothing learned: two equal candidates
  Decision d = Run("home");
  ASSERT_EQ(d.slots.size(), 1u);
  EXPECT_LT(d.slots[0].confidence, 0.65);
  EXPECT_EQ(d.slots[0].autonomy, "approval");
}

TEST_F(DeciderTest, UniformExplorationAndTheControlGroupLogTheirProbabilities) {
  Use(std::string(kCatalog).replace(std::string(kCatalog).find("exploration: 0"), 14,
                                    "exploration: 1"));
  Teach("tips", 1, 200);
  int tips = 0;
  for (int i = 0; i < 400; ++i) {
    Decision d = Run("home");
    EXPECT_DOUBLE_EQ(d.slots[0].propensity, 0.5);  // uniform over the two candidates
    tips += ActionOf(d.slots[0]) == "tips";
  }
  EXPECT_NEAR(tips, 200, 40);
  // The control group: uniform in every slot whatever the exploration rate.
  Use(kCatalog);
  Teach("tips", 1, 200);
  EXPECT_FALSE(InControlGroup(customer_hash_, 0));
  EXPECT_FALSE(InControlGroup(0, 0.5)) << "no customer, no group";
  int in = 0;
  for (uint64_t h = 0; h < 10'000; ++h) in += InControlGroup(h * 7919, 0.02);
  EXPECT_NEAR(in, 200, 30);
  customer_hash_ = 1;  // 1 < 2 % of a million
  Decision d = Run("home", 2);
  EXPECT_TRUE(d.control);
  ASSERT_EQ(d.slots.size(), 2u);
  EXPECT_DOUBLE_EQ(d.slots[0].propensity, 0.5);
  EXPECT_DOUBLE_EQ(d.slots[1].propensity, 1.0);  // the one left
  EXPECT_TRUE(d.slots[0].explore);
}

// Actions of value 0 are known exactly (a point mass at 0): Thompson sampling breaks their tie
// uniformly, and each logs the probability it was in fact chosen with.
TEST_F(DeciderTest, TiedActionsKnownExactlyAreChosenUniformlyWithTheirProbability) {
  Use(R"(
      exploration: 0.1
      control_group: 0
      actions:
        - {id: z1, issue: i, group: g, value: 0, treatments: [{id: z1_web, channel: web}]}
        - {id: z2, issue: i, group: g, value: 0, treatments: [{id: z2_web, channel: web}]}
        - {id: z3, issue: i, group: g, value: 0, treatments: [{id: z3_web, channel: web}]}
      decision_points:
        - {id: p, issues: [i]}
)");
  std::map<std::string, int> chosen;
  int explored = 0;  // drawn uniformly: the exploration share, whichever action came out
  constexpr int kRuns = 3000;
  for (int n = 0; n < kRuns; ++n) {
    Decision d = Run("p");
    ASSERT_EQ(d.slots.size(), 1u);
    EXPECT_NEAR(d.slots[0].propensity, 1.0 / 3, 1e-9);
    explored += d.slots[0].explore;
    ++chosen[std::string(ActionOf(d.slots[0]))];
  }
  for (const auto& [action, n] : chosen) EXPECT_NEAR(n, kRuns / 3, 120) << action;
  EXPECT_EQ(chosen.size(), 3u);
  EXPECT_NEAR(explored, kRuns / 10, 60);
}

TEST_F(DeciderTest, SlotsTakeDistinctActionsEachWithItsProbabilityGivenTheEarlierOnes) {
  profile_.consent["marketing_sms"] = {true, kNow, "api"};
  profile_.orders = 1;
  Use(kCatalog);
  Teach("winback", 1, 100);  // value 10, lever 2: priority 20 x the propensity
  Teach("tips", 0.5, 100);
  Decision d = Run("home", 3);
  ASSERT_EQ(d.slots.size(), 3u);
  EXPECT_EQ(ActionOf(d.slots[0]), "winback");
  EXPECT_NEAR(d.slots[0].priority, 20, 1.5);
  EXPECT_EQ(ActionOf(d.slots[1]), "tips");
  std::set<size_t> actions;
  for (const SlotChoice& c : d.slots) actions.insert(c.action);
  EXPECT_EQ(actions.size(), 3u);
  for (size_t i = 0; i < 3; ++i) EXPECT_EQ(d.slots[i].slot, i);
}

TEST_F(DeciderTest, AnActionMovesToAChannelWithRoomWhenAnEarlierSlotFilledItsFirst) {
  Use(R"(
      exploration: 0
      contact_policy:
        channels: {email: {max: 1, per: 7d}}
      actions:
        - {id: mail, issue: i, group: g, treatments: [{id: mail_email, channel: email}]}
        - id: both
          issue: i
          group: g
          treatments: [{id: both_email, channel: email}, {id: both_web, channel: web}]
      decision_points:
        - {id: p, issues: [i]}
)");
  contacts_.emplace();
  // Two equal unknowns: either comes first. When the email-only action takes the email, the
  // other goes out on the web in the next slot; when the other comes first, it takes the email
  // (its first treatment) and the email-only action has no channel left.
  int mail_first = 0, both_first = 0;
  for (int k = 0; k < 40; ++k) {
    Decision d = Run("p", 2);
    ASSERT_FALSE(d.slots.empty());
    if (ActionOf(d.slots[0]) == "mail") {
      ++mail_first;
      ASSERT_EQ(d.slots.size(), 2u);
      EXPECT_EQ(ActionOf(d.slots[1]), "both");
      EXPECT_EQ(d.slots[1].treatment->id, "both_web");
      EXPECT_TRUE(d.filtered.empty());
    } else {
      ++both_first;
      EXPECT_EQ(d.slots[0].treatment->id, "both_email");
      ASSERT_EQ(d.slots.size(), 1u);
      ASSERT_EQ(d.filtered.size(), 1u);
      EXPECT_EQ(d.filtered[0].reason, "channel_limit");
    }
  }
  EXPECT_GT(mail_first, 0);
  EXPECT_GT(both_first, 0);
}

TEST_F(DeciderTest, ContactPolicyLimitsChannelsAndActionsAndSuppresses) {
  Use(R"(
      exploration: 0
      contact_policy:
        channels: {email: {max: 1, per: 7d}, web: {max: 1, per: 1d}}
      actions:
        - id: mail
          issue: i
          group: g
          treatments: [{id: mail_email, channel: email}]
        - id: banner
          issue: i
          group: g
          treatments: [{id: banner_web, channel: web}, {id: banner_push, channel: push}]
        - id: tile
          issue: i
          group: g
          treatments: [{id: tile_web, channel: web}]
        - id: nag
          issue: i
          group: g
          contact: {max: 2, per: 30d}
          suppress_after: {negatives: 2, within: 14d}
          treatments: [{id: nag_push, channel: push}]
      decision_points:
        - {id: p, issues: [i]}
)");
  constexpr int64_t kDay = 86'400'000;
  auto reasons = [&](const Decision& d) {
    std::map<std::string, std::string> out;
    for (const Filtered& f : d.filtered)
      out[catalog_->actions[f.action].id] = std::string(f.reason);
    return out;
  };
  // No history: every action is a candidate; one decision may not put two slots on the web
  // channel (its limit is 1): the second web-only action is filtered, the banner moves to push.
  contacts_.emplace();
  Decision d = Run("p", 4);
  std::map<std::string, std::string> channel_of;
  for (const SlotChoice& c : d.slots) channel_of[std::string(ActionOf(c))] = c.treatment->channel;
  size_t web = 0;
  for (const auto& [a, ch] : channel_of) web += ch == "web";
  EXPECT_EQ(web, 1u);
  EXPECT_EQ(d.slots.size() + d.filtered.size(), 4u);
  // An email 3 days ago: the email action is at its channel's limit; a web contact 2 days ago
  // is outside the web period (1 day); the banner's web treatment was used within the day, so it
  // goes out on push.
  contacts_->contacts = {{"mail", "email", kNow - 3 * kDay},
                         {"tile", "web", kNow - 2 * kDay},
                         {"banner", "web", kNow - kDay / 2}};
  d = Run("p", 1);
  EXPECT_EQ(reasons(d)["mail"], "channel_limit");
  EXPECT_EQ(reasons(d)["tile"], "channel_limit");
  for (const SlotChoice& c : d.slots) {
    if (ActionOf(c) == "banner") {
      EXPECT_EQ(c.treatment->channel, "push");
    }
  }
  // The action's own limit: two nags within 30 days.
  contacts_->contacts = {{"nag", "push", kNow - 20 * kDay}, {"nag", "push", kNow - kDay}};
  EXPECT_EQ(reasons(Run("p"))["nag"], "contact_limit");
  // A customer who denied push is told that, not that the limit was reached; a request for the
  // web alone has no channel for it either way.
  profile_.consent["marketing_push"] = {false, kNow, "api"};
  EXPECT_EQ(reasons(Run("p"))["nag"], "no_consent");
  EXPECT_EQ(reasons(Run("p", 1, {"web"}))["nag"], "no_channel");
  profile_.consent.clear();
  // Suppression: two negative outcomes within 14 days.
  contacts_->contacts.clear();
  contacts_->negatives = {{"nag", kNow - 13 * kDay}, {"nag", kNow - kDay}};
  EXPECT_EQ(reasons(Run("p"))["nag"], "suppressed");
  contacts_->negatives = {{"nag", kNow - 15 * kDay}, {"nag", kNow - kDay}};  // one too old
  EXPECT_EQ(reasons(Run("p")).count("nag"), 0u);
  EXPECT_TRUE(catalog_->settings.contact_policy);
  EXPECT_EQ(catalog_->settings.contact_horizon_ms, 30 * kDay);

  // The same rules for slots about to be acted on (an approval of held slots): each slot
  // counts against the ones after it.
  using Slots = std::vector<std::pair<std::string_view, std::string_view>>;
  ContactHistory h;
  EXPECT_FALSE(ContactPolicyBreach(*catalog_, Slots{{"mail", "email"}, {"nag", "push"}}, h, kNow));
  std::optional<ContactBreach> b = ContactPolicyBreach(
      *catalog_, Slots{{"nag", "push"}, {"mail", "email"}, {"mail", "email"}}, h, kNow);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->slot, 2u);
  EXPECT_EQ(b->reason, "channel_limit");
  h.contacts = {{"mail", "email", kNow - 3 * kDay}};  // made since the decision was held
  b = ContactPolicyBreach(*catalog_, Slots{{"mail", "email"}}, h, kNow);
  ASSERT_TRUE(b);
  EXPECT_EQ(b->reason, "channel_limit");
  h.contacts = {{"nag", "push", kNow - kDay}};
  EXPECT_EQ(
      ContactPolicyBreach(*catalog_, Slots{{"nag", "push"}, {"nag", "push"}}, h, kNow)->reason,
      "contact_limit");
  h.negatives = {{"nag", kNow - kDay}, {"nag", kNow - 2 * kDay}};
  EXPECT_EQ(ContactPolicyBreach(*catalog_, Slots{{"nag", "push"}}, h, kNow)->reason, "suppressed");
}

TEST_F(DeciderTest, EachSlotsCandidatesFollowFromTheEligibleActions) {
  // Uniform exploration: each slot's propensity is one over the number it was chosen among, so
  // SlotCandidates must give exactly the actions Decide chose among, channel limits included.
  Use(R"(
      exploration: 1
      contact_policy:
        channels: {web: {max: 1, per: 1d}}
      actions:
        - {id: mail, issue: i, group: g, treatments: [{id: mail_email, channel: email}]}
        - {id: banner, issue: i, group: g, treatments: [{id: banner_web, channel: web}]}
        - {id: tile, issue: i, group: g, treatments: [{id: tile_web, channel: web}]}
        - {id: nag, issue: i, group: g, treatments: [{id: nag_push, channel: push}]}
      decision_points:
        - {id: p, issues: [i]}
)");
  contacts_.emplace();
  int limited_later = 0;
  for (int run = 0; run < 50; ++run) {
    const Decision d = Run("p", 4);
    EXPECT_EQ(d.eligible.size(), 4u);
    std::vector<std::pair<size_t, size_t>> channel_limited;
    for (const Filtered& f : d.filtered) {
      ASSERT_EQ(f.reason, "channel_limit");
      channel_limited.emplace_back(f.action, f.slot);
      limited_later += f.slot > 1;
    }
    std::vector<size_t> before;
    for (const SlotChoice& c : d.slots) {
      const std::vector<size_t> among =
          SlotCandidates(d.eligible, before, channel_limited, c.slot + 1);
      EXPECT_NE(std::find(among.begin(), among.end(), c.action), among.end());
      EXPECT_DOUBLE_EQ(c.propensity, 1.0 / static_cast<double>(among.size()));
      before.push_back(c.action);
    }
    EXPECT_EQ(d.slots.size() + d.filtered.size(), 4u);
  }
  EXPECT_GT(limited_later, 0);  // the second web action, dropped after the first was chosen
}

TEST_F(DeciderTest, SpentBudgetsFilterTheirActions) {
  Use(kCatalog);
  budget_spent_.assign(catalog_->actions.size(), 0);
  budget_spent_[3] = 1;  // tips
  Decision d = Run("home", 2);
  std::map<std::string, std::string> reasons;
  for (const Filtered& f : d.filtered) {
    reasons[catalog_->actions[f.action].id] = std::string(f.reason);
  }
  EXPECT_EQ(reasons["tips"], "budget_exhausted");
  ASSERT_EQ(d.slots.size(), 1u);
  EXPECT_EQ(ActionOf(d.slots[0]), "survey");
}

TEST_F(DeciderTest, OtherPolicies) {
  for (const char* policy : {"linucb", "epsilon_greedy", "softmax"}) {
    Use(StrCat(
        "      policy: ", policy, "\n      exploration: 0.2\n",
        std::string_view(kCatalog).substr(std::string_view(kCatalog).find("      actions"))));
    Teach("tips", 1, 200);
    Teach("survey", 0.2, 200);
    Decision d = Run("home");
    ASSERT_EQ(d.slots.size(), 1u) << policy;
    const SlotChoice& c = d.slots[0];
    // The best (tips: priority about 3 x 1, against survey's 0.2) is chosen by the policy (for
    // softmax, exp(m c / 0.1) makes it all but certain) or by the uniform draw; survey only by
    // the uniform draw.
    if (ActionOf(c) == "tips") {
      EXPECT_NEAR(c.propensity, 0.8 + 0.2 / 2, 1e-9) << policy;
    } else {
      EXPECT_NEAR(c.propensity, 0.2 / 2, 1e-9) << policy;
      EXPECT_TRUE(c.explore);
    }
  }
}

}  // namespace
}  // namespace whisperer::decide
