// Workspaces: gives every configured workspace a permanent numeric id (the prefix of its keys in
// the store) and its API keys.
//
// Ids are assigned once, in the order workspaces are first seen, and kept in the store's meta
// column family (`workspace/<name>`), so renaming nothing and adding workspaces never moves
// data. A workspace configured without keys gets one write key and one admin key, generated on
// first start and kept (`keys/<name>/write`, `keys/<name>/admin`) so they stay the same across
// restarts; configured keys (file or WHISPERER_WRITE_KEY / WHISPERER_ADMIN_KEY) are used as
// given and not stored.
// Thread-safety: called once at start-up.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "api/auth.h"
#include "config/config.h"
#include "decide/catalog.h"
#include "state/experience.h"
#include "state/profiles.h"
#include "storage/store.h"

namespace whisperer::server {

struct Workspace {
  std::string name;
  uint32_t id = 0;
  std::vector<std::string> write_keys;
  std::vector<std::string> admin_keys;
  state::WorkspaceProfileSettings profiles = {};
  // POST /v1/experience: the adaptation rules compiled, and when triggers may be shown.
  std::shared_ptr<const state::AdaptationSet> adaptations = {};
  config::TriggerConfig triggers = {};
  // POST /v1/decide: the action catalog and decision points compiled; null without a
  // `decisions` block.
  std::shared_ptr<const decide::Catalog> decisions = {};
  // What `decisions` was compiled from, and the workspace's own consent purposes: actions
  // edited through /v1/actions are compiled with them.
  config::DecisionsConfig decisions_config = {};
  std::vector<std::string> consent_purposes = {};
  // What its conditions may name: its journeys and their stages, personas, consent purposes.
  state::ConditionNames condition_names = {};
};

// The profile settings a workspace's config describes (unset values keep the defaults), with
// its journeys compiled. InvalidArgument `invalid_config` naming file, line and column when a
// condition does not compile.
absl::StatusOr<state::WorkspaceProfileSettings> ProfileSettingsOf(
    const config::WorkspaceConfig& config);

// The configured workspaces (or `default` when none is configured), compiled (settings,
// journeys, personas, adaptations, the action catalog): all a config can get wrong, found
// before anything is opened. Their ids and generated keys are not assigned yet.
absl::StatusOr<std::vector<Workspace>> CompileWorkspaces(const config::Config& config);

// Gives each compiled workspace its id, and a generated key of each kind it has none of, from
// the store (created and kept there on first use). Refuses (invalid_config, naming the journey's
// `version`) a journey version whose stages are not those it first ran with here.
absl::Status AssignFromStore(storage::Store* store, std::vector<Workspace>* workspaces);

// CompileWorkspaces then AssignFromStore.
absl::StatusOr<std::vector<Workspace>> ResolveWorkspaces(storage::Store* store,
                                                         const config::Config& config);

// The id of an existing workspace; NotFound `unknown_workspace` when it never received an id.
absl::StatusOr<uint32_t> FindWorkspaceId(const storage::Store& store, const std::string& name);
// NotFound `unknown_workspace` unless one of `workspaces` is named `name`.
absl::Status CheckWorkspaceName(const std::vector<Workspace>& workspaces, const std::string& name);

// `data_dir` opened read-only as a follower (a server may be running on it), caught up, and the
// id of its workspace `name` (the offline commands: export, personas discover).
struct WorkspaceReader {
  std::unique_ptr<storage::Store> store;
  uint32_t workspace_id = 0;
};
absl::StatusOr<WorkspaceReader> OpenWorkspaceReader(const std::string& data_dir,
                                                    const std::string& name);

absl::StatusOr<api::KeyRing> BuildKeyRing(const std::vector<Workspace>& workspaces);

}  // namespace whisperer::server
