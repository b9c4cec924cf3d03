// CollectService: the HTTP endpoints of collection (the Segment tracking API) and of reading
// the event log back. Thin handlers: authenticate, parse with api::SegmentParser, hand the
// events to the shards, and answer when the shards say they are durable.
//
//   POST /v1/identify|track|page|screen|group|alias   one event; 200 {"success":true}
//   POST /v1/batch, /v1/import                        many; 200 {"success":true,"accepted":N,
//                                                     "duplicates":D,"rejected":[...]}, or 400
//                                                     with the same list when none was valid
//   GET  /v1/events?cursor=C&limit=N                  admin: the workspace's events in order,
//                                                     {"events":[...],"nextCursor":"C2",
//                                                     "hasMore":bool}; poll with C2 to follow
//
// Metrics: whisperer_events_rejected_total{reason} counts rejected events by error code (a
// request refused whole, such as malformed JSON, counts once).
// Thread-safety: handlers run on any server thread; the service holds no mutable state apart
// from metric counters.
#pragma once

#include "api/auth.h"
#include "api/segment_parser.h"
#include "common/clock.h"
#include "net/http_server.h"
#include "obs/metrics.h"
#include "shard/shard_set.h"
#include "storage/store.h"

namespace whisperer::server {

class CollectService {
 public:
  CollectService(const api::KeyRing* keys, shard::ShardSet* shards, const storage::Store* store,
                 api::Limits limits, const Clock* clock, obs::Registry* metrics);

  void Register(net::Router* router);

  // Exposed for tests: the handlers behind the routes.
  void HandleSingle(api::EventType type, net::RequestContext& ctx, net::Responder respond);
  void HandleBatch(net::RequestContext& ctx, net::Responder respond);
  void HandleListEvents(net::RequestContext& ctx, net::Responder respond);

 private:
  using Parse = std::function<absl::StatusOr<api::ParsedRequest>(
      api::SegmentParser&, std::string_view, const api::RequestInfo&)>;
  void Collect(net::RequestContext& ctx, net::Responder respond, bool batch, const Parse& parse);
  void CountRejected(const absl::Status& status, uint64_t n = 1);

  const api::KeyRing* keys_;
  shard::ShardSet* shards_;
  const storage::Store* store_;
  api::Limits limits_;
  const Clock* clock_;
  obs::Registry* metrics_;
};

}  // namespace whisperer::server
