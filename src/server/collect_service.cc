#include "server/collect_service.h"

#include "api/http_status.h"
#include "api/query.h"
#include "common/json_writer.h"
#include "common/status.h"
#include "common/strings.h"
#include "server/request_context.h"

namespace whisperer::server {

namespace http = net::http;

CollectService::CollectService(const api::KeyRing* keys, shard::ShardSet* shards,
                               const storage::Store* store, api::Limits limits, const Clock* clock,
                               obs::Registry* metrics)
    : keys_(keys),
      shards_(shards),
      store_(store),
      limits_(limits),
      clock_(clock),
      metrics_(metrics) {}

void CollectService::Register(net::Router* router) {
  // A bad key in the header is refused before the body is read, and what the server refuses
  // before a handler runs (a body over the limit, a bad encoding) counts as rejected too.
  const net::RouteGuard guard =
      HeaderKeyGuard(keys_, [this](const absl::Status& error) { CountRejected(error); });
  for (api::EventType type :
       {api::EventType::kIdentify, api::EventType::kTrack, api::EventType::kPage,
        api::EventType::kScreen, api::EventType::kGroup, api::EventType::kAlias}) {
    // Segment's analytics.js posts to the type's first letter (/v1/t, /v1/p...).
    const std::string_view name = api::EventTypeName(type);
    for (std::string path : {StrCat("/v1/", name), StrCat("/v1/", name.substr(0, 1))}) {
      router->Add(
          http::verb::post, path,
          [this, type](net::RequestContext& ctx, net::Responder respond) {
            HandleSingle(type, ctx, std::move(respond));
          },
          net::QueryParams::Any());
      router->AllowBrowsers(path);
      router->Guard(path, guard);
    }
  }
  // /v1/b: analytics.js's batching delivery. /v1/import is Whisperer's own: it takes no query.
  for (std::string path : {"/v1/batch", "/v1/b", "/v1/import"}) {
    router->Add(
        http::verb::post, path,
        [this](net::RequestContext& ctx, net::Responder respond) {
          HandleBatch(ctx, std::move(respond));
        },
        path == "/v1/import" ? net::QueryParams() : net::QueryParams::Any());
    router->AllowBrowsers(path);
    router->Guard(path, guard);
  }
  router->Add(http::verb::get, "/v1/events",
              [this](net::RequestContext& ctx, net::Responder respond) {
                HandleListEvents(ctx, std::move(respond));
              },
              {"cursor", "limit"});
}

void CollectService::CountRejected(const absl::Status& status, uint64_t n) {
  metrics_
      ->GetCounter("whisperer_events_rejected_total",
                   "Events rejected, by reason (the error code).",
                   {{"reason", ErrorCodeOf(status)}})
      .Inc(n);
}

void CollectService::HandleSingle(api::EventType type, net::RequestContext& ctx,
                                  net::Responder respond) {
  Collect(ctx, std::move(respond), false,
          [type](api::SegmentParser& p, std::string_view body, const api::RequestInfo& info) {
            return p.ParseSingle(type, body, info);
          });
}

void CollectService::HandleBatch(net::RequestContext& ctx, net::Responder respond) {
  Collect(ctx, std::move(respond), true,
          [](api::SegmentParser& p, std::string_view body, const api::RequestInfo& info) {
            return p.ParseBatch(body, info);
          });
}

void CollectService::Collect(net::RequestContext& ctx, net::Responder respond, bool batch,
                             const Parse& parse) {
  std::string_view authorization = net::Header(ctx.request, http::field::authorization);
  // With credentials in the header, refuse a bad key before reading the body.
  if (api::HasHeaderKey(authorization)) {
    absl::StatusOr<api::Principal> early = api::AuthenticateCollect(*keys_, authorization, "");
    if (!early.ok()) {
      CountRejected(early.status());
      return respond(net::ErrorResponse(early.status()));
    }
  }
  thread_local api::SegmentParser parser;
  if (parser.limits().max_event_bytes != limits_.max_event_bytes ||
      parser.limits().max_request_bytes != limits_.max_request_bytes ||
      parser.limits().max_batch_events != limits_.max_batch_events) {
    parser = api::SegmentParser(limits_);
  }
  api::RequestInfo info{clock_->NowMillis(), ctx.remote_ip,
                        net::Header(ctx.request, http::field::user_agent)};
  absl::StatusOr<api::ParsedRequest> parsed = parse(parser, ctx.request.body(), info);
  if (!parsed.ok()) {
    CountRejected(parsed.status());
    return respond(net::ErrorResponse(parsed.status()));
  }
  absl::StatusOr<api::Principal> principal =
      api::AuthenticateCollect(*keys_, authorization, parsed->write_key);
  if (!principal.ok()) {
    CountRejected(principal.status());
    return respond(net::ErrorResponse(principal.status()));
  }

  for (const api::Rejection& r : parsed->rejected) CountRejected(r.error);
  // The rejection list, written now so the completion only adds counts.
  std::string rejected;
  if (batch) {
    JsonWriter w(&rejected);
    w.StartArray();
    for (const api::Rejection& r : parsed->rejected) {
      w.StartObject();
      w.Key("index");
      w.Uint(r.index);
      api::WriteErrorMembers(w, r.error);
      w.EndObject();
    }
    w.EndArray();
  }
  if (batch && parsed->events.empty() && !parsed->rejected.empty()) {
    absl::Status none = InvalidInput(
        "no_valid_events",
        StrCat("all ", parsed->rejected.size(), " events of the batch were rejected"), "batch");
    std::string body = api::ErrorBody(none);
    body.insert(body.size() - 1, StrCat(",\"rejected\":", rejected));
    return respond(net::JsonResponse(400, std::move(body)));
  }

  auto shared_respond = std::make_shared<net::Responder>(std::move(respond));
  // A request refused when it is queued or written (overloaded, shutting_down, a storage error)
  // counts as rejected too. The shards complete every request before they stop, and they stop
  // before this service goes.
  absl::Status queued = shards_->Submit(
      principal->workspace_id, std::move(parsed->events),
      [this, shared_respond, batch, rejected = std::move(rejected)](shard::IngestResult result) {
        if (!result.status.ok()) {
          CountRejected(result.status);
          return (*shared_respond)(net::ErrorResponse(result.status));
        }
        if (!batch) return (*shared_respond)(net::JsonResponse(200, R"({"success":true})"));
        (*shared_respond)(net::JsonResponse(
            200, StrCat(R"({"success":true,"accepted":)",
                        result.stored + result.duplicates + result.suppressed, R"(,"duplicates":)",
                        result.duplicates, R"(,"rejected":)", rejected, "}")));
      });
  if (!queued.ok()) {
    CountRejected(queued);
    (*shared_respond)(net::ErrorResponse(queued));
  }
}

void CollectService::HandleListEvents(net::RequestContext& ctx, net::Responder respond) {
  absl::StatusOr<api::Principal> principal =
      api::AuthenticateAdmin(*keys_, net::Header(ctx.request, http::field::authorization));
  if (!principal.ok()) return respond(net::ErrorResponse(principal.status()));
  std::string_view target = net::Target(ctx.request);
  absl::StatusOr<uint64_t> after =
      api::ParseUintParam(api::QueryParam(target, "cursor").value_or(""), "cursor", 0, UINT64_MAX);
  absl::StatusOr<uint64_t> limit = api::PageLimit(target);
  if (!after.ok()) return respond(net::ErrorResponse(after.status()));
  if (!limit.ok()) return respond(net::ErrorResponse(limit.status()));
  std::string body = R"({"events":[)";
  uint64_t count = 0, last = *after;
  bool more = false;
  absl::Status s =
      store_->ScanEvents(principal->workspace_id, *after, [&](uint64_t seq, std::string_view json) {
        if (count == *limit) {
          more = true;
          return false;
        }
        if (count++) body += ',';
        body += json;
        last = seq;
        return true;
      });
  if (!s.ok()) return respond(net::ErrorResponse(s));
  // The cursor always points after what this page returned (or stays put when it returned
  // nothing), so a consumer can keep polling from it to follow new events.
  body += "],\"nextCursor\":";
  AppendJsonString(&body, std::to_string(last));
  body += more ? ",\"hasMore\":true}" : ",\"hasMore\":false}";
  respond(net::JsonResponse(200, std::move(body)));
}

}  // namespace whisperer::server
