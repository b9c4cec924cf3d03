#include "storage/keys.h"

#include <gtest/gtest.h>

namespace whisperer::storage {
namespace {

TEST(KeysTest, EventKeysSortByWorkspaceThenSequence) {
  EXPECT_LT(EventKey(1, 255), EventKey(1, 256));
  EXPECT_LT(EventKey(1, ~0ULL), EventKey(2, 0));
  EXPECT_EQ(EventKey(0x01020304, 0x05060708090a0b0c),
            std::string("\x01\x02\x03\x04\x05\x06\x07\x08\x09\x0a\x0b\x0c", 12));
  EXPECT_EQ(EventKey(7, 9).substr(0, 4), WorkspacePrefix(7));
}

TEST(KeysTest, EventKeyRoundTrips) {
  auto parts = DecodeEventKey(EventKey(42, 1234567890123));
  ASSERT_TRUE(parts);
  EXPECT_EQ(parts->workspace_id, 42u);
  EXPECT_EQ(parts->sequence, 1234567890123u);
  EXPECT_FALSE(DecodeEventKey("short"));
}

TEST(KeysTest, DedupeKeyAndEntry) {
  EXPECT_EQ(DedupeKey(1, "m-1"), std::string("\0\0\0\1m-1", 7));
  auto entry = DecodeDedupeEntry(EncodeDedupeEntry({99, -5}));
  ASSERT_TRUE(entry);
  EXPECT_EQ(entry->sequence, 99u);
  EXPECT_EQ(entry->received_at_ms, -5);
  EXPECT_FALSE(DecodeDedupeEntry("bad"));
}

}  // namespace
}  // namespace whisperer::storage
