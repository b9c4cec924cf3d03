#include "server/workspaces.h"

#include <gtest/gtest.h>

#include "common/status.h"
#include "testing/temp_dir.h"

namespace whisperer::server {
namespace {

std::unique_ptr<storage::Store> Open(const std::string& path) {
  storage::Store::Options o;
  o.path = path;
  return *storage::Store::Open(o);
}

TEST(WorkspacesTest, DefaultWorkspaceGetsKeysKeptAcrossRestarts) {
  testing::TempDir dir;
  std::vector<Workspace> first;
  {
    auto store = Open(dir.str());
    first = *ResolveWorkspaces(store.get(), config::Config{});
  }
  ASSERT_EQ(first.size(), 1u);
  EXPECT_EQ(first[0].name, "default");
  EXPECT_EQ(first[0].id, 1u);
  ASSERT_EQ(first[0].write_keys.size(), 1u);
  EXPECT_EQ(first[0].write_keys[0].rfind("wk_", 0), 0u);
  EXPECT_EQ(first[0].write_keys[0].size(), 35u);
  EXPECT_EQ(first[0].admin_keys[0].rfind("ak_", 0), 0u);
  auto store = Open(dir.str());
  auto again = *ResolveWorkspaces(store.get(), config::Config{});
  EXPECT_EQ(again[0].write_keys, first[0].write_keys);
  EXPECT_EQ(again[0].admin_keys, first[0].admin_keys);
}

TEST(WorkspacesTest, IdsArePermanentAndConfiguredKeysUsedAsGiven) {
  testing::TempDir dir;
  auto store = Open(dir.str());
  config::Config c;
  c.workspaces = {{"shop", {"w1"}, {"a1"}}, {"app", {}, {}}};
  auto ws = *ResolveWorkspaces(store.get(), c);
  EXPECT_EQ(ws[0].id, 1u);
  EXPECT_EQ(ws[1].id, 2u);
  EXPECT_EQ(ws[0].write_keys, (std::vector<std::string>{"w1"}));
  // Reordered and extended: existing ids stay.
  c.workspaces = {{"new", {}, {}}, {"app", {}, {}}, {"shop", {"w1"}, {"a1"}}};
  ws = *ResolveWorkspaces(store.get(), c);
  EXPECT_EQ(ws[0].id, 3u);
  EXPECT_EQ(ws[1].id, 2u);
  EXPECT_EQ(ws[2].id, 1u);
  EXPECT_EQ(*FindWorkspaceId(*store, "app"), 2u);
  EXPECT_EQ(FindWorkspaceId(*store, "nope").status().code(), absl::StatusCode::kNotFound);
}

TEST(WorkspacesTest, KeyRingRefusesAKeyUsedTwice) {
  std::vector<Workspace> ws = {{"a", 1, {"same"}, {"a1"}}, {"b", 2, {"same"}, {"b1"}}};
  auto ring = BuildKeyRing(ws);
  ASSERT_FALSE(ring.ok());
  EXPECT_EQ(ErrorCodeOf(ring.status()), "invalid_config");
  ws[1].write_keys = {"other"};
  ring = BuildKeyRing(ws);
  ASSERT_TRUE(ring.ok());
  EXPECT_EQ(ring->Find("other")->workspace, "b");
  EXPECT_EQ(ring->Find("a1")->role, api::Role::kAdmin);
}

}  // namespace
}  // namespace whisperer::server
