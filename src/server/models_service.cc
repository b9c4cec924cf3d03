#include "server/models_service.h"

#include "api/query.h"
#include "common/status.h"
#include "common/strings.h"

namespace whisperer::server {

namespace http = net::http;

void ModelService::Register(net::Router* router) {
  router->Add(http::verb::get, "/v1/models",
              [this](net::RequestContext& ctx, net::Responder r) { HandleList(ctx, r); });
  router->Add(http::verb::get, "/v1/models/{name}",
              [this](net::RequestContext& ctx, net::Responder r) { HandleGet(ctx, r); });
  router->Add(http::verb::post, "/v1/models/{name}/rollback",
              [this](net::RequestContext& ctx, net::Responder r) { HandleRollback(ctx, r); });
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

absl::StatusOr<state::ModelKind> ModelService::ModelParam(const net::RequestContext& ctx) const {
  std::string_view name = ctx.path_params.empty() ? "" : ctx.path_params.front();
  if (std::optional<state::ModelKind> kind = state::ModelKindOf(name)) return *kind;
  return MakeError(absl::StatusCode::kNotFound, "unknown_model",
                   StrCat("no model named '", name, "' (conversion, churn)"), "name");
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
  w.EndArray();
  w.EndObject();
  respond(net::JsonResponse(200, std::move(body)));
}

void ModelService::HandleGet(net::RequestContext& ctx, net::Responder respond) {
  absl::StatusOr<api::Principal> principal = Authorize(ctx);
  if (!principal.ok()) return respond(net::ErrorResponse(principal.status()));
  absl::StatusOr<state::ModelKind> kind = ModelParam(ctx);
  if (!kind.ok()) return respond(net::ErrorResponse(kind.status()));
  std::string body;
  JsonWriter w(&body);
  engine_->models().WriteModel(principal->workspace_id, *kind, /*with_versions=*/true, w);
  respond(net::JsonResponse(200, std::move(body)));
}

void ModelService::HandleRollback(net::RequestContext& ctx, net::Responder respond) {
  absl::StatusOr<api::Principal> principal = Authorize(ctx);
  if (!principal.ok()) return respond(net::ErrorResponse(principal.status()));
  absl::StatusOr<state::ModelKind> kind = ModelParam(ctx);
  if (!kind.ok()) return respond(net::ErrorResponse(kind.status()));
  simdjson::dom::parser parser;
  absl::StatusOr<simdjson::dom::element> parsed = api::JsonObjectBody(ctx.request.body(), parser);
  if (!parsed.ok()) return respond(net::ErrorResponse(parsed.status()));
  uint64_t version = 0;
  if ((*parsed)["version"].get(version) != simdjson::SUCCESS || version == 0) {
    return respond(net::ErrorResponse(InvalidInput(
        "invalid_value", "version must be the number of one of the model's versions", "version")));
  }
  absl::Status written = shards_->WriteExclusive([&](rocksdb::WriteBatch* batch) {
    absl::StatusOr<state::ModelVersion> v =
        engine_->models().Rollback(principal->workspace_id, *kind, version, batch);
    if (!v.ok()) {
      if (v.status().code() == absl::StatusCode::kNotFound) {
        return MakeError(absl::StatusCode::kNotFound, "unknown_version",
                         ToStd(v.status().message()), "version");
      }
      if (v.status().code() == absl::StatusCode::kFailedPrecondition) {
        return MakeError(absl::StatusCode::kFailedPrecondition, "incompatible_version",
                         ToStd(v.status().message()), "version");
      }
      return v.status();
    }
    return absl::OkStatus();
  });
  if (!written.ok()) return respond(net::ErrorResponse(written));
  std::string body;
  JsonWriter w(&body);
  engine_->models().WriteModel(principal->workspace_id, *kind, /*with_versions=*/true, w);
  respond(net::JsonResponse(200, std::move(body)));
}

}  // namespace whisperer::server
