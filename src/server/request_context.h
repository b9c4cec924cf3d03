// What the request-time APIs (POST /v1/experience, POST /v1/decide) read from a request body:
// who the customer is, their stored profile, and the request's context as the facts of a page
// event, so that the condition language (state/conditions.h) answers device, campaign and
// referrer for them.
//
// Thread-safety: pure functions over the store's thread-safe reads.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "api/auth.h"
#include "common/json_writer.h"
#include "identity/resolver.h"
#include "net/http_server.h"
#include "simdjson.h"
#include "state/profile.h"
#include "storage/store.h"

namespace whisperer::server {

struct Customer {
  std::optional<uint64_t> profile_id;  // none: a first-time visitor
  // A first-time visitor's identifiers (userId and anonymousId, normalized, blocked values left
  // out: identity.blocked_values, `anonymous` or `null`... name no one), and the key
  // (state::VisitorHash) of the one their contacts are kept under: the userId when given, which
  // every device of theirs sends once they sign in, else the anonymousId (one browser's). 0 when
  // none is usable: such a visitor is answered, but nothing is kept for them.
  std::vector<identity::Identifier> visitor_ids;
  uint64_t visitor_hash = 0;
  // The field ("userId" or "anonymousId") of an identifier given that was erased with
  // ?suppress=true (nothing may be kept about them); empty when none was.
  std::string_view suppressed;
  state::Profile profile;  // as stored; empty for a first-time visitor
};

// The body of a request-time call, parsed by `parser` (which must outlive it) as a JSON object,
// and its caller authenticated like collection: a write or admin key, from the Authorization
// header (checked before the body is parsed) or, without one, `writeKey` in the body.
struct CallerRequest {
  simdjson::dom::element body;
  api::Principal principal;
};
absl::StatusOr<CallerRequest> ReadCallerRequest(const api::KeyRing& keys,
                                                const net::RequestContext& ctx,
                                                simdjson::dom::parser& parser);

// The guard of the routes a write key may call (collection, decisions, experiences): it refuses
// a request whose Authorization header carries a key that is not a valid write or admin key,
// from the header alone (so before the body is read), and lets one without a key through (the
// body may hold it). `refused` (may be null) is told of every refusal before the handler.
// `keys` must outlive the router.
net::RouteGuard HeaderKeyGuard(const api::KeyRing* keys,
                               std::function<void(const absl::Status&)> refused = nullptr);

// The guard of the routes only an admin key may call: it refuses a request whose Authorization
// header carries no valid admin key (401, or 403 for a write key) from the header alone, as
// their handlers do, so that such a request learns nothing of what else is wrong with it (a
// body over the limit, a repeated query parameter). `keys` must outlive the router.
net::RouteGuard AdminKeyGuard(const api::KeyRing* keys);

// The end of a page of a cursor-paginated list: "nextCursor" (`next`, or null on the last page,
// when `more` is false) and "hasMore", then the object's close.
void EndPage(JsonWriter& w, std::string_view next, bool more);

// Segment's `context` and `properties` of the body, when given and not null, are objects: else
// 400 wrong_type naming the field (as collection answers).
absl::Status CheckSegmentObjects(simdjson::dom::element body);

// The customer of a request-time call: the profile of its userId, else of its anonymousId (a
// visitor who just signed in is known by the anonymousId until the identify event links the
// two), else a first-time visitor keyed by the userId, else the anonymousId. Values are
// normalized and blocked ones passed over as the workspace's identity `rules` say, as for
// events. 400 missing_field without either, wrong_type when one is not a string.
absl::StatusOr<Customer> FindCustomer(simdjson::dom::element body, const storage::Store& store,
                                      uint32_t workspace_id, const identity::IdentityRules& rules);

// The request as a page event: the device (context.userAgent), campaign (context.campaign) and
// referrer (context.page.referrer) of its context, at `now_ms`. The consent its context states
// (context.consent, as an event's: the names `purposes` knows) is set on `customer`'s profile
// for this answer: the page's consent manager knows the latest. Events, not requests, store it.
state::EventFacts ContextFacts(simdjson::dom::element body, int64_t now_ms,
                               const state::ConsentPurposes& purposes, Customer* customer);

}  // namespace whisperer::server
