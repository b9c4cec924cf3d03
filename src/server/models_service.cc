#include "server/models_service.h"

#include <cmath>
#include <filesystem>
#include <map>
#include <ostream>

#include "api/query.h"
#include "common/csv.h"
#include "common/status.h"
#include "common/strings.h"
#include "server/server.h"
#include "server/workspaces.h"

namespace whisperer::server {

namespace http = net::http;

namespace {

// FitClv's InvalidArgument (no repeat customer yet) is not a bad request: the data is not there.
absl::Status NotEnoughData(const absl::Status& status) {
  if (status.code() != absl::StatusCode::kInvalidArgument) return status;
  return MakeError(absl::StatusCode::kFailedPrecondition, "not_enough_data",
                   ToStd(status.message()));
}

}  // namespace

void ModelService::Register(net::Router* router) {
  router->Add(http::verb::get, "/v1/models",
              [this](net::RequestContext& ctx, net::Responder r) { HandleList(ctx, r); });
  router->Add(http::verb::get, "/v1/models/{name}",
              [this](net::RequestContext& ctx, net::Responder r) { HandleGet(ctx, r); });
  router->Add(http::verb::post, "/v1/models/{name}/rollback",
              [this](net::RequestContext& ctx, net::Responder r) { HandleRollback(ctx, r); });
  router->Add(http::verb::post, "/v1/models/clv/fit",
              [this](net::RequestContext& ctx, net::Responder r) { HandleFitClv(ctx, r); });
  // The other models are not fitted on demand: say how they learn rather than "no endpoint".
  router->Add(http::verb::post, "/v1/models/{name}/fit",
              [this](net::RequestContext& ctx, net::Responder r) { HandleFitOther(ctx, r); });
}

absl::StatusOr<api::Principal> ModelService::Authorize(const net::RequestContext& ctx) const {
  absl::StatusOr<api::Principal> principal =
      api::AuthenticateAdmin(*keys_, net::Header(ctx.request, http::field::authorization));
  if (!principal.ok()) return principal.status();
  if (engine_ == nullptr) {
    return MakeError(absl::StatusCode::kUnavailable, "profiles_disabled",
                     "models learn from profiles, which are off on this server "
                     "(ingest.profiles: false)");
  }
  if (engine_->models().Settings(principal->workspace_id) == nullptr) {
    return MakeError(absl::StatusCode::kNotFound, "models_disabled",
                     "models are off in this workspace (models.enabled: false)");
  }
  return principal;
}

// The model named in the path: conversion, churn, clv or intent.
absl::StatusOr<std::string_view> ModelService::ModelParam(const net::RequestContext& ctx) const {
  std::string_view name = net::PathParam(ctx);
  if (state::ModelKindOf(name) || name == "clv" || name == "intent") return name;
  return MakeError(absl::StatusCode::kNotFound, "unknown_model",
                   StrCat("no model named '", name, "' (conversion, churn, clv, intent)"), "name");
}

void ModelService::WriteModel(uint32_t workspace_id, std::string_view name, bool with_versions,
                              JsonWriter& w) const {
  if (std::optional<state::ModelKind> kind = state::ModelKindOf(name)) {
    engine_->models().WriteModel(workspace_id, *kind, with_versions, w);
  } else if (name == "clv") {
    engine_->models().WriteClv(workspace_id, with_versions, w);
  } else {
    engine_->models().WriteIntent(workspace_id, with_versions, w);
  }
}

void ModelService::HandleList(net::RequestContext& ctx, net::Responder respond) {
  absl::StatusOr<api::Principal> principal = Authorize(ctx);
  if (!principal.ok()) return respond(net::ErrorResponse(principal.status()));
  std::string body;
  JsonWriter w(&body);
  w.StartObject();
  w.Key("models");
  w.StartArray();
  for (state::ModelKind kind : {state::ModelKind::kConversion, state::ModelKind::kChurn}) {
    engine_->models().WriteModel(principal->workspace_id, kind, /*with_versions=*/false, w);
  }
  engine_->models().WriteClv(principal->workspace_id, /*with_versions=*/false, w);
  engine_->models().WriteIntent(principal->workspace_id, /*with_versions=*/false, w);
  w.EndArray();
  w.EndObject();
  respond(net::JsonResponse(200, std::move(body)));
}

void ModelService::HandleGet(net::RequestContext& ctx, net::Responder respond) {
  absl::StatusOr<api::Principal> principal = Authorize(ctx);
  if (!principal.ok()) return respond(net::ErrorResponse(principal.status()));
  absl::StatusOr<std::string_view> name = ModelParam(ctx);
  if (!name.ok()) return respond(net::ErrorResponse(name.status()));
  std::string body;
  JsonWriter w(&body);
  WriteModel(principal->workspace_id, *name, /*with_versions=*/true, w);
  respond(net::JsonResponse(200, std::move(body)));
}

void ModelService::HandleRollback(net::RequestContext& ctx, net::Responder respond) {
  absl::StatusOr<api::Principal> principal = Authorize(ctx);
  if (!principal.ok()) return respond(net::ErrorResponse(principal.status()));
  absl::StatusOr<std::string_view> name = ModelParam(ctx);
  if (!name.ok()) return respond(net::ErrorResponse(name.status()));
  const std::optional<state::ModelKind> kind = state::ModelKindOf(*name);
  simdjson::dom::parser parser;
  absl::StatusOr<simdjson::dom::element> parsed = api::JsonObjectBody(ctx.request.body(), parser);
  if (!parsed.ok()) return respond(net::ErrorResponse(parsed.status()));
  if (absl::Status s = api::RefuseUnknownKeys(*parsed, {"version"}); !s.ok()) {
    return respond(net::ErrorResponse(s));
  }
  simdjson::dom::element v;
  const std::optional<uint64_t> whole = (*parsed)["version"].get(v) == simdjson::SUCCESS
                                            ? api::WholeNumber(v, UINT64_MAX)
                                            : std::nullopt;
  const uint64_t version = whole.value_or(0);
  if (version == 0) {
    return respond(net::ErrorResponse(InvalidInput(
        "invalid_value", "version must be the number of one of the model's versions", "version")));
  }
  // A refused rollback changes nothing and writes nothing; it is returned beside the write, not
  // through it, since a failed WriteExclusive drops the profile engine's caches.
  absl::Status refused;
  absl::Status written = shards_->WriteExclusive([&](rocksdb::WriteBatch* batch) {
    const uint32_t ws = principal->workspace_id;
    absl::Status s;
    if (kind) {
      s = engine_->models().Rollback(ws, *kind, version, batch).status();
    } else if (*name == "clv") {
      s = engine_->models().RollbackClv(ws, version, batch).status();
    } else {  // intent: events from now on are scored with the restored model
      s = engine_->models().RollbackIntent(ws, version, batch).status();
      if (s.ok()) engine_->SetIntentModel(ws, engine_->models().intent_model(ws));
    }
    if (s.code() == absl::StatusCode::kNotFound) {
      refused =
          MakeError(absl::StatusCode::kNotFound, "unknown_version", ToStd(s.message()), "version");
      return absl::OkStatus();
    }
    if (s.code() == absl::StatusCode::kFailedPrecondition) {
      // An FTRL state hashed into another table size, or an intent model no longer stored.
      refused = MakeError(absl::StatusCode::kFailedPrecondition,
                          *name == "intent" ? "version_not_stored" : "incompatible_version",
                          ToStd(s.message()), "version");
      return absl::OkStatus();
    }
    return s;
  });
  if (!refused.ok()) return respond(net::ErrorResponse(refused));
  if (!written.ok()) return respond(net::ErrorResponse(written));
  std::string body;
  JsonWriter w(&body);
  WriteModel(principal->workspace_id, *name, /*with_versions=*/true, w);
  respond(net::JsonResponse(200, std::move(body)));
}

void ModelService::HandleFitOther(net::RequestContext& ctx, net::Responder respond) {
  absl::StatusOr<api::Principal> principal = Authorize(ctx);
  if (!principal.ok()) return respond(net::ErrorResponse(principal.status()));
  absl::StatusOr<std::string_view> name = ModelParam(ctx);
  if (!name.ok()) return respond(net::ErrorResponse(name.status()));
  const std::string how =
      *name == "intent" ? std::string("is trained with `whisperer models train intent FILE.csv`")
                        : StrCat("learns online from every event (GET /v1/models/", *name, ")");
  respond(net::ErrorResponse(InvalidInput(
      "invalid_value", StrCat("only clv is fitted on demand: ", *name, " ", how), "name")));
}

void ModelService::HandleFitClv(net::RequestContext& ctx, net::Responder respond) {
  absl::StatusOr<api::Principal> principal = Authorize(ctx);
  if (!principal.ok()) return respond(net::ErrorResponse(principal.status()));
  absl::Status fitted = FitAndInstallClv(principal->workspace_id, "fit");
  if (!fitted.ok()) return respond(net::ErrorResponse(fitted));
  std::string body;
  JsonWriter w(&body);
  engine_->models().WriteClv(principal->workspace_id, /*with_versions=*/false, w);
  respond(net::JsonResponse(200, std::move(body)));
}

absl::Status ModelService::FitAndInstallClv(uint32_t workspace_id, std::string_view reason) {
  // The fit reads the stored profiles without the commit lock (seconds for millions of
  // customers); only installing the result takes it.
  absl::StatusOr<state::ClvFit> fit =
      state::ModelEngine::FitClv(*store_, workspace_id, clock_->NowMillis());
  if (!fit.ok()) return NotEnoughData(fit.status());
  fit->reason = std::string(reason);
  return shards_->WriteExclusive([&](rocksdb::WriteBatch* batch) {
    return engine_->models().InstallClv(workspace_id, *std::move(fit), batch).status();
  });
}

namespace {

// The data directory opened for the offline model commands, which need it to themselves.
// `online`: how to do the same through a running server, when there is a way.
absl::StatusOr<std::unique_ptr<storage::Store>> OpenForModels(
    const storage::Store::Options& options, std::string_view online) {
  // A directory without a store is refused as `export` refuses it, not made into one.
  if (!std::filesystem::exists(std::filesystem::path(options.path) / "CURRENT")) {
    return MakeError(absl::StatusCode::kNotFound, "no_data",
                     StrCat("no whisperer data directory at ", options.path));
  }
  absl::StatusOr<std::unique_ptr<storage::Store>> store = storage::Store::Open(options);
  if (!store.ok() && ToStd(store.status().message()).find("lock") != std::string_view::npos) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "server_running",
                     StrCat("a server (or another command) is using ", options.path,
                            ": stop it first", online, " (", ToStd(store.status().message()), ")"));
  }
  return store;
}

}  // namespace

absl::Status FitClv(const FitClvCommand& command, std::ostream& out) {
  storage::Store::Options options;
  options.path = command.data_dir;
  absl::StatusOr<std::unique_ptr<storage::Store>> store =
      OpenForModels(options, " (or POST /v1/models/clv/fit to the server)");
  if (!store.ok()) return store.status();
  absl::StatusOr<uint32_t> workspace_id = FindWorkspaceId(**store, command.workspace);
  if (!workspace_id.ok()) return workspace_id.status();
  absl::StatusOr<state::ClvFit> fit =
      state::ModelEngine::FitClv(**store, *workspace_id, SystemClock::Get().NowMillis());
  if (!fit.ok()) return NotEnoughData(fit.status());
  fit = state::ModelEngine::StoreClv(**store, *workspace_id, *std::move(fit));
  if (!fit.ok()) return fit.status();
  const learn::BgNbdParams& bg = fit->model.purchases;
  const learn::GammaGammaParams& gg = fit->model.spend;
  out << "clv version " << fit->version << " of workspace " << command.workspace << ": "
      << fit->customers << " customers with orders, " << fit->repeaters << " with repeat orders\n"
      << "  BG/NBD       r " << bg.r << ", alpha " << bg.alpha << ", a " << bg.a << ", b " << bg.b
      << " (log-likelihood " << bg.log_likelihood << ")\n"
      << "  Gamma-Gamma  p " << gg.p << ", q " << gg.q << ", v " << gg.v << " (log-likelihood ";
  // As the registry answers it: null when the spends leave it undefined (all equal, say).
  if (std::isfinite(gg.log_likelihood)) {
    out << gg.log_likelihood << ")\n";
  } else {
    out << "null)\n";
  }
  return absl::OkStatus();
}

absl::Status TrainIntent(const TrainIntentCommand& command, std::ostream& out, std::ostream& log) {
  // The directory first: a server holding it, or a wrong workspace, is known before training.
  storage::Store::Options options;
  options.path = command.data_dir;
  absl::StatusOr<std::unique_ptr<storage::Store>> store = OpenForModels(options, "");
  if (!store.ok()) return store.status();
  absl::StatusOr<uint32_t> workspace_id = FindWorkspaceId(**store, command.workspace);
  if (!workspace_id.ok()) return workspace_id.status();
  if (command.text_column == command.label_column) {
    return MakeError(absl::StatusCode::kInvalidArgument, "bad_usage",
                     StrCat("--text-column and --label-column both name '", command.text_column,
                            "': the texts and their intents are two columns"));
  }
  std::vector<std::vector<std::string>> rows;
  std::vector<size_t> lines;
  if (absl::Status s =
          ReadCsvColumns(command.file, {command.text_column, command.label_column}, &rows, &lines);
      !s.ok()) {
    return absl::InvalidArgumentError(ToAbsl(ToStd(s.message())));
  }
  // Each example checked here, where its line is known.
  for (size_t i = 0; i < rows.size(); ++i) {
    if (absl::Status s = text::IntentModel::CheckExample({rows[i][0], rows[i][1]}); !s.ok()) {
      return absl::InvalidArgumentError(
          ToAbsl(StrCat(command.file, ": line ", lines[i], ": ", ToStd(s.message()))));
    }
  }
  // Every tenth example of each label, in file order, is held out to measure the model (the
  // rule `whisperer eval banking77` cuts its dev split by).
  std::vector<text::IntentExample> train;
  std::vector<text::IntentExample> held_out;
  std::map<std::string, size_t> seen;
  for (std::vector<std::string>& row : rows) {
    text::IntentExample e{std::move(row[0]), std::move(row[1])};
    (seen[e.label]++ % 10 == 9 ? held_out : train).push_back(std::move(e));
  }
  log << "training on " << train.size() << " examples, " << held_out.size() << " held out\n";
  absl::StatusOr<std::unique_ptr<text::IntentModel>> model = text::IntentModel::Train(train);
  if (!model.ok()) return model.status();
  size_t right = 0;
  for (const text::IntentExample& e : held_out) {
    std::vector<text::IntentScore> top = (*model)->Predict(e.text, 1);
    right += !top.empty() && top[0].label == e.label;
  }
  state::IntentVersion version;
  version.trained_ms = SystemClock::Get().NowMillis();
  version.examples = train.size();
  version.labels = (*model)->labels().size();
  version.holdout = held_out.size();
  version.accuracy =
      held_out.empty() ? 0 : static_cast<double>(right) / static_cast<double>(held_out.size());
  absl::StatusOr<state::IntentVersion> stored =
      state::ModelEngine::StoreIntent(**store, *workspace_id, version, (*model)->Serialize());
  if (!stored.ok()) return stored.status();
  out << "intent version " << stored->version << " of workspace " << command.workspace << ": "
      << stored->labels << " intents from " << stored->examples << " examples; ";
  if (stored->holdout > 0) {
    out << "accuracy " << stored->accuracy << " on " << stored->holdout << " held-out examples\n";
  } else {
    out << "accuracy not measured (no label has 10 examples, so none was held out)\n";
  }
  return absl::OkStatus();
}

}  // namespace whisperer::server
