// The model registry over HTTP (admin key):
//   GET  /v1/models                      the workspace's models, each with its latest version
//   GET  /v1/models/{name}               one model with every version's metrics
//   POST /v1/models/{name}/rollback      {"version": N}: makes version N's state live again
// Models are state/models.h's (conversion, churn). With profiles off (ingest.profiles: false)
// there are no models: 503 profiles_disabled.
// Thread-safety: handlers run on any server thread; the rollback runs under the commit lock.
#pragma once

#include "api/auth.h"
#include "net/http_server.h"
#include "shard/shard_set.h"
#include "state/profiles.h"

namespace whisperer::server {

class ModelService {
 public:
  // `engine` may be null (profiles off).
  ModelService(const api::KeyRing* keys, shard::ShardSet* shards, state::ProfileEngine* engine)
      : keys_(keys), shards_(shards), engine_(engine) {}

  void Register(net::Router* router);

  void HandleList(net::RequestContext& ctx, net::Responder respond);
  void HandleGet(net::RequestContext& ctx, net::Responder respond);
  void HandleRollback(net::RequestContext& ctx, net::Responder respond);

 private:
  // The admin's workspace, once models are known to be on there.
  absl::StatusOr<api::Principal> Authorize(const net::RequestContext& ctx) const;
  absl::StatusOr<state::ModelKind> ModelParam(const net::RequestContext& ctx) const;

  const api::KeyRing* keys_;
  shard::ShardSet* shards_;
  state::ProfileEngine* engine_;
};

}  // namespace whisperer::server
