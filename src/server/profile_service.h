// ProfileService: the read and privacy endpoints of unified profiles (admin key only; a write
// key gets 403). Profiles are read from the store, so reads never wait for ingestion; changes
// go through ShardSet::WriteExclusive so they are ordered with the events being folded.
//
//   GET /v1/profiles/lookup?userId=|anonymousId=|email=|phone=|type=&value=
//                                      {"profileId":"prf_..."}; 404 profile_not_found
//   GET /v1/profiles/{id}              the unified profile (state/profile.h); the id of a
//                                      profile merged into another answers with the survivor
//   GET /v1/profiles/{id}/events?limit=N&cursor=C
//                                      the timeline across merged identities, newest first:
//                                      {"events":[...],"nextCursor":"C2"|null,"hasMore":bool}
//   PUT /v1/profiles/{id}/consent      {"purposes":{"marketing_email":"granted"|"denied"|bool},
//                                      "source":"...", "timestamp":"ISO-8601"} -> the profile's
//                                      consent
//   GET /v1/profiles/{id}/export       everything stored about the customer: the profile and
//                                      every event, {"profile":{...},"events":[...]}
//   DELETE /v1/profiles/{id}[?suppress=true]
//                                      erases the profile, its identifiers, events and timeline;
//                                      suppress also drops future events carrying them
//   GET /v1/journeys                   the workspace's journeys as configured: id, version,
//                                      stages (entry condition, timeout), goal, exit, reentry
//   GET /v1/journeys/{id}/funnel?from=YYYY-MM-DD&to=YYYY-MM-DD&by=all|device|source
//                                      customers entering each stage, moving on, time in stage
//                                      (median, p90), conversion, for customers who entered
//                                      the journey on those (UTC) days; from counted rows
//   POST /v1/profiles/{id}/unmerge     {"identifiers":[{"type":"anonymousId","value":"..."}]}
//                                      splits those identifiers and the events that carried them
//                                      into a new profile: {"profileId":..,"newProfileId":..}
//
// Thread-safety: handlers run on any server thread; the service holds no mutable state (the
// erasure listener is set before they run).
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

#include "api/auth.h"
#include "common/clock.h"
#include "common/gate.h"
#include "common/json_writer.h"
#include "net/http_server.h"
#include "shard/shard_set.h"
#include "state/profiles.h"
#include "storage/store.h"

namespace whisperer::server {

// A journey's funnel as GET /v1/journeys/{id}/funnel answers it (also `whisperer replay`, which
// passes from_day > to_day for "every day": from and to are then null). `version`: an earlier
// version's funnel (0: the current one), whose stages are not known by id any more (null).
void WriteFunnel(const state::Journey& journey, int64_t from_day, int64_t to_day,
                 std::string_view by,
                 const std::vector<std::pair<std::string, state::FunnelCounts>>& groups,
                 JsonWriter& w, int64_t version = 0);

class ProfileService {
 public:
  // `engine` may be null when profiles are off (ingest.profiles: false): reads still work,
  // changes answer 503 profiles_disabled.
  ProfileService(const api::KeyRing* keys, shard::ShardSet* shards, state::ProfileEngine* engine,
                 const storage::Store* store, const Clock* clock);

  void Register(net::Router* router);
  // Told, after each erasure is written, the erased customer's keys of per-customer counts
  // (state::ProfileEngine::Erased::customers), for services that hold such counts in memory.
  // Set before the server starts.
  using ErasedListener = std::function<void(uint32_t workspace_id, const std::vector<uint64_t>&)>;
  void OnErased(ErasedListener listener) { on_erased_ = std::move(listener); }
  // The gate an erasure closes while it runs (DecideService::erasure_gate), so that no write
  // about the customer that began before it lands after it. Set before the server starts.
  void SetErasureGate(Gate* gate) { erasure_gate_ = gate; }

  void HandleLookup(net::RequestContext& ctx, net::Responder respond);
  void HandleGet(net::RequestContext& ctx, net::Responder respond);
  void HandleEvents(net::RequestContext& ctx, net::Responder respond);
  void HandleConsent(net::RequestContext& ctx, net::Responder respond);
  void HandleExport(net::RequestContext& ctx, net::Responder respond);
  void HandleErase(net::RequestContext& ctx, net::Responder respond);
  void HandleUnmerge(net::RequestContext& ctx, net::Responder respond);
  void HandleJourneys(net::RequestContext& ctx, net::Responder respond);
  void HandleFunnel(net::RequestContext& ctx, net::Responder respond);

 private:
  // The workspace and profile id of an admin request on /v1/profiles/{id}/...
  struct Target {
    uint32_t workspace_id;
    uint64_t profile_id;
  };
  absl::StatusOr<Target> Authorize(const net::RequestContext& ctx) const;
  // The target's profile as stored (merges followed); 404 profile_not_found, field `id`.
  absl::StatusOr<state::Profile> ReadTarget(const Target& target) const;
  // The workspace of the request's admin key (401/403 otherwise).
  absl::StatusOr<api::Principal> Admin(const net::RequestContext& ctx) const;
  // 503 profiles_disabled when the server runs with ingest.profiles: false.
  absl::Status ProfilesOn() const;
  // Runs a change of the path's profile under the commit lock; 503 profiles_disabled when
  // profiles are off, and profile_not_found names the field `id`.
  absl::Status Change(const std::function<absl::Status(rocksdb::WriteBatch*)>& fn);

  const api::KeyRing* keys_;
  shard::ShardSet* shards_;
  state::ProfileEngine* engine_;
  const storage::Store* store_;
  const Clock* clock_;
  ErasedListener on_erased_;
  Gate* erasure_gate_ = nullptr;
};

}  // namespace whisperer::server
