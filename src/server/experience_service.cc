#include "server/experience_service.h"

#include <simdjson.h>

#include "api/query.h"
#include "common/json_writer.h"
#include "common/status.h"
#include "common/strings.h"
#include "common/timestamp.h"
#include "server/request_context.h"
#include "state/conditions.h"
#include "state/intent.h"
#include "state/profiles.h"
#include "storage/keys.h"

namespace whisperer::server {

namespace http = net::http;

namespace {

constexpr size_t kMaxItems = 50;
constexpr size_t kMaxItemIdBytes = 256;

std::string CatalogKey(uint32_t workspace_id, std::string_view item) {
  std::string key = storage::WorkspacePrefix(workspace_id);
  key.append(item);
  return key;
}

// The catalog item the path names, for an admin key: its id and its key in the store.
struct ItemRef {
  std::string id;
  std::string key;
};
absl::StatusOr<ItemRef> AdminItem(const api::KeyRing& keys, const net::RequestContext& ctx) {
  absl::StatusOr<api::Principal> principal =
      api::AuthenticateAdmin(keys, net::Header(ctx.request, net::http::field::authorization));
  if (!principal.ok()) return principal.status();
  absl::StatusOr<std::string> id = api::PercentDecode(net::PathParam(ctx), "id");
  if (!id.ok()) return id.status();
  if (id->empty() || id->size() > kMaxItemIdBytes) {
    return InvalidInput("invalid_value", "an item id is 1 to 256 bytes", "id");
  }
  std::string key = CatalogKey(principal->workspace_id, *id);
  return ItemRef{*std::move(id), std::move(key)};
}

absl::Status ItemNotFound(std::string_view id) {
  return MakeError(absl::StatusCode::kNotFound, "item_not_found", StrCat("no catalog item ", id),
                   "id");
}

// A stored catalog item, as PUT stored it.
struct Item {
  std::optional<int64_t> stock;
  int64_t offer_ends_ms = 0;  // 0: no offer deadline
};

std::optional<Item> ParseItem(std::string_view json, simdjson::dom::parser& parser) {
  simdjson::dom::element doc;
  if (parser.parse(json.data(), json.size()).get(doc) != simdjson::SUCCESS) return std::nullopt;
  Item item;
  int64_t stock;
  if (doc["stock"].get(stock) == simdjson::SUCCESS) item.stock = stock;
  std::string_view ends;
  if (doc["offerEndsAt"].get(ends) == simdjson::SUCCESS) {
    item.offer_ends_ms = ParseIso8601(ends).value_or(0);
  }
  return item;
}

}  // namespace

ExperienceService::ExperienceService(const api::KeyRing* keys,
                                     const std::vector<Workspace>* workspaces,
                                     storage::Store* store, const state::DeviceDetector* detector,
                                     const state::LiveViews* live_views, const Clock* clock)
    : keys_(keys), store_(store), detector_(detector), live_views_(live_views), clock_(clock) {
  for (const Workspace& ws : *workspaces) workspaces_[ws.id] = &ws;
}

void ExperienceService::Register(net::Router* router) {
  router->Add(http::verb::post, "/v1/experience",
              [this](net::RequestContext& ctx, net::Responder r) { HandleExperience(ctx, r); });
  router->AllowBrowsers("/v1/experience");  // called by the page itself
  router->Guard("/v1/experience", HeaderKeyGuard(keys_));
  router->Add(http::verb::put, "/v1/catalog/items/{id}",
              [this](net::RequestContext& ctx, net::Responder r) { HandlePutItem(ctx, r); });
  router->Add(http::verb::get, "/v1/catalog/items/{id}",
              [this](net::RequestContext& ctx, net::Responder r) { HandleGetItem(ctx, r); });
  router->Add(http::verb::delete_, "/v1/catalog/items/{id}",
              [this](net::RequestContext& ctx, net::Responder r) { HandleDeleteItem(ctx, r); });
  router->Add(http::verb::get, "/v1/catalog/items",
              [this](net::RequestContext& ctx, net::Responder r) { HandleListItems(ctx, r); },
              {"limit", "cursor"});
}

const Workspace* ExperienceService::WorkspaceById(uint32_t id) const {
  auto it = workspaces_.find(id);
  return it == workspaces_.end() ? nullptr : it->second;
}

absl::StatusOr<bool> ExperienceService::TakeTriggerAllowance(uint32_t workspace_id,
                                                             uint64_t counter, int64_t cap) {
  const int64_t day = clock_->NowMillis() / 86'400'000;
  const std::string key = storage::TriggerCountKey(workspace_id, counter);
  std::lock_guard lock(mu_);
  auto it = shown_.find({workspace_id, counter});
  if (it == shown_.end()) {
    // Not seen since the start: the count kept in the store, if any.
    Shown stored;
    absl::StatusOr<std::optional<std::string>> value = store_->Get(store_->caps(), key);
    if (!value.ok()) return value.status();
    if (value->has_value() && (*value)->size() == 16) {
      stored = {static_cast<int64_t>(storage::GetBigEndian64((*value)->data())),
                static_cast<int64_t>(storage::GetBigEndian64((*value)->data() + 8))};
    }
    it = shown_.emplace(std::make_pair(workspace_id, counter), stored).first;
  }
  Shown& s = it->second;
  if (s.day != day) s = {day, 0};
  if (s.count >= cap) return false;
  std::string value;
  storage::PutBigEndian64(&value, static_cast<uint64_t>(day));
  storage::PutBigEndian64(&value, static_cast<uint64_t>(s.count + 1));
  rocksdb::WriteBatch batch;
  rocksdb::Status put = batch.Put(store_->caps(), key, value);
  absl::Status written = put.ok() ? store_->Write(&batch) : absl::InternalError(put.ToString());
  if (!written.ok()) return written;
  ++s.count;
  return true;
}

void ExperienceService::Forget(uint32_t workspace_id, const std::vector<uint64_t>& customers) {
  std::lock_guard lock(mu_);
  for (uint64_t c : customers) shown_.erase({workspace_id, c});
}

void ExperienceService::HandlePutItem(net::RequestContext& ctx, net::Responder respond) {
  absl::StatusOr<ItemRef> item = AdminItem(*keys_, ctx);
  if (!item.ok()) return respond(net::ErrorResponse(item.status()));
  const std::string* id = &item->id;
  simdjson::dom::parser parser;
  absl::StatusOr<simdjson::dom::element> body = api::JsonObjectBody(ctx.request.body(), parser);
  if (!body.ok()) return respond(net::ErrorResponse(body.status()));
  std::string json;
  JsonWriter w(&json);
  w.StartObject();
  w.Key("id");
  w.String(*id);
  for (auto [key, value] : simdjson::dom::object(*body)) {
    if (key == "updatedAt") {
      continue;  // what GET answered can be sent back as it is: the time of a change is ours
    } else if (key == "id") {
      std::string_view text;
      if (value.get(text) != simdjson::SUCCESS || text != *id) {
        return respond(net::ErrorResponse(InvalidInput(
            value.is_string() ? "invalid_value" : "wrong_type",
            StrCat("id must be the item's id in the path, ", *id, ", or absent"), "id")));
      }
    } else if (key == "stock") {
      const std::optional<uint64_t> stock = api::WholeNumber(value, UINT64_MAX);
      if (!stock) {
        return respond(net::ErrorResponse(
            InvalidInput(value.is_number() ? "invalid_value" : "wrong_type",
                         "stock must be a whole number from 0 to 9007199254740991", "stock")));
      }
      w.Key("stock");
      w.Uint(*stock);
    } else if (key == "offerEndsAt") {
      std::string_view ends;
      if (value.is_null()) {
        w.Key("offerEndsAt");
        w.Null();
        continue;
      }
      std::optional<int64_t> ms;
      if (value.get(ends) == simdjson::SUCCESS) ms = ParseIso8601(ends);
      if (!ms) {
        return respond(net::ErrorResponse(
            InvalidInput(value.is_string() ? "invalid_timestamp" : "wrong_type",
                         "offerEndsAt must be an ISO-8601 time or null", "offerEndsAt")));
      }
      w.Key("offerEndsAt");
      w.String(FormatIso8601(*ms));
    } else if (key == "price") {
      double price;
      if (value.get(price) != simdjson::SUCCESS || price < 0) {
        return respond(
            net::ErrorResponse(InvalidInput(value.is_number() ? "invalid_value" : "wrong_type",
                                            "price must be a number, 0 or more", "price")));
      }
      w.Key("price");
      w.Double(price);
    } else if (key == "name") {
      std::string_view name;
      if (value.get(name) != simdjson::SUCCESS || name.size() > 1024) {
        return respond(net::ErrorResponse(
            InvalidInput(value.is_string() ? "invalid_value" : "wrong_type",
                         "name must be a string of at most 1024 bytes", "name")));
      }
      w.Key("name");
      w.String(name);
    } else {
      return respond(net::ErrorResponse(
          InvalidInput("invalid_value",
                       StrCat("unknown field '", key,
                              "'; expected stock, offerEndsAt, price, name (and id, updatedAt as "
                              "read)"),
                       std::string(key))));
    }
  }
  w.Key("updatedAt");
  w.String(FormatIso8601(clock_->NowMillis()));
  w.EndObject();
  rocksdb::WriteBatch batch;
  rocksdb::Status put = batch.Put(store_->catalog(), item->key, json);
  absl::Status s = put.ok() ? store_->Write(&batch) : absl::InternalError(put.ToString());
  if (!s.ok()) return respond(net::ErrorResponse(s));
  respond(net::JsonResponse(200, std::move(json)));
}

void ExperienceService::HandleGetItem(net::RequestContext& ctx, net::Responder respond) {
  absl::StatusOr<ItemRef> item = AdminItem(*keys_, ctx);
  if (!item.ok()) return respond(net::ErrorResponse(item.status()));
  absl::StatusOr<std::optional<std::string>> stored = store_->Get(store_->catalog(), item->key);
  if (!stored.ok()) return respond(net::ErrorResponse(stored.status()));
  if (!stored->has_value()) return respond(net::ErrorResponse(ItemNotFound(item->id)));
  respond(net::JsonResponse(200, **std::move(stored)));
}

void ExperienceService::HandleDeleteItem(net::RequestContext& ctx, net::Responder respond) {
  absl::StatusOr<ItemRef> item = AdminItem(*keys_, ctx);
  if (!item.ok()) return respond(net::ErrorResponse(item.status()));
  absl::StatusOr<std::optional<std::string>> stored = store_->Get(store_->catalog(), item->key);
  if (!stored.ok()) return respond(net::ErrorResponse(stored.status()));
  if (!stored->has_value()) return respond(net::ErrorResponse(ItemNotFound(item->id)));
  rocksdb::WriteBatch batch;
  rocksdb::Status del = batch.Delete(store_->catalog(), item->key);
  absl::Status s = del.ok() ? store_->Write(&batch) : absl::InternalError(del.ToString());
  if (!s.ok()) return respond(net::ErrorResponse(s));
  std::string out;
  JsonWriter w(&out);
  w.StartObject();
  w.Key("deleted");
  w.String(item->id);
  w.EndObject();
  respond(net::JsonResponse(200, std::move(out)));
}

void ExperienceService::HandleListItems(net::RequestContext& ctx, net::Responder respond) {
  absl::StatusOr<api::Principal> principal =
      api::AuthenticateAdmin(*keys_, net::Header(ctx.request, http::field::authorization));
  if (!principal.ok()) return respond(net::ErrorResponse(principal.status()));
  std::string_view url = net::Target(ctx.request);
  absl::StatusOr<uint64_t> limit = api::PageLimit(url);
  if (!limit.ok()) return respond(net::ErrorResponse(limit.status()));
  const std::string prefix = CatalogKey(principal->workspace_id, "");
  std::string start = prefix;
  if (std::optional<std::string_view> raw = api::QueryParam(url, "cursor"); raw && !raw->empty()) {
    absl::StatusOr<std::string> cursor = api::PercentDecode(*raw, "cursor");
    if (!cursor.ok()) return respond(net::ErrorResponse(cursor.status()));
    // The page after the cursor's item: the first key past it (its id and a 0 byte).
    start += *cursor;
    start.push_back('\0');
  }
  std::string out;
  JsonWriter w(&out);
  w.StartObject();
  w.Key("items");
  w.StartArray();
  uint64_t n = 0;
  bool more = false;
  std::string last;
  absl::Status s = store_->ScanPrefixFrom(store_->catalog(), prefix, start,
                                          [&](std::string_view key, std::string_view json) {
                                            if (n == *limit) {
                                              more = true;
                                              return false;
                                            }
                                            w.RawValue(json);
                                            last.assign(key.substr(prefix.size()));
                                            ++n;
                                            return true;
                                          });
  if (!s.ok()) return respond(net::ErrorResponse(s));
  w.EndArray();
  EndPage(w, last, more);
  respond(net::JsonResponse(200, std::move(out)));
}

void ExperienceService::HandleExperience(net::RequestContext& ctx, net::Responder respond) {
  simdjson::dom::parser parser;
  absl::StatusOr<CallerRequest> request = ReadCallerRequest(*keys_, ctx, parser);
  if (!request.ok()) return respond(net::ErrorResponse(request.status()));
  const simdjson::dom::element body = request->body;
  if (absl::Status s = api::RefuseUnknownKeys(
          body, {"userId", "anonymousId", "context", "properties", "items", "writeKey"},
          /*segment_envelope=*/true);
      !s.ok()) {
    return respond(net::ErrorResponse(s));
  }
  const api::Principal* principal = &request->principal;
  const Workspace* ws = WorkspaceById(principal->workspace_id);
  if (ws == nullptr) return respond(net::ErrorResponse(absl::InternalError("unknown workspace")));

  absl::StatusOr<Customer> customer = FindCustomer(body, *store_, ws->id, ws->profiles.rules);
  if (!customer.ok()) return respond(net::ErrorResponse(customer.status()));
  std::vector<std::string_view> items;
  simdjson::dom::element items_el;
  if (body["items"].get(items_el) == simdjson::SUCCESS) {
    simdjson::dom::array list;
    if (items_el.get(list) != simdjson::SUCCESS) {
      return respond(net::ErrorResponse(
          InvalidInput("wrong_type", "items must be a list of item ids", "items")));
    }
    size_t index = 0;
    for (simdjson::dom::element e : list) {
      std::string_view id;
      const std::string field = StrCat("items[", index++, "]");
      if (e.get(id) != simdjson::SUCCESS) {
        return respond(net::ErrorResponse(
            InvalidInput("wrong_type", "items must be a list of item ids (strings)", field)));
      }
      if (id.empty() || id.size() > kMaxItemIdBytes) {
        return respond(net::ErrorResponse(InvalidInput(
            "invalid_value", StrCat("an item id is 1 to ", kMaxItemIdBytes, " bytes"), field)));
      }
      // An item named twice is one item (its triggers are answered once).
      if (std::find(items.begin(), items.end(), id) == items.end()) items.push_back(id);
    }
    if (items.size() > kMaxItems) {
      return respond(net::ErrorResponse(
          InvalidInput("invalid_value", StrCat("at most ", kMaxItems, " items"), "items")));
    }
  }
  if (absl::Status s = CheckSegmentObjects(body); !s.ok()) {
    return respond(net::ErrorResponse(s));
  }

  const int64_t now = clock_->NowMillis();
  state::EventFacts facts = ContextFacts(body, now, ws->profiles.fold.consent, &*customer);
  const state::Profile& profile = customer->profile;
  state::DeviceFacts device_scratch;
  const state::DeviceFacts* device =
      state::DetectDevice(detector_, facts.user_agent, &device_scratch);
  // A customer who denied personalization gets the page adapted to the request's context alone
  // (device, campaign, page): the rules see an empty profile, and the answer describes none (no
  // persona, intent or journeys for the page to personalize with).
  static const state::Profile kNobody;
  const bool personalize = !profile.Denied("personalization");
  const state::Profile& described = personalize ? profile : kNobody;
  state::EventBindings bindings(facts, body, described, device, now);
  std::vector<state::HintChoice> hints;
  if (ws->adaptations != nullptr) hints = state::Adapt(*ws->adaptations, bindings);

  std::string out;
  JsonWriter w(&out);
  w.StartObject();
  w.Key("profileId");
  if (profile.id != 0) {
    w.String(state::ProfileIdString(profile.id));
  } else {
    w.Null();
  }
  w.Key("persona");
  if (described.persona.id.empty()) {
    w.Null();
  } else {
    w.StartObject();
    w.Key("id");
    w.String(described.persona.id);
    w.Key("confidence");
    w.Double(described.persona.confidence);
    w.EndObject();
  }
  w.Key("intent");
  state::WriteIntent(described, now, w);
  w.Key("journeys");
  w.StartObject();
  for (const auto& [id, j] : described.journeys) {
    w.Key(id);
    w.StartObject();
    w.Key("stage");
    w.String(j.stage);
    w.Key("status");
    w.String(j.status);
    w.EndObject();
  }
  w.EndObject();
  w.Key("device");
  if (device == nullptr) {
    w.Null();
  } else {
    w.StartObject();
    w.Key("type");
    w.String(device->type);
    w.Key("os");
    w.StringOrNull(device->os);
    w.Key("browser");
    w.StringOrNull(device->browser);
    w.EndObject();
  }
  w.Key("adaptations");
  w.StartObject();
  for (const state::HintChoice& c : hints) {
    w.Key(c.hint);
    w.String(c.value);
  }
  w.EndObject();
  w.Key("explanations");
  w.StartArray();
  for (const state::HintChoice& c : hints) {
    w.StartObject();
    w.Key("hint");
    w.String(c.hint);
    w.Key("value");
    w.String(c.value);
    w.Key("rule");
    w.String(c.winner->id);
    w.Key("priority");
    w.Int(c.winner->priority);
    w.Key("overruled");
    w.StartArray();
    for (const state::HintChoice::Lost& l : c.lost) {
      w.StartObject();
      w.Key("rule");
      w.String(l.rule->id);
      w.Key("value");
      w.String(l.value);
      w.Key("priority");
      w.Int(l.rule->priority);
      w.Key("reason");
      w.String(l.reason);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();

  // Triggers: real data only, with consent, within the cap.
  const config::TriggerConfig& t = ws->triggers;
  std::string triggers;
  JsonWriter tw(&triggers);
  tw.StartArray();
  size_t shown = 0;
  std::string_view withheld;
  auto consent = profile.consent.find("personalization");
  const bool consented = consent != profile.consent.end() && consent->second.granted;
  if (!items.empty() && !consented) withheld = "no_personalization_consent";
  // One trigger: its type, item, what `fill` writes and where the data comes from.
  auto add = [&](std::string_view type, std::string_view item, auto&& fill,
                 std::string_view source) {
    tw.StartObject();
    tw.Key("type");
    tw.String(type);
    tw.Key("item");
    tw.String(item);
    fill();
    tw.Key("source");
    tw.String(source);
    tw.EndObject();
    ++shown;
  };
  simdjson::dom::parser item_parser;  // one for every item of the request
  for (std::string_view item : items) {
    if (!consented) break;
    absl::StatusOr<std::optional<std::string>> stored =
        store_->Get(store_->catalog(), CatalogKey(ws->id, item));
    if (!stored.ok()) return respond(net::ErrorResponse(stored.status()));
    std::optional<Item> it = stored->has_value() ? ParseItem(**stored, item_parser) : std::nullopt;
    if (it && it->stock && *it->stock > 0 && *it->stock <= t.low_stock_at_most) {
      add(
          "low_stock", item,
          [&] {
            tw.Key("stock");
            tw.Int(*it->stock);
          },
          "catalog");
    }
    if (it && it->offer_ends_ms > now && it->offer_ends_ms - now <= t.offer_ending_within_ms) {
      add(
          "offer_ending", item,
          [&] {
            tw.Key("endsAt");
            tw.String(FormatIso8601(it->offer_ends_ms));
          },
          "catalog");
    }
    size_t viewers = live_views_ == nullptr
                         ? 0
                         : live_views_->Viewers(ws->id, item, profile.id, now, t.viewing_window_ms);
    if (viewers > 0 && static_cast<int64_t>(viewers) >= t.viewing_now_at_least) {
      add(
          "viewing_now", item,
          [&] {
            tw.Key("viewers");
            tw.Uint(viewers);
          },
          StrCat("Product Viewed events in the last ", t.viewing_window_ms / 60'000, " minutes"));
    }
  }
  tw.EndArray();
  if (shown > 0) {
    // A first-time visitor's answers count under their identifier (the userId's when given, as
    // decide keeps their contacts); one known only by blocked values names no one, and all
    // such share one count.
    const uint64_t counter = profile.id != 0 ? profile.id
                             : customer->visitor_hash != 0
                                 ? state::VisitorIndex(customer->visitor_hash)
                                 : 0;
    absl::StatusOr<bool> allowed = TakeTriggerAllowance(ws->id, counter, t.max_per_profile_per_day);
    if (!allowed.ok()) return respond(net::ErrorResponse(allowed.status()));
    if (!*allowed) {
      withheld = "daily_cap_reached";
      shown = 0;
    }
  }
  w.Key("triggers");
  w.RawValue(shown > 0 ? std::string_view(triggers) : std::string_view("[]"));
  w.Key("triggersWithheld");
  w.StringOrNull(withheld);
  w.EndObject();
  respond(net::JsonResponse(200, std::move(out)));
}

}  // namespace whisperer::server
