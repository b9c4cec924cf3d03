#include "decide/engagement.h"

#include <gtest/gtest.h>

#include <random>
#include <set>

#include "absl/time/civil_time.h"

namespace whisperer::decide {
namespace {

int64_t Utc(int y, int mo, int d, int h, int mi = 0) {
  return absl::ToUnixMillis(
      absl::FromCivil(absl::CivilSecond(y, mo, d, h, mi, 0), absl::UTCTimeZone()));
}

Engagement WithChannel(std::string_view channel, uint64_t received, uint64_t engaged) {
  Engagement e;
  e.channels[std::string(channel)] = {received, engaged};
  return e;
}

// ---- Channel ----

TEST(EngagementChannel, PosteriorShrinksTowardsTheWorkspaceRate) {
  Engagement none;
  BetaPosterior fresh = ChannelPosterior("email", none, none, 10);
  EXPECT_DOUBLE_EQ(fresh.alpha, 5);  // no history anywhere: Beta(s/2, s/2)
  EXPECT_DOUBLE_EQ(fresh.beta, 5);
  Engagement workspace = WithChannel("email", 98, 48);  // r = 49 / 100
  Engagement customer = WithChannel("email", 10, 3);
  BetaPosterior p = ChannelPosterior("email", customer, workspace, 10);
  EXPECT_DOUBLE_EQ(p.alpha, 4.9 + 3);
  EXPECT_DOUBLE_EQ(p.beta, 5.1 + 7);
  EXPECT_DOUBLE_EQ(ChannelPosterior("email", customer, workspace, 20).alpha, 9.8 + 3);
  EXPECT_NEAR(p.Variance(), 7.9 * 12.1 / (20.0 * 20.0 * 21.0), 1e-12);
}

TEST(EngagementChannel, AddSumsChannelsAndHours) {
  Engagement mine = WithChannel("email", 10, 3);
  mine.hours[5] = 2;
  Engagement other = WithChannel("email", 4, 1);
  other.channels["sms"] = {2, 2};
  other.hours[5] = 1;
  other.hours[100] = 7;
  mine.Add(other);
  EXPECT_EQ(mine.channels["email"].received, 14u);
  EXPECT_EQ(mine.channels["email"].engaged, 4u);
  EXPECT_EQ(mine.channels["sms"].received, 2u);
  EXPECT_EQ(mine.channels["sms"].engaged, 2u);
  EXPECT_EQ(mine.hours[5], 3u);
  EXPECT_EQ(mine.hours[100], 7u);
  EXPECT_EQ(mine.TotalHourEngagements(), 10u);
}

TEST(EngagementChannel, ACustomerWhoEngagesOnSmsGetsSmsMostOfTheTime) {
  Engagement customer = WithChannel("sms", 40, 30);
  customer.channels["email"] = {40, 2};
  Engagement workspace;  // no prior preference
  const std::vector<std::string> reachable = {"email", "sms"};
  std::mt19937_64 rng(1);
  int sms = 0;
  for (int n = 0; n < 1000; ++n) {
    std::optional<ChannelChoice> c = ChooseChannel(reachable, customer, workspace, 10, rng);
    ASSERT_TRUE(c.has_value());
    sms += c->channel == "sms";
    EXPECT_EQ(c->channel, reachable[c->index]);
    EXPECT_EQ(c->probability, c->options[c->index].probability);
  }
  EXPECT_GT(sms, 950);
  std::optional<ChannelChoice> c = ChooseChannel(reachable, customer, workspace, 10, rng);
  EXPECT_GT(c->options[1].probability, 0.95);
  EXPECT_GT(c->options[1].mean, c->options[0].mean);
}

TEST(EngagementChannel, WithoutHistoryTheWorkspacesBestChannelWinsMoreOftenAsOftenAsReported) {
  Engagement customer;
  Engagement workspace = WithChannel("sms", 1000, 300);
  workspace.channels["email"] = {1000, 100};
  const std::vector<std::string> reachable = {"email", "sms"};
  std::mt19937_64 rng(2);
  int sms = 0;
  const int kDraws = 4000;
  double reported = 0;
  for (int n = 0; n < kDraws; ++n) {
    std::optional<ChannelChoice> c = ChooseChannel(reachable, customer, workspace, 10, rng);
    sms += c->channel == "sms";
    reported = c->options[1].probability;
  }
  const double share = static_cast<double>(sms) / kDraws;
  EXPECT_GT(share, 0.7);
  EXPECT_LT(share, 0.98);              // still explores email
  EXPECT_NEAR(reported, share, 0.03);  // the normal approximation of P(best)
  // The more a customer received, the less the workspace matters.
  Engagement seasoned = WithChannel("email", 200, 100);
  seasoned.channels["sms"] = {200, 20};
  int email = 0;
  for (int n = 0; n < 1000; ++n) {
    email += ChooseChannel(reachable, seasoned, workspace, 10, rng)->channel == "email";
  }
  EXPECT_GT(email, 990);
}

TEST(EngagementChannel, ProbabilitiesSumToAboutOneAndEmptyOrRepeatedChannels) {
  Engagement customer = WithChannel("email", 12, 3);
  customer.channels["push"] = {5, 2};
  Engagement workspace = WithChannel("email", 500, 80);
  workspace.channels["push"] = {300, 60};
  workspace.channels["sms"] = {100, 30};
  std::mt19937_64 rng(3);
  const std::vector<std::string> reachable = {"email", "push", "sms", "push"};
  std::optional<ChannelChoice> c = ChooseChannel(reachable, customer, workspace, 10, rng);
  ASSERT_TRUE(c.has_value());
  ASSERT_EQ(c->options.size(), 3u);  // the repeated push counts once
  double sum = 0;
  for (const ChannelOption& o : c->options) {
    EXPECT_GT(o.probability, 0);
    sum += o.probability;
  }
  EXPECT_NEAR(sum, 1, 0.02);
  EXPECT_FALSE(ChooseChannel({}, customer, workspace, 10, rng).has_value());
  // A single channel is always chosen, with probability 1.
  const std::vector<std::string> only = {"sms"};
  c = ChooseChannel(only, customer, workspace, 10, rng);
  EXPECT_EQ(c->channel, "sms");
  EXPECT_NEAR(c->probability, 1, 1e-6);  // numerical integration
}

// ---- Send time ----

constexpr int kSunday = 6 * 24;

TEST(EngagementSendTime, ZonesAndHoursOfTheWeek) {
  LocalZone ny = LoadLocalZone("America/New_York");
  EXPECT_EQ(ny.name, "America/New_York");
  // Monday 2026-03-09 14:00 UTC is 10:00 EDT (DST began the day before), 09:00 EST a week before.
  EXPECT_EQ(HourOfWeek(Utc(2026, 3, 9, 14), ny.zone), 10);
  EXPECT_EQ(HourOfWeek(Utc(2026, 3, 2, 14), ny.zone), 9);
  EXPECT_EQ(HourOfWeek(Utc(2026, 3, 9, 14), absl::UTCTimeZone()), 14);
  EXPECT_EQ(HourOfWeek(Utc(2026, 3, 9, 3), ny.zone), kSunday + 23);  // still Sunday in New York
  for (std::string_view bad : {"", "Not/AZone", "/etc/passwd", "../../etc/passwd",
                               "America/../../etc/passwd", "localtime", "America/New York"}) {
    LocalZone z = LoadLocalZone(bad);
    EXPECT_EQ(z.name, "UTC") << bad;
    EXPECT_EQ(HourOfWeek(Utc(2026, 3, 9, 14), z.zone), 14) << bad;
  }
  Engagement e;
  e.RecordEngagement("email", Utc(2026, 3, 9, 14), ny.zone);
  EXPECT_EQ(e.hours[10], 1u);
  EXPECT_EQ(e.channels["email"].engaged, 1u);
  EXPECT_EQ(e.channels["email"].received, 1u);  // no delivery recorded: counts as received
  e.RecordDelivery("email");
  e.RecordDelivery("email");
  e.RecordEngagement("email", Utc(2026, 3, 9, 14), ny.zone);
  EXPECT_EQ(e.channels["email"].received, 3u);
  EXPECT_EQ(e.channels["email"].engaged, 2u);
  EXPECT_EQ(e.hours[10], 2u);
  EXPECT_EQ(e.TotalHourEngagements(), 2u);
}

TEST(EngagementSendTime, TheCustomersBestLocalHourAcrossTheDstBoundary) {
  LocalZone ny = LoadLocalZone("America/New_York");
  Engagement customer;
  // Sundays around 09:00 local, learned in winter (EST).
  for (int n = 0; n < 6; ++n) customer.RecordEngagement(Utc(2026, 3, 1, 14, 10 * n), ny.zone);
  customer.RecordEngagement(Utc(2026, 2, 24, 20), ny.zone);  // a Tuesday 15:00
  ASSERT_EQ(customer.hours[kSunday + 9], 6u);
  Engagement workspace = customer;
  std::mt19937_64 rng(4);
  const SendTimeOptions options{.exploration = 0};
  // Saturday 2026-03-07 12:00 EST: the best hour is Sunday 09:00 EDT, 13:00 UTC (not 14:00).
  const int64_t now = Utc(2026, 3, 7, 17);
  SendTime t = NextSendTime(now, ny, customer.hours, workspace.hours, options, rng);
  EXPECT_EQ(t.at_ms, Utc(2026, 3, 8, 13));
  EXPECT_EQ(t.hour_of_week, kSunday + 9);
  EXPECT_EQ(t.source, "customer");
  EXPECT_FALSE(t.explore);
  EXPECT_EQ(t.probability, 1);
  EXPECT_EQ(t.zone, "America/New_York");
  // Strictly after now: at the very start of that hour, or with a lead past it, a week later.
  EXPECT_EQ(
      NextSendTime(Utc(2026, 3, 8, 13), ny, customer.hours, workspace.hours, options, rng).at_ms,
      Utc(2026, 3, 15, 13));
  SendTimeOptions lead = options;
  lead.min_lead_ms = 3'600'000;
  EXPECT_EQ(
      NextSendTime(Utc(2026, 3, 8, 12, 30), ny, customer.hours, workspace.hours, lead, rng).at_ms,
      Utc(2026, 3, 15, 13));
  EXPECT_EQ(
      NextSendTime(Utc(2026, 3, 8, 11, 30), ny, customer.hours, workspace.hours, lead, rng).at_ms,
      Utc(2026, 3, 8, 13));
  // Unknown zone: UTC, so Sunday 09:00 UTC.
  t = NextSendTime(now, LoadLocalZone("Mars/Olympus"), customer.hours, workspace.hours, options,
                   rng);
  EXPECT_EQ(t.zone, "UTC");
  EXPECT_EQ(t.at_ms, Utc(2026, 3, 8, 9));
}

TEST(EngagementSendTime, AnHourSkippedByDstStartsAtTheTransition) {
  LocalZone ny = LoadLocalZone("America/New_York");
  HourHistogram customer{};
  customer[kSunday + 2] = 3;  // Sundays 02:00, which 2026-03-08 skips
  std::mt19937_64 rng(5);
  SendTime t = NextSendTime(Utc(2026, 3, 7, 17), ny, customer, customer, {.exploration = 0}, rng);
  EXPECT_EQ(t.hour_of_week, kSunday + 2);
  EXPECT_EQ(t.at_ms, Utc(2026, 3, 8, 7));  // 03:00 EDT
  // In autumn 01:00 repeats: the first one (EDT) is used.
  customer = {};
  customer[kSunday + 1] = 3;
  t = NextSendTime(Utc(2026, 10, 31, 17), ny, customer, customer, {.exploration = 0}, rng);
  EXPECT_EQ(t.at_ms, Utc(2026, 11, 1, 5));
}

TEST(EngagementSendTime, SmoothingFollowsTheWorkspaceUntilTheCustomerHasEnough) {
  LocalZone ny = LoadLocalZone("America/New_York");
  HourHistogram workspace{}, customer{};
  workspace[24 + 18] = 1000;  // Tuesdays 18:00
  workspace[5] = 10;
  customer[5] = 1;  // Mondays 05:00: 1 < 5 pseudo-engagements on Tuesday 18:00
  std::mt19937_64 rng(6);
  const int64_t now = Utc(2026, 3, 7, 17);
  const SendTimeOptions options{.exploration = 0};
  SendTime t = NextSendTime(now, ny, customer, workspace, options, rng);
  EXPECT_EQ(t.source, "customer");
  EXPECT_EQ(t.hour_of_week, 24 + 18);
  EXPECT_EQ(t.at_ms, Utc(2026, 3, 10, 22));
  customer[5] = 6;
  t = NextSendTime(now, ny, customer, workspace, options, rng);
  EXPECT_EQ(t.hour_of_week, 5);
  EXPECT_EQ(t.at_ms, Utc(2026, 3, 9, 9));
  // No customer history: the workspace's best hour.
  t = NextSendTime(now, ny, HourHistogram{}, workspace, options, rng);
  EXPECT_EQ(t.source, "workspace");
  EXPECT_EQ(t.hour_of_week, 24 + 18);
  // Ties: the soonest.
  workspace[24 + 18] = 10;
  t = NextSendTime(now, ny, HourHistogram{}, workspace, options, rng);
  EXPECT_EQ(t.hour_of_week, 5);
  t = NextSendTime(Utc(2026, 3, 9, 12), ny, HourHistogram{}, workspace, options, rng);
  EXPECT_EQ(t.hour_of_week, 24 + 18);
}

TEST(EngagementSendTime, WithoutAnyHistoryTheDefaultHourItsNextOccurrence) {
  LocalZone ny = LoadLocalZone("America/New_York");
  std::mt19937_64 rng(7);
  SendTimeOptions options{.exploration = 0};
  SendTime t = NextSendTime(Utc(2026, 3, 7, 17), ny, {}, {}, options, rng);  // Sat 12:00 EST
  EXPECT_EQ(t.source, "default");
  EXPECT_EQ(t.at_ms, Utc(2026, 3, 8, 14));  // Sunday 10:00 EDT
  EXPECT_EQ(t.hour_of_week, kSunday + 10);
  t = NextSendTime(Utc(2026, 3, 9, 13), ny, {}, {}, options, rng);  // Mon 09:00 EDT
  EXPECT_EQ(t.at_ms, Utc(2026, 3, 9, 14));
  options.default_hour = 20;
  t = NextSendTime(Utc(2026, 3, 9, 13), ny, {}, {}, options, rng);
  EXPECT_EQ(t.at_ms, Utc(2026, 3, 10, 0));
}

TEST(EngagementSendTime, ExplorationZeroNeverExploresOneAlwaysDoes) {
  LocalZone ny = LoadLocalZone("America/New_York");
  HourHistogram customer{};
  customer[kSunday + 9] = 4;
  std::mt19937_64 rng(8);
  const int64_t now = Utc(2026, 3, 7, 17);
  for (int n = 0; n < 300; ++n) {
    SendTime t = NextSendTime(now, ny, customer, customer, {.exploration = 0}, rng);
    ASSERT_FALSE(t.explore);
    ASSERT_EQ(t.at_ms, Utc(2026, 3, 8, 13));
  }
  std::set<int> hours;
  for (int n = 0; n < 2000; ++n) {
    SendTime t = NextSendTime(now, ny, customer, customer, {.exploration = 1}, rng);
    ASSERT_TRUE(t.explore);
    ASSERT_GT(t.at_ms, now);
    ASSERT_LE(t.at_ms, now + 7 * 86'400'000LL);
    // Sunday 02:00 is skipped on 2026-03-08: it starts at 03:00.
    ASSERT_EQ(HourOfWeek(t.at_ms, ny.zone),
              t.hour_of_week == kSunday + 2 ? kSunday + 3 : t.hour_of_week);
    EXPECT_NEAR(t.probability, 1.0 / 168, 1e-12);
    hours.insert(t.hour_of_week);
  }
  EXPECT_GT(hours.size(), 160u);
  int explored = 0;
  for (int n = 0; n < 2000; ++n) {
    explored += NextSendTime(now, ny, customer, customer, {}, rng).explore;
  }
  EXPECT_NEAR(explored / 2000.0, 0.1, 0.03);  // the default exploration
}

// ---- Variants ----

TEST(EngagementVariant, TheBetterVariantWinsMostDraws) {
  const std::vector<VariantCounts> variants = {{100, 10}, {100, 30}, {100, 12}};
  std::mt19937_64 rng(9);
  int wins = 0;
  for (int n = 0; n < 1000; ++n) {
    std::optional<VariantChoice> c = ChooseVariant(variants, rng);
    ASSERT_TRUE(c.has_value());
    wins += c->index == 1;
    EXPECT_EQ(c->probability, c->probabilities[c->index]);
  }
  EXPECT_GT(wins, 950);
  std::optional<VariantChoice> c = ChooseVariant(variants, rng);
  EXPECT_NEAR(c->means[1], 31.0 / 102, 1e-12);
  EXPECT_NEAR(c->probabilities[0] + c->probabilities[1] + c->probabilities[2], 1, 0.02);
  EXPECT_FALSE(ChooseVariant({}, rng).has_value());
  // Untried variants are equally likely.
  const std::vector<VariantCounts> fresh(4);
  int first = 0;
  for (int n = 0; n < 4000; ++n) first += ChooseVariant(fresh, rng)->index == 0;
  EXPECT_NEAR(first / 4000.0, 0.25, 0.03);
}

TEST(EngagementVariant, StatsCountByIdRoundTripAndRejectMalformed) {
  VariantStats s;
  s.RecordShown("winback", "a");
  s.RecordShown("winback", "a");
  s.RecordEngaged("winback", "a");
  s.RecordEngaged("winback", "b");  // never recorded as shown: counts as shown
  const std::vector<std::string> ids = {"b", "c", "a"};
  std::vector<VariantCounts> counts = s.CountsOf("winback", ids);
  ASSERT_EQ(counts.size(), 3u);
  EXPECT_EQ(counts[0].shown, 1u);
  EXPECT_EQ(counts[0].engaged, 1u);
  EXPECT_EQ(counts[1].shown, 0u);
  EXPECT_EQ(counts[2].shown, 2u);
  EXPECT_EQ(counts[2].engaged, 1u);
  EXPECT_EQ(s.CountsOf("other", ids).size(), 3u);
  EXPECT_EQ(s.Encode(), R"({"winback":{"a":[2,1],"b":[1,1]}})");
  std::optional<VariantStats> back = VariantStats::Decode(s.Encode());
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->Encode(), s.Encode());
  EXPECT_TRUE(VariantStats::Decode("{}").has_value());
  for (std::string_view bad :
       {"", "[]", R"({"a":[1,0]})", R"({"a":{"v":[1,2]}})", R"({"a":{"v":[-1,0]}})",
        R"({"a":{"v":[1.5,0]}})", R"({"a":{"v":[1]}})", R"({"a":{"v":[1,0,0]}})",
        R"({"a":{"v":[1,0],"v":[2,0]}})", R"({"a":{},"a":{}})"}) {
    EXPECT_FALSE(VariantStats::Decode(bad).has_value()) << bad;
  }
}

// ---- Serialisation ----

TEST(Engagement, RoundTripsAndRejectsMalformed) {
  LocalZone ny = LoadLocalZone("America/New_York");
  Engagement e;
  e.RecordDelivery("email");
  e.RecordDelivery("email");
  e.RecordDelivery("sms");
  e.RecordEngagement("email", Utc(2026, 3, 9, 14), ny.zone);
  e.RecordEngagement(Utc(2026, 3, 9, 3), ny.zone);
  EXPECT_EQ(e.Encode(), R"({"channels":{"email":[2,1],"sms":[1,0]},"hours":[[10,1],[167,1]]})");
  std::optional<Engagement> back = Engagement::Decode(e.Encode());
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->Encode(), e.Encode());
  EXPECT_EQ(back->hours, e.hours);
  EXPECT_EQ(back->channels["sms"].received, 1u);
  EXPECT_TRUE(Engagement::Decode(R"({"channels":{},"hours":[]})").has_value());
  for (std::string_view bad : {
           "",
           "{}",
           "not json",
           R"({"channels":{}})",
           R"({"hours":[]})",
           R"({"channels":[],"hours":[]})",
           R"({"channels":{"email":[1,2]},"hours":[]})",    // engaged > received
           R"({"channels":{"email":[-1,0]},"hours":[]})",   // negative
           R"({"channels":{"email":[1,-1]},"hours":[]})",   // negative
           R"({"channels":{"email":[1.5,0]},"hours":[]})",  // not an integer
           R"({"channels":{"email":[1]},"hours":[]})",
           R"({"channels":{"email":[1,0],"email":[2,0]},"hours":[]})",
           R"({"channels":{},"hours":[[168,1]]})",
           R"({"channels":{},"hours":[[-1,1]]})",
           R"({"channels":{},"hours":[[3,-1]]})",
           R"({"channels":{},"hours":[[3,1],[3,2]]})",
           R"({"channels":{},"hours":[[3]]})",
           R"({"channels":{},"hours":{"3":1}})",
       }) {
    EXPECT_FALSE(Engagement::Decode(bad).has_value()) << bad;
  }
}

}  // namespace
}  // namespace whisperer::decide
