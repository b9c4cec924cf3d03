#include "server/workspaces.h"

#include <algorithm>
#include <charconv>

#include "common/ids.h"
#include "common/status.h"
#include "common/strings.h"

namespace whisperer::server {
namespace {

constexpr std::string_view kNextIdKey = "next_workspace_id";

std::optional<uint32_t> ParseId(const std::string& s) {
  uint32_t v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
  return v;
}

absl::StatusOr<uint32_t> IdFor(storage::Store* store, const std::string& name) {
  absl::StatusOr<uint32_t> existing = FindWorkspaceId(*store, name);
  if (existing.ok() || existing.status().code() != absl::StatusCode::kNotFound) return existing;
  absl::StatusOr<std::optional<std::string>> next = store->GetMeta(kNextIdKey);
  if (!next.ok()) return next.status();
  uint32_t id = 1;
  if (next->has_value()) {
    std::optional<uint32_t> parsed = ParseId(**next);
    if (!parsed) return absl::DataLossError("meta next_workspace_id is corrupt");
    id = *parsed;
  }
  if (auto s = store->PutMeta(kNextIdKey, std::to_string(id + 1)); !s.ok()) return s;
  if (auto s = store->PutMeta(StrCat("workspace/", name), std::to_string(id)); !s.ok()) {
    return s;
  }
  return id;
}

// The stored generated key of `kind`, generating and storing it the first time.
absl::StatusOr<std::string> GeneratedKey(storage::Store* store, const std::string& workspace,
                                         std::string_view kind, std::string_view prefix) {
  std::string meta_key = StrCat("keys/", workspace, "/", kind);
  absl::StatusOr<std::optional<std::string>> stored = store->GetMeta(meta_key);
  if (!stored.ok()) return stored.status();
  if (stored->has_value()) return **stored;
  std::string key = NewSecretKey(prefix);
  if (auto s = store->PutMeta(meta_key, key); !s.ok()) return s;
  return key;
}

absl::Status UnknownWorkspace(const std::string& name) {
  return MakeError(absl::StatusCode::kNotFound, "unknown_workspace",
                   StrCat("there is no workspace named '", name,
                          "': name one of the config's workspaces (`default` when the config "
                          "declares none)"));
}

absl::Status NoStoredWorkspace(const std::string& name) {
  return MakeError(absl::StatusCode::kNotFound, "unknown_workspace",
                   StrCat("the data directory has no workspace named '", name,
                          "': a workspace is kept there once a server or an import has run with "
                          "it in the config (`default` when the config declares none)"));
}

}  // namespace

absl::Status CheckWorkspaceName(const std::vector<Workspace>& workspaces, const std::string& name) {
  for (const Workspace& w : workspaces) {
    if (w.name == name) return absl::OkStatus();
  }
  return UnknownWorkspace(name);
}

absl::StatusOr<uint32_t> FindWorkspaceId(const storage::Store& store, const std::string& name) {
  absl::StatusOr<std::optional<std::string>> stored = store.GetMeta(StrCat("workspace/", name));
  if (!stored.ok()) return stored.status();
  if (!stored->has_value()) return NoStoredWorkspace(name);
  std::optional<uint32_t> id = ParseId(**stored);
  if (!id) return absl::DataLossError(StrCat("meta workspace/", name, " is corrupt"));
  return *id;
}

absl::StatusOr<WorkspaceReader> OpenWorkspaceReader(const std::string& data_dir,
                                                    const std::string& name) {
  absl::StatusOr<std::unique_ptr<storage::Store>> store = storage::Store::OpenFollower(data_dir);
  if (!store.ok()) return store.status();
  if (auto s = (*store)->CatchUp(); !s.ok()) return s;
  absl::StatusOr<uint32_t> ws = FindWorkspaceId(**store, name);
  if (!ws.ok()) return ws.status();
  return WorkspaceReader{*std::move(store), *ws};
}

namespace {

// What the conditions of the workspace `config` describes may name (state/conditions.h), with
// its consent purposes `consent`.
state::ConditionNames NamesOf(const config::WorkspaceConfig& config,
                              const state::ConsentPurposes& consent) {
  state::ConditionNames names;
  for (const config::JourneyConfig& j : config.journeys) {
    std::vector<std::string>& stages = names.journeys[j.id];
    for (const config::JourneyConfig::Stage& st : j.stages) stages.push_back(st.id);
  }
  for (const config::PersonaConfig& p : config.personas) names.personas.insert(p.id);
  names.consent = consent;
  return names;
}

}  // namespace

absl::StatusOr<state::WorkspaceProfileSettings> ProfileSettingsOf(
    const config::WorkspaceConfig& config) {
  state::WorkspaceProfileSettings out;
  identity::IdentityRules& rules = out.rules;
  if (config.identity.blocked_values) rules.blocked_values = *config.identity.blocked_values;
  if (config.identity.limits) {
    rules.limits.clear();
    for (const auto& [type, limit] : *config.identity.limits) rules.limits[type] = limit;
  }
  if (config.identity.max_identifiers) rules.max_identifiers = *config.identity.max_identifiers;
  if (config.identity.max_merges) rules.max_merges = *config.identity.max_merges;
  rules.external_ids = config.identity.external_ids;
  if (config.identity.priority) {
    rules.priority = *config.identity.priority;
  } else {
    // By default external ids (a CRM's, say) rank after phone and before the anonymousId, which
    // names one browser only.
    auto anonymous =
        std::find(rules.priority.begin(), rules.priority.end(), identity::kAnonymousId);
    rules.priority.insert(anonymous, rules.external_ids.begin(), rules.external_ids.end());
  }
  out.fold.session_timeout_ms = config.session_timeout_ms;
  for (const std::string& purpose : config.consent_purposes) out.fold.consent.AddPurpose(purpose);
  for (const config::WorkspaceConfig::ConsentCategory& c : config.consent_categories) {
    for (const std::string& purpose : c.purposes) {
      if (!out.fold.consent.Known(purpose)) {
        return MakeError(absl::StatusCode::kInvalidArgument, "invalid_config",
                         StrCat(c.ref.Describe(), ": `", purpose,
                                "` is not a consent purpose of this workspace (standard ones, or "
                                "add it under consent.purposes)"),
                         c.ref.path);
      }
    }
    if (out.fold.consent.Known(c.name)) {
      return MakeError(absl::StatusCode::kInvalidArgument, "invalid_config",
                       StrCat(c.ref.Describe(), ": `", c.name,
                              "` is a consent purpose; a category needs another name"),
                       c.ref.path);
    }
    out.fold.consent.AddCategory(c.name, c.purposes);
  }
  const state::ConditionNames names = NamesOf(config, out.fold.consent);
  for (const config::JourneyConfig& jc : config.journeys) {
    state::JourneySpec spec;
    spec.id = jc.id;
    spec.version = jc.version;
    spec.version_where = jc.version_ref.Describe();
    spec.reentry = jc.reentry;
    spec.goal = jc.goal;
    spec.goal_where = jc.goal_ref.Describe();
    spec.exit = jc.exit;
    spec.exit_where = jc.exit_ref.Describe();
    for (const config::JourneyConfig::Stage& st : jc.stages) {
      spec.stages.push_back(
          {st.id, st.entry, st.entry_ref.Describe(), st.timeout_ms, st.timeout_to});
    }
    absl::StatusOr<std::shared_ptr<const state::Journey>> journey =
        state::CompileJourney(spec, &names);
    if (!journey.ok()) return journey.status();
    out.journeys.push_back(*std::move(journey));
  }
  if (!config.personas.empty()) {
    std::vector<state::PersonaSpec> specs;
    for (const config::PersonaConfig& pc : config.personas) {
      state::PersonaSpec& spec = specs.emplace_back();
      spec.id = pc.id;
      spec.min_confidence = pc.min_confidence;
      for (const config::PersonaConfig::Rule& rule : pc.rules) {
        spec.rules.push_back({rule.when, rule.when_ref.Describe(), rule.weight});
      }
    }
    absl::StatusOr<std::shared_ptr<const state::PersonaSet>> personas =
        state::CompilePersonas(specs, &names);
    if (!personas.ok()) return personas.status();
    out.personas = *std::move(personas);
  }
  const config::ModelsConfig& m = config.models;
  state::ModelSettings& models = out.models;
  models.enabled = m.enabled;
  models.goal_event = m.conversion_goal;
  models.conversion_window_ms = m.conversion_window_ms;
  models.churn_inactive_ms = m.churn_inactive_ms;
  models.cancel_event = m.churn_cancel_event;
  models.churn_high = m.churn_high;
  models.churn_medium = m.churn_medium;
  models.traits = m.traits;
  models.sample_every_ms = m.sample_every_ms;
  models.max_pending = m.max_pending;
  models.version_every = m.version_every;
  models.ftrl.alpha = m.alpha;
  models.ftrl.l1 = m.l1;
  models.ftrl.l2 = m.l2;
  models.ftrl.bits = m.bits;
  models.clv_refit_every_ms = m.clv_refit_every_ms;
  models.clv_horizon_days = m.clv_horizon_ms / state::kDayMs;
  models.clv_monthly_discount = m.clv_monthly_discount;
  out.text_properties = m.text_properties;
  return out;
}

absl::StatusOr<std::vector<Workspace>> CompileWorkspaces(const config::Config& config) {
  std::vector<config::WorkspaceConfig> configured = config.workspaces;
  if (configured.empty()) {
    configured.emplace_back();
    configured.back().name = "default";
  }
  std::vector<Workspace> out;
  for (const config::WorkspaceConfig& wc : configured) {
    Workspace ws;
    ws.name = wc.name;
    ws.write_keys = wc.write_keys;
    ws.admin_keys = wc.admin_keys;
    absl::StatusOr<state::WorkspaceProfileSettings> profiles = ProfileSettingsOf(wc);
    if (!profiles.ok()) return profiles.status();
    ws.profiles = *std::move(profiles);
    ws.condition_names = NamesOf(wc, ws.profiles.fold.consent);
    std::vector<state::AdaptationSpec> adaptations;
    for (const config::AdaptationConfig& a : wc.adaptations) {
      adaptations.push_back({a.id, a.when, a.when_ref.Describe(), a.priority, a.hints});
    }
    absl::StatusOr<std::shared_ptr<const state::AdaptationSet>> compiled =
        state::CompileAdaptations(adaptations, &ws.condition_names);
    if (!compiled.ok()) return compiled.status();
    ws.adaptations = *std::move(compiled);
    ws.triggers = wc.triggers;
    if (wc.decisions.configured) {
      absl::StatusOr<std::shared_ptr<const decide::Catalog>> catalog =
          decide::CompileCatalog(wc.decisions, wc.consent_purposes, &ws.condition_names);
      if (!catalog.ok()) return catalog.status();
      ws.decisions = *std::move(catalog);
      ws.decisions_config = wc.decisions;
      ws.consent_purposes = wc.consent_purposes;
    }
    out.push_back(std::move(ws));
  }
  return out;
}

// A journey version's stages are kept (meta `journey/<workspace>/<id>/<version>`: the stage ids
// in order) the first time it runs. Customers' states name their stage, and the funnel rows of a
// version count by position: stages changed under the same version would strand customers in a
// stage that is gone and count them under another's name, so that is refused.
namespace {
absl::Status CheckJourneyStages(storage::Store* store, const Workspace& ws) {
  for (const std::shared_ptr<const state::Journey>& j : ws.profiles.journeys) {
    std::string stages;
    for (const state::Journey::Stage& st : j->stages) {
      StrAppend(&stages, stages.empty() ? "" : ", ", st.id);
    }
    const std::string key = StrCat("journey/", ws.name, "/", j->id, "/", j->version);
    absl::StatusOr<std::optional<std::string>> kept = store->GetMeta(key);
    if (!kept.ok()) return kept.status();
    if (!kept->has_value()) {
      if (absl::Status s = store->PutMeta(key, stages); !s.ok()) return s;
    } else if (**kept != stages) {
      return MakeError(absl::StatusCode::kInvalidArgument, "invalid_config",
                       StrCat(j->version_where, ": journey `", j->id, "` version ", j->version,
                              " ran with the stages ", **kept, " and now has ", stages,
                              ": raise `version` when the stages change (customers in a stage "
                              "that is gone then leave it, and each version keeps its own "
                              "funnel)"),
                       "version");
    }
  }
  return absl::OkStatus();
}
}  // namespace

absl::Status AssignFromStore(storage::Store* store, std::vector<Workspace>* workspaces) {
  for (Workspace& ws : *workspaces) {
    absl::StatusOr<uint32_t> id = IdFor(store, ws.name);
    if (!id.ok()) return id.status();
    ws.id = *id;
    if (absl::Status s = CheckJourneyStages(store, ws); !s.ok()) return s;
    if (ws.write_keys.empty()) {
      absl::StatusOr<std::string> key = GeneratedKey(store, ws.name, "write", "wk_");
      if (!key.ok()) return key.status();
      ws.write_keys.push_back(*key);
    }
    if (ws.admin_keys.empty()) {
      absl::StatusOr<std::string> key = GeneratedKey(store, ws.name, "admin", "ak_");
      if (!key.ok()) return key.status();
      ws.admin_keys.push_back(*key);
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<Workspace>> ResolveWorkspaces(storage::Store* store,
                                                         const config::Config& config) {
  absl::StatusOr<std::vector<Workspace>> out = CompileWorkspaces(config);
  if (!out.ok()) return out.status();
  if (absl::Status s = AssignFromStore(store, &*out); !s.ok()) return s;
  return out;
}

absl::StatusOr<api::KeyRing> BuildKeyRing(const std::vector<Workspace>& workspaces) {
  api::KeyRing ring;
  for (const Workspace& ws : workspaces) {
    for (const auto& [keys, role] : {std::pair{&ws.write_keys, api::Role::kWrite},
                                     std::pair{&ws.admin_keys, api::Role::kAdmin}}) {
      for (const std::string& key : *keys) {
        const api::Principal* owner = ring.Find(key);
        if (auto s = ring.Add(key, {ws.id, ws.name, role}); !s.ok()) {
          // The file's own clashes are refused when it is read (config::Validate): this one is
          // with a key generated earlier and kept in the data directory.
          return MakeError(
              absl::StatusCode::kInvalidArgument, "invalid_config",
              StrCat("workspace '", ws.name, "': a ", role == api::Role::kWrite ? "write" : "admin",
                     " key of it is already a key "
                     "of workspace '",
                     owner != nullptr ? owner->workspace : "?",
                     "' (configured, or generated for it and kept in the data directory): a key "
                     "belongs to one workspace"),
              "workspaces");
        }
      }
    }
  }
  return ring;
}

}  // namespace whisperer::server
