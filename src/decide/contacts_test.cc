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

}  // namespace
}  // namespace whisperer::decide
