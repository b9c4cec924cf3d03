#include "state/conditions.h"

#include <gtest/gtest.h>

#include "common/status.h"
#include "state/text_signals.h"

namespace whisperer::state {
namespace {

constexpr int64_t kT0 = 1'700'000'000'000;

class ConditionsTest : public ::testing::Test {
 protected:
  // Folds `json` (a stored-form event) into the profile and evaluates `condition` against it.
  bool Check(std::string_view condition, const std::string& json, int64_t now = kT0) {
    absl::StatusOr<expr::Expr> e = expr::Expr::Compile(condition, ConditionSchema());
    EXPECT_TRUE(e.ok()) << condition << ": " << e.status();
    if (!e.ok()) return false;
    simdjson::dom::element doc;
    EXPECT_EQ(parser_.parse(json).get(doc), simdjson::SUCCESS) << json;
    absl::StatusOr<EventFacts> facts = ExtractFacts(doc, identity::IdentityRules());
    EXPECT_TRUE(facts.ok()) << facts.status();
    if (!facts.ok()) return false;
    if (!text_properties_.empty()) ScoreTexts(*vader_, nullptr, doc, text_properties_, &*facts);
    FoldEvent(profile_, *facts, &device_, ++seq_, FoldOptions());
    EventBindings bindings(*facts, doc, profile_, &device_, now);
    return e->Eval(bindings);
  }

  std::unique_ptr<text::SentimentAnalyzer> vader_ = text::SentimentAnalyzer::Create();
  std::vector<std::string> text_properties_;  // scored when not empty
  simdjson::dom::parser parser_;
  Profile profile_;
  DeviceFacts device_{"mobile", "iOS", "17", "Mobile Safari", "17", false};
  uint64_t seq_ = 0;
};

const std::string kLanding =
    R"({"type":"track","event":"Video Ad Landing","anonymousId":"a","messageId":"m1",)"
    R"("timestamp":"2023-11-14T22:13:20.000Z","properties":{"price":120,"item":{"sku":"A-1"},)"
    R"("tags":["x"],"onSale":true,"gone":null},"context":{"campaign":{"source":"tiktok","medium":"paid"},)"
    R"("page":{"referrer":"https://m.tiktok.com/v/1"},"traits":{"plan":"pro \"x\"","age":41,"langs":["en"],"address":{"city":"Paris","geo":{"lat":48.9}}},)"
    R"("consent":{"personalization":true}}})";

TEST_F(ConditionsTest, EventFieldsAndProperties) {
  EXPECT_TRUE(Check("event.type == 'track' and event.name == 'Video Ad Landing'", kLanding));
  EXPECT_TRUE(
      Check("event.properties.price > 100 and event.properties.item.sku == 'A-1'", kLanding));
  EXPECT_TRUE(Check("event.properties.onSale", kLanding));
  // An array or an object is there, though no comparison holds for it; null is absent.
  EXPECT_TRUE(Check("exists(event.properties.tags) and exists(event.properties.item)", kLanding));
  EXPECT_FALSE(Check("event.properties.tags == 'x' or event.properties.tags != 'x'", kLanding));
  EXPECT_FALSE(Check("event.properties.tags", kLanding));
  EXPECT_FALSE(Check("exists(event.properties.gone)", kLanding));
  EXPECT_FALSE(Check("exists(event.properties.nope.deeper)", kLanding));
  EXPECT_TRUE(Check("event.device.type == 'mobile' and event.device.os == 'iOS'", kLanding));
  EXPECT_TRUE(
      Check("context.campaign.source == 'tiktok' and context.campaign.medium == 'paid'", kLanding));
  EXPECT_FALSE(Check("exists(context.campaign.name)", kLanding));
  EXPECT_TRUE(Check("context.referrer.host == 'm.tiktok.com'", kLanding));
}

TEST_F(ConditionsTest, SubscriptsReachKeysWithBlanksAndArrayElements) {
  const std::string order =
      R"({"type":"track","event":"Order Completed","userId":"u","messageId":"o1",)"
      R"("timestamp":"2023-11-14T22:13:20.000Z","properties":{"Plan Type":"pro",)"
      R"("größe":"M","utm.source":"mail","products":[{"sku":"A-1","price":30},)"
      R"({"sku":"B-2","price":12.5}],"1":"one"},)"
      R"("context":{"traits":{"interests":["golf","tennis"],"Account Tier":"gold"}}})";
  EXPECT_TRUE(Check("event.properties['Plan Type'] == 'pro'", order));
  EXPECT_TRUE(Check("event.properties['gr\u00f6\u00dfe'] == 'M'", order));
  EXPECT_TRUE(Check("event.properties['utm.source'] == 'mail'", order));
  EXPECT_TRUE(
      Check("event.properties.products[0].sku == 'A-1' and "
            "event.properties.products[1]['price'] < 13 and "
            "event.properties.products.1.sku == 'B-2'",
            order));
  EXPECT_FALSE(Check("exists(event.properties.products[2])", order));
  EXPECT_TRUE(Check("exists(event.properties.products[01])", order));  // the number 1
  EXPECT_FALSE(Check("exists(event.properties.products.01)", order));  // a name, not 1
  EXPECT_TRUE(Check("event.properties[1] == 'one'", order));  // a key of digits in an object
  EXPECT_TRUE(
      Check("profile.traits.interests[1] == 'tennis' and "
            "profile.traits['Account Tier'] == 'gold'",
            order));
  EXPECT_FALSE(Check("exists(profile.traits.interests[2])", order));
  // Each Check folds the event again: the same count either way it is written.
  EXPECT_TRUE(
      Check("profile.counts['Order Completed'] == profile.counts.order_completed and "
            "profile.counts.order_completed > 1",
            order));
}

TEST_F(ConditionsTest, ProfileFieldsTraitsAndConsent) {
  EXPECT_TRUE(Check("profile.events == 1 and not profile.returning", kLanding));
  EXPECT_TRUE(Check("profile.traits.plan == 'pro \"x\"' and profile.traits.age >= 41", kLanding));
  EXPECT_TRUE(Check("profile.consent.personalization", kLanding));
  EXPECT_FALSE(Check("exists(profile.consent.marketing_email)", kLanding));
  EXPECT_TRUE(Check("exists(profile.traits.langs)", kLanding));
  // Paths below a trait that is an object, as below event properties.
  EXPECT_TRUE(
      Check("profile.traits.address.city == 'Paris' and profile.traits.address.geo.lat > 48 "
            "and profile.traits.address.city != profile.traits.plan",
            kLanding));
  EXPECT_TRUE(Check("exists(profile.traits.address.geo) and not exists(profile.traits.address.zip)",
                    kLanding));
  EXPECT_FALSE(Check("profile.traits.plan.x == 'pro'", kLanding));  // no object
  EXPECT_FALSE(Check("profile.traits.langs == 'en'", kLanding));
  EXPECT_TRUE(Check("profile.since_first_seen == 0", kLanding, kT0));
  EXPECT_TRUE(Check("profile.since_first_seen >= 3s", kLanding, kT0 + 5000));
  EXPECT_TRUE(
      Check("profile.sessions.count == 1 and profile.sessions.current.events == 12",  // 12 Checks
            kLanding));
  const std::string order =
      R"({"type":"track","event":"Order Completed","anonymousId":"a","messageId":"o",)"
      R"("timestamp":"2023-11-15T22:13:20.000Z","properties":{"revenue":30}})";
  EXPECT_TRUE(
      Check("profile.orders.count == 1 and profile.orders.revenue == 30 and "
            "profile.returning",
            order));
}

TEST_F(ConditionsTest, EventCountsAveragesAndPersona) {
  EXPECT_TRUE(
      Check("profile.counts.video_ad_landing == 1 and profile.counts.track == 0 and "
            "profile.counts.Video-Ad-Landing == 1",
            kLanding));
  EXPECT_TRUE(Check("profile.counts.nothing_like_it == 0", kLanding));
  // Every other character is one underscore, however many bytes it takes.
  EXPECT_EQ(CountName("Caf\u00e9 Viewed"), "caf__viewed");
  EXPECT_EQ(CountName("\u4e2d\u6587"), "__");
  EXPECT_TRUE(Check("profile.shares.video_ad_landing == 1", kLanding));
  EXPECT_FALSE(Check("exists(profile.orders.average)", kLanding));  // no orders yet
  EXPECT_FALSE(Check("exists(profile.persona)", kLanding));
  profile_.persona.id = "researcher";
  const std::string order =
      R"({"type":"track","event":"Order Completed","anonymousId":"a","messageId":"o",)"
      R"("timestamp":"2023-11-15T22:13:20.000Z","properties":{"revenue":30}})";
  EXPECT_TRUE(Check("profile.orders.average == 30 and profile.persona == 'researcher'", order));
  const std::string page = R"({"type":"page","anonymousId":"a","messageId":"p",)"
                           R"("timestamp":"2023-11-15T22:13:21.000Z"})";
  // Sessions: the landing's and the orders' (a day later); one view.
  EXPECT_TRUE(Check("profile.sessions.average_views == 0.5 and profile.counts.page == 1", page));
}

TEST_F(ConditionsTest, SharesOfEvents) {
  const std::string page =
      R"({"type":"page","anonymousId":"a","messageId":"p","timestamp":"2023-11-15T22:13:21.000Z"})";
  EXPECT_TRUE(Check("profile.shares.page == 1 and profile.shares.video_ad_landing == 0", page));
  // Each Check folds its event: now 1 page and 1 landing, then 2 pages and 2 landings...
  EXPECT_TRUE(
      Check("profile.shares.page == 0.5 and profile.shares.Video-Ad-Landing == 0.5", kLanding));
  EXPECT_TRUE(Check("profile.shares.page > 0.66 and profile.shares.page < 0.67", page));
}

TEST_F(ConditionsTest, SentimentOfTextProperties) {
  const std::string happy =
      R"({"type":"track","event":"Review","anonymousId":"a","messageId":"r1",)"
      R"("timestamp":"2023-11-15T22:13:20.000Z","properties":{"review":{"body":"I love it!"}}})";
  const std::string angry =
      R"({"type":"track","event":"Chat","anonymousId":"a","messageId":"c1",)"
      R"("timestamp":"2023-11-15T22:14:20.000Z","properties":{"comment":"Awful. I hate it."}})";
  const double love = vader_->Score("I love it!").compound;
  const double awful = vader_->Score("Awful. I hate it.").compound;
  ASSERT_GT(love, 0.5);
  ASSERT_LT(awful, -0.5);
  // Nothing configured: nothing scored; the profile's figures are missing, the count 0.
  EXPECT_FALSE(Check("exists(event.sentiment)", happy));
  EXPECT_FALSE(
      Check("exists(profile.sentiment.latest) or exists(profile.sentiment.average)", happy));
  EXPECT_TRUE(Check("profile.sentiment.count == 0", happy));

  text_properties_ = {"comment", "review.body"};
  EXPECT_TRUE(
      Check("event.sentiment > 0.5 and profile.sentiment.latest == event.sentiment and "
            "profile.sentiment.count == 1 and profile.sentiment.average > 0.5",
            happy));
  EXPECT_TRUE(
      Check("event.sentiment < -0.5 and profile.sentiment.latest < -0.5 and "
            "profile.sentiment.count == 2",
            angry));
  EXPECT_NEAR(profile_.text.mean, (love + awful) / 2, 1e-12);
  // An event without a text: event.sentiment is missing, the profile's stay.
  EXPECT_TRUE(
      Check("not exists(event.sentiment) and profile.sentiment.latest < -0.5 and "
            "profile.sentiment.count == 2",
            kLanding));
  EXPECT_FALSE(
      Check("exists(profile.text_intent) or exists(profile.text_intent_probability)", kLanding));
  profile_.text.intent = "refund";
  profile_.text.intent_probability = 0.8;
  EXPECT_TRUE(
      Check("profile.text_intent == 'refund' and profile.text_intent_probability > 0.5", kLanding));
  absl::StatusOr<expr::Expr> e = expr::Expr::Compile("profile.text_intent > 1", ConditionSchema());
  EXPECT_FALSE(e.ok());  // a string
}

TEST_F(ConditionsTest, UnknownNamesAreRefusedAtCompileTime) {
  absl::StatusOr<expr::Expr> e = expr::Expr::Compile("profile.device == 'x'", ConditionSchema());
  ASSERT_FALSE(e.ok());
  EXPECT_NE(e.status().message().find("unknown name `profile.device`"), std::string::npos);
}

TEST(ConditionSchema, ProfileMapsHaveTypesAndConsentAndJourneysOneName) {
  const auto error = [](std::string_view source) {
    absl::StatusOr<expr::Expr> e = CompileCondition(source, "where");
    return e.ok() ? std::string("compiled") : std::string(e.status().message());
  };
  EXPECT_EQ(error("profile.counts.page >= 2 and profile.shares.page < 0.5"), "compiled");
  EXPECT_EQ(error("profile.consent.analytics and profile.journeys.shop == 'cart'"), "compiled");
  EXPECT_NE(error("profile.counts.page == 'a'").find("compares a number with a string"),
            std::string::npos)
      << error("profile.counts.page == 'a'");
  EXPECT_NE(error("profile.shares.page contains 'x'").find("column"), std::string::npos);
  EXPECT_NE(error("profile.consent.analytics == 'yes'").find("compares a bool with a string"),
            std::string::npos)
      << error("profile.consent.analytics == 'yes'");
  EXPECT_NE(error("profile.journeys.shop > 2").find("column"), std::string::npos);
  EXPECT_NE(error("profile.consent.a.b").find("unknown name `profile.consent.a.b`"),
            std::string::npos)
      << error("profile.consent.a.b");
  EXPECT_NE(error("profile.journeys.shop.stage == 'x'").find("unknown name"), std::string::npos);
}

TEST(ConditionNames, AWorkspacesJourneysStagesPersonasAndPurposesAreChecked) {
  ConditionNames names;
  names.journeys["shop"] = {"browse", "cart"};
  names.personas = {"deal_seeker"};
  names.consent = ConsentPurposes();
  names.consent->AddPurpose("profiling");
  const auto error = [&](std::string_view source) {
    absl::StatusOr<expr::Expr> e = CompileCondition(source, "w.yaml:3: rules[0].when", &names);
    if (e.ok()) return std::string("compiled");
    EXPECT_EQ(ErrorCodeOf(e.status()), "invalid_config");
    return std::string(e.status().message());
  };
  EXPECT_EQ(error("profile.journeys.shop == 'cart' or profile.journeys.shop in ['converted', "
                  "'exited'] or exists(profile.journeys.shop)"),
            "compiled");
  EXPECT_EQ(error("profile.persona != 'deal_seeker' and profile.consent.profiling and "
                  "profile.consent.marketing_email"),
            "compiled");
  EXPECT_EQ(error("event.name == 'x' and profile.journeys.shoe == 'cart'"),
            "w.yaml:3: rules[0].when: column 23: no journey `shoe` in this workspace");
  EXPECT_EQ(error("profile.journeys.shop in ['cart', 'checkout']"),
            "w.yaml:3: rules[0].when: column 1: journey `shop` has no stage `checkout` (its "
            "stages: browse, cart, converted or exited)");
  EXPECT_EQ(error("'bargain_hunter' == profile.persona"),
            "w.yaml:3: rules[0].when: column 21: no persona `bargain_hunter` in this workspace");
  EXPECT_EQ(error("profile.consent.nopurpose"),
            "w.yaml:3: rules[0].when: column 1: `nopurpose` is not a consent purpose of this "
            "workspace (standard ones, or add it under consent.purposes)");
  // A name in a subscript is checked as a dotted one.
  EXPECT_EQ(error("profile.journeys['shop'] == 'cart' and profile.consent['profiling']"),
            "compiled");
  EXPECT_EQ(error("profile.journeys['shoe shop'] == 'cart'"),
            "w.yaml:3: rules[0].when: column 1: no journey `shoe shop` in this workspace");
  EXPECT_EQ(error("profile.journeys['shop'] == 'checkout'"),
            "w.yaml:3: rules[0].when: column 1: journey `shop` has no stage `checkout` (its "
            "stages: browse, cart, converted or exited)");
  // Without names (a condition compiled on its own), only the schema is checked.
  EXPECT_TRUE(CompileCondition("profile.journeys.shoe == 'x'", "where").ok());
}

}  // namespace
}  // namespace whisperer::state
