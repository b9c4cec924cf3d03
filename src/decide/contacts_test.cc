#include "decide/contacts.h"

#include <gtest/gtest.h>

namespace whisperer::decide {
namespace {

TEST(ContactHistory, CountsWithinPeriodsTrimsAndRoundTrips) {
  ContactHistory h;
  h.contacts = {{"winback", "email", 100}, {"tips", "push", 200}, {"winback", "email", 300}};
  h.negatives = {{"winback", 150}, {"winback", 250}};
  EXPECT_EQ(h.OnChannel("email", 0), 2u);
  EXPECT_EQ(h.OnChannel("email", 200), 1u);
  EXPECT_EQ(h.OnChannel("sms", 0), 0u);
  EXPECT_EQ(h.OfAction("winback", 100), 2u);
  EXPECT_EQ(h.OfAction("tips", 201), 0u);
  EXPECT_EQ(h.NegativesOf("winback", 200), 1u);
  std::optional<ContactHistory> back = ContactHistory::Decode(h.Encode());
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->Encode(), h.Encode());
  h.Trim(/*now_ms=*/400, /*keep_ms=*/200);  // keeps 200 and later
  EXPECT_EQ(h.contacts.size(), 2u);
  EXPECT_EQ(h.negatives.size(), 1u);
  for (int i = 0; i < 600; ++i) h.contacts.push_back({"a", "web", 1000 + i});
  h.Trim(2000, 100'000);
  EXPECT_EQ(h.contacts.size(), ContactHistory::kMaxEntries);
  EXPECT_EQ(h.contacts.back().at_ms, 1599);  // the newest kept
  // The decision an entry came from is kept; a row written before it was reads as decision 0.
  h.contacts.back().decision = 0x2a;
  h.negatives.back().decision = 0x2b;
  back = ContactHistory::Decode(h.Encode());
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->contacts.back().decision, 0x2au);
  EXPECT_EQ(back->negatives.back().decision, 0x2bu);
  EXPECT_EQ(back->contacts.front().decision, 0u);
  back = ContactHistory::Decode(R"({"contacts":[["a","web",5]],"negatives":[["a",6]]})");
  ASSERT_TRUE(back.has_value());
  EXPECT_EQ(back->contacts[0].decision, 0u);
  EXPECT_EQ(back->negatives[0].at_ms, 6);
  EXPECT_FALSE(ContactHistory::Decode("{}").has_value());
  EXPECT_FALSE(ContactHistory::Decode(R"({"contacts":[["a"]],"negatives":[]})").has_value());
}

TEST(ContactHistory, AddsAMergedProfilesHistoryInTimeOrder) {
  ContactHistory survivor;
  survivor.contacts = {{"nag", "push", 100}, {"nag", "push", 300}};
  survivor.negatives = {{"nag", 250}};
  ContactHistory absorbed;
  absorbed.contacts = {{"nag", "push", 200}, {"mail", "email", 400}};
  absorbed.negatives = {{"nag", 50}};
  survivor.Add(absorbed);
  ASSERT_EQ(survivor.contacts.size(), 4u);
  EXPECT_EQ(survivor.OfAction("nag", 0), 3u);
  EXPECT_EQ(survivor.OnChannel("email", 0), 1u);
  EXPECT_EQ(survivor.NegativesOf("nag", 0), 2u);
  for (size_t i = 1; i < survivor.contacts.size(); ++i) {
    EXPECT_LT(survivor.contacts[i - 1].at_ms, survivor.contacts[i].at_ms);
  }
  EXPECT_EQ(survivor.negatives.front().at_ms, 50);
  // Trim drops the oldest first, whichever profile they came from.
  survivor.Trim(/*now_ms=*/400, /*keep_ms=*/150);
  EXPECT_EQ(survivor.contacts.front().at_ms, 300);
}

// A first-time visitor's contacts are written under each of their identifiers: read together,
// a contact of one decision counts once, however many rows hold it.
TEST(ContactHistory, AContactWrittenUnderSeveralKeysCountsOnce) {
  ContactHistory user;  // under the userId: decisions 1 (two slots) and 3
  user.contacts = {{"nag", "push", 100, 1}, {"mail", "email", 100, 1}, {"nag", "push", 300, 3}};
  user.negatives = {{"nag", 150, 1}};
  ContactHistory device;  // under the anonymousId: decisions 1, 2 (its own) and 3
  device.contacts = {{"nag", "push", 100, 1},
                     {"mail", "email", 100, 1},
                     {"nag", "push", 200, 2},
                     {"nag", "push", 300, 3}};
  device.negatives = {{"nag", 150, 1}, {"nag", 150, 1}};  // two negative rewards of one slot
  ContactHistory both;
  both.Add(user);
  both.Add(device);
  EXPECT_EQ(both.OfAction("nag", 0), 3u);
  EXPECT_EQ(both.OnChannel("email", 0), 1u);
  EXPECT_EQ(both.NegativesOf("nag", 0), 2u) << "matched one to one";
  ASSERT_EQ(both.contacts.size(), 4u);
  EXPECT_EQ(both.contacts[2].decision, 2u);  // time order
  // Entries of no known decision (rows written before decisions were kept) all count.
  ContactHistory old_user, old_device;
  old_user.contacts = {{"nag", "push", 100}};
  old_device.contacts = {{"nag", "push", 100}};
  old_user.Add(old_device);
  EXPECT_EQ(old_user.OfAction("nag", 0), 2u);
}

}  // namespace
}  // namespace whisperer::decide
