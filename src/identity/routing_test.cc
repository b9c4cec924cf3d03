#include "identity/routing.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace whisperer::identity {
namespace {

TEST(RoutingTest, UserIdWinsOverAnonymousId) {
  api::Event e;
  e.anonymous_id = "anon";
  EXPECT_EQ(RoutingKey(e), "anon");
  e.user_id = "user";
  EXPECT_EQ(RoutingKey(e), "user");
}

TEST(RoutingTest, HashIsStable) {
  // Fixed values: a change here would move every profile to another shard.
  EXPECT_EQ(StableHash(""), 0xd725c98e9509182eULL);
  EXPECT_EQ(StableHash("user-1"), 0xd218ca9347661d56ULL);
  EXPECT_NE(StableHash("user-1"), StableHash("user-2"));
}

TEST(RoutingTest, SpreadsEvenly) {
  std::vector<int> counts(4);
  api::Event e;
  for (int i = 0; i < 40000; ++i) {
    e.user_id = "user-" + std::to_string(i);
    ++counts[ShardFor(e, 4)];
  }
  for (int c : counts) EXPECT_NEAR(c, 10000, 500);
}

}  // namespace
}  // namespace whisperer::identity
