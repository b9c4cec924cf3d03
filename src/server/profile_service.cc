#include "server/profile_service.h"

#include "api/query.h"
#include "common/json_writer.h"
#include "common/status.h"
#include "common/strings.h"
#include "common/timestamp.h"
#include "identity/resolver.h"
#include "server/decide_service.h"

namespace whisperer::server {

namespace http = net::http;

namespace {

constexpr std::string_view kLookupTypes[] = {"userId", "anonymousId", "email", "phone"};

absl::StatusOr<uint64_t> ProfileIdParam(const net::RequestContext& ctx) {
  std::string_view raw = net::PathParam(ctx);
  std::optional<uint64_t> id = state::ParseProfileId(raw);
  if (!id) {
    return MakeError(absl::StatusCode::kNotFound, "profile_not_found",
                     StrCat("no profile ", raw.substr(0, 64), " (profile ids look like prf_1a2b)"),
                     "id");
  }
  return *id;
}

}  // namespace

ProfileService::ProfileService(const api::KeyRing* keys, shard::ShardSet* shards,
                               state::ProfileEngine* engine, const storage::Store* store,
                               const Clock* clock)
    : keys_(keys), shards_(shards), engine_(engine), store_(store), clock_(clock) {}

void ProfileService::Register(net::Router* router) {
  router->Add(http::verb::get, "/v1/profiles/lookup",
              [this](net::RequestContext& ctx, net::Responder r) { HandleLookup(ctx, r); },
              {"userId", "anonymousId", "email", "phone", "type", "value"});
  router->Add(http::verb::get, "/v1/profiles/{id}",
              [this](net::RequestContext& ctx, net::Responder r) { HandleGet(ctx, r); });
  router->Add(http::verb::get, "/v1/profiles/{id}/events",
              [this](net::RequestContext& ctx, net::Responder r) { HandleEvents(ctx, r); },
              {"cursor", "limit"});
  router->Add(http::verb::put, "/v1/profiles/{id}/consent",
              [this](net::RequestContext& ctx, net::Responder r) { HandleConsent(ctx, r); });
  router->Add(http::verb::get, "/v1/profiles/{id}/export",
              [this](net::RequestContext& ctx, net::Responder r) { HandleExport(ctx, r); });
  router->Add(http::verb::delete_, "/v1/profiles/{id}",
              [this](net::RequestContext& ctx, net::Responder r) { HandleErase(ctx, r); },
              {"suppress"});
  router->Add(http::verb::post, "/v1/profiles/{id}/unmerge",
              [this](net::RequestContext& ctx, net::Responder r) { HandleUnmerge(ctx, r); });
  router->Add(http::verb::get, "/v1/journeys",
              [this](net::RequestContext& ctx, net::Responder r) { HandleJourneys(ctx, r); });
  router->Add(http::verb::get, "/v1/journeys/{id}/funnel",
              [this](net::RequestContext& ctx, net::Responder r) { HandleFunnel(ctx, r); },
              {"from", "to", "by", "version"});
}

absl::StatusOr<ProfileService::Target> ProfileService::Authorize(
    const net::RequestContext& ctx) const {
  absl::StatusOr<api::Principal> principal = Admin(ctx);
  if (!principal.ok()) return principal.status();
  absl::StatusOr<uint64_t> id = ProfileIdParam(ctx);
  if (!id.ok()) return id.status();
  return Target{principal->workspace_id, *id};
}

absl::StatusOr<api::Principal> ProfileService::Admin(const net::RequestContext& ctx) const {
  return api::AuthenticateAdmin(*keys_, net::Header(ctx.request, http::field::authorization));
}

absl::Status ProfileService::ProfilesOn() const {
  if (engine_ != nullptr) return absl::OkStatus();
  return MakeError(absl::StatusCode::kUnavailable, "profiles_disabled",
                   "profiles (and with them journeys) are off on this server "
                   "(ingest.profiles: false)");
}

absl::StatusOr<state::Profile> ProfileService::ReadTarget(const Target& target) const {
  absl::StatusOr<state::Profile> profile =
      state::ProfileEngine::ReadProfile(*store_, target.workspace_id, target.profile_id);
  if (profile.status().code() == absl::StatusCode::kNotFound) {
    // The profile of the path's {id}: name it as the field, as a malformed id is named.
    return MakeError(absl::StatusCode::kNotFound, "profile_not_found",
                     std::string(profile.status().message()), "id");
  }
  return profile;
}

absl::Status ProfileService::Change(const std::function<absl::Status(rocksdb::WriteBatch*)>& fn) {
  if (absl::Status on = ProfilesOn(); !on.ok()) return on;
  absl::Status s = shards_->WriteExclusive(fn);
  if (ErrorCodeOf(s) == "profile_not_found" && ErrorFieldOf(s).empty()) {
    // Every change is of the path's profile: name it, as ReadTarget does.
    return MakeError(absl::StatusCode::kNotFound, "profile_not_found", ToStd(s.message()), "id");
  }
  return s;
}

void ProfileService::HandleLookup(net::RequestContext& ctx, net::Responder respond) {
  absl::StatusOr<api::Principal> principal = Admin(ctx);
  if (!principal.ok()) return respond(net::ErrorResponse(principal.status()));
  std::string_view target = net::Target(ctx.request);
  std::string type;
  std::optional<std::string_view> raw;
  for (std::string_view t : kLookupTypes) {
    if (std::optional<std::string_view> v = api::QueryParam(target, t)) {
      if (raw) {
        return respond(net::ErrorResponse(InvalidInput(
            "invalid_value", "give exactly one of userId, anonymousId, email, phone", t)));
      }
      type = std::string(t);
      raw = v;
    }
  }
  if (raw && (api::QueryParam(target, "type") || api::QueryParam(target, "value"))) {
    return respond(net::ErrorResponse(InvalidInput(
        "invalid_value", "give exactly one of userId, anonymousId, email, phone, or type and value",
        "type")));
  }
  if (!raw) {
    std::optional<std::string_view> t = api::QueryParam(target, "type");
    raw = api::QueryParam(target, "value");
    if (!t) {
      return respond(net::ErrorResponse(InvalidInput(
          "missing_field", "give one of userId, anonymousId, email, phone, or type and value",
          "userId")));
    }
    if (!raw) {
      return respond(net::ErrorResponse(
          InvalidInput("missing_field", "type needs value: the identifier to look up", "value")));
    }
    absl::StatusOr<std::string> decoded = api::PercentDecode(*t, "type");
    if (!decoded.ok()) return respond(net::ErrorResponse(decoded.status()));
    // (Without profiles, nothing is resolved and nothing found: any type answers 404.)
    const identity::IdentityRules* rules =
        engine_ != nullptr ? &engine_->Settings(principal->workspace_id).rules : nullptr;
    if (rules != nullptr && !rules->KnownType(*decoded)) {
      std::string known = "userId, anonymousId, email, phone";
      for (const std::string& e : rules->external_ids) StrAppend(&known, ", ", e);
      return respond(net::ErrorResponse(
          InvalidInput("invalid_value",
                       StrCat("type '", decoded->substr(0, 64),
                              "' is no identifier type of this workspace (", known, ")"),
                       "type")));
    }
    type = *decoded;
  }
  absl::StatusOr<std::string> value = api::PercentDecode(*raw, type);
  if (!value.ok()) return respond(net::ErrorResponse(value.status()));
  if (value->empty()) {  // no identifier is empty: the caller left the value out
    return respond(net::ErrorResponse(
        InvalidInput("invalid_value", StrCat(type, " must not be empty"), type)));
  }
  // A value with nothing an identifier keeps (a phone without digits, blanks) names no one, as
  // at ingestion: a mistake in the request, not a customer who is not there.
  if (identity::NormalizeIdentifier(type, *value).empty()) {
    return respond(net::ErrorResponse(
        InvalidInput("invalid_value",
                     StrCat(type, " '", value->substr(0, 64), "' has nothing left once normalized",
                            type == identity::kPhone ? " (a phone needs digits)" : ""),
                     type)));
  }
  absl::StatusOr<std::optional<uint64_t>> id =
      state::ProfileEngine::Lookup(*store_, principal->workspace_id, type, *value);
  if (!id.ok()) return respond(net::ErrorResponse(id.status()));
  if (!id->has_value()) {
    return respond(net::ErrorResponse(
        MakeError(absl::StatusCode::kNotFound, "profile_not_found",
                  StrCat("no profile has ", type, " ", value->substr(0, 200)), type)));
  }
  // Follow a merge so the answer is always the surviving profile.
  absl::StatusOr<state::Profile> profile =
      state::ProfileEngine::ReadProfile(*store_, principal->workspace_id, **id);
  if (!profile.ok()) return respond(net::ErrorResponse(profile.status()));
  std::string body = R"({"profileId":)";
  AppendJsonString(&body, state::ProfileIdString(profile->id));
  body += "}";
  respond(net::JsonResponse(200, std::move(body)));
}

void ProfileService::HandleGet(net::RequestContext& ctx, net::Responder respond) {
  absl::StatusOr<Target> target = Authorize(ctx);
  if (!target.ok()) return respond(net::ErrorResponse(target.status()));
  absl::StatusOr<state::Profile> profile = ReadTarget(*target);
  if (!profile.ok()) return respond(net::ErrorResponse(profile.status()));
  std::string body;
  JsonWriter w(&body);
  std::function<void(JsonWriter&)> scores;
  if (engine_ != nullptr) {
    scores = [&](JsonWriter& out) {
      engine_->models().WriteScores(target->workspace_id, *profile, clock_->NowMillis(), out);
    };
  }
  state::WriteProfile(*profile, clock_->NowMillis(), w, scores);
  respond(net::JsonResponse(200, std::move(body)));
}

void ProfileService::HandleEvents(net::RequestContext& ctx, net::Responder respond) {
  absl::StatusOr<Target> target = Authorize(ctx);
  if (!target.ok()) return respond(net::ErrorResponse(target.status()));
  std::string_view url = net::Target(ctx.request);
  absl::StatusOr<uint64_t> before =
      api::ParseUintParam(api::QueryParam(url, "cursor").value_or(""), "cursor", 0, UINT64_MAX);
  if (!before.ok()) return respond(net::ErrorResponse(before.status()));
  absl::StatusOr<uint64_t> limit = api::PageLimit(url);
  if (!limit.ok()) return respond(net::ErrorResponse(limit.status()));
  absl::StatusOr<state::Profile> profile = ReadTarget(*target);
  if (!profile.ok()) return respond(net::ErrorResponse(profile.status()));
  absl::StatusOr<state::ProfileEngine::TimelinePage> page =
      state::ProfileEngine::Timeline(*store_, target->workspace_id, *profile, *before, *limit);
  if (!page.ok()) return respond(net::ErrorResponse(page.status()));
  std::string body = R"({"profileId":)";
  AppendJsonString(&body, state::ProfileIdString(profile->id));
  body += R"(,"events":[)";
  for (size_t i = 0; i < page->events.size(); ++i) {
    if (i) body += ',';
    body += page->events[i].second;
  }
  body += R"(],"nextCursor":)";
  if (page->next_before) {
    AppendJsonString(&body, std::to_string(*page->next_before));
  } else {
    body += "null";
  }
  body += page->next_before ? R"(,"hasMore":true})" : R"(,"hasMore":false})";
  respond(net::JsonResponse(200, std::move(body)));
}

void ProfileService::HandleConsent(net::RequestContext& ctx, net::Responder respond) {
  absl::StatusOr<Target> target = Authorize(ctx);
  if (!target.ok()) return respond(net::ErrorResponse(target.status()));
  simdjson::dom::parser parser;
  absl::StatusOr<simdjson::dom::element> parsed = api::JsonObjectBody(ctx.request.body(), parser);
  if (!parsed.ok()) return respond(net::ErrorResponse(parsed.status()));
  simdjson::dom::element body = *parsed;
  if (absl::Status s = api::RefuseUnknownKeys(body, {"purposes", "source", "timestamp"}); !s.ok()) {
    return respond(net::ErrorResponse(s));
  }
  int64_t at = clock_->NowMillis();
  std::string source = "api";
  simdjson::dom::element v;
  if (body["source"].get(v) == simdjson::SUCCESS) {
    std::string_view s;
    if (v.get(s) != simdjson::SUCCESS || s.empty() || s.size() > 200) {
      return respond(net::ErrorResponse(
          InvalidInput("wrong_type", "source must be a string of 1 to 200 bytes", "source")));
    }
    source = StrCat("api:", s);
  }
  if (body["timestamp"].get(v) == simdjson::SUCCESS) {
    std::string_view s;
    std::optional<int64_t> ts;
    if (v.get(s) == simdjson::SUCCESS) ts = ParseIso8601(s);
    if (!ts) {
      return respond(net::ErrorResponse(InvalidInput(
          "invalid_timestamp", "timestamp must be an ISO-8601 date-time", "timestamp")));
    }
    at = std::min(*ts, at);  // not later than now: see state::FoldConsent
  }
  simdjson::dom::object purposes;
  if (body["purposes"].get(purposes) != simdjson::SUCCESS || purposes.size() == 0) {
    return respond(net::ErrorResponse(InvalidInput(
        "missing_field", "purposes must be an object of purpose: granted|denied", "purposes")));
  }
  std::vector<std::pair<std::string, state::ConsentState>> changes;
  for (auto [purpose, value] : purposes) {
    bool granted = false;
    std::string_view s;
    bool valid = value.get(granted) == simdjson::SUCCESS;
    if (!valid && value.get(s) == simdjson::SUCCESS && (s == "granted" || s == "denied")) {
      granted = s == "granted";
      valid = true;
    }
    if (!valid) {
      return respond(net::ErrorResponse(
          InvalidInput("invalid_value", "must be \"granted\", \"denied\", true or false",
                       StrCat("purposes.", purpose))));
    }
    changes.emplace_back(std::string(purpose), state::ConsentState{granted, at, source});
  }
  absl::Status written = Change([&](rocksdb::WriteBatch* batch) {
    return engine_->SetConsent(target->workspace_id, target->profile_id, changes, batch);
  });
  if (!written.ok()) return respond(net::ErrorResponse(written));
  absl::StatusOr<state::Profile> profile = ReadTarget(*target);
  if (!profile.ok()) return respond(net::ErrorResponse(profile.status()));
  std::string out;
  JsonWriter w(&out);
  w.StartObject();
  w.Key("profileId");
  w.String(state::ProfileIdString(profile->id));
  w.Key("consent");
  state::WriteConsent(*profile, w);
  w.EndObject();
  respond(net::JsonResponse(200, std::move(out)));
}

void ProfileService::HandleExport(net::RequestContext& ctx, net::Responder respond) {
  absl::StatusOr<Target> target = Authorize(ctx);
  if (!target.ok()) return respond(net::ErrorResponse(target.status()));
  absl::StatusOr<state::Profile> profile = ReadTarget(*target);
  if (!profile.ok()) return respond(net::ErrorResponse(profile.status()));
  absl::StatusOr<std::vector<uint64_t>> sequences =
      state::ProfileEngine::Sequences(*store_, target->workspace_id, *profile);
  if (!sequences.ok()) return respond(net::ErrorResponse(sequences.status()));
  int64_t now = clock_->NowMillis();
  std::string body;
  JsonWriter w(&body);
  w.StartObject();
  w.Key("exportedAt");
  w.String(FormatIso8601(now));
  w.Key("profile");
  state::WriteProfile(*profile, now, w);
  w.Key("events");
  w.StartArray();
  for (uint64_t seq : *sequences) {
    absl::StatusOr<std::optional<std::string>> json = store_->GetEvent(target->workspace_id, seq);
    if (!json.ok()) return respond(net::ErrorResponse(json.status()));
    if (json->has_value()) w.RawValue(**json);
  }
  w.EndArray();
  if (absl::Status s = WriteCustomerDecisions(*store_, target->workspace_id, *profile, w);
      !s.ok()) {
    return respond(net::ErrorResponse(s));
  }
  w.EndObject();
  respond(net::JsonResponse(200, std::move(body)));
}

void ProfileService::HandleErase(net::RequestContext& ctx, net::Responder respond) {
  absl::StatusOr<Target> target = Authorize(ctx);
  if (!target.ok()) return respond(net::ErrorResponse(target.status()));
  std::optional<std::string_view> suppress_param =
      api::QueryParam(net::Target(ctx.request), "suppress");
  bool suppress = false;
  if (suppress_param) {
    if (*suppress_param == "true" || suppress_param->empty()) {
      suppress = true;
    } else if (*suppress_param != "false") {
      return respond(net::ErrorResponse(
          InvalidInput("invalid_value", "suppress must be true or false", "suppress")));
    }
  }
  state::ProfileEngine::Erased erased;
  // No decision, verdict, activation or reward about the customer is under way while it runs,
  // nor starts before it is written (DecideService::erasure_gate).
  Gate::Closed closed = Gate::Close(erasure_gate_);
  absl::Status written = Change([&](rocksdb::WriteBatch* batch) {
    absl::StatusOr<state::ProfileEngine::Erased> e =
        engine_->Erase(target->workspace_id, target->profile_id, suppress, batch);
    if (!e.ok()) return e.status();
    erased = *e;
    return absl::OkStatus();
  });
  if (!written.ok()) return respond(net::ErrorResponse(written));
  if (on_erased_) on_erased_(target->workspace_id, erased.customers);
  closed.Reset();
  std::string body = R"({"profileId":)";
  AppendJsonString(&body, state::ProfileIdString(erased.profile));
  StrAppend(&body, R"(,"erased":true,"events":)", erased.events, R"(,"identifiers":)",
            erased.identifiers, R"(,"decisions":)", erased.decisions, R"(,"suppressed":)",
            suppress ? "true" : "false", "}");
  respond(net::JsonResponse(200, std::move(body)));
}

void ProfileService::HandleUnmerge(net::RequestContext& ctx, net::Responder respond) {
  absl::StatusOr<Target> target = Authorize(ctx);
  if (!target.ok()) return respond(net::ErrorResponse(target.status()));
  simdjson::dom::parser parser;
  absl::StatusOr<simdjson::dom::element> parsed = api::JsonObjectBody(ctx.request.body(), parser);
  if (!parsed.ok()) return respond(net::ErrorResponse(parsed.status()));
  simdjson::dom::element body = *parsed;
  if (absl::Status s = api::RefuseUnknownKeys(body, {"identifiers"}); !s.ok()) {
    return respond(net::ErrorResponse(s));
  }
  simdjson::dom::array list;
  if (body["identifiers"].get(list) != simdjson::SUCCESS || list.size() == 0) {
    return respond(net::ErrorResponse(InvalidInput(
        "missing_field", "identifiers must be a non-empty list of {type, value}", "identifiers")));
  }
  std::vector<identity::Identifier> ids;
  for (simdjson::dom::element e : list) {
    std::string_view type, value;
    if (e["type"].get(type) != simdjson::SUCCESS || e["value"].get(value) != simdjson::SUCCESS) {
      return respond(net::ErrorResponse(
          InvalidInput("wrong_type", "each identifier needs a string type and value",
                       StrCat("identifiers[", ids.size(), "]"))));
    }
    ids.push_back({std::string(type), std::string(value)});
  }
  // The id of a profile merged into another stands for the survivor, which is what is split:
  // answer with the survivor's id (an unmerge makes the merged-away ids unknown).
  absl::StatusOr<state::Profile> survivor = ReadTarget(*target);
  if (!survivor.ok()) return respond(net::ErrorResponse(survivor.status()));
  uint64_t new_id = 0;
  absl::Status written = Change([&](rocksdb::WriteBatch* batch) {
    absl::StatusOr<uint64_t> id = engine_->Unmerge(target->workspace_id, survivor->id, ids, batch);
    if (!id.ok()) return id.status();
    new_id = *id;
    return absl::OkStatus();
  });
  if (!written.ok()) return respond(net::ErrorResponse(written));
  std::string out = R"({"profileId":)";
  AppendJsonString(&out, state::ProfileIdString(survivor->id));
  out += R"(,"newProfileId":)";
  AppendJsonString(&out, state::ProfileIdString(new_id));
  out += "}";
  respond(net::JsonResponse(200, std::move(out)));
}

void ProfileService::HandleJourneys(net::RequestContext& ctx, net::Responder respond) {
  absl::StatusOr<api::Principal> principal = Admin(ctx);
  if (!principal.ok()) return respond(net::ErrorResponse(principal.status()));
  if (absl::Status on = ProfilesOn(); !on.ok()) return respond(net::ErrorResponse(on));
  std::string body;
  JsonWriter w(&body);
  w.StartObject();
  w.Key("journeys");
  w.StartArray();
  for (const auto& j : engine_->Settings(principal->workspace_id).journeys) {
    w.StartObject();
    w.Key("id");
    w.String(j->id);
    w.Key("version");
    w.Int(j->version);
    w.Key("reentry");
    w.Bool(j->reentry);
    w.Key("stages");
    w.StartArray();
    for (const state::Journey::Stage& st : j->stages) {
      w.StartObject();
      w.Key("id");
      w.String(st.id);
      w.Key("entry");
      w.String(st.entry.source());
      if (st.timeout_ms > 0) {
        w.Key("timeout");
        w.StartObject();
        w.Key("afterMs");
        w.Int(st.timeout_ms);
        w.Key("to");
        w.String(st.timeout_to == state::Journey::kToExit
                     ? "exit"
                     : j->stages[static_cast<size_t>(st.timeout_to)].id);
        w.EndObject();
      }
      w.EndObject();
    }
    w.EndArray();
    w.Key("goal");
    w.String(j->goal.source());
    w.Key("exit");
    if (j->exit) {
      w.String(j->exit->source());
    } else {
      w.Null();
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  respond(net::JsonResponse(200, std::move(body)));
}

namespace {

constexpr int64_t kDayMs = 86'400'000;

// "YYYY-MM-DD" as days since the epoch, or `fallback` when absent.
absl::StatusOr<int64_t> DayParam(std::string_view target, std::string_view name, int64_t fallback) {
  std::optional<std::string_view> v = api::QueryParam(target, name);
  if (!v || v->empty()) return fallback;
  std::optional<int64_t> ms;
  if (v->size() == 10) ms = ParseIso8601(StrCat(*v, "T00:00:00Z"));
  if (!ms) return InvalidInput("invalid_value", StrCat(name, " must be a date: YYYY-MM-DD"), name);
  return *ms / kDayMs;
}

std::string DayString(int64_t day) { return FormatIso8601(day * kDayMs).substr(0, 10); }

}  // namespace

void WriteFunnel(const state::Journey& journey, int64_t from_day, int64_t to_day,
                 std::string_view by,
                 const std::vector<std::pair<std::string, state::FunnelCounts>>& groups,
                 JsonWriter& w, int64_t version) {
  const bool current = version == 0 || version == journey.version;
  // An earlier version had as many stages as its counts have (the config holds today's only).
  size_t stages = journey.stages.size();
  if (!current) {
    stages = 0;
    for (const auto& [value, c] : groups) stages = std::max(stages, c.entered.size());
  }
  w.StartObject();
  w.Key("journey");
  w.String(journey.id);
  w.Key("version");
  w.Int(current ? journey.version : version);
  // from after to: every day (replay), shown as null.
  for (auto [key, day] : {std::pair{"from", from_day}, std::pair{"to", to_day}}) {
    w.Key(key);
    if (from_day > to_day) {
      w.Null();
    } else {
      w.String(DayString(day));
    }
  }
  w.Key("by");
  w.String(by);
  w.Key("groups");
  w.StartArray();
  for (const auto& [value, c] : groups) {
    w.StartObject();
    w.Key("value");
    if (by == "all") {
      w.Null();
    } else {
      w.String(value);
    }
    w.Key("stages");
    w.StartArray();
    for (size_t i = 0; i < stages; ++i) {
      w.StartObject();
      w.Key("id");
      if (current) {
        w.String(journey.stages[i].id);
      } else {
        w.Null();
      }
      w.Key("entered");
      w.Uint(c.entered[i]);
      w.Key("movedOn");
      w.Uint(c.moved_on[i]);
      w.Key("dropOff");
      w.Uint(c.entered[i] >= c.moved_on[i] ? c.entered[i] - c.moved_on[i] : 0);
      w.Key("conversionFromPrevious");
      if (i == 0 || c.entered[i - 1] == 0) {
        w.Null();
      } else {
        w.Double(static_cast<double>(c.entered[i]) / static_cast<double>(c.entered[i - 1]));
      }
      for (auto [key, q] : {std::pair{"medianMsInStage", 0.5}, std::pair{"p90MsInStage", 0.9}}) {
        w.Key(key);
        int64_t ms = c.TimeQuantile(i, q);
        if (ms < 0) {
          w.Null();
        } else {
          w.Int(ms);
        }
      }
      w.EndObject();
    }
    w.EndArray();
    w.Key("converted");
    w.Uint(c.converted);
    w.Key("exited");
    w.Uint(c.exited);
    w.Key("conversion");
    if (c.entered.empty() || c.entered[0] == 0) {
      w.Null();
    } else {
      w.Double(static_cast<double>(c.converted) / static_cast<double>(c.entered[0]));
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
}

void ProfileService::HandleFunnel(net::RequestContext& ctx, net::Responder respond) {
  absl::StatusOr<api::Principal> principal = Admin(ctx);
  if (!principal.ok()) return respond(net::ErrorResponse(principal.status()));
  if (absl::Status on = ProfilesOn(); !on.ok()) return respond(net::ErrorResponse(on));
  const std::string& id = ctx.path_params.front();
  const state::Journey* journey = nullptr;
  for (const auto& j : engine_->Settings(principal->workspace_id).journeys) {
    if (j->id == id) journey = j.get();
  }
  if (journey == nullptr) {
    return respond(net::ErrorResponse(MakeError(absl::StatusCode::kNotFound, "journey_not_found",
                                                StrCat("no journey ", id.substr(0, 64)), "id")));
  }
  std::string_view url = net::Target(ctx.request);
  int64_t today = clock_->NowMillis() / kDayMs;
  absl::StatusOr<int64_t> to = DayParam(url, "to", today);
  if (!to.ok()) return respond(net::ErrorResponse(to.status()));
  // Thirty days back by default, not before the first day a date can name.
  absl::StatusOr<int64_t> from =
      DayParam(url, "from", std::max<int64_t>(*to - 29, kMinIso8601Millis / kDayMs));
  if (!from.ok()) return respond(net::ErrorResponse(from.status()));
  if (*from > *to) {
    return respond(
        net::ErrorResponse(InvalidInput("invalid_value", "from must not be after to", "from")));
  }
  std::string by(api::QueryParam(url, "by").value_or("all"));
  state::FunnelDimension dimension;
  if (by == "all" || by.empty()) {
    by = "all";
    dimension = state::FunnelDimension::kAll;
  } else if (by == "device") {
    dimension = state::FunnelDimension::kDevice;
  } else if (by == "source") {
    dimension = state::FunnelDimension::kSource;
  } else if (by == "persona") {
    dimension = state::FunnelDimension::kPersona;
  } else {
    return respond(net::ErrorResponse(
        InvalidInput("invalid_value", "by must be all, device, source or persona", "by")));
  }
  // An earlier version's funnel: its rows stay after the journey's version is raised.
  absl::StatusOr<uint64_t> version = api::ParseUintParam(
      api::QueryParam(url, "version").value_or(""), "version",
      static_cast<uint64_t>(journey->version), static_cast<uint64_t>(journey->version));
  if (!version.ok() || *version == 0) {
    return respond(net::ErrorResponse(InvalidInput(
        "invalid_value",
        StrCat("version must be a version of the journey, 1 to ", journey->version), "version")));
  }
  absl::StatusOr<std::vector<std::pair<std::string, state::FunnelCounts>>> groups =
      state::ProfileEngine::Funnel(*store_, principal->workspace_id, *journey, *from, *to,
                                   dimension, static_cast<int64_t>(*version));
  if (!groups.ok()) return respond(net::ErrorResponse(groups.status()));
  std::string body;
  JsonWriter w(&body);
  WriteFunnel(*journey, *from, *to, by, *groups, w, static_cast<int64_t>(*version));
  respond(net::JsonResponse(200, std::move(body)));
}

}  // namespace whisperer::server
