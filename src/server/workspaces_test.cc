#include "server/workspaces.h"

#include <gtest/gtest.h>

#include "common/status.h"
#include "common/strings.h"
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

TEST(WorkspacesTest, AJourneyVersionKeepsTheStagesItFirstRanWith) {
  testing::TempDir dir;
  auto store = Open(dir.str());
  auto config = [](int64_t version, std::vector<std::string> stages) {
    config::WorkspaceConfig w;
    w.name = "shop";
    config::JourneyConfig j;
    j.id = "onboarding";
    j.version = version;
    j.version_ref = {"w.yaml", 7, "workspaces[0].journeys[0].version"};
    j.goal = "false";
    for (std::string& id : stages) j.stages.push_back({std::move(id), "true", {}, 0, "", {}});
    w.journeys.push_back(std::move(j));
    config::Config c;
    c.workspaces.push_back(std::move(w));
    return c;
  };
  ASSERT_TRUE(ResolveWorkspaces(store.get(), config(1, {"signup", "setup"})).ok());
  ASSERT_TRUE(ResolveWorkspaces(store.get(), config(1, {"signup", "setup"})).ok());
  absl::StatusOr<std::vector<Workspace>> changed =
      ResolveWorkspaces(store.get(), config(1, {"signup", "invite"}));
  ASSERT_FALSE(changed.ok());
  EXPECT_EQ(ErrorCodeOf(changed.status()), "invalid_config");
  EXPECT_EQ(changed.status().message(),
            "w.yaml:7: workspaces[0].journeys[0].version: journey `onboarding` version 1 ran with "
            "the stages signup, setup and now has signup, invite: raise `version` when the stages "
            "change (customers in a stage that is gone then leave it, and each version keeps its "
            "own funnel)");
  // A raised version may have other stages; the earlier one keeps its own.
  ASSERT_TRUE(ResolveWorkspaces(store.get(), config(2, {"signup", "invite"})).ok());
  EXPECT_FALSE(ResolveWorkspaces(store.get(), config(2, {"signup"})).ok());
}

TEST(WorkspacesTest, KeyRingRefusesAKeyUsedTwice) {
  std::vector<Workspace> ws = {{"a", 1, {"same"}, {"a1"}}, {"b", 2, {"same"}, {"b1"}}};
  auto ring = BuildKeyRing(ws);
  ASSERT_FALSE(ring.ok());
  EXPECT_EQ(ErrorCodeOf(ring.status()), "invalid_config");
  // It names both workspaces and where the other copy may come from.
  EXPECT_EQ(ring.status().message(),
            "workspace 'b': a write key of it is already a key of workspace 'a' (configured, or "
            "generated for it and kept in the data directory): a key belongs to one workspace");
  ws[1].write_keys = {"other"};
  ring = BuildKeyRing(ws);
  ASSERT_TRUE(ring.ok());
  EXPECT_EQ(ring->Find("other")->workspace, "b");
  EXPECT_EQ(ring->Find("a1")->role, api::Role::kAdmin);
}

TEST(WorkspacesTest, ExampleConfigStatesTheProfileDefaults) {
  absl::StatusOr<config::Config> c =
      config::LoadConfigFile(std::string(WHISPERER_SOURCE_DIR) + "/whisperer.example.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->workspaces.size(), 1u);
  absl::StatusOr<state::WorkspaceProfileSettings> compiled = ProfileSettingsOf(c->workspaces[0]);
  ASSERT_TRUE(compiled.ok()) << compiled.status();
  const state::WorkspaceProfileSettings& example = *compiled;
  state::WorkspaceProfileSettings defaults;
  EXPECT_EQ(example.rules.blocked_values, defaults.rules.blocked_values);
  EXPECT_EQ(example.rules.limits, defaults.rules.limits);
  EXPECT_EQ(example.rules.priority, defaults.rules.priority);
  EXPECT_EQ(example.rules.external_ids, defaults.rules.external_ids);
  EXPECT_EQ(example.fold.session_timeout_ms, defaults.fold.session_timeout_ms);
  EXPECT_EQ(example.fold.consent, defaults.fold.consent);
  // The example journeys compile (the defaults have none).
  ASSERT_EQ(example.journeys.size(), 3u);
  EXPECT_EQ(example.journeys[0]->id, "mobile_short_video");
  EXPECT_EQ(example.journeys[0]->stages[0].timeout_ms, 3000);
}

TEST(WorkspacesTest, AJourneyConditionThatDoesNotCompileNamesFileLineAndColumn) {
  absl::StatusOr<config::Config> c = config::ParseConfig(R"(workspaces:
  - name: shop
    journeys:
      - id: j
        stages:
          - id: a
            entry: "event.name == 'x'"
        goal: "profile.orders.count > 'many'"
)",
                                                         "shop.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  absl::StatusOr<state::WorkspaceProfileSettings> s = ProfileSettingsOf(c->workspaces[0]);
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("shop.yaml:8: workspaces[0].journeys[0].goal: column 22: "
                                      "`>` needs numbers, got number and string"),
            std::string::npos)
      << s.status();
}

TEST(WorkspacesTest, ProfileSettingsFollowTheConfig) {
  config::WorkspaceConfig wc;
  wc.name = "shop";
  wc.identity.limits = std::map<std::string, size_t>{{"email", 2}};
  wc.identity.external_ids = {"crm_id"};
  wc.session_timeout_ms = 60'000;
  EXPECT_EQ(ProfileSettingsOf(wc)->rules.max_identifiers, 1000u);  // the default
  EXPECT_EQ(ProfileSettingsOf(wc)->rules.max_merges, 100u);
  wc.identity.max_identifiers = 50;
  wc.identity.max_merges = 7;
  state::WorkspaceProfileSettings s = *ProfileSettingsOf(wc);
  EXPECT_EQ(s.rules.max_identifiers, 50u);
  EXPECT_EQ(s.rules.max_merges, 7u);
  EXPECT_EQ(s.rules.limits.size(), 1u);  // the configured map replaces the default one
  EXPECT_EQ(s.rules.limits.at("email"), 2u);
  EXPECT_EQ(s.rules.external_ids, std::vector<std::string>{"crm_id"});
  EXPECT_EQ(s.fold.session_timeout_ms, 60'000);
  // No priority configured: the default, with the external id before the anonymousId.
  EXPECT_EQ(s.rules.priority,
            (std::vector<std::string>{"userId", "email", "phone", "crm_id", "anonymousId"}));
  EXPECT_TRUE(s.text_properties.empty());
  // A configured priority is kept as given: external ids it does not name rank after it.
  wc.identity.priority = std::vector<std::string>{"userId", "anonymousId"};
  s = *ProfileSettingsOf(wc);
  EXPECT_EQ(s.rules.priority, (std::vector<std::string>{"userId", "anonymousId"}));
  EXPECT_GT(s.rules.Rank("crm_id"), s.rules.Rank("anonymousId"));
  const state::ModelSettings defaults;
  EXPECT_EQ(s.models.clv_horizon_days, defaults.clv_horizon_days);
  EXPECT_EQ(s.models.clv_refit_every_ms, defaults.clv_refit_every_ms);
  EXPECT_EQ(s.models.clv_monthly_discount, defaults.clv_monthly_discount);
}

TEST(WorkspacesTest, ModelsClvAndTextPropertiesFollowTheConfig) {
  absl::StatusOr<config::Config> c = config::ParseConfig(R"(workspaces:
  - name: shop
    models:
      clv: {horizon: 180d, refit_every: 6h, monthly_discount: 0.05}
      text: {properties: [comment, review.body]}
)",
                                                         "shop.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  absl::StatusOr<state::WorkspaceProfileSettings> s = ProfileSettingsOf(c->workspaces[0]);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->models.clv_horizon_days, 180);
  EXPECT_EQ(s->models.clv_refit_every_ms, 6 * 3'600'000);
  EXPECT_EQ(s->models.clv_monthly_discount, 0.05);
  EXPECT_EQ(s->text_properties, (std::vector<std::string>{"comment", "review.body"}));
}

TEST(WorkspacesTest, ConsentCategoriesNameKnownPurposes) {
  absl::StatusOr<config::Config> c = config::ParseConfig(R"(workspaces:
  - name: shop
    consent:
      purposes: [profiling]
      categories: {C0004: [marketing_email, profiling]}
)",
                                                         "shop.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  absl::StatusOr<state::WorkspaceProfileSettings> s = ProfileSettingsOf(c->workspaces[0]);
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_TRUE(s->fold.consent.Known("profiling"));
  EXPECT_FALSE(s->fold.consent.Known("C0004"));  // a name events use, not a purpose
  std::vector<std::string> stated;
  EXPECT_TRUE(
      s->fold.consent.ForStated("C0004", [&](std::string_view p) { stated.emplace_back(p); }));
  EXPECT_EQ(stated, (std::vector<std::string>{"marketing_email", "profiling"}));

  const std::pair<const char*, const char*> bad[] = {
      {"categories: {C0004: [telepathy]}",
       "shop.yaml:4: workspaces[0].consent.categories.C0004: `telepathy` is not a consent purpose"},
      {"categories: {analytics: [analytics]}", "`analytics` is a consent purpose"},
  };
  for (const auto& [yaml, message] : bad) {
    c = config::ParseConfig(StrCat("workspaces:\n  - name: shop\n    consent:\n      ", yaml, "\n"),
                            "shop.yaml");
    ASSERT_TRUE(c.ok()) << c.status();
    s = ProfileSettingsOf(c->workspaces[0]);
    ASSERT_FALSE(s.ok()) << yaml;
    EXPECT_EQ(ErrorCodeOf(s.status()), "invalid_config");
    EXPECT_NE(std::string(s.status().message()).find(message), std::string::npos) << s.status();
  }
}

}  // namespace
}  // namespace whisperer::server
