// ExperienceService: how the experience should adapt for a customer right now, and the catalog
// data behind urgency and scarcity triggers.
//
//   POST /v1/experience               write or admin key (the page asks, like Segment's
//                                     browser SDK); body {"userId"|"anonymousId", "context":
//                                     {"userAgent", "page", "campaign"}, "properties": {...},
//                                     "items": ["sku", ...]}. Reads the customer's profile, treats
//                                     the request as a page event for the conditions, and
//                                     answers persona, intent, journey stages, device, the
//                                     adaptation hints with the rule that won each and the rules
//                                     that lost, and triggers for the items. Stores nothing but
//                                     the trigger cap count.
//   PUT /v1/catalog/items/{id}        admin key; {"stock": n, "offerEndsAt": "ISO-8601"|null,
//                                     "name": "...", "price": n}: the item's real stock and offer
//   GET /v1/catalog/items/{id}        admin key; the item as stored; 404 item_not_found
//   DELETE /v1/catalog/items/{id}     admin key; {"deleted": id}; 404 item_not_found
//   GET /v1/catalog/items             admin key; ?limit=&cursor=: the items in id order, a page
//                                     at a time (nextCursor: the last id of the page)
//
// Triggers come only from data: low_stock from the catalog's stock, offer_ending from its
// offer deadline, viewing_now from Product Viewed events of other customers in the workspace's
// viewing window (state/experience.h LiveViews). Each names its source. They are shown only to
// a customer who granted `personalization` consent, and to each customer in at most
// `triggers.max_per_profile_per_day` answers per UTC day (counted in the store, so a restart
// keeps the count).
//
// Thread-safety: handlers run on any server thread; the cap counts are guarded by a mutex (the
// count is read, checked and written under it).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "api/auth.h"
#include "common/clock.h"
#include "net/http_server.h"
#include "server/workspaces.h"
#include "state/device.h"
#include "state/experience.h"
#include "storage/store.h"

namespace whisperer::server {

class ExperienceService {
 public:
  // `detector` may be null (no device facts); `live_views` may be null (no viewing_now).
  ExperienceService(const api::KeyRing* keys, const std::vector<Workspace>* workspaces,
                    storage::Store* store, const state::DeviceDetector* detector,
                    const state::LiveViews* live_views, const Clock* clock);

  void Register(net::Router* router);

  void HandleExperience(net::RequestContext& ctx, net::Responder respond);
  void HandlePutItem(net::RequestContext& ctx, net::Responder respond);
  void HandleGetItem(net::RequestContext& ctx, net::Responder respond);
  void HandleDeleteItem(net::RequestContext& ctx, net::Responder respond);
  void HandleListItems(net::RequestContext& ctx, net::Responder respond);

  // Their profile was erased: forgets the trigger counts held in memory of `customers` (profile
  // ids and state::VisitorIndex values; their rows went with the erasure).
  void Forget(uint32_t workspace_id, const std::vector<uint64_t>& customers);

 private:
  const Workspace* WorkspaceById(uint32_t id) const;
  // Counts one answer with triggers for the customer `counter` today (a profile id, or a
  // first-time visitor's state::VisitorIndex), in memory and in the store's `caps` column
  // family; false when the cap is reached.
  absl::StatusOr<bool> TakeTriggerAllowance(uint32_t workspace_id, uint64_t counter, int64_t cap);

  const api::KeyRing* keys_;
  std::map<uint32_t, const Workspace*> workspaces_;
  storage::Store* store_;
  const state::DeviceDetector* detector_;
  const state::LiveViews* live_views_;
  const Clock* clock_;

  struct Shown {
    int64_t day = 0;
    int64_t count = 0;
  };
  std::mutex mu_;
  absl::flat_hash_map<std::pair<uint32_t, uint64_t>, Shown> shown_;  // GUARDED_BY(mu_)
};

}  // namespace whisperer::server
