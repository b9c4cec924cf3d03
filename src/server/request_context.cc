#include "server/request_context.h"

#include "api/query.h"
#include "api/segment_parser.h"
#include "common/status.h"
#include "common/strings.h"
#include "state/profiles.h"
#include "storage/keys.h"

namespace whisperer::server {

absl::StatusOr<CallerRequest> ReadCallerRequest(const api::KeyRing& keys,
                                                const net::RequestContext& ctx,
                                                simdjson::dom::parser& parser) {
  const std::string_view authorization = net::Header(ctx.request, net::http::field::authorization);
  // As in collection, a key in the header is refused before the body is read.
  std::optional<api::Principal> early;
  if (api::HasHeaderKey(authorization)) {
    absl::StatusOr<api::Principal> principal = api::AuthenticateCollect(keys, authorization, "");
    if (!principal.ok()) return principal.status();
    early = *std::move(principal);
  }
  absl::StatusOr<simdjson::dom::element> body = api::JsonObjectBody(ctx.request.body(), parser);
  if (!body.ok()) return body.status();
  std::string_view body_key;
  if (absl::Status s = api::ReadWriteKey(*body, &body_key); !s.ok()) return s;
  if (early) return CallerRequest{*body, *std::move(early)};
  absl::StatusOr<api::Principal> principal =
      api::AuthenticateCollect(keys, authorization, body_key);
  if (!principal.ok()) return principal.status();
  return CallerRequest{*body, *principal};
}

net::RouteGuard HeaderKeyGuard(const api::KeyRing* keys,
                               std::function<void(const absl::Status&)> refused) {
  return {[keys](const net::Request& header) {
            const std::string_view authorization =
                net::Header(header, net::http::field::authorization);
            if (!api::HasHeaderKey(authorization)) return absl::OkStatus();
            return api::AuthenticateCollect(*keys, authorization, "").status();
          },
          std::move(refused)};
}

net::RouteGuard AdminKeyGuard(const api::KeyRing* keys) {
  return {[keys](const net::Request& header) {
            return api::AuthenticateAdmin(*keys,
                                          net::Header(header, net::http::field::authorization))
                .status();
          },
          nullptr};
}

void EndPage(JsonWriter& w, std::string_view next, bool more) {
  w.Key("nextCursor");
  if (more) {
    w.String(next);
  } else {
    w.Null();
  }
  w.Key("hasMore");
  w.Bool(more);
  w.EndObject();
}

absl::Status CheckSegmentObjects(simdjson::dom::element body) {
  for (std::string_view field : {"context", "properties"}) {
    simdjson::dom::element v;
    if (body[field].get(v) != simdjson::SUCCESS) continue;
    std::optional<simdjson::dom::object> ignored;
    if (absl::Status s = api::ReadObject(v, field, &ignored); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::StatusOr<Customer> FindCustomer(simdjson::dom::element body, const storage::Store& store,
                                      uint32_t workspace_id, const identity::IdentityRules& rules) {
  Customer c;
  bool given = false;
  for (std::string_view type : {identity::kUserId, identity::kAnonymousId}) {
    simdjson::dom::element v;
    if (body[type].get(v) != simdjson::SUCCESS) continue;
    std::string raw;  // a string, or an integer's digits, as collection takes ids
    if (absl::Status s = api::ReadId(v, type, &raw); !s.ok()) return s;
    if (raw.empty()) continue;
    given = true;
    const std::string id = identity::NormalizeIdentifier(type, raw);
    if (id.empty() || rules.Blocked(id)) continue;
    absl::StatusOr<std::optional<std::string>> suppressed =
        store.GetMeta(storage::SuppressionKey(workspace_id, type, id));
    if (!suppressed.ok()) return suppressed.status();
    if (suppressed->has_value() && c.suppressed.empty()) c.suppressed = type;
    if (c.visitor_hash == 0) c.visitor_hash = state::VisitorHash(type, id);  // userId's first
    c.visitor_ids.push_back({std::string(type), id});
    // A userId seen for the first time with a known anonymousId is the visitor who just signed
    // in: their profile is the anonymousId's until the identify event links the two.
    if (c.profile_id) continue;
    absl::StatusOr<std::optional<uint64_t>> found =
        state::ProfileEngine::Lookup(store, workspace_id, type, id);
    if (!found.ok()) return found.status();
    c.profile_id = *found;
  }
  if (!given) return InvalidInput("missing_field", "give userId or anonymousId", "userId");
  if (c.profile_id) {
    absl::StatusOr<state::Profile> read =
        state::ProfileEngine::ReadProfile(store, workspace_id, *c.profile_id);
    if (read.ok()) {
      c.profile = *std::move(read);
    } else if (read.status().code() != absl::StatusCode::kNotFound) {
      return read.status();
    }
  }
  return c;
}

state::EventFacts ContextFacts(simdjson::dom::element body, int64_t now_ms,
                               const state::ConsentPurposes& purposes, Customer* customer) {
  state::EventFacts f;
  f.type = api::EventType::kPage;
  f.timestamp_ms = now_ms;
  f.received_at_ms = now_ms;
  simdjson::dom::element context;
  if (body["context"].get(context) != simdjson::SUCCESS || !context.is_object()) return f;
  std::string_view v;
  if (context["userAgent"].get(v) == simdjson::SUCCESS) f.user_agent = v;
  simdjson::dom::element campaign;
  if (context["campaign"].get(campaign) == simdjson::SUCCESS && campaign.is_object()) {
    if (campaign["source"].get(v) == simdjson::SUCCESS) f.utm_source = v;
    if (campaign["medium"].get(v) == simdjson::SUCCESS) f.utm_medium = v;
    if (campaign["name"].get(v) == simdjson::SUCCESS) f.utm_campaign = v;
  }
  simdjson::dom::element page;
  if (context["page"].get(page) == simdjson::SUCCESS && page.is_object() &&
      page["referrer"].get(v) == simdjson::SUCCESS) {
    f.referrer_host = state::UrlHost(v);
  }
  state::ReadContextConsent(context, &f);
  state::FoldConsent(customer->profile, f, purposes, "request");
  return f;
}

}  // namespace whisperer::server
