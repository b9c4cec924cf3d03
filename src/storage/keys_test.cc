#include "storage/keys.h"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <utility>

#include "testing/old_formats.h"

namespace whisperer::storage {
namespace {

TEST(KeysTest, EventKeysSortByWorkspaceThenSequence) {
  EXPECT_LT(EventKey(1, 255), EventKey(1, 256));
  EXPECT_LT(EventKey(1, ~0ULL), EventKey(2, 0));
  EXPECT_EQ(EventKey(0x01020304, 0x05060708090a0b0c),
            std::string("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c", 12));
  EXPECT_EQ(EventKey(7, 9).substr(0, 4), WorkspacePrefix(7));
  EXPECT_EQ(EventKey(7, 9).size(), kEventKeyBytes);
}

TEST(KeysTest, EventKeyRoundTrips) {
  auto parts = DecodeEventKey(EventKey(42, 1234567890123));
  ASSERT_TRUE(parts);
  EXPECT_EQ(parts->workspace_id, 42u);
  EXPECT_EQ(parts->sequence, 1234567890123u);
  EXPECT_FALSE(DecodeEventKey("short"));
}

TEST(KeysTest, DedupeKeyAndEntry) {
  std::string key = DedupeKey(1, "m-1");
  EXPECT_EQ(key.size(), kDedupeKeyBytes);
  EXPECT_EQ(key.substr(0, 4), std::string("\0\0\0\1", 4));
  // Fixed bytes: the keys are on disk (and the identity graph's and suppression keys use the
  // same fingerprint), so a change to common/hash.h would forget every stored entry.
  EXPECT_EQ(key, std::string("\0\0\0\1\x87\x58\x64\x8c\x1b\x28\x5b\xb2"
                             "\x61\xa0\x4e\x1e\xce\xe3\x72\x92",
                             20));
  EXPECT_EQ(DedupeKey(1, "ajs-next-0f2c6e1e-1c4b-4f5e-9a52-3c4d2b8c1e77").substr(4),
            std::string("\xee\x24\x47\x9b\xe1\x94\xef\xd7\xf0\xf4\xf2\x3f\x06\x3a\xc3\x59", 16));
  EXPECT_NE(key, DedupeKey(2, "m-1"));
  EXPECT_NE(key, DedupeKey(1, "m-2"));
  // Ids sharing a long prefix still differ in each of the two hashes.
  EXPECT_NE(DedupeKey(1, "ajs-next-aaaaaaaa").substr(4, 8),
            DedupeKey(1, "ajs-next-aaaaaaab").substr(4, 8));
  EXPECT_NE(DedupeKey(1, "ajs-next-aaaaaaaa").substr(12, 8),
            DedupeKey(1, "ajs-next-aaaaaaab").substr(12, 8));
  std::string encoded = EncodeDedupeEntry(-5);
  EXPECT_EQ(encoded.size(), kDedupeEntryBytes);
  auto entry = DecodeDedupeEntry(encoded);
  ASSERT_TRUE(entry);
  EXPECT_EQ(entry->received_at_ms, -5);
  EXPECT_EQ(entry->message_id, "");
  // The old format still reads, with its messageId (a view into `old`).
  std::string old = testing::OldDedupeEntry(99, 1'700'000'000'000, "m-1");
  entry = DecodeDedupeEntry(old);
  ASSERT_TRUE(entry);
  EXPECT_EQ(entry->received_at_ms, 1'700'000'000'000);
  EXPECT_EQ(entry->message_id, "m-1");
  EXPECT_FALSE(DecodeDedupeEntry("bad"));
  EXPECT_FALSE(DecodeDedupeEntry(std::string(16, 'x')));  // old format without a messageId
}

TEST(KeysTest, IdentityFingerprintIsTheFingerprintOfTheKey) {
  const std::string long_value(300, 'v');
  for (uint32_t ws : {0u, 1u, 0x01020304u, 0xffffffffu}) {
    for (auto [type, value] : {std::pair<std::string_view, std::string_view>{"userId", "u-1"},
                               {"email", ""},
                               {"", "x"},
                               {"anonymousId", long_value}}) {
      EXPECT_EQ(IdentityFingerprint(ws, type, value), Fingerprint128(IdentityKey(ws, type, value)))
          << ws << " " << type << " " << value;
    }
  }
  EXPECT_FALSE(IdentityFingerprint(1, "userId", "u1") == IdentityFingerprint(2, "userId", "u1"));
  EXPECT_FALSE(IdentityFingerprint(1, "userId", "u1") == IdentityFingerprint(1, "email", "u1"));
}

TEST(KeysTest, DecisionKeysSortByDecisionWithinTheirPrefix) {
  EXPECT_LT(DecisionKey(1, 5), DecisionKey(1, 6));
  EXPECT_LT(DecisionKey(1, 0xffffffffffffull), DecisionKey(2, 0));
  EXPECT_EQ(DecisionOfKey(DecisionKey(3, 42)), 42u);
  EXPECT_EQ(DecisionOfKey(ProfileDecisionKey(3, 7, 42)), 42u);
  std::string p = ProfileDecisionPrefix(3, 7);
  EXPECT_EQ(ProfileDecisionKey(3, 7, 42).substr(0, p.size()), p);
  EXPECT_NE(RewardPrefix(3, 42, 1), RewardPrefix(3, 42, 2));
  const std::string all = RewardPrefix(3, 42);
  EXPECT_EQ(RewardPrefix(3, 42, 2).substr(0, all.size()), all);
  EXPECT_NE(BanditKey(3, "home"), BanditKey(4, "home"));
  // Pending approvals sort by expiry, then decision.
  EXPECT_LT(ApprovalDueKey(3, 1000, 9), ApprovalDueKey(3, 1001, 1));
  EXPECT_EQ(DecisionOfKey(ApprovalDueKey(3, 1000, 9)), 9u);
  EXPECT_EQ(DecisionOfKey(ApprovalKey(3, 9)), 9u);
  const std::string due = ApprovalDuePrefix(3);
  EXPECT_EQ(ApprovalDueKey(3, 1000, 9).substr(0, due.size()), due);
}

}  // namespace
}  // namespace whisperer::storage
