// The model registry over HTTP (admin key):
//   GET  /v1/models                      the workspace's models, each with its latest version
//   GET  /v1/models/{name}               one model with every version's metrics
//   POST /v1/models/{name}/rollback      {"version": N}: makes version N's state live again
//   POST /v1/models/clv/fit              refits lifetime value on the stored profiles now
// Models are state/models.h's (conversion, churn, clv, intent; an intent rollback needs the
// version's model still stored, see kKeptIntentImages). With profiles off (ingest.profiles:
// false) there are no models: 503 profiles_disabled.
// Thread-safety: handlers run on any server thread; the rollback runs under the commit lock.
#pragma once

#include "api/auth.h"
#include "common/clock.h"
#include "net/http_server.h"
#include "shard/shard_set.h"
#include "state/profiles.h"

namespace whisperer::server {

class ModelService {
 public:
  // `engine` may be null (profiles off).
  ModelService(const api::KeyRing* keys, shard::ShardSet* shards, state::ProfileEngine* engine,
               const storage::Store* store, const Clock* clock)
      : keys_(keys), shards_(shards), engine_(engine), store_(store), clock_(clock) {}

  void Register(net::Router* router);

  void HandleList(net::RequestContext& ctx, net::Responder respond);
  void HandleGet(net::RequestContext& ctx, net::Responder respond);
  void HandleRollback(net::RequestContext& ctx, net::Responder respond);
  void HandleFitClv(net::RequestContext& ctx, net::Responder respond);
  // POST /v1/models/{name}/fit of another model: 400 saying how that one learns.
  void HandleFitOther(net::RequestContext& ctx, net::Responder respond);

  // Fits lifetime value on the workspace's stored profiles and installs it as the next version
  // (the POST above, and the server's scheduled refits). FailedPrecondition not_enough_data when
  // no customer has a repeat order.
  absl::Status FitAndInstallClv(uint32_t workspace_id, std::string_view reason);

 private:
  // The admin's workspace, once models are known to be on there.
  absl::StatusOr<api::Principal> Authorize(const net::RequestContext& ctx) const;
  absl::StatusOr<std::string_view> ModelParam(const net::RequestContext& ctx) const;
  void WriteModel(uint32_t workspace_id, std::string_view name, bool with_versions,
                  JsonWriter& w) const;

  const api::KeyRing* keys_;
  shard::ShardSet* shards_;
  state::ProfileEngine* engine_;
  const storage::Store* store_;
  const Clock* clock_;
};

}  // namespace whisperer::server
