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

}  // namespace
}  // namespace whisperer::decide
