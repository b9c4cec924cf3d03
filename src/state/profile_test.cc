#include "state/profile.h"

#include <gtest/gtest.h>

#include <limits>
#include <string>

#include "common/strings.h"
#include "common/timestamp.h"
#include "state/profile_codec.h"
#include "state/text_signals.h"

namespace whisperer::state {
namespace {

constexpr int64_t kT0 = 1'700'000'000'000;  // 2023-11-14T22:13:20Z
constexpr int64_t kMinute = 60'000;
constexpr int64_t kDay = 24 * 60 * kMinute;

class FoldTest : public ::testing::Test {
 protected:
  // Folds one stored-form event built from `json_fields` (inserted into an object that already
  // has type, messageId, timestamp and receivedAt).
  void Fold(std::string_view type, int64_t ts, std::string_view json_fields,
            const DeviceFacts* device = nullptr) {
    std::string json = "{\"type\":\"" + std::string(type) + "\",\"messageId\":\"m" +
                       std::to_string(++seq_) + "\",\"timestamp\":\"" + FormatIso8601(ts) +
                       "\",\"receivedAt\":\"" + FormatIso8601(ts) + "\"";
    if (!json_fields.empty()) json += "," + std::string(json_fields);
    json += "}";
    simdjson::dom::element doc;
    ASSERT_EQ(parser_.parse(json).get(doc), simdjson::SUCCESS) << json;
    absl::StatusOr<EventFacts> facts = ExtractFacts(doc, rules_);
    ASSERT_TRUE(facts.ok()) << facts.status();
    if (!text_properties_.empty()) {
      ScoreTexts(*analyzer_, nullptr, doc, text_properties_, &*facts);
    }
    last_facts_ = *facts;
    FoldEvent(profile_, *facts, device, seq_, options_);
  }

  std::unique_ptr<text::SentimentAnalyzer> analyzer_ = text::SentimentAnalyzer::Create();
  std::vector<std::string> text_properties_;
  simdjson::dom::parser parser_;
  identity::IdentityRules rules_;
  FoldOptions options_;
  Profile profile_;
  EventFacts last_facts_;
  uint64_t seq_ = 0;
};

TEST_F(FoldTest, ExtractsIdentifiersFromIdsTraitsAndExternalIds) {
  rules_.external_ids = {"crm_id"};
  Fold(
      "identify", kT0,
      R"("userId":"u1","anonymousId":"a1","traits":{"email":"Ada@X.io","phone":"+1 555","crm_id":7},)"
      R"("context":{"externalIds":[{"id":"c-2","type":"crm_id"},{"id":"z","type":"other"}]})");
  std::vector<identity::Identifier> want = {{"userId", "u1"},      {"anonymousId", "a1"},
                                            {"email", "Ada@X.io"}, {"phone", "+1 555"},
                                            {"crm_id", "7"},       {"crm_id", "c-2"}};
  EXPECT_EQ(last_facts_.identifiers, want);
}

TEST_F(FoldTest, ExternalIdsOfEmailAndPhoneCountWithOrWithoutNamedExternalIds) {
  for (bool named : {false, true}) {
    rules_.external_ids.clear();
    if (named) rules_.external_ids = {"crm_id"};
    Fold("track", kT0,
         R"("anonymousId":"a1","event":"X","context":{"externalIds":[{"id":"Ada@X.io",)"
         R"("type":"email"},{"id":"+1 555","type":"phone"},{"id":"u9","type":"userId"}]})");
    std::vector<identity::Identifier> want = {
        {"anonymousId", "a1"}, {"email", "Ada@X.io"}, {"phone", "+1 555"}};
    EXPECT_EQ(last_facts_.identifiers, want) << "named external ids: " << named;
  }
}

TEST_F(FoldTest, TraitsKeepTheLatestValueByTimestamp) {
  Fold("identify", kT0 + 10, R"("userId":"u1","traits":{"plan":"pro","age":40})");
  Fold("identify", kT0, R"("userId":"u1","traits":{"plan":"free"})");  // older: ignored
  Fold("track", kT0 + 20, R"("userId":"u1","event":"X","context":{"traits":{"age":41}})");
  EXPECT_EQ(profile_.traits.at("plan").json, "\"pro\"");
  EXPECT_EQ(profile_.traits.at("age").json, "41");
  EXPECT_EQ(profile_.traits.at("age").set_at_ms, kT0 + 20);
}

TEST_F(FoldTest, CountsRevenueAndFirstLastSeen) {
  Fold("page", kT0, R"("anonymousId":"a")");
  Fold("track", kT0 + kMinute,
       R"("anonymousId":"a","event":"Order Completed","properties":{"revenue":19.5})");
  Fold("track", kT0 + 2 * kMinute,
       R"("anonymousId":"a","event":"Order Completed","properties":{"total":"10.5"})");
  Fold("track", kT0 + 3 * kMinute, R"("anonymousId":"a","event":"Order Completed")");
  EXPECT_EQ(profile_.seen.events, 4u);
  EXPECT_EQ(profile_.seen.first_ms, kT0);
  EXPECT_EQ(profile_.seen.last_ms, kT0 + 3 * kMinute);
  EXPECT_EQ(profile_.event_counts.at("page"), 1u);
  EXPECT_EQ(profile_.event_counts.at("Order Completed"), 3u);
  EXPECT_EQ(profile_.orders, 3u);
  EXPECT_DOUBLE_EQ(profile_.revenue, 30.0);
  EXPECT_EQ(profile_.first_order_ms, kT0 + kMinute);
  EXPECT_EQ(profile_.last_order_ms, kT0 + 3 * kMinute);
  EXPECT_EQ(profile_.order_days, 1u);  // three orders, one day
  EXPECT_DOUBLE_EQ(profile_.first_day_revenue, 30.0);
}

TEST_F(FoldTest, RevenueAsTextCountsWhenItIsAFiniteNumber) {
  for (const char* revenue :
       {R"("12.5")", R"("NaN")", R"("inf")", R"("-Infinity")", R"("1e999")", R"("7 EUR")", "2.5"}) {
    Fold(
        "track", kT0,
        StrCat(R"("userId":"u","event":"Order Completed","properties":{"revenue":)", revenue, "}"));
  }
  EXPECT_EQ(profile_.orders, 7u);  // each an order; only numbers are revenue
  EXPECT_DOUBLE_EQ(profile_.revenue, 15.0);
}

// Two orders each of a finite revenue whose sum overflows: the total stays a number.
TEST_F(FoldTest, RevenueSumsStayFinite) {
  for (int i = 0; i < 2; ++i) {
    Fold("track", kT0 + i,
         R"("userId":"u","event":"Order Completed","properties":{"revenue":1e308})");
  }
  EXPECT_EQ(profile_.orders, 2u);
  EXPECT_EQ(profile_.revenue, std::numeric_limits<double>::max());
  EXPECT_EQ(profile_.first_day_revenue, std::numeric_limits<double>::max());
  Profile other = profile_;
  other.id = 2;
  MergeProfiles(profile_, std::move(other), MergeRecord{});
  EXPECT_EQ(profile_.revenue, std::numeric_limits<double>::max());
}

TEST_F(FoldTest, CountsOrderDaysAndTheFirstDaysRevenue) {
  auto order = [&](int64_t ts, const char* revenue) {
    Fold(
        "track", ts,
        StrCat(R"("userId":"u","event":"Order Completed","properties":{"revenue":)", revenue, "}"));
  };
  order(kT0 + 3 * kDay, "10");
  order(kT0 + 3 * kDay + kMinute, "5");  // the same day: one purchase
  order(kT0 + 5 * kDay, "20");
  EXPECT_EQ(profile_.orders, 3u);
  EXPECT_EQ(profile_.order_days, 2u);
  EXPECT_DOUBLE_EQ(profile_.first_day_revenue, 15.0);
  order(kT0 + kDay, "7");  // late, and earlier than the first: a new first day
  EXPECT_EQ(profile_.order_days, 3u);
  EXPECT_DOUBLE_EQ(profile_.first_day_revenue, 7.0);
  EXPECT_EQ(profile_.first_order_ms, kT0 + kDay);
  EXPECT_EQ(profile_.last_order_ms, kT0 + 5 * kDay);
  EXPECT_DOUBLE_EQ(profile_.revenue, 42.0);

  // Merging: the day both profiles ordered on is one day.
  Profile other;
  other.orders = 2;
  other.order_days = 2;
  other.revenue = 9;
  other.first_day_revenue = 4;
  other.first_order_ms = kT0 + kDay + 5;
  other.last_order_ms = kT0 + 9 * kDay;
  MergeProfiles(profile_, std::move(other), MergeRecord{});
  EXPECT_EQ(profile_.orders, 6u);
  EXPECT_EQ(profile_.order_days, 4u);
  EXPECT_DOUBLE_EQ(profile_.first_day_revenue, 11.0);
  EXPECT_DOUBLE_EQ(profile_.revenue, 51.0);
  EXPECT_EQ(profile_.last_order_ms, kT0 + 9 * kDay);
}

TEST_F(FoldTest, OrderDaysAreCountedOnceWhateverTheOrderOfArrivalAndAcrossMerges) {
  auto order = [&](int64_t day) {
    Fold("track", kT0 + day * kDay,
         R"("userId":"u","event":"Order Completed","properties":{"revenue":1})");
  };
  order(1);
  order(9);
  order(5);
  order(5);  // late, on a day between the first and the last already counted
  order(3);
  EXPECT_EQ(profile_.order_days, 4u);
  const int32_t d0 = static_cast<int32_t>(kT0 / kDay);
  EXPECT_EQ(profile_.order_day_list, (std::vector<int32_t>{d0 + 1, d0 + 3, d0 + 5, d0 + 9}));
  // Merged with a customer who ordered on days 3 (again), 4 and 9 (again): 5 days.
  Profile other;
  for (int64_t day : {4, 3, 9}) AddOrder(other, kT0 + day * kDay + 7, 2);
  ASSERT_EQ(other.order_days, 3u);
  MergeProfiles(profile_, std::move(other), MergeRecord{});
  EXPECT_EQ(profile_.order_days, 5u);
  EXPECT_EQ(profile_.orders, 8u);
  EXPECT_EQ(profile_.order_day_list.size(), 5u);
  // Past kMaxOrderDays the days are no longer kept, and counting goes on by first and last.
  Profile busy;
  for (size_t day = 0; day <= kMaxOrderDays; ++day) {
    AddOrder(busy, kT0 + static_cast<int64_t>(day) * kDay, 1);
  }
  EXPECT_EQ(busy.order_days, kMaxOrderDays + 1);
  EXPECT_TRUE(busy.order_day_list.empty());
  AddOrder(busy, kT0 + 2 * kDay, 1);  // neither the first nor the last: counted again
  EXPECT_EQ(busy.order_days, kMaxOrderDays + 2);
}

TEST_F(FoldTest, SessionsSplitOnTheTimeout) {
  options_.session_timeout_ms = 30 * kMinute;
  Fold("page", kT0, R"("anonymousId":"a")");
  Fold("page", kT0 + 10 * kMinute, R"("anonymousId":"a")");
  Fold("track", kT0 + 40 * kMinute, R"("anonymousId":"a","event":"X")");  // gap 30 min: same
  Fold("page", kT0 + 71 * kMinute, R"("anonymousId":"a")");               // gap 31 min: new
  Fold("screen", kT0 + 72 * kMinute, R"("anonymousId":"a","name":"Home")");
  const Sessions& s = profile_.sessions;
  EXPECT_EQ(s.count, 2u);
  EXPECT_EQ(s.total_ms, 40 * kMinute + 1 * kMinute);
  EXPECT_EQ(s.views, 4u);
  EXPECT_EQ(s.current_start_ms, kT0 + 71 * kMinute);
  EXPECT_EQ(s.current_events, 2u);
  EXPECT_EQ(s.current_views, 2u);
}

TEST_F(FoldTest, LateEventsCountTheSessionsTheyBelongTo) {
  options_.session_timeout_ms = 30 * kMinute;
  // Three visits days apart, the latest arriving first (an offline queue, an import): three
  // sessions, as in time order; the current one stays the latest.
  Fold("page", kT0 + 20 * kDay, R"("anonymousId":"a")");
  Fold("page", kT0, R"("anonymousId":"a")");
  Fold("page", kT0 + 9 * kDay, R"("anonymousId":"a")");
  const Sessions& s = profile_.sessions;
  EXPECT_EQ(s.count, 3u);
  EXPECT_EQ(s.current_start_ms, kT0 + 20 * kDay);
  EXPECT_EQ(s.current_events, 1u);
  EXPECT_EQ(s.current_views, 1u);
  EXPECT_EQ(s.views, 3u);
  EXPECT_EQ(s.previous_last_ms, kT0 + 9 * kDay);
  // A second late event of the visit 9 days in is that session, not a new one.
  Fold("page", kT0 + 9 * kDay + 5 * kMinute, R"("anonymousId":"a")");
  EXPECT_EQ(s.count, 3u);
  // One a little before the current session began (within the timeout) starts it earlier.
  Fold("page", kT0 + 20 * kDay - 10 * kMinute, R"("anonymousId":"a")");
  EXPECT_EQ(s.count, 3u);
  EXPECT_EQ(s.current_start_ms, kT0 + 20 * kDay - 10 * kMinute);
  EXPECT_EQ(s.current_events, 2u);
  EXPECT_EQ(s.total_ms, 10 * kMinute);
}

TEST_F(FoldTest, BotsAreKeptOutOfStatisticsButConsentCounts) {
  DeviceFacts bot{"bot", "Other", "", "Googlebot", "2", true};
  Fold("page", kT0, R"("anonymousId":"a","context":{"consent":{"analytics":false}})", &bot);
  EXPECT_EQ(profile_.bot_events, 1u);
  EXPECT_EQ(profile_.seen.events, 0u);
  EXPECT_EQ(profile_.sessions.count, 0u);
  EXPECT_TRUE(profile_.devices.empty());
  EXPECT_TRUE(profile_.Denied("analytics"));
}

TEST_F(FoldTest, DevicesSourcesReferrersAndConsent) {
  DeviceFacts phone{"mobile", "iOS", "17", "Mobile Safari", "17", false};
  Fold("page", kT0,
       R"("anonymousId":"a","channel":"browser","context":{"library":{"name":"analytics.js"},)"
       R"("campaign":{"source":"tiktok","medium":"paid_social","name":"spring"},)"
       R"("page":{"referrer":"https://WWW.Google.com:443/search?q=x"},)"
       R"("consent":{"categoryPreferences":{"marketing_email":true,"cross_device":"denied"}}})",
       &phone);
  Fold("page", kT0 + 1, R"("anonymousId":"a","context":{"library":{"name":"analytics.js"}})",
       &phone);
  ASSERT_EQ(profile_.devices.size(), 1u);
  EXPECT_EQ(profile_.devices[0].type, "mobile");
  EXPECT_EQ(profile_.devices[0].events, 2u);
  EXPECT_EQ(profile_.platforms.at("analytics.js").events, 2u);
  EXPECT_EQ(profile_.channels.at("browser").events, 1u);
  ASSERT_EQ(profile_.sources.size(), 1u);
  EXPECT_EQ(profile_.sources[0].source, "tiktok");
  EXPECT_EQ(profile_.referrers.at("www.google.com").events, 1u);
  EXPECT_FALSE(profile_.Denied("marketing_email"));
  EXPECT_TRUE(profile_.Denied("cross_device"));
  EXPECT_TRUE(profile_.Facts().cross_device_denied);
}

TEST_F(FoldTest, ConsentStatementsSetOnlyPurposesAndMappedCategories) {
  options_.consent.AddPurpose("profiling");
  options_.consent.AddCategory("C0004", {"marketing_email", "marketing_sms"});
  Fold("page", kT0,
       R"("anonymousId":"a","context":{"consent":{"profiling":"granted","Advertising":false,)"
       R"("analytics":"maybe","categoryPreferences":{"C0004":false,"C0002":false}}})");
  EXPECT_TRUE(profile_.Denied("marketing_email"));
  EXPECT_TRUE(profile_.Denied("marketing_sms"));
  ASSERT_TRUE(profile_.consent.contains("profiling"));
  EXPECT_TRUE(profile_.consent.at("profiling").granted);
  // Unknown names (Advertising, C0002) and a value that is no yes or no set nothing.
  EXPECT_EQ(profile_.consent.size(), 3u);
  EXPECT_FALSE(profile_.consent.contains("analytics"));
}

TEST_F(FoldTest, TextPropertiesAreScoredButNotOfBots) {
  text_properties_ = {"comment", "review.body"};
  Fold("track", kT0,
       R"("anonymousId":"a","event":"Reviewed","properties":{"comment":7,)"
       R"("review":{"body":"Great shoes, I love them!"}})");
  EXPECT_EQ(profile_.text.count, 1u);
  EXPECT_EQ(profile_.text.positive, 1u);
  EXPECT_EQ(profile_.text.latest_property, "review.body");
  EXPECT_EQ(profile_.text.latest, analyzer_->Score("Great shoes, I love them!").compound);
  EXPECT_EQ(profile_.text.latest_message_id, "m1");
  EXPECT_EQ(last_facts_.sentiment(), profile_.text.latest);
  DeviceFacts bot{"bot", "Other", "", "Googlebot", "2", true};
  Fold("track", kT0 + 1, R"("anonymousId":"a","event":"X","properties":{"comment":"awful"})", &bot);
  EXPECT_EQ(profile_.text.count, 1u);
  EXPECT_EQ(profile_.text.latest_message_id, "m1");
}

TEST_F(FoldTest, EventNamesAreCapped) {
  for (size_t i = 0; i < kMaxEventNames + 5; ++i) {
    Fold("track", kT0 + static_cast<int64_t>(i),
         R"("anonymousId":"a","event":"E)" + std::to_string(i) + "\"");
  }
  EXPECT_EQ(profile_.event_counts.size(), kMaxEventNames + 1);
  EXPECT_EQ(profile_.event_counts.at("(other)"), 5u);
}

TEST_F(FoldTest, NamesAndValuesPastTheirLengthAreNotKept) {
  const std::string long_name(kMaxEntryBytes + 1, 'n');
  const std::string just_fits(kMaxEntryBytes, 'f');
  Fold("track", kT0, R"("anonymousId":"a","event":")" + long_name + "\"");
  Fold("track", kT0 + 1, R"("anonymousId":"a","event":")" + just_fits + "\"");
  EXPECT_EQ(profile_.event_counts.at("(other)"), 1u);
  EXPECT_EQ(profile_.event_counts.at(just_fits), 1u);
  EXPECT_EQ(profile_.event_counts.count(long_name), 0u);
  // The lists of the context: platforms, channels, referrers, sources.
  Fold("page", kT0 + 2,
       R"("anonymousId":"a","context":{"library":{"name":")" + long_name +
           R"("},"campaign":{"source":"s","name":")" + long_name + R"("},)" +
           R"("page":{"referrer":"https://)" + long_name + R"(.com/"}})");
  EXPECT_EQ(profile_.platforms.at("(other)").events, 1u);
  EXPECT_EQ(profile_.referrers.at("(other)").events, 1u);
  ASSERT_EQ(profile_.sources.size(), 1u);
  EXPECT_EQ(profile_.sources[0].source, "(other)");
  EXPECT_EQ(profile_.sources[0].campaign, "");
  // A trait with a key past the length is not kept; a value past kMaxTraitBytes is null, so
  // the older value it replaces is no longer shown as the latest.
  const std::string big_value(kMaxTraitBytes, 'v');  // with its quotes, past the limit
  Fold("identify", kT0 + 3,
       R"("userId":"u","traits":{"plan":"pro","bio":"short",")" + long_name + R"(":1})");
  EXPECT_EQ(profile_.traits.count(long_name), 0u);
  Fold("identify", kT0 + 4, R"("userId":"u","traits":{"bio":")" + big_value + R"("})");
  EXPECT_EQ(profile_.traits.at("bio").json, "null");
  EXPECT_EQ(profile_.traits.at("bio").set_at_ms, kT0 + 4);
  EXPECT_EQ(profile_.traits.at("plan").json, "\"pro\"");
  // Nor does a merge bring an older value back.
  Profile older;
  older.traits["bio"] = TraitValue{"\"old\"", kT0 + 1};
  MergeProfiles(profile_, std::move(older), MergeRecord{});
  EXPECT_EQ(profile_.traits.at("bio").json, "null");
  Profile newer;
  newer.traits["bio"] = TraitValue{"\"merged\"", kT0 + 4};  // as late: the merged one stands
  MergeProfiles(profile_, std::move(newer), MergeRecord{});
  EXPECT_EQ(profile_.traits.at("bio").json, "\"merged\"");
  // An older large value does not take away a newer one.
  Fold("identify", kT0 + 5, R"("userId":"u","traits":{"bio":"new"})");
  Fold("identify", kT0 - 5, R"("userId":"u","traits":{"bio":")" + big_value + R"("})");
  EXPECT_EQ(profile_.traits.at("bio").json, "\"new\"");
}

TEST_F(FoldTest, ADevicesVersionsAreThoseOfItsLatestEventInTime) {
  DeviceFacts v17{"mobile", "iOS", "17.4", "Mobile Safari", "17.4", false};
  DeviceFacts v16{"mobile", "iOS", "16.6", "Mobile Safari", "16.6", false};
  Fold("page", kT0, R"("anonymousId":"a")", &v17);
  // Sent before the upgrade, it arrives after (an offline queue): the newer version stays.
  Fold("page", kT0 - kDay, R"("anonymousId":"a")", &v16);
  ASSERT_EQ(profile_.devices.size(), 1u);
  EXPECT_EQ(profile_.devices[0].os_version, "17.4");
  EXPECT_EQ(profile_.devices[0].browser_version, "17.4");
  EXPECT_EQ(profile_.devices[0].events, 2u);
  EXPECT_EQ(profile_.devices[0].first_ms, kT0 - kDay);

  // Merged, the device seen last in time gives the versions, whichever profile survives.
  Profile older;
  older.id = 7;
  DeviceSeen d;
  static_cast<DeviceFacts&>(d) = v16;
  d.Touch(kT0 - 2 * kDay);
  older.devices.push_back(d);
  Profile survivor = older;
  MergeProfiles(survivor, Profile(profile_), MergeRecord{});
  ASSERT_EQ(survivor.devices.size(), 1u);
  EXPECT_EQ(survivor.devices[0].os_version, "17.4");
  EXPECT_EQ(survivor.devices[0].events, 3u);
  Profile newer = profile_;
  MergeProfiles(newer, Profile(older), MergeRecord{});
  EXPECT_EQ(newer.devices[0].os_version, "17.4");
}

TEST(MergeProfiles, SumsStatsUnitesListsAndKeepsLatestTraits) {
  Profile a, b;
  a.id = 1;
  b.id = 2;
  a.identifiers = {{"anonymousId", "a1"}};
  b.identifiers = {{"userId", "u1"}, {"anonymousId", "a2"}};
  a.traits["plan"] = {"\"free\"", kT0};
  b.traits["plan"] = {"\"pro\"", kT0 + 5};
  a.traits["city"] = {"\"Oslo\"", kT0 + 9};
  b.traits["city"] = {"\"Rome\"", kT0 + 1};
  a.seen = {kT0, kT0 + 100, 3};
  b.seen = {kT0 - 50, kT0 + 10, 2};
  a.event_counts = {{"page", 3}};
  b.event_counts = {{"page", 1}, {"Order Completed", 1}};
  b.revenue = 20;
  b.orders = 1;
  b.last_order_ms = kT0 + 10;
  a.sessions = {1, 100, 3, kT0, kT0 + 100, 3, 3};
  b.sessions = {1, 60, 1, kT0 - 50, kT0 + 10, 2, 1};
  b.absorbed = {7};
  a.text.count = 1;
  a.text.mean = 0.8;
  a.text.positive = 1;
  a.text.latest = 0.8;
  a.text.latest_ms = kT0 + 100;
  a.text.latest_message_id = "ma";
  b.text.count = 3;
  b.text.mean = -0.4;
  b.text.negative = 2;
  b.text.latest = -0.6;
  b.text.latest_ms = kT0 + 10;
  b.text.intent = "refund";
  b.text.intent_probability = 0.9;
  b.text.intent_ms = kT0 + 10;
  MergeRecord rec;
  rec.absorbed = 2;
  rec.message_id = "m9";
  MergeProfiles(a, std::move(b), rec);
  EXPECT_EQ(a.identifiers.size(), 3u);
  EXPECT_EQ(a.traits.at("plan").json, "\"pro\"");
  EXPECT_EQ(a.traits.at("city").json, "\"Oslo\"");
  EXPECT_EQ(a.seen.events, 5u);
  EXPECT_EQ(a.seen.first_ms, kT0 - 50);
  EXPECT_EQ(a.seen.last_ms, kT0 + 100);
  EXPECT_EQ(a.event_counts.at("page"), 4u);
  EXPECT_EQ(a.orders, 1u);
  EXPECT_EQ(a.sessions.count, 2u);
  EXPECT_EQ(a.sessions.total_ms, 160);
  EXPECT_EQ(a.sessions.current_last_ms, kT0 + 100);
  EXPECT_EQ(a.sessions.previous_last_ms, 0) << "the two sessions overlap: neither came before";
  EXPECT_EQ(a.absorbed, (std::vector<uint64_t>{2, 7}));
  ASSERT_EQ(a.merges.size(), 1u);
  EXPECT_EQ(a.merges[0].message_id, "m9");
  // Text sentiment: counts add, means weigh by their counts, the latest text by time.
  EXPECT_EQ(a.text.count, 4u);
  EXPECT_DOUBLE_EQ(a.text.mean, (0.8 - 3 * 0.4) / 4);
  EXPECT_EQ(a.text.positive, 1u);
  EXPECT_EQ(a.text.negative, 2u);
  EXPECT_EQ(a.text.latest, 0.8);
  EXPECT_EQ(a.text.latest_message_id, "ma");
  EXPECT_EQ(a.text.intent, "refund");
}

// Signed in on the phone two hours after a session on the laptop: the laptop's session is the
// one before the current one, whichever profile survives.
TEST(MergeProfiles, TheSessionBeforeTheCurrentOneMayBeTheOtherDevices) {
  constexpr int64_t kHour = 3'600'000;
  for (bool phone_survives : {true, false}) {
    Profile laptop, phone;
    laptop.id = 1;
    phone.id = 2;
    laptop.sessions.count = 2;
    laptop.sessions.previous_last_ms = kT0 - 48 * kHour;
    laptop.sessions.current_start_ms = kT0 - 3 * kHour;
    laptop.sessions.current_last_ms = kT0 - 2 * kHour;
    phone.sessions.count = 1;
    phone.sessions.current_start_ms = kT0 - 60'000;
    phone.sessions.current_last_ms = kT0;
    Profile& s = phone_survives ? phone : laptop;
    MergeProfiles(s, std::move(phone_survives ? laptop : phone), MergeRecord{});
    EXPECT_EQ(s.sessions.count, 3u);
    EXPECT_EQ(s.sessions.current_start_ms, kT0 - 60'000);
    EXPECT_EQ(s.sessions.previous_last_ms, kT0 - 2 * kHour) << phone_survives;
  }
}

// The encoder writes ahead into the string's own buffer and grows it: what was in the string
// stays in front, the string ends where the profile does, and values longer than the buffer's
// first growth (a 5,000-byte trait, 10-byte varints) come back whole.
TEST(ProfileCodec, AppendsAndGrowsPastItsFirstBuffer) {
  Profile p;
  p.id = 7;
  p.identifiers = {{"userId", "u1"}};
  p.traits["bio"] = {std::string(5000, 'x'), kT0};
  p.last_sequence = std::numeric_limits<uint64_t>::max();
  p.seen = {std::numeric_limits<int64_t>::min(), std::numeric_limits<int64_t>::max(), 1};
  std::string alone;
  EncodeProfile(p, &alone);
  std::string appended = "prefix";
  EncodeProfile(p, &appended);
  EXPECT_EQ(appended, "prefix" + alone);
  absl::StatusOr<Profile> back = DecodeProfile(alone);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->traits.at("bio").json, std::string(5000, 'x'));
  EXPECT_EQ(back->last_sequence, std::numeric_limits<uint64_t>::max());
  EXPECT_EQ(back->seen.first_ms, std::numeric_limits<int64_t>::min());
  EXPECT_EQ(back->seen.last_ms, std::numeric_limits<int64_t>::max());
  // A profile that fits the first buffer: the string holds exactly its bytes.
  Profile small;
  small.id = 1;
  std::string encoded;
  EncodeProfile(small, &encoded);
  EXPECT_LT(encoded.size(), 512u);
  ASSERT_TRUE(DecodeProfile(encoded).ok());
  std::string twice = encoded;
  EncodeProfile(small, &twice);
  EXPECT_EQ(twice, encoded + encoded);
}

TEST(ProfileCodec, RoundTripsEveryField) {
  Profile p;
  p.id = 0x1f;
  p.identifiers = {{"userId", "u\"1"}, {"email", "a@b.c"}};
  p.traits["nested"] = {R"({"a":[1,2,{"b":null}]})", kT0};
  p.seen = {kT0, kT0 + 5, 2};
  p.event_counts = {{"page", 2}};
  p.revenue = 12.25;
  p.orders = 1;
  p.order_days = 3;
  p.order_day_list = {-3, 19'000, 19'700};  // a day before 1970 too
  p.first_day_revenue = 12.25;
  p.first_order_ms = p.last_order_ms = kT0 + 5;
  p.sessions = {1, 5, 2, kT0, kT0 + 5, 2, 2};
  DeviceSeen d;
  d.type = "desktop";
  d.os = "Mac OS X";
  d.browser = "Safari";
  d.first_ms = kT0;
  d.last_ms = kT0 + 5;
  d.events = 2;
  p.devices.push_back(d);
  p.platforms["analytics.js"] = {kT0, kT0 + 5, 2};
  SourceSeen src;
  src.source = "google";
  src.first_ms = src.last_ms = kT0;
  src.events = 1;
  p.sources.push_back(src);
  p.referrers["x.io"] = {kT0, kT0, 1};
  p.consent["analytics"] = {false, kT0, "api"};
  MergeRecord m;
  m.at_ms = kT0;
  m.absorbed = 3;
  m.message_id = "m";
  m.event_type = "identify";
  m.identifiers = {{"userId", "u\"1"}};
  p.merges.push_back(m);
  p.absorbed = {3, 4};
  p.separated = {9};
  p.bot_events = 4;
  p.last_sequence = 99;
  JourneyState& j = p.journeys["shop"];
  j.version = 2;
  j.stage = "cart";
  j.stage_index = 1;
  j.status = "active";
  j.entry_persona = "deal_seeker";
  j.history.push_back({"", "cart", kT0, 7, "m7", "entry"});
  p.persona = {"deal_seeker", 0.75, kT0 + 5, {{"deal_seeker", 0.75, kT0 + 5, 8, "m8"}}};
  p.signals[static_cast<size_t>(Signal::kCartAdd)] = 3;
  p.sessions.current_signals[static_cast<size_t>(Signal::kCartAdd)] = 1;
  p.sessions.previous_last_ms = kT0 - 1000;
  p.text = {3, 0.125, 2, 1, -0.5, "review.body", kT0 + 4, "m4", "refund", 0.875, kT0 + 3};

  p.devices[0].bot = true;
  std::string encoded;
  EncodeProfile(p, &encoded);
  absl::StatusOr<Profile> back = DecodeProfile(encoded);
  ASSERT_TRUE(back.ok()) << back.status();
  std::string again;
  EncodeProfile(*back, &again);
  EXPECT_EQ(encoded, again);
  // Every field survives: the JSON views of both are the same too.
  std::string json, json_back;
  JsonWriter w(&json), w2(&json_back);
  WriteProfile(p, kT0 + 86'400'000, w);
  WriteProfile(*back, kT0 + 86'400'000, w2);
  EXPECT_EQ(json, json_back);
  EXPECT_TRUE(back->devices[0].bot);
  EXPECT_EQ(back->order_day_list, p.order_day_list);
  EXPECT_EQ(back->journeys.at("shop").entry_persona, "deal_seeker");
  EXPECT_EQ(back->persona.history.at(0).message_id, "m8");
  EXPECT_EQ(back->signals, p.signals);
  EXPECT_EQ(back->sessions.current_signals, p.sessions.current_signals);
  EXPECT_EQ(back->sessions.previous_last_ms, kT0 - 1000);
  EXPECT_EQ(back->text.count, 3u);
  EXPECT_EQ(back->text.mean, 0.125);
  EXPECT_EQ(back->text.positive, 2u);
  EXPECT_EQ(back->text.negative, 1u);
  EXPECT_EQ(back->text.latest, -0.5);
  EXPECT_EQ(back->text.latest_property, "review.body");
  EXPECT_EQ(back->text.latest_ms, kT0 + 4);
  EXPECT_EQ(back->text.latest_message_id, "m4");
  EXPECT_EQ(back->text.intent, "refund");
  EXPECT_EQ(back->text.intent_probability, 0.875);
  EXPECT_EQ(back->text.intent_ms, kT0 + 3);
  EXPECT_NE(json.find(R"("persona":{"id":"deal_seeker","confidence":0.75)"), std::string::npos)
      << json;
  EXPECT_NE(json.find(R"("sentiment":{"latest":{"compound":-0.5,"property":"review.body",)"
                      R"("at":"2023-11-14T22:13:20.004Z","messageId":"m4"},"average":0.125,)"
                      R"("count":3,"positive":2,"negative":1},)"
                      R"("textIntent":{"label":"refund","probability":0.875,)"
                      R"("at":"2023-11-14T22:13:20.003Z"})"),
            std::string::npos)
      << json;
  EXPECT_LT(encoded.size(), json.size() / 2)
      << "binary " << encoded.size() << " vs JSON " << json.size();
  EXPECT_NE(json.find(R"("profileId":"prf_1f")"), std::string::npos);
  EXPECT_NE(json.find(R"("recencyDays":0.99)"), std::string::npos) << json;
}

TEST(ProfileCodec, ReadsRowsOfEarlierFormats) {
  // Format 7 is format 8 without the list of order days (its count, right after the first order
  // day's revenue, and the days). Format 6 is format 7 without the order days and the first
  // order day's revenue (a varint and a double right after the last order time). For a profile in
  // no journey with no persona, no intent evidence, no scores and no texts, format 5 is format 6
  // without the scores and text sentiment blocks at the end (two doubles and three zero varints: 19
  // bytes; the zero count of texts: 1 byte), format 4 is format 5 without the intent block (the
  // kind count, 12 pairs of zeros and the previous session's end: 26 bytes), and format 3 is format
  // 4 without the persona block (11 bytes).
  Profile p;
  p.id = 7;
  p.seen = {kT0, kT0, 1};
  p.last_sequence = 3;
  // `q` in format 7 or 6, with `order_days` (0x55 or below: one byte) and no list of days.
  auto earlier = [](Profile q, int format, uint64_t order_days = 0x55) {
    // Marks the fields to find and cut them.
    q.order_days = order_days;
    q.first_day_revenue = 1234.5;
    q.order_day_list = {};
    std::string row;
    EncodeProfile(q, &row);
    EXPECT_EQ(row[0], 8);
    std::string marker(1, static_cast<char>(order_days));
    double d = 1234.5;
    marker.append(reinterpret_cast<const char*>(&d), sizeof d);
    marker.push_back('\0');  // no days listed
    const size_t at = row.find(marker);
    EXPECT_NE(at, std::string::npos);
    EXPECT_EQ(row.find(marker, at + 1), std::string::npos);
    if (format == 7) {
      row.erase(at + marker.size() - 1, 1);
    } else {
      row.erase(at, marker.size());
    }
    row[0] = static_cast<char>(format);
    return row;
  };
  auto format6 = [&](const Profile& q) { return earlier(q, 6); };
  std::string v6 = format6(p);
  std::string v5 = v6.substr(0, v6.size() - 20);
  v5[0] = 5;
  std::string v4 = v5.substr(0, v5.size() - 26);
  v4[0] = 4;
  std::string v3 = v4.substr(0, v4.size() - 11);
  v3[0] = 3;
  for (const std::string& old : {v5, v4, v3}) {
    absl::StatusOr<Profile> back = DecodeProfile(old);
    ASSERT_TRUE(back.ok()) << back.status();
    EXPECT_EQ(back->id, 7u);
    EXPECT_EQ(back->last_sequence, 3u);
    EXPECT_EQ(back->persona.id, "");
    EXPECT_EQ(back->signals, SignalCounts{});
    EXPECT_EQ(back->scores.at_ms, 0);
    EXPECT_EQ(back->text.count, 0u);
  }
  // A format 6 profile with orders reads as one day per order, each worth the mean.
  Profile ordered = p;
  ordered.orders = 4;
  ordered.revenue = 50;
  ordered.first_order_ms = kT0;
  ordered.last_order_ms = kT0 + 5;
  absl::StatusOr<Profile> old_orders = DecodeProfile(format6(ordered));
  ASSERT_TRUE(old_orders.ok()) << old_orders.status();
  EXPECT_EQ(old_orders->order_days, 4u);
  EXPECT_EQ(old_orders->first_day_revenue, 12.5);
  EXPECT_EQ(old_orders->last_order_ms, kT0 + 5);
  EXPECT_EQ(old_orders->seen.events, 1u);
  EXPECT_TRUE(old_orders->order_day_list.empty());  // 4 days: which ones is not known
  // A format 7 profile's days are listed when its first and last orders tell them all.
  ordered.first_order_ms = kT0;
  ordered.last_order_ms = kT0 + 5 * kDay;
  for (const auto& [days, listed] : std::vector<std::pair<uint64_t, std::vector<int32_t>>>{
           {2, {static_cast<int32_t>(kT0 / kDay), static_cast<int32_t>(kT0 / kDay + 5)}},
           {3, {}}}) {
    absl::StatusOr<Profile> v7 = DecodeProfile(earlier(ordered, 7, days));
    ASSERT_TRUE(v7.ok()) << v7.status();
    EXPECT_EQ(v7->order_days, days);
    EXPECT_EQ(v7->first_day_revenue, 1234.5);
    EXPECT_EQ(v7->order_day_list, listed);
  }
  // Scores round-trip.
  p.scores = {0.25, 0.5, kT0, {kT0, kT0 + 1}};
  std::string v7;
  EncodeProfile(p, &v7);
  absl::StatusOr<Profile> back = DecodeProfile(v7);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(back->scores.conversion, 0.25);
  EXPECT_EQ(back->scores.churn, 0.5);
  EXPECT_EQ(back->scores.sampled_ms[1], kT0 + 1);
  std::string v2 = v3;
  v2[0] = 2;
  EXPECT_EQ(DecodeProfile(v2).status().code(), absl::StatusCode::kDataLoss);
}

TEST(ProfileCodec, CorruptRowsAreErrorsNotCrashes) {
  Profile p;
  p.id = 7;
  p.identifiers = {{"userId", "u1"}};
  p.traits["plan"] = {"\"pro\"", kT0};
  p.text = {2, 0.5, 1, 0, 0.25, "comment", kT0, "m1", "refund", 0.5, kT0};
  std::string encoded;
  EncodeProfile(p, &encoded);
  ASSERT_TRUE(DecodeProfile(encoded).ok());
  EXPECT_EQ(DecodeProfile("").status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(DecodeProfile("{}").status().code(), absl::StatusCode::kDataLoss);
  // Every truncation, and trailing garbage, is refused.
  for (size_t n = 0; n < encoded.size(); ++n) {
    EXPECT_FALSE(DecodeProfile(std::string_view(encoded).substr(0, n)).ok()) << n;
  }
  EXPECT_FALSE(DecodeProfile(encoded + "x").ok());
  // A list length far beyond the input is refused before anything is allocated for it.
  std::string huge = encoded.substr(0, 2) + std::string("\xff\xff\xff\xff\x0f", 5);
  EXPECT_FALSE(DecodeProfile(huge).ok());
}

TEST(ProfileId, OneSpellingPerId) {
  EXPECT_EQ(ProfileIdString(255), "prf_ff");
  EXPECT_EQ(ParseProfileId("prf_ff"), 255u);
  EXPECT_FALSE(ParseProfileId("prf_0ff"));
  EXPECT_FALSE(ParseProfileId("prf_FF"));
  EXPECT_FALSE(ParseProfileId("prf_0"));
  EXPECT_FALSE(ParseProfileId("ff"));
  EXPECT_FALSE(ParseProfileId("prf_"));
  EXPECT_FALSE(ParseProfileId("prf_fffffffffffffffff"));
}

TEST(KeysOfCustomer, TheProfileThoseMergedIntoItAndTheVisitorsItsIdsWere) {
  Profile p;
  p.id = 7;
  p.absorbed = {3, 5};
  p.identifiers = {{"userId", "u1"}, {"email", "a@b.c"}, {"anonymousId", "dev"}};
  const CustomerKeys keys = KeysOfCustomer(p);
  const uint64_t user = VisitorHash("userId", "u1");
  const uint64_t device = VisitorHash("anonymousId", "dev");
  EXPECT_EQ(keys.index, (std::vector<uint64_t>{7, 3, 5, VisitorIndex(user), VisitorIndex(device)}));
  EXPECT_EQ(keys.hashes,
            (std::vector<uint64_t>{ProfileHash(7), ProfileHash(3), ProfileHash(5), user, device}));
  // Visitor index ids never meet a profile id, and the type is part of the key.
  EXPECT_GE(VisitorIndex(user), uint64_t{1} << 63);
  EXPECT_NE(VisitorHash("userId", "dev"), device);
  EXPECT_NE(VisitorHash("userId", "u1"), ProfileHash(7));
}

TEST(UrlHost, Hosts) {
  EXPECT_EQ(UrlHost("https://www.Google.com/search?q=1"), "www.google.com");
  EXPECT_EQ(UrlHost("http://user@host.io:8080"), "host.io");
  EXPECT_EQ(UrlHost("http://[2001:DB8::1]:80/x"), "[2001:db8::1]");
  EXPECT_EQ(UrlHost("http://[2001:db8::1]/x"), "[2001:db8::1]");
  EXPECT_EQ(UrlHost("not a url"), "");
  EXPECT_EQ(UrlHost(""), "");
}

}  // namespace
}  // namespace whisperer::state
