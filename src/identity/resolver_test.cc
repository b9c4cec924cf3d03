#include "identity/resolver.h"

#include <gtest/gtest.h>

#include <map>

namespace whisperer::identity {
namespace {

Identifier U(std::string v) { return {"userId", std::move(v)}; }
Identifier A(std::string v) { return {"anonymousId", std::move(v)}; }
Identifier E(std::string v) { return {"email", std::move(v)}; }

TEST(NormalizeIdentifier, EmailsPhonesAndTrimming) {
  EXPECT_EQ(NormalizeIdentifier("email", "  Ada@Example.COM "), "ada@example.com");
  EXPECT_EQ(NormalizeIdentifier("phone", "+1 (555) 010-9999"), "+15550109999");
  EXPECT_EQ(NormalizeIdentifier("phone", "00 44 20 7946"), "0044207946");
  EXPECT_EQ(NormalizeIdentifier("phone", "n/a"), "");
  // An extension is not part of the number; only zeros name no one.
  EXPECT_EQ(NormalizeIdentifier("phone", "+1 555 010 9999 ext. 12"), "+15550109999");
  EXPECT_EQ(NormalizeIdentifier("phone", "555-0109 x7"), "5550109");
  EXPECT_EQ(NormalizeIdentifier("phone", "+44 20 7946 0000#3"), "+442079460000");
  EXPECT_EQ(NormalizeIdentifier("phone", "tel:+15550109999"), "+15550109999");
  EXPECT_EQ(NormalizeIdentifier("phone", "+(000)"), "");
  EXPECT_EQ(NormalizeIdentifier("phone", "000 000"), "");
  EXPECT_EQ(NormalizeIdentifier("userId", " U-1 "), "U-1");  // case kept: ids are opaque
}

TEST(PrepareIdentifiers, DropsBlockedAndDuplicatesAndSortsByPriority) {
  IdentityRules rules;
  std::vector<Identifier> ids = {
      A("a1"),        U("null"),      E("TEST@test.com"),  U("u1"),
      E("Ada@x.io "), A("a1"),        A("undefined"),      U("0"),
      U(""),          A("Anonymous"), {"phone", "+1 555"}, {"phone", " -1 "}};
  std::vector<Identifier> got = PrepareIdentifiers(ids, rules);
  // The phone "-1" is blocked as sent: normalized, it would be the number "1".
  std::vector<Identifier> want = {U("u1"), E("ada@x.io"), {"phone", "+1555"}, A("a1")};
  EXPECT_EQ(got, want);
}

TEST(PrepareIdentifiers, ConfiguredBlockedValuesAndExternalIdRank) {
  IdentityRules rules;
  rules.blocked_values = {"guest"};
  rules.external_ids = {"crm_id"};
  rules.priority = {"crm_id", "userId", "anonymousId"};
  std::vector<Identifier> got =
      PrepareIdentifiers({A("a"), U("GUEST"), {"crm_id", "c9"}, U("null")}, rules);
  // "null" is only blocked by default; this workspace blocks "guest" instead.
  std::vector<Identifier> want = {{"crm_id", "c9"}, U("null"), A("a")};
  EXPECT_EQ(got, want);
  // A value with nothing left after normalization names no one even when "" is not blocked.
  got = PrepareIdentifiers({U("   "), E("  "), {"phone", "+000-000"}, A("a")}, rules);
  EXPECT_EQ(got, (std::vector<Identifier>{A("a")}));
}

// A small graph for the table: profile id -> identifiers and flags.
struct Graph {
  std::map<uint64_t, std::vector<Identifier>> ids = {};
  std::map<uint64_t, bool> denied = {};
  std::map<uint64_t, std::vector<uint64_t>> separated = {};
  std::map<uint64_t, std::vector<uint64_t>> absorbed = {};

  uint64_t OwnerOf(const Identifier& id) const {
    for (const auto& [p, list] : ids) {
      for (const Identifier& x : list) {
        if (x == id) return p;
      }
    }
    return 0;
  }
  ResolvePlan Run(std::vector<Identifier> event, const IdentityRules& rules = {}) const {
    std::vector<Identifier> prepared = PrepareIdentifiers(std::move(event), rules);
    std::vector<uint64_t> owners;
    for (const Identifier& id : prepared) owners.push_back(OwnerOf(id));
    return Resolve(
        prepared, owners,
        [this](uint64_t p) {
          ProfileFacts f;
          f.identifiers = &ids.at(p);
          auto d = denied.find(p);
          f.cross_device_denied = d != denied.end() && d->second;
          auto s = separated.find(p);
          f.separated = s == separated.end() ? nullptr : &s->second;
          auto m = absorbed.find(p);
          f.absorbed = m == absorbed.end() ? nullptr : &m->second;
          return f;
        },
        rules);
  }
};

struct Case {
  const char* name;
  Graph graph;
  std::vector<Identifier> event;
  uint64_t target;
  std::vector<uint64_t> merge;
  std::vector<MergeRefusal> refused;
  std::vector<Identifier> link;
  std::vector<Identifier> unlinked;
};

TEST(Resolve, Table) {
  const std::vector<Case> cases = {
      {"all new: a new profile gets every identifier",
       {},
       {A("a1"), U("u1")},
       0,
       {},
       {},
       {U("u1"), A("a1")},
       {}},
      {"known anonymousId: userId joins its profile",
       {{{1, {A("a1")}}}},
       {A("a1"), U("u1")},
       1,
       {},
       {},
       {U("u1")},
       {}},
      {"identify links two existing profiles: the userId's profile survives",
       {{{1, {A("a1")}}, {2, {U("u1")}}}},
       {A("a1"), U("u1")},
       2,
       {1},
       {},
       {},
       {}},
      {"two userIds are never merged (limit 1)",
       {{{1, {U("u1"), A("a1")}}, {2, {U("u2")}}}},
       {U("u2"), A("a1")},
       2,
       {},
       {MergeRefusal::kLimit},
       {},
       {}},
      {"new userId on a device of another user: new profile, device not taken",
       {{{1, {U("u1"), A("a1")}}}},
       {U("u2"), A("a1")},
       0,
       {},
       {MergeRefusal::kLimit},
       {U("u2")},
       {}},
      {"a new email joins the profile of a known device",
       {{{1, {U("u1"), A("a1")}}}},
       {A("a1"), E("x@y.z")},
       1,
       {},
       {},
       {E("x@y.z")},
       {}},
      {"chain: email links a third profile too",
       {{{1, {A("a1")}}, {2, {U("u1")}}, {3, {E("e@x.io"), A("a3")}}}},
       {A("a1"), U("u1"), E("e@x.io")},
       2,
       {3, 1},
       {},
       {},
       {}},
      {"cross_device denied on either side refuses the merge",
       {{{1, {A("a1")}}, {2, {U("u1")}}}, {{1, true}}},
       {A("a1"), U("u1")},
       2,
       {},
       {MergeRefusal::kConsent},
       {},
       {}},
      {"unmerged profiles stay apart",
       {{{1, {A("a1")}}, {2, {U("u1")}}}, {}, {{2, {1}}}},
       {A("a1"), U("u1")},
       2,
       {},
       {MergeRefusal::kSeparated},
       {},
       {}},
      // 3 was split from 4; since, 3 was merged into 2 (whose separated list has 4 now) and 4
      // into 1: 1 and 2 hold the two halves and stay apart.
      {"unmerged profiles stay apart after each was merged into another",
       {{{1, {A("a1")}}, {2, {U("u1")}}}, {}, {{2, {4}}, {1, {3}}}, {{1, {4}}, {2, {3}}}},
       {A("a1"), U("u1")},
       2,
       {},
       {MergeRefusal::kSeparated},
       {},
       {}},
      {"blocked identifiers never link",
       {{{1, {A("a1")}}}},
       {A("a1"), U("undefined")},
       1,
       {},
       {},
       {},
       {}},
      {"same profile twice is no merge",
       {{{1, {A("a1"), U("u1")}}}},
       {A("a1"), U("u1")},
       1,
       {},
       {},
       {},
       {}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    ResolvePlan plan = c.graph.Run(c.event);
    EXPECT_EQ(plan.target, c.target);
    EXPECT_EQ(plan.merge, c.merge);
    std::vector<MergeRefusal> refused;
    for (const auto& r : plan.refused) refused.push_back(r.reason);
    EXPECT_EQ(refused, c.refused);
    EXPECT_EQ(plan.link, c.link);
    EXPECT_EQ(plan.unlinked, c.unlinked);
  }
}

TEST(Resolve, LimitOnNewIdentifiersOfAType) {
  IdentityRules rules;
  rules.limits = {{"userId", 1}, {"email", 1}};
  Graph g{{{1, {U("u1"), E("old@x.io")}}}};
  ResolvePlan plan = g.Run({U("u1"), E("new@x.io")}, rules);
  EXPECT_EQ(plan.target, 1u);
  EXPECT_TRUE(plan.link.empty());
  ASSERT_EQ(plan.unlinked.size(), 1u);
  EXPECT_EQ(plan.unlinked[0], E("new@x.io"));
}

TEST(Resolve, LimitAboveOneCountsTheDistinctValuesOfBothSides) {
  IdentityRules rules;
  rules.limits = {{"userId", 1}, {"email", 2}};
  Graph g{
      {{1, {U("u1"), E("e1@x.io")}}, {2, {A("a2"), E("e2@x.io")}}, {3, {A("a3"), E("e3@x.io")}}}};
  // Profile 2 brings the second email; profile 3 would bring a third.
  ResolvePlan plan = g.Run({U("u1"), A("a2"), A("a3")}, rules);
  EXPECT_EQ(plan.target, 1u);
  EXPECT_EQ(plan.merge, std::vector<uint64_t>{2});
  ASSERT_EQ(plan.refused.size(), 1u);
  EXPECT_EQ(plan.refused[0].profile, 3u);
  EXPECT_EQ(plan.refused[0].reason, MergeRefusal::kLimit);
  // A new email on top of two held ones stays unlinked; one already held is no new value.
  Graph full{{{1, {U("u1"), E("e1@x.io"), E("e2@x.io")}}}};
  plan = full.Run({U("u1"), E("e2@x.io"), E("e3@x.io")}, rules);
  EXPECT_EQ(plan.target, 1u);
  EXPECT_TRUE(plan.link.empty());
  EXPECT_EQ(plan.unlinked, std::vector<Identifier>{E("e3@x.io")});
}

TEST(Resolve, MaxIdentifiersCapsAProfileOfAllTypesTogether) {
  IdentityRules rules;
  rules.max_identifiers = 4;
  Graph g{{{1, {U("u1"), A("a1"), A("a2")}}, {2, {A("b1"), A("b2")}}, {3, {A("c1")}}}};
  // One more fits; the event's weakest new identifiers past the cap stay unlinked, and the
  // event still belongs to the profile.
  ResolvePlan plan = g.Run({U("u1"), E("e@x.io"), A("a3")}, rules);
  EXPECT_EQ(plan.target, 1u);
  EXPECT_EQ(plan.link, std::vector<Identifier>{E("e@x.io")});
  EXPECT_EQ(plan.unlinked, std::vector<Identifier>{A("a3")});
  // A merge that would take the profile past the cap is refused; one that fits is made.
  plan = g.Run({U("u1"), A("b1"), A("c1")}, rules);
  EXPECT_EQ(plan.target, 1u);
  EXPECT_EQ(plan.merge, std::vector<uint64_t>{3});
  ASSERT_EQ(plan.refused.size(), 1u);
  EXPECT_EQ(plan.refused[0].profile, 2u);
  EXPECT_EQ(plan.refused[0].reason, MergeRefusal::kLimit);
  // New identifiers stronger than the profile's own are linked before the profile is known:
  // the existing profile is still the event's, and what passes the cap stays unlinked.
  rules.max_identifiers = 3;
  plan = g.Run({E("e@x.io"), {"phone", "+1555"}, A("a1")}, rules);
  EXPECT_EQ(plan.target, 1u);
  EXPECT_TRUE(plan.link.empty());
  EXPECT_EQ(plan.unlinked, (std::vector<Identifier>{E("e@x.io"), {"phone", "+1555"}}));
  EXPECT_TRUE(plan.refused.empty());
}

TEST(Resolve, MaxMergesCountsTheProfilesMergedIntoEachSide) {
  IdentityRules rules;
  rules.max_merges = 3;
  Graph g{{{1, {U("u1")}}, {2, {A("b")}}, {3, {A("c")}}, {4, {A("d")}}}};
  g.absorbed[1] = {10};      // the target holds one merged profile
  g.absorbed[3] = {30, 31};  // merging 3 would bring three
  ResolvePlan plan = g.Run({U("u1"), A("b"), A("c"), A("d")}, rules);
  EXPECT_EQ(plan.target, 1u);
  EXPECT_EQ(plan.merge, (std::vector<uint64_t>{2, 4}));  // 1 + 1 + 1 = 3
  ASSERT_EQ(plan.refused.size(), 1u);
  EXPECT_EQ(plan.refused[0].profile, 3u);
  EXPECT_EQ(plan.refused[0].reason, MergeRefusal::kLimit);
  // At the cap, no merge at all; the event still belongs to its profile.
  g.absorbed[1] = {10, 11, 12};
  plan = g.Run({U("u1"), A("b")}, rules);
  EXPECT_EQ(plan.target, 1u);
  EXPECT_TRUE(plan.merge.empty());
  ASSERT_EQ(plan.refused.size(), 1u);
}

TEST(Resolve, AProfileOfThousandsOfIdentifiersCountsAgainstTheCap) {
  IdentityRules rules;
  rules.max_identifiers = 100'000;
  Graph g;
  std::vector<Identifier>& ids = g.ids[1];
  ids.push_back(U("u1"));
  for (int i = 0; i < 20'000; ++i) ids.push_back(A("a" + std::to_string(i)));
  ResolvePlan plan = g.Run({U("u1"), A("new")}, rules);
  EXPECT_EQ(plan.target, 1u);
  EXPECT_EQ(plan.link, std::vector<Identifier>{A("new")});
  rules.max_identifiers = 20'001;  // exactly full: the new one stays out
  plan = g.Run({U("u1"), A("new")}, rules);
  EXPECT_EQ(plan.unlinked, std::vector<Identifier>{A("new")});
}

TEST(Resolve, NoLimitsMergesTwoUserIds) {
  IdentityRules rules;
  rules.limits.clear();
  Graph g{{{1, {U("u1")}}, {2, {U("u2")}}}};
  ResolvePlan plan = g.Run({U("u1"), U("u2")}, rules);
  EXPECT_EQ(plan.target, 1u);
  EXPECT_EQ(plan.merge, std::vector<uint64_t>{2});
}

TEST(Resolve, PriorityDecidesTheSurvivor) {
  IdentityRules rules;
  rules.priority = {"email", "userId", "anonymousId"};
  Graph g{{{1, {U("u1")}}, {2, {E("e@x.io")}}}};
  ResolvePlan plan = g.Run({U("u1"), E("e@x.io")}, rules);
  EXPECT_EQ(plan.target, 2u);
  EXPECT_EQ(plan.merge, std::vector<uint64_t>{1});
}

}  // namespace
}  // namespace whisperer::identity
