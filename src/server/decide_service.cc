#include "server/decide_service.h"

#include <algorithm>
#include <charconv>
#include <random>
#include <span>

#include "api/query.h"
#include "common/hash.h"
#include "common/json_writer.h"
#include "common/status.h"
#include "common/strings.h"
#include "common/timestamp.h"
#include "decide/decider.h"
#include "decide/log.h"
#include "obs/log.h"
#include "server/request_context.h"
#include "state/conditions.h"
#include "state/models.h"
#include "storage/keys.h"

namespace whisperer::server {

namespace http = net::http;

namespace {

constexpr size_t kMaxSlots = 20;
// The stored edit of an action deleted through /v1/actions.
constexpr std::string_view kDeletedAction = R"({"deleted":true})";
// Decisions per export page: by default, and at most.
constexpr uint64_t kExportLimit = 10'000;
constexpr uint64_t kMaxExportLimit = 100'000;
// Decisions a lift report reads at most (it says when there were more).
constexpr uint64_t kMaxLiftDecisions = 1'000'000;

std::mt19937_64& Rng() {
  thread_local std::mt19937_64 rng(std::random_device{}());
  return rng;
}

absl::Status StoreError(const rocksdb::Status& s) {
  return absl::InternalError(ToAbsl(StrCat("decision log: ", s.ToString())));
}

// The context's features beside the profile's (state/models.h ProfileFeatures): the device
// type, the campaign's source and medium, and the referrer's host.
void ContextFeatures(const state::EventFacts& facts, const state::DeviceFacts* device,
                     learn::FeatureBuilder* b) {
  if (device != nullptr && !device->type.empty()) b->Categorical("context.device", device->type);
  if (!facts.utm_source.empty()) b->Categorical("context.source", facts.utm_source);
  if (!facts.utm_medium.empty()) b->Categorical("context.medium", facts.utm_medium);
  if (!facts.referrer_host.empty()) b->Categorical("context.referrer", facts.referrer_host);
}

void WriteTreatment(JsonWriter& w, std::string_view id, std::string_view channel) {
  w.StartObject();
  w.Key("id");
  w.String(id);
  w.Key("channel");
  w.String(channel);
  w.EndObject();
}

void WriteFactors(JsonWriter& w, const std::vector<decide::Factor>& factors) {
  w.StartArray();
  for (const decide::Factor& f : factors) {
    w.StartObject();
    w.Key("feature");
    w.String(f.feature);
    w.Key("contribution");
    w.Double(f.contribution);
    w.EndObject();
  }
  w.EndArray();
}

std::string_view SlotStatus(std::string_view autonomy) {
  if (autonomy == "autonomous") return "act";
  if (autonomy == "supervised") return "act_and_review";
  return "held_for_approval";
}

// The customer's time zone (an IANA name): the request's context.timezone (Segment's field),
// else the profile's `timezone` trait; "" for none (UTC).
std::string CustomerZone(simdjson::dom::element body, const state::Profile& profile) {
  std::string_view zone;
  if (body["context"]["timezone"].get(zone) == simdjson::SUCCESS) return std::string(zone);
  auto it = profile.traits.find("timezone");
  if (it != profile.traits.end() && it->second.json.size() > 2 && it->second.json.front() == '"') {
    return it->second.json.substr(1, it->second.json.size() - 2);
  }
  return {};
}

void WriteFeatures(JsonWriter& w, std::span<const learn::Feature> features) {
  w.StartArray();
  for (const learn::Feature& f : features) {
    w.StartArray();
    w.Uint(f.index);
    w.Double(f.value);
    w.EndArray();
  }
  w.EndArray();
}

// The decision as answered.
void WriteDecision(JsonWriter& w, uint64_t id, const decide::Catalog& catalog,
                   const decide::DecisionPoint& point, const Customer& customer, int64_t now,
                   const decide::Decision& d, uint64_t bandit_updates, int64_t approval_expires_ms,
                   bool deferred, const std::optional<decide::SendTime>& send_time) {
  const decide::Settings& s = catalog.settings;
  w.StartObject();
  w.Key("decisionId");
  w.String(decide::DecisionIdString(id));
  w.Key("decisionPoint");
  w.String(point.id);
  w.Key("profileId");
  if (customer.profile_id) {
    w.String(state::ProfileIdString(*customer.profile_id));
  } else {
    w.Null();
  }
  w.Key("at");
  w.String(FormatIso8601(now));
  w.Key("environment");
  w.String(s.environment);
  w.Key("policy");
  w.String(decide::PolicyName(s.policy));
  w.Key("group");
  w.String(d.control ? "control" : "engine");
  w.Key("model");
  w.StartObject();
  w.Key("name");
  w.String(StrCat("bandit:", point.id));
  w.Key("version");
  w.Uint(bandit_updates);
  w.EndObject();
  w.Key("candidates");
  w.Uint(d.candidates);
  w.Key("activation");
  w.String(deferred ? "deferred" : "immediate");
  if (send_time) {
    w.Key("sendTime");
    w.StartObject();
    w.Key("at");
    w.String(FormatIso8601(send_time->at_ms));
    w.Key("zone");
    w.String(send_time->zone);
    w.Key("hourOfWeek");
    w.Int(send_time->hour_of_week);
    w.Key("source");
    w.String(send_time->source);
    w.Key("mode");
    w.String(send_time->explore ? "explore" : "exploit");
    w.Key("probability");
    w.Double(send_time->probability);
    w.EndObject();
  }
  w.Key("slots");
  w.StartArray();
  for (const decide::SlotChoice& c : d.slots) {
    const decide::Action& a = catalog.actions[c.action];
    w.StartObject();
    w.Key("slot");
    w.Uint(c.slot + 1);
    w.Key("action");
    w.String(a.id);
    w.Key("issue");
    w.String(a.issue);
    w.Key("group");
    w.String(a.group);
    w.Key("kind");
    w.String(a.kind);
    w.Key("treatment");
    WriteTreatment(w, c.treatment->id, c.treatment->channel);
    if (c.channels > 1) {  // the channel was chosen among several, by engagement
      w.Key("channelChoice");
      w.StartObject();
      w.Key("among");
      w.Uint(c.channels);
      w.Key("probability");
      w.Double(c.channel_probability);
      w.EndObject();
    }
    if (c.variant >= 0) {
      const decide::Variant& v = a.variants[static_cast<size_t>(c.variant)];
      w.Key("variant");
      w.StartObject();
      w.Key("id");
      w.String(v.id);
      w.Key("content");
      w.String(v.content);
      w.Key("probability");
      w.Double(c.variant_probability);
      w.EndObject();
    }
    w.Key("priority");
    w.StartObject();
    w.Key("value");
    w.Double(c.priority);
    w.Key("propensity");
    w.Double(c.propensity_term);
    w.Key("contextWeight");
    w.Double(c.weight);
    w.Key("actionValue");
    w.Double(c.value);
    w.Key("lever");
    w.Double(c.lever);
    w.EndObject();
    w.Key("probability");
    w.Double(c.propensity);
    w.Key("mode");
    w.String(c.explore ? "explore" : "exploit");
    w.Key("confidence");
    w.Double(c.confidence);
    w.Key("autonomy");
    w.String(c.autonomy);
    w.Key("status");
    w.String(SlotStatus(c.autonomy));
    w.Key("cost");
    w.Double(a.cost);
    w.Key("explanation");
    w.StartObject();
    w.Key("factors");
    WriteFactors(w, c.factors);
    w.Key("uncertainty");
    w.Double(std::sqrt(c.variance));
    w.EndObject();
    w.EndObject();
  }
  w.EndArray();
  w.Key("approval");
  if (approval_expires_ms == 0) {
    w.Null();
  } else {
    w.StartObject();
    w.Key("approvalId");
    w.String(decide::DecisionIdString(id));
    w.Key("status");
    w.String("pending");
    w.Key("expiresAt");
    w.String(FormatIso8601(approval_expires_ms));
    w.EndObject();
  }
  w.Key("filtered");
  w.StartArray();
  for (const decide::Filtered& f : d.filtered) {
    w.StartObject();
    w.Key("action");
    w.String(catalog.actions[f.action].id);
    w.Key("reason");
    w.String(f.reason);
    if (f.slot > 0) {
      w.Key("slot");
      w.Uint(f.slot);
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
}

// The decision as logged: the `answer` (WriteDecision's object) with what learning from
// rewards and offline evaluation need added: whose contact history the outcomes go to (a
// hash), the customer's features and the actions scored. With the slots and the channel_limit
// filters these give what each slot was chosen among (decide::SlotCandidates) and the features
// it was scored on (learn::CrossWithAction), kept once per decision rather than per slot: every
// byte of the log is copied into the write-ahead log, the memtable and a blob file. With this
// record (about 3 KB) cut to 100 bytes, the server gave about 5% more decisions/s (15.1k
// against 14.4k, four alternating runs, bench/ November 2026).
std::string LogRecord(std::string_view answer, const decide::Catalog& catalog,
                      const decide::Decision& d, uint64_t customer_hash,
                      const std::vector<identity::Identifier>& visitor,
                      std::span<const learn::Feature> context) {
  std::string added;
  JsonWriter w(&added);
  w.StartObject();
  w.Key("customer");
  w.String(Hex16(customer_hash));
  if (!visitor.empty()) {
    // A first-time visitor's identifiers: the profile they have by the time the decision is
    // activated is found by them.
    w.Key("visitor");
    state::WriteIdentifiers(w, visitor);
  }
  w.Key("context");
  WriteFeatures(w, context);
  w.Key("eligible");
  w.StartArray();
  for (size_t i : d.eligible) w.String(catalog.actions[i].id);
  w.EndArray();
  w.EndObject();
  std::string record;
  record.reserve(answer.size() + added.size());
  record.append(answer.substr(0, answer.size() - 1));  // without its closing brace
  record.push_back(',');
  record.append(std::string_view(added).substr(1));  // without the opening one
  return record;
}

}  // namespace

// A slot of a logged decision: its action, and the features it was scored on when the log
// has them (decisions logged before the log kept only the customer's features).
struct LoggedSlot {
  std::string action;
  std::string channel;
  bool held = false;    // held for approval
  std::string variant;  // its content variant's id, "" for none
  std::vector<learn::Feature> features;
};

struct LoggedDecision {
  std::string point;
  std::string profile;                        // its profileId, "" for a first-time visitor
  std::vector<identity::Identifier> visitor;  // a first-time visitor's identifiers
  uint64_t customer = 0;                      // the hash of the contact history
  bool deferred = false;                      // acted on only once activated
  std::string zone;                     // the customer's time zone when a send time was chosen
  std::vector<learn::Feature> context;  // the customer's features, not crossed with an action
  std::vector<LoggedSlot> slots;
};

namespace {

// Appends the identifiers of `doc[key]` (as state::WriteIdentifiers writes them) to `out`;
// false when one is not {"type", "value"}.
bool ReadIdentifiers(simdjson::dom::element doc, std::string_view key,
                     std::vector<identity::Identifier>* out) {
  simdjson::dom::array list;
  if (doc[key].get(list) != simdjson::SUCCESS) return true;
  for (simdjson::dom::element id : list) {
    std::string_view type, value;
    if (id["type"].get(type) != simdjson::SUCCESS || id["value"].get(value) != simdjson::SUCCESS) {
      return false;
    }
    out->push_back({std::string(type), std::string(value)});
  }
  return true;
}

// Appends the [index, value] pairs of `list` to `out`; false when one is not such a pair.
bool ParseFeatures(simdjson::dom::array list, std::vector<learn::Feature>* out) {
  for (simdjson::dom::element f : list) {
    uint64_t index = 0;
    double value = 0;
    if (f.at(0).get(index) != simdjson::SUCCESS || f.at(1).get(value) != simdjson::SUCCESS) {
      return false;
    }
    out->push_back({static_cast<uint32_t>(index), static_cast<float>(value)});
  }
  return true;
}

std::optional<LoggedDecision> ParseLogged(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(json.data(), json.size()).get(doc) != simdjson::SUCCESS) return std::nullopt;
  LoggedDecision d;
  simdjson::dom::array context;
  const bool has_context = doc["context"].get(context) == simdjson::SUCCESS;
  if (has_context && !ParseFeatures(context, &d.context)) return std::nullopt;
  std::string_view point;
  simdjson::dom::array slots;
  if (doc["decisionPoint"].get(point) != simdjson::SUCCESS ||
      doc["slots"].get(slots) != simdjson::SUCCESS) {
    return std::nullopt;
  }
  d.point = point;
  std::string_view profile, customer, activation;
  if (doc["profileId"].get(profile) == simdjson::SUCCESS) d.profile = profile;
  if (!ReadIdentifiers(doc, "visitor", &d.visitor)) return std::nullopt;
  if (doc["customer"].get(customer) == simdjson::SUCCESS) {
    d.customer = ParseHex16(customer).value_or(0);
  }
  d.deferred = doc["activation"].get(activation) == simdjson::SUCCESS && activation == "deferred";
  std::string_view zone;
  if (doc["sendTime"]["zone"].get(zone) == simdjson::SUCCESS) d.zone = zone;
  for (simdjson::dom::element slot : slots) {
    LoggedSlot s;
    std::string_view channel, status;
    if (slot["treatment"]["channel"].get(channel) == simdjson::SUCCESS) s.channel = channel;
    s.held = slot["status"].get(status) == simdjson::SUCCESS && status == "held_for_approval";
    std::string_view variant;
    if (slot["variant"]["id"].get(variant) == simdjson::SUCCESS) s.variant = variant;
    std::string_view action;
    if (slot["action"].get(action) != simdjson::SUCCESS) return std::nullopt;
    s.action = action;
    simdjson::dom::array features;
    if (slot["features"].get(features) == simdjson::SUCCESS) {
      if (!ParseFeatures(features, &s.features)) return std::nullopt;
    } else if (!has_context) {
      return std::nullopt;  // neither the slot's features nor the customer's to cross
    }
    d.slots.push_back(std::move(s));
  }
  return d;
}

// The keys one customer's contact history and engagement counts are kept under, `own` (where
// their decisions add to) first: with a profile, also those of the profiles merged into it and of
// the visitor it was (state::KeysOfCustomer), since rows stay where they were recorded.
std::vector<uint64_t> CustomerHashes(uint64_t own, const state::Profile& profile) {
  std::vector<uint64_t> out{own};
  if (profile.id == 0) return out;
  for (uint64_t hash : state::KeysOfCustomer(profile).hashes) {
    if (hash != own) out.push_back(hash);
  }
  return out;
}

// The rows a decision's contacts are written to: `customer`'s, and for a first-time visitor
// (`visitor`: their identifiers) each identifier's too, so that a later decision given any one
// of them finds them (the browser's anonymousId alone, after a decision given the userId with
// it); read together, a contact counts once (decide::ContactHistory::Add). Empty for no
// customer (0).
std::vector<uint64_t> ContactRows(uint64_t customer,
                                  std::span<const identity::Identifier> visitor) {
  if (customer == 0) return {};
  std::vector<uint64_t> out{customer};
  for (const identity::Identifier& id : visitor) {
    const uint64_t hash = state::VisitorHash(id.type, id.value);
    if (std::find(out.begin(), out.end(), hash) == out.end()) out.push_back(hash);
  }
  return out;
}

// The hash a customer's control group is drawn by, the first kept under one of their `hashes`
// (storage::ControlBucketKey); 0 when none is.
absl::StatusOr<uint64_t> ReadControlBucket(const storage::Store& store, uint32_t ws,
                                           std::span<const uint64_t> hashes) {
  for (uint64_t hash : hashes) {
    absl::StatusOr<std::optional<std::string>> stored =
        store.Get(store.decisions(), storage::ControlBucketKey(ws, hash));
    if (!stored.ok()) return stored.status();
    if (stored->has_value() && (*stored)->size() == 8) {
      return storage::GetBigEndian64((*stored)->data());
    }
  }
  return 0;
}

// The decision log's lock, taken after a pass through the erasure gate (DecideService::
// erasure_gate): what is read and written under it cannot straddle a profile's erasure.
struct LogLock {
  LogLock(Gate* erasures, std::mutex& mu) : pass(Gate::Enter(erasures)), lock(mu) {}
  Gate::Pass pass;
  std::lock_guard<std::mutex> lock;  // released before the pass ends
};

// The contact stripes of `rows` locked, in stripe order, so that two requests whose rows share
// some cannot deadlock; unlocked on destruction or unlock().
class StripeLocks {
 public:
  StripeLocks() = default;
  template <size_t N>
  StripeLocks(std::array<std::mutex, N>& stripes, std::span<const uint64_t> rows) {
    std::vector<size_t> taken;
    for (uint64_t row : rows) taken.push_back(row % N);
    std::sort(taken.begin(), taken.end());
    taken.erase(std::unique(taken.begin(), taken.end()), taken.end());
    for (size_t i : taken) locks_.emplace_back(stripes[i]);
  }
  bool owns_lock() const { return !locks_.empty(); }
  void unlock() {
    while (!locks_.empty()) locks_.pop_back();  // the last taken first
  }

 private:
  std::vector<std::unique_lock<std::mutex>> locks_;
};

// What is kept for one customer under each of `hashes`, added into one: contact histories
// (Rows = decide::ContactHistory, key = storage::ContactKey) or engagement counts
// (decide::Engagement, storage::EngagementKey). Nullopt when nothing is kept.
template <typename Rows>
absl::StatusOr<std::optional<Rows>> ReadCustomerRows(const storage::Store& store, uint32_t ws,
                                                     std::string (*key)(uint32_t, uint64_t),
                                                     std::span<const uint64_t> hashes) {
  std::optional<Rows> out;
  for (uint64_t hash : hashes) {
    absl::StatusOr<std::optional<std::string>> stored = store.Get(store.decisions(), key(ws, hash));
    if (!stored.ok()) return stored.status();
    if (!stored->has_value()) continue;
    if (std::optional<Rows> rows = Rows::Decode(**stored)) {
      if (!out) out.emplace();
      out->Add(*rows);
    }
  }
  return out;
}

// The current profile of customer `id` (a merged one answers with its survivor): empty (id 0)
// when there is none (erased since).
absl::StatusOr<state::Profile> CurrentProfile(const storage::Store& store, uint32_t ws,
                                              uint64_t id) {
  absl::StatusOr<state::Profile> p = state::ProfileEngine::ReadProfile(store, ws, id);
  if (!p.ok() && p.status().code() == absl::StatusCode::kNotFound) return state::Profile{};
  return p;
}

// The same for a decision's `profile` as logged ("" for a first-time visitor: empty).
absl::StatusOr<state::Profile> CurrentProfile(const storage::Store& store, uint32_t ws,
                                              std::string_view profile) {
  const std::optional<uint64_t> id = state::ParseProfileId(profile);
  if (!id) return state::Profile{};
  return CurrentProfile(store, ws, *id);
}

// The approval of a held decision (its id is the decision's), as stored and answered.
struct Approval {
  uint64_t decision = 0;
  std::string point;
  std::string profile;  // "" for none
  // A first-time visitor's identifiers, while the approval is pending: the profile events
  // gave them since is found by these when it is reviewed or expires (then they are dropped).
  std::vector<identity::Identifier> visitor;
  std::string status = "pending";  // pending, approved, rejected, expired
  int64_t created_ms = 0, expires_ms = 0, decided_ms = 0;
  struct Held {
    uint64_t slot = 0;  // 1-based
    std::string action;
    std::string review;  // JSON: the fields of the action kind's review template
  };
  std::vector<Held> slots;
  std::string reviewer, note;
  std::string fallback_action, fallback_treatment, fallback_channel;  // when expired
  // Expired with a fallback the customer may not get now: why (a filter reason code).
  std::string fallback_withheld;
};

void WriteApproval(JsonWriter& w, const Approval& a) {
  w.StartObject();
  w.Key("approvalId");
  w.String(decide::DecisionIdString(a.decision));
  w.Key("decisionId");
  w.String(decide::DecisionIdString(a.decision));
  w.Key("decisionPoint");
  w.String(a.point);
  w.Key("profileId");
  w.StringOrNull(a.profile);
  if (!a.visitor.empty()) {
    w.Key("visitor");
    state::WriteIdentifiers(w, a.visitor);
  }
  w.Key("status");
  w.String(a.status);
  w.Key("createdAt");
  w.String(FormatIso8601(a.created_ms));
  w.Key("expiresAt");
  w.String(FormatIso8601(a.expires_ms));
  w.Key("slots");
  w.StartArray();
  for (const Approval::Held& h : a.slots) {
    w.StartObject();
    w.Key("slot");
    w.Uint(h.slot);
    w.Key("action");
    w.String(h.action);
    w.Key("review");
    w.RawValue(h.review);
    w.EndObject();
  }
  w.EndArray();
  w.Key("reviewer");
  w.StringOrNull(a.reviewer);
  w.Key("note");
  w.StringOrNull(a.note);
  w.Key("decidedAt");
  if (a.decided_ms == 0) {
    w.Null();
  } else {
    w.String(FormatIso8601(a.decided_ms));
  }
  w.Key("fallback");
  if (a.fallback_action.empty()) {
    w.Null();
  } else {
    w.StartObject();
    w.Key("action");
    w.String(a.fallback_action);
    w.Key("treatment");
    WriteTreatment(w, a.fallback_treatment, a.fallback_channel);
    w.EndObject();
  }
  w.Key("fallbackWithheld");
  w.StringOrNull(a.fallback_withheld);
  w.EndObject();
}

std::string ApprovalJson(const Approval& a) {
  std::string out;
  JsonWriter w(&out);
  WriteApproval(w, a);
  return out;
}

std::optional<Approval> ParseApproval(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(json.data(), json.size()).get(doc) != simdjson::SUCCESS) return std::nullopt;
  Approval a;
  std::string_view id, point, status, created, expires;
  simdjson::dom::array slots;
  if (doc["decisionId"].get(id) != simdjson::SUCCESS ||
      doc["decisionPoint"].get(point) != simdjson::SUCCESS ||
      doc["status"].get(status) != simdjson::SUCCESS ||
      doc["createdAt"].get(created) != simdjson::SUCCESS ||
      doc["expiresAt"].get(expires) != simdjson::SUCCESS ||
      doc["slots"].get(slots) != simdjson::SUCCESS) {
    return std::nullopt;
  }
  std::optional<uint64_t> decision = decide::ParseDecisionId(id);
  if (!decision) return std::nullopt;
  a.decision = *decision;
  a.point = point;
  a.status = status;
  a.created_ms = ParseIso8601(created).value_or(0);
  a.expires_ms = ParseIso8601(expires).value_or(0);
  std::string_view v;
  if (doc["profileId"].get(v) == simdjson::SUCCESS) a.profile = v;
  if (doc["reviewer"].get(v) == simdjson::SUCCESS) a.reviewer = v;
  if (doc["note"].get(v) == simdjson::SUCCESS) a.note = v;
  if (doc["decidedAt"].get(v) == simdjson::SUCCESS) a.decided_ms = ParseIso8601(v).value_or(0);
  simdjson::dom::element fallback;
  if (doc["fallback"].get(fallback) == simdjson::SUCCESS && fallback.is_object()) {
    if (fallback["action"].get(v) == simdjson::SUCCESS) a.fallback_action = v;
    if (fallback["treatment"]["id"].get(v) == simdjson::SUCCESS) a.fallback_treatment = v;
    if (fallback["treatment"]["channel"].get(v) == simdjson::SUCCESS) a.fallback_channel = v;
  }
  if (doc["fallbackWithheld"].get(v) == simdjson::SUCCESS) a.fallback_withheld = v;
  if (!ReadIdentifiers(doc, "visitor", &a.visitor)) return std::nullopt;
  for (simdjson::dom::element s : slots) {
    Approval::Held h;
    std::string_view action;
    simdjson::dom::element review;
    if (s["slot"].get(h.slot) != simdjson::SUCCESS ||
        s["action"].get(action) != simdjson::SUCCESS ||
        s["review"].get(review) != simdjson::SUCCESS) {
      return std::nullopt;
    }
    h.action = action;
    h.review = simdjson::minify(review);
    a.slots.push_back(std::move(h));
  }
  return a;
}

// The profile id a first-time visitor known by `visitor` has by now ("" for none), by the first
// of the identifiers that has one.
absl::StatusOr<std::string> VisitorProfile(const storage::Store& store, uint32_t ws,
                                           const std::vector<identity::Identifier>& visitor) {
  for (const identity::Identifier& id : visitor) {
    absl::StatusOr<std::optional<uint64_t>> found =
        state::ProfileEngine::Lookup(store, ws, id.type, id.value);
    if (!found.ok()) return found.status();
    if (found->has_value()) return state::ProfileIdString(**found);
  }
  return std::string();
}

// The customer of an approval being closed, as they are now: its profile's current form, or,
// for a decision made for a first-time visitor, the profile events have given them since (found
// by their identifiers; none yet: empty). The profile found is recorded in the approval and the
// identifiers dropped: a closed approval keeps none.
absl::StatusOr<state::Profile> ClosingApprovalCustomer(const storage::Store& store, uint32_t ws,
                                                       Approval& a) {
  if (a.profile.empty()) {
    absl::StatusOr<std::string> found = VisitorProfile(store, ws, a.visitor);
    if (!found.ok()) return found.status();
    a.profile = *std::move(found);
  }
  a.visitor.clear();
  return CurrentProfile(store, ws, a.profile);
}

// The consent purpose that acting on `action` over `channel` needs and `customer` now denies
// (they withdrew it since the decision), "" for none.
std::string_view WithdrawnConsent(const decide::Catalog& catalog, std::string_view action,
                                  std::string_view channel, const state::Profile& customer) {
  if (const decide::Action* a = catalog.FindAction(action)) {
    if (std::string_view purpose = decide::MissingConsent(*a, customer); !purpose.empty()) {
      return purpose;
    }
  }
  const std::string_view purpose = decide::ChannelPurpose(channel);
  return !purpose.empty() && customer.Denied(purpose) ? purpose : std::string_view();
}

// What a reviewer sees of a held slot: the fields of its action kind's template.
std::string ReviewOf(const decide::Catalog& catalog, const decide::SlotChoice& c) {
  const decide::Action& a = catalog.actions[c.action];
  std::string out;
  JsonWriter w(&out);
  w.StartObject();
  for (const std::string& field : catalog.settings.ReviewFields(a.kind)) {
    w.Key(field);
    if (field == "action") {
      w.String(a.id);
    } else if (field == "issue") {
      w.String(a.issue);
    } else if (field == "group") {
      w.String(a.group);
    } else if (field == "treatment") {
      WriteTreatment(w, c.treatment->id, c.treatment->channel);
    } else if (field == "priority") {
      w.Double(c.priority);
    } else if (field == "confidence") {
      w.Double(c.confidence);
    } else if (field == "cost") {
      w.Double(a.cost);
    } else {  // explanation
      WriteFactors(w, c.factors);
    }
  }
  w.EndObject();
  return out;
}

// The logged decision `decision`; nullopt when there is none (never, or erased since); 500
// corrupt_decision when it cannot be read.
absl::StatusOr<std::optional<LoggedDecision>> ReadLogged(const storage::Store& store,
                                                         uint32_t workspace_id, uint64_t decision) {
  absl::StatusOr<std::optional<std::string>> stored =
      store.Get(store.decisions(), storage::DecisionKey(workspace_id, decision));
  if (!stored.ok()) return stored.status();
  if (!stored->has_value()) return std::optional<LoggedDecision>();
  std::optional<LoggedDecision> logged = ParseLogged(**stored);
  if (!logged) {
    return MakeError(absl::StatusCode::kDataLoss, "corrupt_decision",
                     StrCat("decision ", decide::DecisionIdString(decision), " is unreadable"));
  }
  return logged;
}

// The customer hash in the record of the earliest decision logged under one of `index` (decision
// -log index ids, state::KeysOfCustomer); 0 when there is none, or it cannot be read. Versions
// before the control group was kept (storage::ControlBucketKey) drew it from that hash at every
// decision: a customer decided for by one of them keeps the group those decisions had.
absl::StatusOr<uint64_t> FirstLoggedCustomer(const storage::Store& store, uint32_t ws,
                                             std::span<const uint64_t> index) {
  uint64_t first = UINT64_MAX;
  for (uint64_t id : index) {
    absl::Status s = store.ScanPrefix(store.decisions(), storage::ProfileDecisionPrefix(ws, id),
                                      [&](std::string_view key, std::string_view) {
                                        first = std::min(first, storage::DecisionOfKey(key));
                                        return false;  // the first is the earliest
                                      });
    if (!s.ok()) return s;
  }
  if (first == UINT64_MAX) return 0;
  absl::StatusOr<std::optional<std::string>> stored =
      store.Get(store.decisions(), storage::DecisionKey(ws, first));
  if (!stored.ok()) return stored.status();
  if (!stored->has_value()) return 0;
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  std::string_view customer;
  if (parser.parse(**stored).get(doc) != simdjson::SUCCESS ||
      doc["customer"].get(customer) != simdjson::SUCCESS) {
    return 0;
  }
  return ParseHex16(customer).value_or(0);
}

// The stored approval named by the path's `raw_id`; 404 approval_not_found otherwise.
absl::StatusOr<std::string> ReadApprovalJson(const storage::Store& store, uint32_t workspace_id,
                                             std::string_view raw_id) {
  std::optional<uint64_t> id = decide::ParseDecisionId(raw_id);
  absl::StatusOr<std::optional<std::string>> stored =
      id ? store.Get(store.decisions(), storage::ApprovalKey(workspace_id, *id))
         : absl::StatusOr<std::optional<std::string>>(std::nullopt);
  if (!stored.ok()) return stored.status();
  if (!stored->has_value()) {
    return MakeError(absl::StatusCode::kNotFound, "approval_not_found",
                     StrCat("no approval ", raw_id, " in this workspace"), "id");
  }
  return **std::move(stored);
}

// Whether the held slots of `logged` were approved (false when none is held: no read).
absl::StatusOr<bool> HeldSlotsApproved(const storage::Store& store, uint32_t workspace_id,
                                       uint64_t decision, const LoggedDecision& logged) {
  if (std::none_of(logged.slots.begin(), logged.slots.end(),
                   [](const LoggedSlot& s) { return s.held; })) {
    return false;
  }
  absl::StatusOr<std::optional<std::string>> stored =
      store.Get(store.decisions(), storage::ApprovalKey(workspace_id, decision));
  if (!stored.ok()) return stored.status();
  std::optional<Approval> a =
      stored->has_value() ? ParseApproval(**stored) : std::optional<Approval>();
  return a && a->status == "approved";
}

// The `cursor` of a list of decisions or approvals (a decision id); nullopt when absent.
absl::StatusOr<std::optional<uint64_t>> DecisionCursor(std::string_view url) {
  std::optional<std::string_view> cursor = api::QueryParam(url, "cursor");
  if (!cursor || cursor->empty()) return std::optional<uint64_t>();
  std::optional<uint64_t> c = decide::ParseDecisionId(*cursor);
  if (!c) {
    return InvalidInput("invalid_value", "cursor must be a nextCursor this endpoint gave",
                        "cursor");
  }
  return c;
}

// A body's slot number or count `field`: a whole number from 1 to 20 (api::WholeNumber); 400
// wrong_type when it is no number, invalid_value when out of range or fractional.
absl::StatusOr<size_t> SlotNumber(simdjson::dom::element v, std::string_view field) {
  if (!v.is_number()) {
    return InvalidInput("wrong_type", StrCat(field, " must be a number"), std::string(field));
  }
  const std::optional<uint64_t> n = api::WholeNumber(v, 20);
  if (!n || *n < 1) {
    return InvalidInput("invalid_value", StrCat(field, " must be a whole number from 1 to 20"),
                        std::string(field));
  }
  return static_cast<size_t>(*n);
}

// The ids of the rewards the server gives: a reward wait's default, and a goal's (followed by
// the goal event's messageId).
constexpr std::string_view kDefaultRewardId = "default";
constexpr std::string_view kGoalRewardPrefix = "goal:";

absl::StatusOr<uint64_t> DecisionIdParam(std::string_view raw, std::string_view field) {
  std::optional<uint64_t> id = decide::ParseDecisionId(raw);
  if (!id) {
    return MakeError(absl::StatusCode::kNotFound, "decision_not_found",
                     StrCat("no decision ", raw, " (decision ids read dec_ and 16 hex digits)"),
                     std::string(field));
  }
  return *id;
}

}  // namespace

DecideService::DecideService(const api::KeyRing* keys, const std::vector<Workspace>* workspaces,
                             storage::Store* store, const state::DeviceDetector* detector,
                             const Clock* clock)
    : keys_(keys), store_(store), detector_(detector), clock_(clock), log_writer_(store) {
  for (const Workspace& ws : *workspaces) {
    State& state = states_[ws.id];
    state.workspace = &ws;
    if (ws.decisions == nullptr) continue;
    state.catalog = ws.decisions;
    state.config = ws.decisions_config;
    for (const decide::DecisionPoint& p : ws.decisions->points) {
      state.points.emplace(p.id, std::make_unique<Point>(ws.decisions->settings.posterior));
    }
  }
}

absl::Status DecideService::Start() {
  for (auto& [id, state] : states_) {
    if (state.catalog == nullptr) continue;
    // The actions edited through /v1/actions since the config was written.
    if (absl::Status s = LoadActionEdits(state); !s.ok()) return s;
    if (state.catalog->settings.budgets) {
      const decide::Catalog& catalog = *state.catalog;
      for (size_t i = 0; i < catalog.actions.size(); ++i) {
        absl::StatusOr<std::optional<std::string>> stored =
            store_->Get(store_->decisions(), storage::BudgetKey(id, catalog.actions[i].id));
        if (!stored.ok()) return stored.status();
        if (!stored->has_value()) continue;
        simdjson::dom::parser parser;
        simdjson::dom::element doc;
        BudgetUse& use = state.budgets[catalog.actions[i].id];
        if (parser.parse(**stored).get(doc) != simdjson::SUCCESS ||
            doc["day"].get(use.day) != simdjson::SUCCESS ||
            doc["count"].get(use.count) != simdjson::SUCCESS ||
            doc["spent"].get(use.spent) != simdjson::SUCCESS) {
          return absl::DataLossError(
              ToAbsl(StrCat("workspace ", state.workspace->name, " budget of ",
                            catalog.actions[i].id, " is unreadable")));
        }
      }
    }
    for (const auto& [key, load] :
         {std::pair<std::string, std::function<bool(std::string_view)>>{
              storage::WorkspaceEngagementKey(id),
              [&state](std::string_view json) {
                std::optional<decide::Engagement> e = decide::Engagement::Decode(json);
                if (e) state.engagement = *std::move(e);
                return e.has_value();
              }},
          {storage::VariantStatsKey(id), [&state](std::string_view json) {
             std::optional<decide::VariantStats> v = decide::VariantStats::Decode(json);
             if (v) state.variants = *std::move(v);
             return v.has_value();
           }}}) {
      absl::StatusOr<std::optional<std::string>> stored = store_->Get(store_->decisions(), key);
      if (!stored.ok()) return stored.status();
      if (stored->has_value() && !load(**stored)) {
        return absl::DataLossError(ToAbsl(
            StrCat("workspace ", state.workspace->name, ": its engagement counts are unreadable")));
      }
    }
    for (auto& [name, point] : state.points) {
      absl::StatusOr<std::optional<std::string>> image =
          store_->Get(store_->decisions(), storage::BanditKey(id, name));
      if (!image.ok()) return image.status();
      if (!image->has_value()) continue;
      absl::StatusOr<learn::LinearPosterior> stored = learn::LinearPosterior::Deserialize(**image);
      if (!stored.ok()) {
        return absl::DataLossError(
            ToAbsl(StrCat("workspace ", state.workspace->name, " decision point ", name, ": ",
                          ToStd(stored.status().message()))));
      }
      const learn::PosteriorOptions& want = state.catalog->settings.posterior;
      if (stored->options().bits != want.bits) {
        obs::LogEvent(spdlog::level::warn, "bandit_restarted",
                      {{"workspace", state.workspace->name},
                       {"decision_point", name},
                       {"reason", "decisions.bandit.bits changed"}});
        continue;
      }
      stored->set_learning_rate(want.learning_rate);
      point->posterior = *std::move(stored);
    }
  }
  return absl::OkStatus();
}

absl::Status DecideService::SaveBandits() {
  rocksdb::WriteBatch batch;
  std::vector<Point*> saved;
  std::vector<State*> delivery_saved;
  for (auto& [id, state] : states_) {
    for (auto& [name, point] : state.points) {
      std::shared_lock lock(point->mu);
      if (!point->dirty) continue;
      rocksdb::Status s = batch.Put(store_->decisions(), storage::BanditKey(id, name),
                                    point->posterior.Serialize());
      if (!s.ok()) return StoreError(s);
      saved.push_back(point.get());
    }
    std::shared_lock lock(state.delivery_mu);
    if (!state.delivery_dirty) continue;
    rocksdb::Status s = batch.Put(store_->decisions(), storage::WorkspaceEngagementKey(id),
                                  state.engagement.Encode());
    if (s.ok()) {
      s = batch.Put(store_->decisions(), storage::VariantStatsKey(id), state.variants.Encode());
    }
    if (!s.ok()) return StoreError(s);
    delivery_saved.push_back(&state);
  }
  if (saved.empty() && delivery_saved.empty()) return absl::OkStatus();
  if (absl::Status s = store_->Write(&batch); !s.ok()) return s;
  // A reward learned between the image and now leaves the point dirty: Update sets it again.
  for (Point* p : saved) {
    std::unique_lock lock(p->mu);
    p->dirty = false;
  }
  for (State* state : delivery_saved) {
    std::unique_lock lock(state->delivery_mu);
    state->delivery_dirty = false;
  }
  return absl::OkStatus();
}

void DecideService::Register(net::Router* router) {
  router->Add(http::verb::post, "/v1/decide",
              [this](net::RequestContext& ctx, net::Responder r) { HandleDecide(ctx, r); });
  router->Add(http::verb::get, "/v1/actions",
              [this](net::RequestContext& ctx, net::Responder r) { HandleActions(ctx, r); });
  router->Add(http::verb::get, "/v1/actions/{id}",
              [this](net::RequestContext& ctx, net::Responder r) { HandleAction(ctx, r); });
  router->Add(http::verb::put, "/v1/actions/{id}",
              [this](net::RequestContext& ctx, net::Responder r) { HandlePutAction(ctx, r); });
  router->Add(http::verb::delete_, "/v1/actions/{id}",
              [this](net::RequestContext& ctx, net::Responder r) { HandleDeleteAction(ctx, r); });
  router->Add(http::verb::post, "/v1/rewards",
              [this](net::RequestContext& ctx, net::Responder r) { HandleReward(ctx, r); });
  router->Add(http::verb::get, "/v1/decisions/lift",
              [this](net::RequestContext& ctx, net::Responder r) { HandleLift(ctx, r); },
              {"decisionPoint", "profile", "from", "to"});
  router->Add(http::verb::get, "/v1/decisions/export",
              [this](net::RequestContext& ctx, net::Responder r) { HandleExport(ctx, r); },
              {"profile", "from", "to", "limit", "cursor"});
  router->Add(http::verb::get, "/v1/decisions/{id}",
              [this](net::RequestContext& ctx, net::Responder r) { HandleGet(ctx, r); });
  router->Add(http::verb::post, "/v1/decisions/{id}/activate",
              [this](net::RequestContext& ctx, net::Responder r) { HandleActivate(ctx, r); });
  router->Add(http::verb::get, "/v1/decisions",
              [this](net::RequestContext& ctx, net::Responder r) { HandleList(ctx, r); },
              {"profile", "from", "to", "limit", "cursor"});
  router->Add(http::verb::get, "/v1/approvals",
              [this](net::RequestContext& ctx, net::Responder r) { HandleApprovals(ctx, r); },
              {"status", "limit", "cursor"});
  router->Add(http::verb::get, "/v1/approvals/{id}",
              [this](net::RequestContext& ctx, net::Responder r) { HandleApproval(ctx, r); });
  router->Add(http::verb::post, "/v1/approvals/{id}/approve",
              [this](net::RequestContext& ctx, net::Responder r) { HandleReview(ctx, r, true); });
  router->Add(http::verb::post, "/v1/approvals/{id}/reject",
              [this](net::RequestContext& ctx, net::Responder r) { HandleReview(ctx, r, false); });
  // What a web page calls with its write key: decide, then activate or reward what it shows.
  for (const char* path : {"/v1/decide", "/v1/rewards", "/v1/decisions/{id}/activate"}) {
    router->AllowBrowsers(path);
    router->Guard(path, HeaderKeyGuard(keys_));
  }
}

std::shared_ptr<const decide::Catalog> DecideService::CatalogOf(const State& state) const {
  std::lock_guard lock(state.catalog_mu);
  return state.catalog;
}

namespace {

// `actions` with the edit of action `id` applied: replaced by `edit` (or added), or removed
// when `edit` is nullopt.
// Why `next`, a catalog edited over HTTP, does not compile when its actions are each valid:
// the decision point its `error` names would have no candidate. Named by its id, not by where
// the config file has it (the caller of /v1/actions need not know the file).
std::string CatalogConflict(const config::DecisionsConfig& next, const absl::Status& error) {
  const std::string field = ErrorFieldOf(error);
  constexpr std::string_view kPoints = "decision_points[";
  const size_t at = field.find(kPoints);
  size_t index = 0;
  if (at != std::string::npos) {
    const char* begin = field.data() + at + kPoints.size();
    auto [end, ec] = std::from_chars(begin, field.data() + field.size(), index);
    if (ec == std::errc() && index < next.points.size()) {
      return StrCat("decision point '", next.points[index].id,
                    "' would have no candidate action (see its actions, issues and groups)");
    }
  }
  return std::string(error.message());
}

void ApplyEdit(std::vector<config::ActionConfig>* actions, std::string_view id,
               std::optional<config::ActionConfig> edit) {
  auto it = std::find_if(actions->begin(), actions->end(),
                         [&](const config::ActionConfig& a) { return a.id == id; });
  if (!edit) {
    if (it != actions->end()) actions->erase(it);
  } else if (it != actions->end()) {
    *it = *std::move(edit);
  } else {
    actions->push_back(*std::move(edit));
  }
}

// The stored edit's JSON with where the action comes from.
std::string WithSource(std::string action_json, bool edited) {
  action_json.pop_back();  // the closing brace
  StrAppend(&action_json, R"(,"source":")", edited ? "api" : "config", R"("})");
  return action_json;
}

}  // namespace

absl::Status DecideService::LoadActionEdits(State& state) {
  const uint32_t ws = state.workspace->id;
  config::DecisionsConfig current = state.workspace->decisions_config;
  std::set<std::string, std::less<>> edited;
  std::shared_ptr<const decide::Catalog> catalog = state.catalog;
  const std::string prefix = storage::ActionEditPrefix(ws);
  absl::Status s = store_->ScanPrefix(
      store_->decisions(), prefix, [&](std::string_view key, std::string_view json) {
        const std::string id(key.substr(prefix.size()));
        config::DecisionsConfig next = current;
        const bool deleted = json == kDeletedAction;
        absl::StatusOr<config::ActionConfig> action =
            deleted ? config::ActionConfig() : config::ParseActionJson(json, id);
        absl::StatusOr<std::shared_ptr<const decide::Catalog>> compiled =
            absl::InternalError("not compiled");
        if (action.ok()) {
          ApplyEdit(&next.actions, id,
                    deleted ? std::nullopt : std::optional<config::ActionConfig>(*action));
          compiled = decide::CompileCatalog(next, state.workspace->consent_purposes,
                                            &state.workspace->condition_names);
        } else {
          compiled = action.status();
        }
        if (!compiled.ok()) {
          obs::LogEvent(spdlog::level::warn, "action_edit_skipped",
                        {{"workspace", state.workspace->name},
                         {"action", id},
                         {"error", ToStd(compiled.status().message())}});
          return true;
        }
        current = std::move(next);
        catalog = *std::move(compiled);
        edited.insert(id);
        return true;
      });
  if (!s.ok()) return s;
  std::lock_guard lock(state.catalog_mu);
  state.catalog = std::move(catalog);
  state.config = std::move(current);
  state.edited = std::move(edited);
  return absl::OkStatus();
}

void DecideService::HandleActions(net::RequestContext& ctx, net::Responder respond) {
  absl::StatusOr<State*> state = AdminState(ctx);
  if (!state.ok()) return respond(net::ErrorResponse(state.status()));
  std::string out;
  JsonWriter w(&out);
  w.StartObject();
  w.Key("actions");
  w.StartArray();
  {
    std::lock_guard lock((*state)->catalog_mu);
    for (const config::ActionConfig& a : (*state)->config.actions) {
      w.RawValue(WithSource(config::ActionJson(a), (*state)->edited.contains(a.id)));
    }
  }
  w.EndArray();
  w.EndObject();
  respond(net::JsonResponse(200, std::move(out)));
}

void DecideService::HandleAction(net::RequestContext& ctx, net::Responder respond) {
  absl::StatusOr<State*> state = AdminState(ctx);
  if (!state.ok()) return respond(net::ErrorResponse(state.status()));
  const std::string_view id = net::PathParam(ctx);
  std::lock_guard lock((*state)->catalog_mu);
  for (const config::ActionConfig& a : (*state)->config.actions) {
    if (a.id != id) continue;
    return respond(
        net::JsonResponse(200, WithSource(config::ActionJson(a), (*state)->edited.contains(a.id))));
  }
  respond(net::ErrorResponse(MakeError(absl::StatusCode::kNotFound, "action_not_found",
                                       StrCat("no action '", id, "' in this workspace"), "id")));
}

void DecideService::HandlePutAction(net::RequestContext& ctx, net::Responder respond) {
  absl::StatusOr<State*> state = AdminState(ctx);
  if (!state.ok()) return respond(net::ErrorResponse(state.status()));
  const std::string id(net::PathParam(ctx));
  const std::string_view body(ctx.request.body().data(), ctx.request.body().size());
  {  // A key twice is refused as in every JSON body (api::JsonObjectBody); the rest as config.
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    std::string path, key;
    if (parser.parse(body.data(), body.size()).get(doc) == simdjson::SUCCESS &&
        api::RepeatedKeyPath(doc, &path, &key)) {
      return respond(net::ErrorResponse(api::RepeatedKeyError(path, key)));
    }
  }
  absl::StatusOr<config::ActionConfig> action = config::ParseActionJson(body, id);
  if (!action.ok()) return respond(net::ErrorResponse(action.status()));
  std::lock_guard edit((*state)->edit_mu);
  config::DecisionsConfig next;
  {
    std::lock_guard lock((*state)->catalog_mu);
    next = (*state)->config;
  }
  const bool created = std::none_of(next.actions.begin(), next.actions.end(),
                                    [&](const config::ActionConfig& a) { return a.id == id; });
  const std::string json = config::ActionJson(*action);
  ApplyEdit(&next.actions, id, *std::move(action));
  absl::StatusOr<std::shared_ptr<const decide::Catalog>> compiled = decide::CompileCatalog(
      next, (*state)->workspace->consent_purposes, &(*state)->workspace->condition_names);
  if (!compiled.ok()) {
    absl::Status error = config::ActionErrorOf(compiled.status());
    if (ErrorFieldOf(error).empty()) {
      // Valid alone, but not with the rest of the catalog: a decision point would be left
      // without candidates (moved to another issue or group), as a DELETE would leave it.
      error = MakeError(
          absl::StatusCode::kAborted, "action_in_use",
          StrCat("with action '", id, "' changed so, ", CatalogConflict(next, compiled.status())),
          "id");
    }
    return respond(net::ErrorResponse(error));
  }
  // Stored before it is used: an edit answered survives a restart.
  rocksdb::WriteBatch batch;
  rocksdb::Status put =
      batch.Put(store_->decisions(), storage::ActionEditKey((*state)->workspace->id, id), json);
  if (!put.ok()) return respond(net::ErrorResponse(StoreError(put)));
  if (absl::Status s = store_->Write(&batch); !s.ok()) return respond(net::ErrorResponse(s));
  {
    std::lock_guard lock((*state)->catalog_mu);
    (*state)->catalog = *std::move(compiled);
    (*state)->config = std::move(next);
    (*state)->edited.insert(id);
  }
  net::Response res = net::JsonResponse(created ? 201 : 200, WithSource(json, true));
  respond(std::move(res));
}

void DecideService::HandleDeleteAction(net::RequestContext& ctx, net::Responder respond) {
  absl::StatusOr<State*> state = AdminState(ctx);
  if (!state.ok()) return respond(net::ErrorResponse(state.status()));
  const std::string id(net::PathParam(ctx));
  std::lock_guard edit((*state)->edit_mu);
  config::DecisionsConfig next;
  {
    std::lock_guard lock((*state)->catalog_mu);
    next = (*state)->config;
  }
  if (std::none_of(next.actions.begin(), next.actions.end(),
                   [&](const config::ActionConfig& a) { return a.id == id; })) {
    return respond(
        net::ErrorResponse(MakeError(absl::StatusCode::kNotFound, "action_not_found",
                                     StrCat("no action '", id, "' in this workspace"), "id")));
  }
  // A decision point that names it (as a candidate or its fallback) keeps it.
  for (const config::DecisionPointConfig& p : next.points) {
    if (p.fallback == id || std::find(p.actions.begin(), p.actions.end(), id) != p.actions.end()) {
      return respond(net::ErrorResponse(
          MakeError(absl::StatusCode::kAborted, "action_in_use",
                    StrCat("decision point '", p.id, "' names action '", id,
                           p.fallback == id ? "' as its fallback" : "' among its actions",
                           " in the config: change the config to remove it"),
                    "id")));
    }
  }
  ApplyEdit(&next.actions, id, std::nullopt);
  absl::StatusOr<std::shared_ptr<const decide::Catalog>> compiled = decide::CompileCatalog(
      next, (*state)->workspace->consent_purposes, &(*state)->workspace->condition_names);
  if (!compiled.ok()) {  // a decision point would be left without candidates
    return respond(net::ErrorResponse(MakeError(
        absl::StatusCode::kAborted, "action_in_use",
        StrCat("without action '", id, "', ", CatalogConflict(next, compiled.status())), "id")));
  }
  rocksdb::WriteBatch batch;
  rocksdb::Status put = batch.Put(
      store_->decisions(), storage::ActionEditKey((*state)->workspace->id, id), kDeletedAction);
  if (!put.ok()) return respond(net::ErrorResponse(StoreError(put)));
  if (absl::Status s = store_->Write(&batch); !s.ok()) return respond(net::ErrorResponse(s));
  {
    std::lock_guard lock((*state)->catalog_mu);
    (*state)->catalog = *std::move(compiled);
    (*state)->config = std::move(next);
    (*state)->edited.erase(id);
  }
  respond(net::JsonResponse(200, StrCat(R"({"deleted":")", id, R"("})")));
}

absl::StatusOr<DecideService::State*> DecideService::AdminState(const net::RequestContext& ctx) {
  absl::StatusOr<api::Principal> principal =
      api::AuthenticateAdmin(*keys_, net::Header(ctx.request, http::field::authorization));
  if (!principal.ok()) return principal.status();
  return StateOf(principal->workspace_id);
}

absl::StatusOr<DecideService::State*> DecideService::StateOf(uint32_t workspace_id) {
  auto it = states_.find(workspace_id);
  if (it == states_.end() || it->second.catalog == nullptr) {
    return MakeError(absl::StatusCode::kNotFound, "decisions_not_configured",
                     "this workspace has no `decisions` block in the config: no actions or "
                     "decision points to decide among");
  }
  return &it->second;
}

void DecideService::HandleDecide(net::RequestContext& ctx, net::Responder respond) {
  simdjson::dom::parser parser;
  absl::StatusOr<CallerRequest> request = ReadCallerRequest(*keys_, ctx, parser);
  if (!request.ok()) return respond(net::ErrorResponse(request.status()));
  const simdjson::dom::element body = request->body;
  if (absl::Status s =
          api::RefuseUnknownKeys(body,
                                 {"userId", "anonymousId", "decisionPoint", "slots", "channels",
                                  "context", "properties", "deferActivation", "writeKey"},
                                 /*segment_envelope=*/true);
      !s.ok()) {
    return respond(net::ErrorResponse(s));
  }
  const api::Principal* principal = &request->principal;
  absl::StatusOr<State*> state = StateOf(principal->workspace_id);
  if (!state.ok()) return respond(net::ErrorResponse(state.status()));
  const Workspace& ws = *(*state)->workspace;
  const std::shared_ptr<const decide::Catalog> snapshot = CatalogOf(**state);
  const decide::Catalog& catalog = *snapshot;

  std::string_view point_id;
  simdjson::dom::element v;
  if (body["decisionPoint"].get(v) != simdjson::SUCCESS || v.is_null()) {  // null is absent
    return respond(net::ErrorResponse(
        InvalidInput("missing_field", "decisionPoint is required", "decisionPoint")));
  }
  if (v.get(point_id) != simdjson::SUCCESS) {
    return respond(net::ErrorResponse(
        InvalidInput("wrong_type", "decisionPoint must be a string", "decisionPoint")));
  }
  if (point_id.empty()) {
    return respond(net::ErrorResponse(
        InvalidInput("missing_field", "decisionPoint is required", "decisionPoint")));
  }
  const decide::DecisionPoint* point = catalog.Point(point_id);
  if (point == nullptr) {
    return respond(net::ErrorResponse(MakeError(
        absl::StatusCode::kNotFound, "unknown_decision_point",
        StrCat("no decision point '", point_id, "' in this workspace"), "decisionPoint")));
  }
  size_t slots = point->slots;
  if (body["slots"].get(v) == simdjson::SUCCESS && !v.is_null()) {  // null: the point's
    absl::StatusOr<size_t> n = SlotNumber(v, "slots");
    if (!n.ok()) return respond(net::ErrorResponse(n.status()));
    slots = *n;
  }
  decide::DecideInput in;
  if (body["channels"].get(v) == simdjson::SUCCESS && !v.is_null()) {  // null: every channel
    simdjson::dom::array list;
    bool ok = v.get(list) == simdjson::SUCCESS;
    // Only a list is walked: a default dom::array has no document behind it (iterating one
    // reads through a null pointer).
    if (ok) {
      for (simdjson::dom::element e : list) {
        std::string_view channel;
        ok = e.get(channel) == simdjson::SUCCESS;
        if (!ok) break;
        if (channel != "email" && channel != "sms" && channel != "push" && channel != "in_app" &&
            channel != "web" && channel != "phone") {
          return respond(net::ErrorResponse(
              InvalidInput("invalid_value",
                           StrCat("unknown channel '", channel,
                                  "'; channels are email, sms, push, in_app, web, "
                                  "phone"),
                           "channels")));
        }
        // A channel named twice is one channel.
        if (std::find(in.channels.begin(), in.channels.end(), channel) == in.channels.end()) {
          in.channels.emplace_back(channel);
        }
      }
    }
    if (!ok) {
      return respond(net::ErrorResponse(
          InvalidInput("wrong_type", "channels must be a list of channel names", "channels")));
    }
    if (in.channels.empty()) {  // no channel at all would filter every action
      return respond(net::ErrorResponse(
          InvalidInput("invalid_value", "channels must name at least one channel (or be left out)",
                       "channels")));
    }
  }
  if (absl::Status s = CheckSegmentObjects(body); !s.ok()) {
    return respond(net::ErrorResponse(s));
  }
  bool deferred = false;
  if (body["deferActivation"].get(v) == simdjson::SUCCESS && !v.is_null() &&  // null is absent
      v.get(deferred) != simdjson::SUCCESS) {
    return respond(net::ErrorResponse(
        InvalidInput("wrong_type", "deferActivation must be true or false", "deferActivation")));
  }
  // From the customer's first read to the decision's write: not across an erasure.
  Gate::Pass erasure_pass = Gate::Enter(&erasures_);
  absl::StatusOr<Customer> customer = FindCustomer(body, *store_, ws.id, ws.profiles.rules);
  if (!customer.ok()) return respond(net::ErrorResponse(customer.status()));
  if (!customer->suppressed.empty()) {
    // Erased with ?suppress=true: a decision would keep a record of them again.
    return respond(net::ErrorResponse(MakeError(
        absl::StatusCode::kAborted, "customer_suppressed",
        StrCat(customer->suppressed,
               " names a customer erased with suppress=true: nothing is decided for or kept "
               "about them"),
        std::string(customer->suppressed))));
  }

  const int64_t now = clock_->NowMillis();
  state::EventFacts facts = ContextFacts(body, now, ws.profiles.fold.consent, &*customer);
  state::DeviceFacts device_scratch;
  const state::DeviceFacts* device =
      state::DetectDevice(detector_, facts.user_agent, &device_scratch);
  state::EventBindings bindings(facts, body, customer->profile, device, now);
  learn::FeatureBuilder features(catalog.settings.posterior.bits, /*keep_names=*/true);
  state::ProfileFeatures(customer->profile, now, ws.profiles.models, &features);
  ContextFeatures(facts, device, &features);

  in.catalog = &catalog;
  in.point = point;
  in.slots = slots;
  in.bindings = &bindings;
  in.profile = &customer->profile;
  in.now_ms = now;
  in.features = features.features();
  in.feature_names = features.names();
  in.customer_hash =
      customer->profile_id ? state::ProfileHash(*customer->profile_id) : customer->visitor_hash;
  // Where the customer's contacts and engagement are read from: every key of their profile, or
  // each identifier of a first-time visitor (their contacts are written under each; engagement
  // under the userId when given, but what their browser got while anonymous counts too).
  const std::span<const identity::Identifier> visitor =
      customer->profile_id ? std::span<const identity::Identifier>() : customer->visitor_ids;
  const std::vector<uint64_t> contact_rows = ContactRows(in.customer_hash, visitor);
  const std::vector<uint64_t> customer_hashes =
      customer->profile_id ? CustomerHashes(in.customer_hash, customer->profile) : contact_rows;
  Point& model = *(*state)->points.at(point->id);
  // With a contact policy, the customer's history is read, decided on and extended under its
  // stripes of locks (held to the write).
  StripeLocks contact_lock;
  if (catalog.settings.PerCustomer()) contact_lock = StripeLocks(contact_mu_, contact_rows);
  decide::ContactHistory history;
  if (catalog.settings.contact_policy) {
    absl::StatusOr<std::optional<decide::ContactHistory>> read =
        ReadCustomerRows<decide::ContactHistory>(*store_, ws.id, storage::ContactKey,
                                                 customer_hashes);
    if (!read.ok()) return respond(net::ErrorResponse(read.status()));
    if (read->has_value()) history = **std::move(read);
    in.contacts = &history;
  }
  // The control group is drawn by the hash of the customer's first decision, kept under their
  // keys (as contacts are): a visitor who gets a profile, or whose profile merges, keeps it.
  bool new_bucket = false;
  if (catalog.settings.control_group > 0 && in.customer_hash != 0) {
    absl::StatusOr<uint64_t> bucket = ReadControlBucket(*store_, ws.id, customer_hashes);
    if (bucket.ok() && *bucket == 0) {
      // None kept: the first decision for them, or the first since an upgrade from a version
      // that kept none, whose decisions the group is taken from.
      new_bucket = true;
      std::vector<uint64_t> index;
      if (customer->profile_id) {
        index = state::KeysOfCustomer(customer->profile).index;
      } else {
        for (uint64_t row : contact_rows) index.push_back(state::VisitorIndex(row));
      }
      bucket = FirstLoggedCustomer(*store_, ws.id, index);
    }
    if (!bucket.ok()) return respond(net::ErrorResponse(bucket.status()));
    in.control_bucket = *bucket;
  }
  // With budgets, the workspace's decisions are made one at a time to the write.
  std::unique_lock<std::mutex> budget_lock;
  std::vector<uint8_t> budget_spent;
  if (catalog.settings.budgets) {
    budget_lock = std::unique_lock((*state)->budget_mu);
    const int64_t day = now / 86'400'000;
    budget_spent.resize(catalog.actions.size());
    for (size_t i = 0; i < catalog.actions.size(); ++i) {
      const decide::Action& a = catalog.actions[i];
      auto it = (*state)->budgets.find(a.id);
      budget_spent[i] =
          BudgetSpent(a, it == (*state)->budgets.end() ? BudgetUse{} : it->second, day);
    }
    in.budget_spent = budget_spent;
  }
  // With channel choice or send time, the customer's engagement counts.
  decide::Engagement engagement;
  if (catalog.settings.engagement()) {
    absl::StatusOr<std::optional<decide::Engagement>> read = ReadCustomerRows<decide::Engagement>(
        *store_, ws.id, storage::EngagementKey, customer_hashes);
    if (!read.ok()) return respond(net::ErrorResponse(read.status()));
    if (read->has_value()) engagement = **std::move(read);
    in.engagement = &engagement;
  }
  decide::Decision decision;
  uint64_t updates = 0;
  std::optional<decide::SendTime> send_time;
  {
    std::shared_lock delivery((*state)->delivery_mu);
    in.workspace_engagement = &(*state)->engagement;
    in.variants = &(*state)->variants;
    {
      std::shared_lock lock(model.mu);
      decision = decide::Decide(in, model.posterior, Rng());
      updates = model.posterior.updates();
    }
    if (catalog.settings.send_time) {
      send_time = decide::NextSendTime(
          now, decide::LoadLocalZone(CustomerZone(body, customer->profile)), engagement.hours,
          (*state)->engagement.hours, catalog.settings.send, Rng());
    }
  }

  const uint64_t id = decide::NextDecisionId(now);
  // Slots below the supervised threshold are held: one approval for the decision.
  Approval approval;
  for (const decide::SlotChoice& c : decision.slots) {
    if (c.autonomy != "approval") continue;
    approval.slots.push_back({c.slot + 1, catalog.actions[c.action].id, ReviewOf(catalog, c)});
  }
  if (!approval.slots.empty()) {
    approval.decision = id;
    approval.point = point->id;
    if (customer->profile_id) {
      approval.profile = state::ProfileIdString(*customer->profile_id);
    } else {
      approval.visitor = customer->visitor_ids;  // to find their profile when it is reviewed
    }
    approval.created_ms = now;
    approval.expires_ms = now + catalog.settings.approval_expiry_ms;
  }
  std::string out;
  JsonWriter w(&out);
  WriteDecision(w, id, catalog, *point, *customer, now, decision, updates, approval.expires_ms,
                deferred, send_time);
  const std::string record =
      LogRecord(out, catalog, decision, in.customer_hash,
                customer->profile_id ? std::vector<identity::Identifier>() : customer->visitor_ids,
                in.features);
  rocksdb::WriteBatch batch;
  rocksdb::Status put = batch.Put(store_->decisions(), storage::DecisionKey(ws.id, id), record);
  // Indexed under the customer's profile, or under each identifier of a first-time visitor:
  // when their profile appears, by whichever of them, its decisions include these
  // (state::KeysOfCustomer).
  std::vector<uint64_t> index;
  if (customer->profile_id) {
    index.push_back(*customer->profile_id);
  } else {
    for (const identity::Identifier& v : customer->visitor_ids) {
      index.push_back(state::VisitorIndex(state::VisitorHash(v.type, v.value)));
    }
  }
  for (uint64_t i : index) {
    if (put.ok())
      put = batch.Put(store_->decisions(), storage::ProfileDecisionKey(ws.id, i, id), "");
  }
  if (put.ok() && !approval.slots.empty()) {
    put = batch.Put(store_->decisions(), storage::ApprovalKey(ws.id, id), ApprovalJson(approval));
    if (put.ok()) {
      put = batch.Put(store_->decisions(), storage::ApprovalDueKey(ws.id, approval.expires_ms, id),
                      "");
    }
  }
  if (new_bucket) {
    std::string bucket;
    storage::PutBigEndian64(&bucket, in.control_bucket != 0 ? in.control_bucket : in.customer_hash);
    for (uint64_t row : contact_rows) {
      if (put.ok())
        put = batch.Put(store_->decisions(), storage::ControlBucketKey(ws.id, row), bucket);
    }
  }
  if (!put.ok()) return respond(net::ErrorResponse(StoreError(put)));
  // The slots acted on now (none of a deferred decision until it is activated): contacts, budget
  // use, delivery counts and the wait for their rewards.
  std::vector<Acted> acted;
  for (const decide::SlotChoice& c : decision.slots) {
    if (c.autonomy == "approval" || deferred) continue;
    const decide::Action& a = catalog.actions[c.action];
    acted.push_back({a.id, c.treatment->channel,
                     c.variant >= 0 ? a.variants[static_cast<size_t>(c.variant)].id : ""});
  }
  std::vector<std::pair<std::string, BudgetUse>> spent;
  if (absl::Status s = Act(**state, catalog, point, id, in.customer_hash, contact_rows, now, acted,
                           &batch, &spent);
      !s.ok()) {
    return respond(net::ErrorResponse(s));
  }
  if (!contact_lock.owns_lock() && !budget_lock.owns_lock()) {
    // Nothing waits for this write but the answer (see the header).
    // The pass ends with the write, before the answer (whose thread may be the one an erasure
    // waits on). Shared: the group writer's callbacks are copyable.
    auto pass = std::make_shared<Gate::Pass>(std::move(erasure_pass));
    log_writer_.Write(std::move(batch), [respond = std::move(respond), out = std::move(out),
                                         pass = std::move(pass)](absl::Status s) mutable {
      pass->Reset();
      respond(s.ok() ? net::JsonResponse(200, std::move(out)) : net::ErrorResponse(s));
    });
    return;
  }
  if (absl::Status s = store_->Write(&batch); !s.ok()) return respond(net::ErrorResponse(s));
  for (const auto& [action, use] : spent) (*state)->budgets[action] = use;
  budget_lock = {};
  contact_lock = {};
  erasure_pass.Reset();
  respond(net::JsonResponse(200, std::move(out)));
}

void DecideService::HandleReward(net::RequestContext& ctx, net::Responder respond) {
  simdjson::dom::parser parser;
  absl::StatusOr<CallerRequest> request = ReadCallerRequest(*keys_, ctx, parser);
  if (!request.ok()) return respond(net::ErrorResponse(request.status()));
  const simdjson::dom::element body = request->body;
  if (absl::Status s = api::RefuseUnknownKeys(
          body, {"decisionId", "slot", "value", "outcome", "rewardId", "writeKey"},
          /*segment_envelope=*/true);
      !s.ok()) {
    return respond(net::ErrorResponse(s));
  }
  const api::Principal* principal = &request->principal;
  absl::StatusOr<State*> state = StateOf(principal->workspace_id);
  if (!state.ok()) return respond(net::ErrorResponse(state.status()));
  const Workspace& ws = *(*state)->workspace;
  const std::shared_ptr<const decide::Catalog> snapshot = CatalogOf(**state);
  const decide::Settings& settings = snapshot->settings;

  simdjson::dom::element v;
  std::string_view raw_id;
  // null is absent, and an empty id names no decision, as decide's identifiers.
  if (body["decisionId"].get(v) != simdjson::SUCCESS || v.is_null() ||
      (v.get(raw_id) == simdjson::SUCCESS && raw_id.empty())) {
    return respond(
        net::ErrorResponse(InvalidInput("missing_field", "decisionId is required", "decisionId")));
  }
  if (v.get(raw_id) != simdjson::SUCCESS) {
    return respond(net::ErrorResponse(
        InvalidInput("wrong_type", "decisionId must be a string", "decisionId")));
  }
  absl::StatusOr<uint64_t> id = DecisionIdParam(raw_id, "decisionId");
  if (!id.ok()) return respond(net::ErrorResponse(id.status()));
  uint64_t slot = 1;
  if (body["slot"].get(v) == simdjson::SUCCESS && !v.is_null()) {  // null is absent
    absl::StatusOr<size_t> n = SlotNumber(v, "slot");
    if (!n.ok()) return respond(net::ErrorResponse(n.status()));
    slot = *n;
  }
  double value = 0;
  std::string outcome;
  // null is absent, as in collection.
  const bool has_value = body["value"].get(v) == simdjson::SUCCESS && !v.is_null();
  if (has_value && !v.is_number()) {
    return respond(
        net::ErrorResponse(InvalidInput("wrong_type", "value must be a number", "value")));
  }
  if (has_value && (v.get(value) != simdjson::SUCCESS || !(value >= -1 && value <= 1))) {
    return respond(net::ErrorResponse(
        InvalidInput("invalid_value", "value must be a number from -1 to 1", "value")));
  }
  if (body["outcome"].get(v) == simdjson::SUCCESS && !v.is_null()) {
    std::string_view name;
    if (v.get(name) != simdjson::SUCCESS) {
      return respond(net::ErrorResponse(
          InvalidInput("wrong_type", "outcome must be a string (a named outcome)", "outcome")));
    }
    if (has_value) {
      return respond(net::ErrorResponse(
          InvalidInput("invalid_value",
                       "give either value (a number) or outcome (a name), not both", "outcome")));
    }
    auto it = settings.outcomes.find(name);
    if (it == settings.outcomes.end()) {
      std::string known;
      for (const auto& [k, x] : settings.outcomes) StrAppend(&known, known.empty() ? "" : ", ", k);
      return respond(net::ErrorResponse(InvalidInput("invalid_value",
                                                     StrCat("unknown outcome '", name,
                                                            "'; this workspace's "
                                                            "outcomes are ",
                                                            known),
                                                     "outcome")));
    }
    outcome = name;
    value = it->second;
  } else if (!has_value) {
    return respond(net::ErrorResponse(
        InvalidInput("missing_field", "give value (-1 to 1) or outcome", "value")));
  }
  std::string reward_id;
  if (body["rewardId"].get(v) == simdjson::SUCCESS && !v.is_null()) {  // null is absent
    std::string_view r;
    if (v.get(r) != simdjson::SUCCESS) {
      return respond(
          net::ErrorResponse(InvalidInput("wrong_type", "rewardId must be a string", "rewardId")));
    }
    if (r.empty() || r.size() > 200) {
      return respond(net::ErrorResponse(
          InvalidInput("invalid_value", "rewardId must be 1 to 200 bytes", "rewardId")));
    }
    // The server's own rewards are "default" (a reward wait's) and "goal:<messageId>": a
    // client's may not take their place.
    if (r == kDefaultRewardId || r.starts_with(kGoalRewardPrefix)) {
      return respond(net::ErrorResponse(InvalidInput(
          "invalid_value",
          StrCat("rewardId '", r, "' is reserved: the server names default and goal rewards so"),
          "rewardId")));
    }
    reward_id = r;
  }

  LogLock lock(&erasures_, log_mu_);
  absl::StatusOr<std::optional<LoggedDecision>> read = ReadLogged(*store_, ws.id, *id);
  if (!read.ok()) return respond(net::ErrorResponse(read.status()));
  if (!read->has_value()) {
    return respond(net::ErrorResponse(
        MakeError(absl::StatusCode::kNotFound, "decision_not_found",
                  StrCat("no decision ", raw_id, " in this workspace"), "decisionId")));
  }
  const LoggedDecision* logged = &**read;
  if (slot > logged->slots.size()) {
    return respond(
        net::ErrorResponse(InvalidInput("invalid_value",
                                        StrCat("decision ", raw_id, " has ", logged->slots.size(),
                                               " slot", logged->slots.size() == 1 ? "" : "s"),
                                        "slot")));
  }
  if (logged->deferred) {
    absl::StatusOr<std::optional<int64_t>> activated = ActivatedAt(ws.id, *id);
    if (!activated.ok()) return respond(net::ErrorResponse(activated.status()));
    if (!activated->has_value()) {
      return respond(net::ErrorResponse(
          MakeError(absl::StatusCode::kAborted, "decision_not_activated",
                    StrCat("decision ", raw_id,
                           " was made with deferActivation and is not activated: POST "
                           "/v1/decisions/",
                           raw_id, "/activate once it is shown"),
                    "decisionId")));
    }
  }
  if (logged->slots[slot - 1].held) {
    // Held for approval: shown, and so rewardable, only once approved (as goals and default
    // rewards count it).
    absl::StatusOr<bool> approved = HeldSlotsApproved(*store_, ws.id, *id, *logged);
    if (!approved.ok()) return respond(net::ErrorResponse(approved.status()));
    if (!*approved) {
      return respond(net::ErrorResponse(MakeError(
          absl::StatusCode::kAborted, "slot_not_approved",
          StrCat("slot ", slot, " of decision ", raw_id,
                 " was held for approval and is not approved (pending, rejected or expired): "
                 "its action was not acted on, so it has no outcome to learn"),
          "slot")));
    }
  }
  absl::StatusOr<RewardResult> result =
      ApplyReward(**state, *id, *logged, slot, value, outcome, reward_id, "api");
  if (!result.ok()) return respond(net::ErrorResponse(result.status()));
  std::string out;
  JsonWriter w(&out);
  w.StartObject();
  w.Key("decisionId");
  w.String(decide::DecisionIdString(*id));
  w.Key("slot");
  w.Uint(slot);
  w.Key("action");
  w.String(logged->slots[slot - 1].action);
  w.Key("value");
  w.Double(value);
  w.Key("outcome");
  w.StringOrNull(outcome);
  w.Key("applied");
  w.Bool(result->applied);
  if (!result->applied) {
    w.Key("reason");
    w.String(settings.sum_rewards ? "duplicate_reward_id" : "already_rewarded");
  }
  w.Key("total");
  w.Double(result->total);
  w.EndObject();
  respond(net::JsonResponse(200, std::move(out)));
}

absl::StatusOr<DecideService::RewardResult> DecideService::ApplyReward(
    State& state, uint64_t id, const LoggedDecision& logged, uint64_t slot, double value,
    std::string_view outcome, std::string_view reward_id, std::string_view source) {
  const uint32_t ws = state.workspace->id;
  const std::shared_ptr<const decide::Catalog> snapshot = CatalogOf(state);
  const decide::Catalog& catalog = *snapshot;
  const decide::Settings& settings = catalog.settings;
  // First: one reward per slot (whatever its rewardId). Sum: one per rewardId.
  const std::string prefix = storage::RewardPrefix(ws, id, static_cast<uint8_t>(slot));
  bool duplicate = false;
  // The slot's rewards in key (rewardId) order, and where this one goes among them: the total
  // is always summed in that order, so the same rewards give the same total to the last digit.
  std::vector<double> values;
  size_t position = 0;
  absl::Status scanned = store_->ScanPrefix(
      store_->decisions(), prefix, [&](std::string_view key, std::string_view json) {
        const std::string_view id = key.substr(prefix.size());
        if (!settings.sum_rewards || id == reward_id) duplicate = true;
        if (id < reward_id) ++position;
        simdjson::dom::parser p;
        double x = 0;
        simdjson::dom::element doc;
        if (p.parse(json.data(), json.size()).get(doc) != simdjson::SUCCESS ||
            doc["value"].get(x) != simdjson::SUCCESS) {
          x = 0;  // unreadable: counts as nothing
        }
        values.push_back(x);
        return true;
      });
  if (!scanned.ok()) return scanned;
  const auto sum = [](const std::vector<double>& xs) {
    double s = 0;
    for (double x : xs) s += x;
    return s;
  };
  const double total = sum(values);
  if (duplicate) return RewardResult{false, total};
  values.insert(values.begin() + static_cast<ptrdiff_t>(std::min(position, values.size())), value);
  const double new_total = sum(values);

  const int64_t now = clock_->NowMillis();
  std::string json;
  JsonWriter rw(&json);
  rw.StartObject();
  rw.Key("value");
  rw.Double(value);
  rw.Key("outcome");
  rw.StringOrNull(outcome);
  rw.Key("rewardId");
  rw.StringOrNull(reward_id);
  rw.Key("source");
  rw.String(source);
  rw.Key("at");
  rw.String(FormatIso8601(now));
  rw.EndObject();
  rocksdb::WriteBatch batch;
  rocksdb::Status put = batch.Put(store_->decisions(), StrCat(prefix, reward_id), json);
  if (!put.ok()) return StoreError(put);
  // A negative outcome counts towards the action's suppression for this customer.
  const LoggedSlot& logged_slot = logged.slots[slot - 1];
  const bool negative =
      value < 0 || std::find(settings.negative_outcomes.begin(), settings.negative_outcomes.end(),
                             outcome) != settings.negative_outcomes.end();
  // The first positive reward of a slot is an engagement with its message: its channel and
  // hour for the customer and the workspace, and its variant.
  const bool engaged = value > 0 && total <= 0;
  const bool customer_write = logged.customer != 0 && ((negative && settings.contact_policy) ||
                                                       (engaged && settings.engagement()));
  const std::vector<uint64_t> contact_rows = ContactRows(logged.customer, logged.visitor);
  StripeLocks contact_lock;
  if (customer_write) contact_lock = StripeLocks(contact_mu_, contact_rows);
  if (negative && settings.contact_policy && logged.customer != 0) {
    if (absl::Status s =
            RecordContacts(catalog, ws, contact_rows, id, now, {}, logged_slot.action, &batch);
        !s.ok()) {
      return s;
    }
  }
  if (engaged && (settings.engagement() || !logged_slot.variant.empty())) {
    const decide::LocalZone zone = decide::LoadLocalZone(logged.zone);
    if (settings.engagement() && logged.customer != 0) {
      absl::Status s = UpdateEngagement(ws, logged.customer, &batch, [&](decide::Engagement& e) {
        e.RecordEngagement(logged_slot.channel, now, zone.zone);
      });
      if (!s.ok()) return s;
    }
    std::unique_lock lock(state.delivery_mu);
    if (settings.engagement())
      state.engagement.RecordEngagement(logged_slot.channel, now, zone.zone);
    if (!logged_slot.variant.empty()) {
      state.variants.RecordEngaged(logged_slot.action, logged_slot.variant);
    }
    state.delivery_dirty = true;
  }
  if (absl::Status s = store_->Write(&batch); !s.ok()) return s;
  if (contact_lock.owns_lock()) contact_lock.unlock();
  Teach(state, logged, {slot - 1}, value);
  return RewardResult{true, new_total};
}

absl::Status DecideService::UpdateEngagement(uint32_t workspace_id, uint64_t customer,
                                             rocksdb::WriteBatch* batch,
                                             const std::function<void(decide::Engagement&)>& fn) {
  const std::string key = storage::EngagementKey(workspace_id, customer);
  absl::StatusOr<std::optional<std::string>> stored = store_->Get(store_->decisions(), key);
  if (!stored.ok()) return stored.status();
  decide::Engagement e;
  if (stored->has_value()) e = decide::Engagement::Decode(**stored).value_or(decide::Engagement{});
  fn(e);
  rocksdb::Status put = batch->Put(store_->decisions(), key, e.Encode());
  return put.ok() ? absl::OkStatus() : StoreError(put);
}

absl::StatusOr<std::optional<int64_t>> DecideService::ActivatedAt(uint32_t workspace_id,
                                                                  uint64_t id) {
  absl::StatusOr<std::optional<std::string>> stored =
      store_->Get(store_->decisions(), storage::ActivationKey(workspace_id, id));
  if (!stored.ok()) return stored.status();
  if (!stored->has_value()) return std::optional<int64_t>();
  return ParseIso8601(**stored).value_or(0);
}

absl::Status DecideService::CheckContactPolicy(
    const decide::Catalog& catalog, uint32_t ws, uint64_t customer,
    std::span<const uint64_t> contact_rows, const state::Profile& profile,
    const std::vector<Acted>& acted, const std::vector<size_t>& slot_numbers, int64_t now,
    std::string_view made, std::string_view instead) const {
  if (!catalog.settings.contact_policy || customer == 0 || acted.empty()) {
    return absl::OkStatus();
  }
  std::vector<uint64_t> rows = CustomerHashes(customer, profile);
  for (uint64_t row : contact_rows) {
    if (std::find(rows.begin(), rows.end(), row) == rows.end()) rows.push_back(row);
  }
  absl::StatusOr<std::optional<decide::ContactHistory>> history =
      ReadCustomerRows<decide::ContactHistory>(*store_, ws, storage::ContactKey, rows);
  if (!history.ok()) return history.status();
  std::vector<std::pair<std::string_view, std::string_view>> slots;
  for (const Acted& a : acted) slots.emplace_back(a.action, a.channel);
  const std::optional<decide::ContactBreach> breach =
      decide::ContactPolicyBreach(catalog, slots, history->value_or(decide::ContactHistory{}), now);
  if (!breach) return absl::OkStatus();
  return MakeError(
      absl::StatusCode::kAborted, "contact_limit_reached",
      StrCat("acting on action ", acted[breach->slot].action, " (slot ", slot_numbers[breach->slot],
             ") now would break the contact policy (", breach->reason,
             breach->reason == "suppressed"
                 ? "): the customer gave it negative outcomes since the decision was "
                 : "): the customer was contacted since the decision was ",
             made, "; ", instead),
      "id");
}

absl::Status DecideService::Act(State& state, const decide::Catalog& catalog,
                                const decide::DecisionPoint* point, uint64_t id, uint64_t customer,
                                std::span<const uint64_t> contact_rows, int64_t now,
                                const std::vector<Acted>& slots, rocksdb::WriteBatch* batch,
                                std::vector<std::pair<std::string, BudgetUse>>* spent) {
  const uint32_t ws = state.workspace->id;
  // What was delivered: the customer's and the workspace's messages per channel, and the shows
  // of each variant. The workspace's counts are statistics, changed here even if the batch then
  // fails to write.
  if (catalog.settings.engagement() && customer != 0 && !slots.empty()) {
    absl::Status s = UpdateEngagement(ws, customer, batch, [&](decide::Engagement& e) {
      for (const Acted& a : slots) e.RecordDelivery(a.channel);
    });
    if (!s.ok()) return s;
  }
  const bool variants =
      std::any_of(slots.begin(), slots.end(), [](const Acted& a) { return !a.variant.empty(); });
  if (catalog.settings.engagement() || variants) {
    std::unique_lock lock(state.delivery_mu);
    for (const Acted& a : slots) {
      if (catalog.settings.engagement()) state.engagement.RecordDelivery(a.channel);
      if (!a.variant.empty()) state.variants.RecordShown(a.action, a.variant);
    }
    state.delivery_dirty = true;
  }
  if (catalog.settings.contact_policy && customer != 0) {
    std::vector<std::pair<std::string, std::string>> contacts;
    for (const Acted& a : slots) contacts.emplace_back(a.action, a.channel);
    if (absl::Status s = RecordContacts(catalog, ws, contact_rows, id, now, contacts, "", batch);
        !s.ok()) {
      return s;
    }
  }
  if (catalog.settings.budgets) {
    std::vector<size_t> acted;
    for (const Acted& a : slots) {
      for (size_t i = 0; i < catalog.actions.size(); ++i) {
        if (catalog.actions[i].id == a.action) acted.push_back(i);
      }
    }
    absl::StatusOr<std::vector<std::pair<std::string, BudgetUse>>> uses =
        SpendBudgets(state, catalog, acted, now, batch);
    if (!uses.ok()) return uses.status();
    *spent = *std::move(uses);
  }
  if (point != nullptr && point->reward_wait_ms > 0 && !slots.empty()) {
    rocksdb::Status put = batch->Put(
        store_->decisions(), storage::RewardDueKey(ws, now + point->reward_wait_ms, id), point->id);
    if (!put.ok()) return StoreError(put);
  }
  return absl::OkStatus();
}

void DecideService::HandleActivate(net::RequestContext& ctx, net::Responder respond) {
  const std::string_view authorization = net::Header(ctx.request, http::field::authorization);
  if (!api::HasHeaderKey(authorization)) {
    // AuthenticateCollect's message would point at a body, which an activation has none of.
    return respond(net::ErrorResponse(MakeError(
        absl::StatusCode::kUnauthenticated, "unauthenticated",
        "no write key: send it in the Authorization header (the user name of HTTP Basic auth, "
        "or Bearer); an activation has no body")));
  }
  absl::StatusOr<api::Principal> principal = api::AuthenticateCollect(*keys_, authorization, "");
  if (!principal.ok()) return respond(net::ErrorResponse(principal.status()));
  absl::StatusOr<State*> state = StateOf(principal->workspace_id);
  if (!state.ok()) return respond(net::ErrorResponse(state.status()));
  absl::StatusOr<uint64_t> id = DecisionIdParam(net::PathParam(ctx), "id");
  if (!id.ok()) return respond(net::ErrorResponse(id.status()));
  const uint32_t ws = principal->workspace_id;
  const std::shared_ptr<const decide::Catalog> snapshot = CatalogOf(**state);
  const decide::Catalog& catalog = *snapshot;
  LogLock lock(&erasures_, log_mu_);
  absl::StatusOr<std::optional<LoggedDecision>> read = ReadLogged(*store_, ws, *id);
  if (!read.ok()) return respond(net::ErrorResponse(read.status()));
  if (!read->has_value()) {
    return respond(net::ErrorResponse(MakeError(
        absl::StatusCode::kNotFound, "decision_not_found",
        StrCat("no decision ", decide::DecisionIdString(*id), " in this workspace"), "id")));
  }
  const LoggedDecision& logged = **read;
  absl::StatusOr<std::optional<int64_t>> activated = ActivatedAt(ws, *id);
  if (!activated.ok()) return respond(net::ErrorResponse(activated.status()));
  auto answer = [&](bool applied, std::string_view reason, int64_t at) {
    std::string out;
    JsonWriter w(&out);
    w.StartObject();
    w.Key("decisionId");
    w.String(decide::DecisionIdString(*id));
    w.Key("activated");
    w.Bool(applied);
    w.Key("reason");
    w.StringOrNull(reason);
    w.Key("activatedAt");
    if (at > 0) {
      w.String(FormatIso8601(at));
    } else {
      w.Null();
    }
    w.EndObject();
    respond(net::JsonResponse(200, std::move(out)));
  };
  // Idempotent: activating twice, or a decision acted on at once, changes nothing.
  if (!logged.deferred) return answer(false, "not_deferred", decide::DecisionMillis(*id));
  if (activated->has_value()) return answer(false, "already_activated", **activated);

  const int64_t now = clock_->NowMillis();
  rocksdb::WriteBatch batch;
  rocksdb::Status put =
      batch.Put(store_->decisions(), storage::ActivationKey(ws, *id), FormatIso8601(now));
  if (!put.ok()) return respond(net::ErrorResponse(StoreError(put)));
  // The slots not held for approval are acted on now, and the held ones if already approved
  // (else when they are).
  absl::StatusOr<bool> approved = HeldSlotsApproved(*store_, ws, *id, logged);
  if (!approved.ok()) return respond(net::ErrorResponse(approved.status()));
  std::vector<Acted> acted;
  std::vector<size_t> acted_slots;  // their slot numbers
  for (size_t i = 0; i < logged.slots.size(); ++i) {
    const LoggedSlot& s = logged.slots[i];
    if (s.held && !*approved) continue;
    acted.push_back({s.action, s.channel, s.variant});
    acted_slots.push_back(i + 1);
  }
  // Shown now, so what the customer allows now rules, as for an approval: a consent withdrawn
  // since the decision was made, or contacts made since, refuse the activation (nothing is
  // recorded, and the decision can take no reward).
  std::string profile_id = logged.profile;
  if (profile_id.empty()) {  // a first-time visitor then: the profile they have by now
    absl::StatusOr<std::string> found = VisitorProfile(*store_, ws, logged.visitor);
    if (!found.ok()) return respond(net::ErrorResponse(found.status()));
    profile_id = *std::move(found);
  }
  absl::StatusOr<state::Profile> customer = CurrentProfile(*store_, ws, profile_id);
  if (!customer.ok()) return respond(net::ErrorResponse(customer.status()));
  for (size_t i = 0; i < acted.size(); ++i) {
    if (std::string_view purpose =
            WithdrawnConsent(catalog, acted[i].action, acted[i].channel, *customer);
        !purpose.empty()) {
      return respond(net::ErrorResponse(
          MakeError(absl::StatusCode::kAborted, "consent_withdrawn",
                    StrCat("the customer does not consent to ", purpose, ", which action ",
                           acted[i].action, " (slot ", acted_slots[i],
                           ") needs; the decision was not activated: do not show it"),
                    "id")));
    }
  }
  const std::vector<uint64_t> contact_rows = ContactRows(logged.customer, logged.visitor);
  StripeLocks contact_lock;
  if (catalog.settings.PerCustomer()) contact_lock = StripeLocks(contact_mu_, contact_rows);
  if (absl::Status s = CheckContactPolicy(catalog, ws, logged.customer, contact_rows, *customer,
                                          acted, acted_slots, now, "made",
                                          "the decision was not activated: do not show it");
      !s.ok()) {
    return respond(net::ErrorResponse(s));
  }
  // A deferred decision used no budget when it was made: acting on it now must not take an
  // action past its budget (unlike a person's approval, no one chose to).
  std::unique_lock<std::mutex> budget_lock;
  if (catalog.settings.budgets) {
    budget_lock = std::unique_lock((*state)->budget_mu);
    for (size_t i = 0; i < acted.size(); ++i) {
      const decide::Action* a = catalog.FindAction(acted[i].action);
      if (a == nullptr) continue;
      auto it = (*state)->budgets.find(a->id);
      if (BudgetSpent(*a, it == (*state)->budgets.end() ? BudgetUse{} : it->second,
                      now / 86'400'000)) {
        return respond(net::ErrorResponse(MakeError(
            absl::StatusCode::kAborted, "budget_exhausted",
            StrCat("action ", a->id, " (slot ", acted_slots[i],
                   ") has no budget left; the decision was not activated: do not show it"),
            "id")));
      }
    }
  }
  std::vector<std::pair<std::string, BudgetUse>> spent;
  if (absl::Status s = Act(**state, catalog, catalog.Point(logged.point), *id, logged.customer,
                           contact_rows, now, acted, &batch, &spent);
      !s.ok()) {
    return respond(net::ErrorResponse(s));
  }
  if (absl::Status s = store_->Write(&batch); !s.ok()) return respond(net::ErrorResponse(s));
  for (const auto& [action, use] : spent) (*state)->budgets[action] = use;
  answer(true, "", now);
}

absl::StatusOr<bool> WriteLoggedDecision(const storage::Store& store, uint32_t workspace_id,
                                         uint64_t id, JsonWriter& w, std::string* record) {
  absl::StatusOr<std::optional<std::string>> stored =
      store.Get(store.decisions(), storage::DecisionKey(workspace_id, id));
  if (!stored.ok()) return stored.status();
  if (!stored->has_value()) return false;
  absl::StatusOr<std::optional<std::string>> activated =
      store.Get(store.decisions(), storage::ActivationKey(workspace_id, id));
  if (!activated.ok()) return activated.status();
  w.StartObject();
  w.Key("decision");
  w.RawValue(**stored);
  if (record != nullptr) *record = **std::move(stored);
  w.Key("activatedAt");
  if (activated->has_value()) {
    w.String(FormatIso8601(ParseIso8601(**activated).value_or(0)));
  } else {
    w.Null();
  }
  w.Key("rewards");
  w.StartArray();
  for (uint8_t slot = 1; slot <= 20; ++slot) {
    absl::Status s =
        store.ScanPrefix(store.decisions(), storage::RewardPrefix(workspace_id, id, slot),
                         [&](std::string_view, std::string_view json) {
                           // {"slot": n, ...the stored reward}
                           w.RawValue(StrCat("{\"slot\":", slot, ",", json.substr(1)));
                           return true;
                         });
    if (!s.ok()) return s;
  }
  w.EndArray();
  w.EndObject();
  return true;
}

absl::Status WriteCustomerDecisions(const storage::Store& store, uint32_t workspace_id,
                                    const state::Profile& profile, JsonWriter& w) {
  const state::CustomerKeys keys = state::KeysOfCustomer(profile);
  std::vector<uint64_t> ids;
  for (uint64_t index : keys.index) {
    absl::Status s =
        store.ScanPrefix(store.decisions(), storage::ProfileDecisionPrefix(workspace_id, index),
                         [&](std::string_view key, std::string_view) {
                           ids.push_back(storage::DecisionOfKey(key));
                           return true;
                         });
    if (!s.ok()) return s;
  }
  std::sort(ids.begin(), ids.end());
  ids.erase(std::unique(ids.begin(), ids.end()), ids.end());
  // With each decision, the identifiers a first-time visitor's decision was made for that the
  // profile does not hold (a userId given with its anonymousId): the contacts and engagement
  // kept under them are the customer's too (as erasure takes them).
  std::vector<uint64_t> hashes = keys.hashes;
  simdjson::dom::parser parser;
  std::string record;
  w.Key("decisions");
  w.StartArray();
  for (uint64_t id : ids) {
    record.clear();
    if (absl::StatusOr<bool> written = WriteLoggedDecision(store, workspace_id, id, w, &record);
        !written.ok()) {
      return written.status();
    }
    for (uint64_t hash : state::RecordVisitorHashes(parser, record)) {
      if (std::find(hashes.begin(), hashes.end(), hash) == hashes.end()) hashes.push_back(hash);
    }
  }
  w.EndArray();
  // The approvals of those held, as GET /v1/approvals/{id} answers them now (the decision keeps
  // the approval as it was when made).
  w.Key("approvals");
  w.StartArray();
  for (uint64_t id : ids) {
    absl::StatusOr<std::optional<std::string>> approval =
        store.Get(store.decisions(), storage::ApprovalKey(workspace_id, id));
    if (!approval.ok()) return approval.status();
    if (approval->has_value()) w.RawValue(**approval);
  }
  w.EndArray();
  // The histories kept under each key, as one.
  absl::StatusOr<std::optional<decide::ContactHistory>> contacts =
      ReadCustomerRows<decide::ContactHistory>(store, workspace_id, storage::ContactKey, hashes);
  if (!contacts.ok()) return contacts.status();
  absl::StatusOr<std::optional<decide::Engagement>> engagement =
      ReadCustomerRows<decide::Engagement>(store, workspace_id, storage::EngagementKey, hashes);
  if (!engagement.ok()) return engagement.status();
  w.Key("contactHistory");
  if (contacts->has_value()) {
    w.RawValue((*contacts)->Encode());
  } else {
    w.Null();
  }
  w.Key("engagement");
  if (engagement->has_value()) {
    w.RawValue((*engagement)->Encode());
  } else {
    w.Null();
  }
  // The hash the customer's control group is drawn by, as the decision log writes a customer's.
  w.Key("controlBucket");
  absl::StatusOr<uint64_t> bucket = ReadControlBucket(store, workspace_id, hashes);
  if (!bucket.ok()) return bucket.status();
  if (*bucket != 0) {
    w.String(Hex16(*bucket));
  } else {
    w.Null();
  }
  return absl::OkStatus();
}

void DecideService::HandleGet(net::RequestContext& ctx, net::Responder respond) {
  absl::StatusOr<api::Principal> principal =
      api::AuthenticateAdmin(*keys_, net::Header(ctx.request, http::field::authorization));
  if (!principal.ok()) return respond(net::ErrorResponse(principal.status()));
  absl::StatusOr<uint64_t> id = DecisionIdParam(net::PathParam(ctx), "id");
  if (!id.ok()) return respond(net::ErrorResponse(id.status()));
  std::string out;
  JsonWriter w(&out);
  absl::StatusOr<bool> found = WriteLoggedDecision(*store_, principal->workspace_id, *id, w);
  if (!found.ok()) return respond(net::ErrorResponse(found.status()));
  if (!*found) {
    return respond(net::ErrorResponse(MakeError(
        absl::StatusCode::kNotFound, "decision_not_found",
        StrCat("no decision ", decide::DecisionIdString(*id), " in this workspace"), "id")));
  }
  respond(net::JsonResponse(200, std::move(out)));
}

namespace {

// The index ids whose decisions are the customer of `profile`'s: its survivor (when it was
// merged away), every profile merged into that and the visitors it was (state::KeysOfCustomer),
// since a decision stays indexed where it was made. Just `profile` when it has no stored profile
// (erased).
absl::StatusOr<std::vector<uint64_t>> ProfilesOfCustomer(const storage::Store& store, uint32_t ws,
                                                         uint64_t profile) {
  absl::StatusOr<state::Profile> p = CurrentProfile(store, ws, profile);
  if (!p.ok()) return p.status();
  if (p->id == 0) return std::vector<uint64_t>{profile};
  return state::KeysOfCustomer(*p).index;
}

// The ids of the decisions of `profiles` in [first, end), in time order, at most `limit` of
// them; `*more` when there are others after those.
absl::Status ProfileDecisions(const storage::Store& store, uint32_t ws,
                              std::span<const uint64_t> profiles, uint64_t first, uint64_t end,
                              uint64_t limit, std::vector<uint64_t>* ids, bool* more) {
  std::vector<uint64_t> found;
  for (uint64_t profile : profiles) {
    uint64_t taken = 0;
    absl::Status s = store.ScanPrefixFrom(
        store.decisions(), storage::ProfileDecisionPrefix(ws, profile),
        storage::ProfileDecisionKey(ws, profile, first),
        [&](std::string_view key, std::string_view) {
          const uint64_t id = storage::DecisionOfKey(key);
          if (id >= end) return false;
          found.push_back(id);
          return ++taken <= limit;  // one past the limit tells whether there are more
        });
    if (!s.ok()) return s;
  }
  std::sort(found.begin(), found.end());
  found.erase(std::unique(found.begin(), found.end()), found.end());
  *more = found.size() > limit;
  if (*more) found.resize(limit);
  *ids = std::move(found);
  return absl::OkStatus();
}

// The decisions a list or an export selects: ?profile=&from=&to=&cursor= and at most `limit`,
// in time order; `more` when the range holds more. A profile's are those of the customer it
// belongs to (ProfilesOfCustomer).
struct Selection {
  std::vector<uint64_t> ids;
  bool more = false;
};

absl::StatusOr<Selection> SelectDecisions(const storage::Store& store, uint32_t ws,
                                          std::string_view url, uint64_t limit) {
  auto time_param = [&](std::string_view name, int64_t fallback) -> absl::StatusOr<int64_t> {
    std::optional<std::string_view> raw = api::QueryParam(url, name);
    if (!raw || raw->empty()) return fallback;
    absl::StatusOr<std::string> decoded = api::PercentDecode(*raw, name);
    if (!decoded.ok()) return decoded.status();
    std::optional<int64_t> ms = ParseIso8601(*decoded);
    if (!ms) {
      return InvalidInput("invalid_timestamp", StrCat(name, " must be an ISO-8601 time"),
                          std::string(name));
    }
    return *ms;
  };
  absl::StatusOr<int64_t> from = time_param("from", kMinIso8601Millis);
  if (!from.ok()) return from.status();
  absl::StatusOr<int64_t> to = time_param("to", kMaxIso8601Millis);
  if (!to.ok()) return to.status();
  if (*from > *to) {  // swapped bounds select nothing: say so rather than answer empty
    return InvalidInput("invalid_value", "from must not be after to", "from");
  }
  absl::StatusOr<std::optional<uint64_t>> cursor = DecisionCursor(url);
  if (!cursor.ok()) return cursor.status();
  const uint64_t after = cursor->value_or(0);
  Selection out;
  // Nothing was decided before 1970 (ids count milliseconds from then) or after the last id.
  if (*to < 0 || after == UINT64_MAX) return out;
  std::optional<uint64_t> profile;
  if (std::optional<std::string_view> raw = api::QueryParam(url, "profile"); raw && !raw->empty()) {
    profile = state::ParseProfileId(*raw);
    if (!profile) {
      return InvalidInput("invalid_value", "profile must be a profile id (prf_...)", "profile");
    }
  }
  const uint64_t first =
      std::max(decide::FirstDecisionIdAt(std::max<int64_t>(*from, 0)), after + (after ? 1 : 0));
  const uint64_t end = decide::FirstDecisionIdAt(*to);  // exclusive
  if (profile) {
    absl::StatusOr<std::vector<uint64_t>> profiles = ProfilesOfCustomer(store, ws, *profile);
    if (!profiles.ok()) return profiles.status();
    absl::Status s = ProfileDecisions(store, ws, *profiles, first, end, limit, &out.ids, &out.more);
    if (!s.ok()) return s;
    return out;
  }
  // The key ends with the decision id: seek straight to the first one wanted.
  const std::string start = storage::DecisionKey(ws, first);
  const std::string prefix = start.substr(0, start.size() - sizeof(uint64_t));
  absl::Status s = store.ScanPrefixFrom(store.decisions(), prefix, start,
                                        [&](std::string_view key, std::string_view) {
                                          const uint64_t id = storage::DecisionOfKey(key);
                                          if (id < first) return true;
                                          if (id >= end) return false;
                                          if (out.ids.size() == limit) {
                                            out.more = true;
                                            return false;
                                          }
                                          out.ids.push_back(id);
                                          return true;
                                        });
  if (!s.ok()) return s;
  return out;
}

// Each slot's reward of decision `id` (the sum of those stored: with `aggregate: first` there is
// one), NaN for none.
absl::StatusOr<std::vector<double>> SlotRewards(const storage::Store& store, uint32_t ws,
                                                uint64_t id) {
  std::vector<double> rewards(kMaxSlots, std::nan(""));
  const std::string prefix = storage::RewardPrefix(ws, id);
  absl::Status s =
      store.ScanPrefix(store.decisions(), prefix, [&](std::string_view key, std::string_view json) {
        const size_t slot = static_cast<uint8_t>(key[prefix.size()]);
        simdjson::dom::parser p;
        simdjson::dom::element r;
        double x = 0;
        if (slot >= 1 && slot <= kMaxSlots &&
            p.parse(json.data(), json.size()).get(r) == simdjson::SUCCESS &&
            r["value"].get(x) == simdjson::SUCCESS) {
          rewards[slot - 1] = std::isnan(rewards[slot - 1]) ? x : rewards[slot - 1] + x;
        }
        return true;
      });
  if (!s.ok()) return s;
  return rewards;
}

// Rewards of the slots acted on for one group (engine or control) of a lift report.
struct GroupStats {
  uint64_t decisions = 0, slots = 0, rewarded = 0;
  double sum = 0, sum_squares = 0;
  double Mean() const { return slots == 0 ? 0 : sum / static_cast<double>(slots); }
  // The variance of the mean.
  double MeanVariance() const {
    if (slots < 2) return 0;
    const double n = static_cast<double>(slots);
    return std::max(0.0, (sum_squares - sum * sum / n) / (n - 1)) / n;
  }
};

// `low` and `high`: the 95 % interval (normal approximation) of an estimate `mean` with
// variance `variance`; both null when it is not `known` (a sample of fewer than two).
void WriteInterval(JsonWriter& w, double mean, bool known, double variance) {
  const double half = 1.96 * std::sqrt(variance);
  w.Key("low");
  known ? w.Double(mean - half) : w.Null();
  w.Key("high");
  known ? w.Double(mean + half) : w.Null();
}

void WriteGroup(JsonWriter& w, std::string_view key, const GroupStats& g) {
  w.Key(key);
  w.StartObject();
  w.Key("decisions");
  w.Uint(g.decisions);
  w.Key("slots");
  w.Uint(g.slots);
  w.Key("rewarded");
  w.Uint(g.rewarded);
  w.Key("meanReward");
  if (g.slots == 0) {
    w.Null();
  } else {
    w.Double(g.Mean());
  }
  WriteInterval(w, g.Mean(), g.slots >= 2, g.MeanVariance());
  w.EndObject();
}

// Whether logged decision `id` (`doc`) was made with deferActivation and not activated (yet):
// never shown, so nothing of it was acted on and it has no outcome.
absl::StatusOr<bool> NotActivated(const storage::Store& store, uint32_t ws, uint64_t id,
                                  simdjson::dom::element doc) {
  std::string_view activation;
  if (doc["activation"].get(activation) != simdjson::SUCCESS || activation != "deferred") {
    return false;
  }
  absl::StatusOr<std::optional<std::string>> at =
      store.Get(store.decisions(), storage::ActivationKey(ws, id));
  if (!at.ok()) return at.status();
  return !at->has_value();
}

// The export of one logged decision: a line per slot with what offline evaluation needs
// (`whisperer eval ope --log`). `rewards` is each slot's reward (the sum of those stored: with
// `aggregate: first` there is one), NaN for none.
void WriteExportLines(std::string* out, uint64_t id, simdjson::dom::element doc,
                      const std::vector<double>& rewards) {
  auto text = [](simdjson::dom::element e, std::string_view key) {
    std::string_view v;
    return e[key].get(v) == simdjson::SUCCESS ? v : std::string_view();
  };
  const std::string_view at = text(doc, "at"), point = text(doc, "decisionPoint"),
                         group = text(doc, "group");
  simdjson::dom::array slots, context, eligible_list, filtered;
  if (doc["slots"].get(slots) != simdjson::SUCCESS) return;
  const bool has_context = doc["context"].get(context) == simdjson::SUCCESS;
  // What each slot was chosen among: the actions scored without those of earlier slots and
  // those filtered for a full channel by then.
  std::vector<std::string_view> eligible, before;
  std::vector<std::pair<std::string_view, size_t>> channel_limited;
  const bool has_eligible = doc["eligible"].get(eligible_list) == simdjson::SUCCESS;
  // Lists only are walked (a default dom::array has no document behind it).
  if (has_eligible) {
    for (simdjson::dom::element e : eligible_list) {
      std::string_view a;
      if (e.get(a) == simdjson::SUCCESS) eligible.push_back(a);
    }
  }
  if (doc["filtered"].get(filtered) == simdjson::SUCCESS) {
    for (simdjson::dom::element f : filtered) {
      uint64_t at = 0;
      if (text(f, "reason") == "channel_limit" && f["slot"].get(at) == simdjson::SUCCESS) {
        channel_limited.emplace_back(text(f, "action"), at);
      }
    }
  }
  size_t position = 0;
  for (simdjson::dom::element slot : slots) {
    ++position;
    JsonWriter w(out);
    w.StartObject();
    w.Key("decisionId");
    w.String(decide::DecisionIdString(id));
    w.Key("at");
    w.String(at);
    w.Key("decisionPoint");
    w.String(point);
    w.Key("group");
    w.String(group);
    w.Key("position");
    w.Uint(position);
    const std::string_view action = text(slot, "action");
    w.Key("action");
    w.String(action);
    w.Key("status");
    w.String(text(slot, "status"));
    double probability = 0;
    w.Key("propensity");
    w.Double(slot["probability"].get(probability) == simdjson::SUCCESS ? probability : 0);
    w.Key("reward");
    if (position <= rewards.size() && !std::isnan(rewards[position - 1])) {
      w.Double(rewards[position - 1]);
    } else {
      w.Null();
    }
    simdjson::dom::array candidates;
    w.Key("candidates");
    if (has_eligible) {
      w.StartArray();
      for (std::string_view a :
           decide::SlotCandidates(eligible, before, channel_limited, position)) {
        w.String(a);
      }
      w.EndArray();
    } else if (slot["candidates"].get(candidates) == simdjson::SUCCESS) {  // logged per slot
      w.RawValue(simdjson::minify(candidates));
    } else {  // logged before candidates were: the action alone
      w.StartArray();
      w.String(action);
      w.EndArray();
    }
    before.push_back(action);
    w.Key("context");
    if (has_context) {
      w.RawValue(simdjson::minify(context));
    } else {
      w.StartArray();
      w.EndArray();
    }
    w.EndObject();
    out->push_back('\n');
  }
}

}  // namespace

void DecideService::HandleList(net::RequestContext& ctx, net::Responder respond) {
  absl::StatusOr<api::Principal> principal =
      api::AuthenticateAdmin(*keys_, net::Header(ctx.request, http::field::authorization));
  if (!principal.ok()) return respond(net::ErrorResponse(principal.status()));
  const uint32_t ws = principal->workspace_id;
  std::string_view url = net::Target(ctx.request);
  absl::StatusOr<uint64_t> limit = api::PageLimit(url);
  if (!limit.ok()) return respond(net::ErrorResponse(limit.status()));
  absl::StatusOr<Selection> selected = SelectDecisions(*store_, ws, url, *limit);
  if (!selected.ok()) return respond(net::ErrorResponse(selected.status()));
  std::string out;
  JsonWriter w(&out);
  w.StartObject();
  w.Key("decisions");
  w.StartArray();
  for (uint64_t id : selected->ids) {
    absl::StatusOr<std::optional<std::string>> stored =
        store_->Get(store_->decisions(), storage::DecisionKey(ws, id));
    if (!stored.ok()) return respond(net::ErrorResponse(stored.status()));
    if (stored->has_value()) w.RawValue(**stored);
  }
  w.EndArray();
  const bool more = selected->more && !selected->ids.empty();
  EndPage(w, more ? decide::DecisionIdString(selected->ids.back()) : "", more);
  respond(net::JsonResponse(200, std::move(out)));
}

void DecideService::HandleExport(net::RequestContext& ctx, net::Responder respond) {
  absl::StatusOr<api::Principal> principal =
      api::AuthenticateAdmin(*keys_, net::Header(ctx.request, http::field::authorization));
  if (!principal.ok()) return respond(net::ErrorResponse(principal.status()));
  const uint32_t ws = principal->workspace_id;
  std::string_view url = net::Target(ctx.request);
  absl::StatusOr<uint64_t> limit = api::PageLimit(url, kExportLimit, kMaxExportLimit);
  if (!limit.ok()) return respond(net::ErrorResponse(limit.status()));
  absl::StatusOr<Selection> selected = SelectDecisions(*store_, ws, url, *limit);
  if (!selected.ok()) return respond(net::ErrorResponse(selected.status()));
  std::string out;
  simdjson::dom::parser parser;
  for (uint64_t id : selected->ids) {
    absl::StatusOr<std::optional<std::string>> stored =
        store_->Get(store_->decisions(), storage::DecisionKey(ws, id));
    if (!stored.ok()) return respond(net::ErrorResponse(stored.status()));
    simdjson::dom::element doc;
    if (!stored->has_value() || parser.parse(**stored).get(doc) != simdjson::SUCCESS) continue;
    absl::StatusOr<bool> unshown = NotActivated(*store_, ws, id, doc);
    if (!unshown.ok()) return respond(net::ErrorResponse(unshown.status()));
    if (*unshown) continue;  // no outcome to learn from
    absl::StatusOr<std::vector<double>> rewards = SlotRewards(*store_, ws, id);
    if (!rewards.ok()) return respond(net::ErrorResponse(rewards.status()));
    WriteExportLines(&out, id, doc, *rewards);
  }
  net::Response res = net::JsonResponse(200, std::move(out));
  res.set(http::field::content_type, "application/x-ndjson");
  if (selected->more && !selected->ids.empty()) {
    res.set("Whisperer-Next-Cursor", decide::DecisionIdString(selected->ids.back()));
  }
  respond(std::move(res));
}

void DecideService::HandleLift(net::RequestContext& ctx, net::Responder respond) {
  absl::StatusOr<api::Principal> principal =
      api::AuthenticateAdmin(*keys_, net::Header(ctx.request, http::field::authorization));
  if (!principal.ok()) return respond(net::ErrorResponse(principal.status()));
  const uint32_t ws = principal->workspace_id;
  std::string_view url = net::Target(ctx.request);
  std::string point;
  if (std::optional<std::string_view> raw = api::QueryParam(url, "decisionPoint")) {
    absl::StatusOr<std::string> decoded = api::PercentDecode(*raw, "decisionPoint");
    if (!decoded.ok()) return respond(net::ErrorResponse(decoded.status()));
    point = *std::move(decoded);
  }
  absl::StatusOr<Selection> selected = SelectDecisions(*store_, ws, url, kMaxLiftDecisions);
  if (!selected.ok()) return respond(net::ErrorResponse(selected.status()));
  GroupStats engine, control;
  simdjson::dom::parser parser;
  for (uint64_t id : selected->ids) {
    absl::StatusOr<std::optional<std::string>> stored =
        store_->Get(store_->decisions(), storage::DecisionKey(ws, id));
    if (!stored.ok()) return respond(net::ErrorResponse(stored.status()));
    simdjson::dom::element doc;
    std::string_view group, at_point;
    simdjson::dom::array slots;
    if (!stored->has_value() || parser.parse(**stored).get(doc) != simdjson::SUCCESS ||
        doc["group"].get(group) != simdjson::SUCCESS ||
        doc["decisionPoint"].get(at_point) != simdjson::SUCCESS ||
        doc["slots"].get(slots) != simdjson::SUCCESS || (!point.empty() && at_point != point)) {
      continue;
    }
    absl::StatusOr<bool> unshown = NotActivated(*store_, ws, id, doc);
    if (!unshown.ok()) return respond(net::ErrorResponse(unshown.status()));
    if (*unshown) continue;  // nothing of it was acted on
    absl::StatusOr<std::vector<double>> rewards = SlotRewards(*store_, ws, id);
    if (!rewards.ok()) return respond(net::ErrorResponse(rewards.status()));
    GroupStats& g = group == "control" ? control : engine;
    ++g.decisions;
    size_t slot = 0;
    for (simdjson::dom::element s : slots) {
      const double r = (*rewards)[slot++];
      std::string_view status;
      if (s["status"].get(status) == simdjson::SUCCESS && status == "held_for_approval" &&
          std::isnan(r)) {
        continue;  // never acted on, as far as the log knows
      }
      ++g.slots;  // a slot acted on without a reward earned nothing
      if (std::isnan(r)) continue;
      ++g.rewarded;
      g.sum += r;
      g.sum_squares += r * r;
    }
  }
  // A point neither configured nor in the log is a mistake (a typo would read as no lift); one
  // taken out of the catalog, or of a workspace that no longer decides, still shows its logged
  // decisions.
  if (!point.empty() && engine.decisions == 0 && control.decisions == 0) {
    absl::StatusOr<State*> state = StateOf(ws);
    if (!state.ok() || CatalogOf(**state)->Point(point) == nullptr) {
      return respond(net::ErrorResponse(
          MakeError(absl::StatusCode::kNotFound, "unknown_decision_point",
                    StrCat("no decision point '", point.substr(0, 200),
                           "' in this workspace, and no logged decision at one of that name"),
                    "decisionPoint")));
    }
  }
  std::string out;
  JsonWriter w(&out);
  w.StartObject();
  w.Key("decisionPoint");
  w.StringOrNull(point);
  w.Key("scanned");
  w.Uint(selected->ids.size());
  w.Key("truncated");
  w.Bool(selected->more);
  WriteGroup(w, "engine", engine);
  WriteGroup(w, "control", control);
  w.Key("lift");
  if (engine.slots == 0 || control.slots == 0) {
    w.Null();
  } else {
    const double diff = engine.Mean() - control.Mean();
    w.StartObject();
    w.Key("absolute");
    w.Double(diff);
    WriteInterval(w, diff, engine.slots >= 2 && control.slots >= 2,
                  engine.MeanVariance() + control.MeanVariance());
    w.Key("relative");
    if (control.Mean() != 0) {
      w.Double(diff / control.Mean());
    } else {
      w.Null();
    }
    w.EndObject();
  }
  w.EndObject();
  respond(net::JsonResponse(200, std::move(out)));
}

void DecideService::Teach(State& state, const LoggedDecision& logged,
                          const std::vector<size_t>& slots, double reward) {
  auto it = state.points.find(logged.point);
  if (it == state.points.end()) return;  // a decision point since removed learns nothing
  Point& point = *it->second;
  std::vector<learn::Feature> crossed;
  std::unique_lock lock(point.mu);
  for (size_t slot : slots) {
    const LoggedSlot& s = logged.slots[slot];
    if (s.features.empty()) {  // the customer's features crossed with the slot's action
      learn::CrossWithAction(logged.context, Hash64(s.action), point.posterior.options().bits,
                             &crossed);
    }
    point.posterior.Update(s.features.empty() ? crossed : s.features, reward);
  }
  if (!slots.empty()) point.dirty = true;
}

absl::Status DecideService::ExpireApprovals() {
  const int64_t now = clock_->NowMillis();
  // The fallback's conditions read an event: there is none, so an empty one.
  simdjson::dom::parser parser;
  simdjson::dom::element empty_event;
  if (parser.parse("{}", 2).get(empty_event) != simdjson::SUCCESS) {
    return absl::InternalError("parsing {}");
  }
  for (auto& [id, state] : states_) {
    if (state.catalog == nullptr) continue;
    const std::shared_ptr<const decide::Catalog> snapshot = CatalogOf(state);
    const decide::Catalog& catalog = *snapshot;
    std::vector<std::pair<std::string, uint64_t>> due;
    const std::string prefix = storage::ApprovalDuePrefix(id);
    absl::Status s = store_->ScanPrefix(
        store_->decisions(), prefix, [&](std::string_view key, std::string_view) {
          const int64_t expires =
              static_cast<int64_t>(storage::GetBigEndian64(key.data() + prefix.size()));
          if (expires > now) return false;
          due.emplace_back(std::string(key), storage::DecisionOfKey(key));
          return true;
        });
    if (!s.ok()) return s;
    LogLock lock(&erasures_, log_mu_);
    for (const auto& [due_key, decision] : due) {
      rocksdb::WriteBatch batch;
      rocksdb::Status d = batch.Delete(store_->decisions(), due_key);
      absl::StatusOr<std::optional<std::string>> stored =
          store_->Get(store_->decisions(), storage::ApprovalKey(id, decision));
      if (!stored.ok()) return stored.status();
      std::optional<Approval> a =
          stored->has_value() ? ParseApproval(**stored) : std::optional<Approval>();
      if (a && a->status == "pending") {
        a->status = "expired";
        a->decided_ms = now;
        // A profile that cannot be read counts as none (nothing granted): one corrupt profile
        // must not hold up the expiry of every approval after it.
        absl::StatusOr<state::Profile> customer = ClosingApprovalCustomer(*store_, id, *a);
        if (!customer.ok()) {
          obs::LogEvent(
              spdlog::level::warn, "fallback_profile_unreadable",
              {{"profileId", a->profile}, {"error", std::string(customer.status().message())}});
          customer = state::Profile{};
        }
        const decide::DecisionPoint* point = catalog.Point(a->point);
        if (point != nullptr && point->fallback) {
          // The fallback is what to do for this customer now: it must pass the filters a
          // decision would apply (consent, conditions, validity), its consent above all.
          state::EventFacts facts;
          facts.timestamp_ms = facts.received_at_ms = now;
          state::EventBindings bindings(facts, empty_event, *customer, nullptr, now);
          decide::DecideInput in;
          in.catalog = &catalog;
          in.point = point;
          in.bindings = &bindings;
          in.profile = &*customer;
          in.now_ms = now;
          const decide::Treatment* treatment = nullptr;
          const std::string_view reason = decide::FilterReason(*point->fallback, in, &treatment);
          if (reason.empty()) {
            a->fallback_action = catalog.actions[*point->fallback].id;
            a->fallback_treatment = treatment->id;
            a->fallback_channel = treatment->channel;
          } else {
            a->fallback_withheld = reason;
          }
        }
        if (d.ok()) {
          d = batch.Put(store_->decisions(), storage::ApprovalKey(id, decision), ApprovalJson(*a));
        }
      }
      if (!d.ok()) return StoreError(d);
      if (absl::Status w = store_->Write(&batch); !w.ok()) return w;
    }
  }
  return absl::OkStatus();
}

absl::Status DecideService::ApplyDueRewards() {
  const int64_t now = clock_->NowMillis();
  for (auto& [id, state] : states_) {
    if (state.catalog == nullptr) continue;
    const std::shared_ptr<const decide::Catalog> snapshot = CatalogOf(state);
    std::vector<std::pair<std::string, uint64_t>> due;
    absl::Status s = store_->ScanPrefix(store_->decisions(), storage::RewardDuePrefix(id),
                                        [&](std::string_view key, std::string_view) {
                                          if (storage::DueOfKey(key) > now) return false;
                                          due.emplace_back(key, storage::DecisionOfKey(key));
                                          return true;
                                        });
    if (!s.ok()) return s;
    LogLock lock(&erasures_, log_mu_);
    for (const auto& [due_key, decision] : due) {
      absl::StatusOr<std::optional<LoggedDecision>> read = ReadLogged(*store_, id, decision);
      if (!read.ok()) return read.status();
      if (read->has_value()) {  // else erased since
        const LoggedDecision& logged = **read;
        const decide::DecisionPoint* point = snapshot->Point(logged.point);
        const double value = point != nullptr ? point->default_reward : 0;
        // Every slot acted on without a reward by now gets the default.
        absl::StatusOr<bool> approved = HeldSlotsApproved(*store_, id, decision, logged);
        if (!approved.ok()) return approved.status();
        for (size_t slot = 1; slot <= logged.slots.size(); ++slot) {
          if (logged.slots[slot - 1].held && !*approved) continue;
          bool rewarded = false;
          absl::Status scanned = store_->ScanPrefix(
              store_->decisions(), storage::RewardPrefix(id, decision, static_cast<uint8_t>(slot)),
              [&](std::string_view, std::string_view) {
                rewarded = true;
                return false;
              });
          if (!scanned.ok()) return scanned;
          if (rewarded) continue;
          absl::StatusOr<RewardResult> r =
              ApplyReward(state, decision, logged, slot, value, "", kDefaultRewardId, "default");
          if (!r.ok()) return r.status();
        }
      }
      rocksdb::WriteBatch batch;
      if (rocksdb::Status d = batch.Delete(store_->decisions(), due_key); !d.ok()) {
        return StoreError(d);
      }
      if (absl::Status w = store_->Write(&batch); !w.ok()) return w;
    }
  }
  return ApplyGoals();
}

bool DecideService::HasGoals() const {
  return std::any_of(states_.begin(), states_.end(), [](const auto& entry) {
    const Workspace& ws = *entry.second.workspace;
    return ws.decisions != nullptr && !ws.decisions->settings.goals.empty();
  });
}

namespace {

// A goal event kept until its rewards are applied (key O): the profile, when the event
// happened, its name and messageId.
struct PendingGoal {
  uint64_t profile = 0;
  int64_t at_ms = 0;
  std::string event, message_id;
};

std::string EncodePendingGoal(uint64_t profile, int64_t at_ms, std::string_view event,
                              std::string_view message_id) {
  std::string v;
  storage::PutBigEndian64(&v, profile);
  storage::PutBigEndian64(&v, static_cast<uint64_t>(at_ms));
  storage::PutBigEndian32(&v, static_cast<uint32_t>(event.size()));
  v.append(event);
  v.append(message_id);
  return v;
}

std::optional<PendingGoal> DecodePendingGoal(std::string_view v) {
  if (v.size() < 20) return std::nullopt;
  const uint32_t n = storage::GetBigEndian32(v.data() + 16);
  if (v.size() - 20 < n) return std::nullopt;
  return PendingGoal{storage::GetBigEndian64(v.data()),
                     static_cast<int64_t>(storage::GetBigEndian64(v.data() + 8)),
                     std::string(v.substr(20, n)), std::string(v.substr(20 + n))};
}

}  // namespace

void DecideService::OnEvent(uint32_t workspace_id, uint64_t profile_id, uint64_t sequence,
                            const state::EventFacts& facts, rocksdb::WriteBatch* batch) {
  if (facts.type != api::EventType::kTrack) return;
  auto it = states_.find(workspace_id);
  if (it == states_.end() || it->second.catalog == nullptr) return;
  // Goals are settings, the same in every catalog edited from this config.
  const std::vector<decide::Settings::Goal>& goals =
      it->second.workspace->decisions->settings.goals;
  if (std::none_of(goals.begin(), goals.end(),
                   [&](const decide::Settings::Goal& g) { return g.event == facts.name; })) {
    return;
  }
  // The goal happened at the event's time (its timestamp, corrected for the client's clock),
  // which an import or an offline queue puts well before its arrival: only decisions before
  // that are credited. Never later than its arrival, whatever the client's clock said.
  const int64_t at = std::min(facts.timestamp_ms, facts.received_at_ms);
  rocksdb::Status put =
      batch->Put(store_->decisions(), storage::GoalPendingKey(workspace_id, sequence),
                 EncodePendingGoal(profile_id, at, facts.name, facts.message_id));
  if (!put.ok()) {
    obs::LogEvent(spdlog::level::warn, "goal_not_kept",
                  {{"messageId", std::string(facts.message_id)}, {"error", put.ToString()}});
  }
}

absl::Status DecideService::ApplyGoals() {
  LogLock lock(&erasures_, log_mu_);
  for (auto& [ws, state] : states_) {
    if (state.catalog == nullptr) continue;
    // Goal events stored since the last call (or before a crash), in the order they arrived;
    // one whose goal has since left the config is dropped.
    std::vector<std::pair<std::string, std::string>> pending;
    absl::Status s = store_->ScanPrefix(store_->decisions(), storage::GoalPendingPrefix(ws),
                                        [&](std::string_view key, std::string_view value) {
                                          pending.emplace_back(key, value);
                                          return pending.size() < 10'000;  // the rest next time
                                        });
    if (!s.ok()) return s;
    const std::vector<decide::Settings::Goal>& goals = state.workspace->decisions->settings.goals;
    rocksdb::WriteBatch applied;
    for (const auto& [key, value] : pending) {
      const std::optional<PendingGoal> hit = DecodePendingGoal(value);
      for (const decide::Settings::Goal& goal : goals) {
        if (!hit || goal.event != hit->event) continue;
        // The customer's decisions within the goal's window before the event, in time order,
        // those made for profiles merged into theirs included.
        const uint64_t first = decide::FirstDecisionIdAt(hit->at_ms - goal.within_ms);
        const uint64_t end = decide::FirstDecisionIdAt(hit->at_ms + 1);
        absl::StatusOr<std::vector<uint64_t>> profiles =
            ProfilesOfCustomer(*store_, ws, hit->profile);
        if (!profiles.ok()) return profiles.status();
        std::vector<uint64_t> ids;
        bool more = false;
        s = ProfileDecisions(*store_, ws, *profiles, first, end, UINT64_MAX - 1, &ids, &more);
        if (!s.ok()) return s;
        for (uint64_t id : ids) {
          absl::StatusOr<std::optional<LoggedDecision>> read = ReadLogged(*store_, ws, id);
          if (!read.ok()) return read.status();
          if (!read->has_value()) continue;
          const LoggedDecision& logged = **read;
          if (!goal.points.empty() && std::find(goal.points.begin(), goal.points.end(),
                                                logged.point) == goal.points.end()) {
            continue;
          }
          if (logged.deferred) {  // never shown: nothing to credit
            absl::StatusOr<std::optional<int64_t>> activated = ActivatedAt(ws, id);
            if (!activated.ok()) return activated.status();
            if (!activated->has_value()) continue;
          }
          absl::StatusOr<bool> approved = HeldSlotsApproved(*store_, ws, id, logged);
          if (!approved.ok()) return approved.status();
          for (size_t slot = 1; slot <= logged.slots.size(); ++slot) {
            if (logged.slots[slot - 1].held && !*approved) continue;
            absl::StatusOr<RewardResult> r =
                ApplyReward(state, id, logged, slot, goal.value, goal.outcome,
                            StrCat(kGoalRewardPrefix, hit->message_id), "goal");
            if (!r.ok()) return r.status();
          }
        }
      }
      // Applied (a crash before this write applies it again, to no effect: rewards are
      // idempotent by their id).
      if (rocksdb::Status d = applied.Delete(store_->decisions(), key); !d.ok()) {
        return StoreError(d);
      }
    }
    if (applied.Count() > 0) {
      if (absl::Status w = store_->Write(&applied); !w.ok()) return w;
    }
  }
  return absl::OkStatus();
}

void DecideService::HandleApprovals(net::RequestContext& ctx, net::Responder respond) {
  absl::StatusOr<api::Principal> principal =
      api::AuthenticateAdmin(*keys_, net::Header(ctx.request, http::field::authorization));
  if (!principal.ok()) return respond(net::ErrorResponse(principal.status()));
  const uint32_t ws = principal->workspace_id;
  std::string_view url = net::Target(ctx.request);
  absl::StatusOr<uint64_t> limit = api::PageLimit(url);
  if (!limit.ok()) return respond(net::ErrorResponse(limit.status()));
  std::string_view status = api::QueryParam(url, "status").value_or("pending");
  if (status.empty()) status = "pending";
  if (status != "pending" && status != "approved" && status != "rejected" && status != "expired" &&
      status != "all") {
    return respond(net::ErrorResponse(InvalidInput(
        "invalid_value", "status must be pending, approved, rejected, expired or all", "status")));
  }
  absl::StatusOr<std::optional<uint64_t>> cursor = DecisionCursor(url);
  if (!cursor.ok()) return respond(net::ErrorResponse(cursor.status()));
  // The last possible id as the cursor: nothing comes after it.
  const bool past_end = *cursor && **cursor == UINT64_MAX;
  const uint64_t after = *cursor && !past_end ? **cursor + 1 : 0;
  std::string start = storage::ApprovalKey(ws, after);
  const std::string prefix = start.substr(0, start.size() - sizeof(uint64_t));
  std::string items;
  JsonWriter list(&items);
  list.StartArray();
  size_t n = 0;
  bool more = false;
  uint64_t last = 0;
  absl::Status s = store_->ScanPrefixFrom(store_->decisions(), prefix, start,
                                          [&](std::string_view key, std::string_view json) {
                                            if (past_end) return false;
                                            std::optional<Approval> a = ParseApproval(json);
                                            if (!a || (status != "all" && a->status != status))
                                              return true;
                                            if (n == *limit) {
                                              more = true;
                                              return false;
                                            }
                                            list.RawValue(json);
                                            last = storage::DecisionOfKey(key);
                                            ++n;
                                            return true;
                                          });
  if (!s.ok()) return respond(net::ErrorResponse(s));
  list.EndArray();
  std::string out;
  JsonWriter w(&out);
  w.StartObject();
  w.Key("approvals");
  w.RawValue(items);
  EndPage(w, decide::DecisionIdString(last), more);
  respond(net::JsonResponse(200, std::move(out)));
}

void DecideService::HandleApproval(net::RequestContext& ctx, net::Responder respond) {
  absl::StatusOr<api::Principal> principal =
      api::AuthenticateAdmin(*keys_, net::Header(ctx.request, http::field::authorization));
  if (!principal.ok()) return respond(net::ErrorResponse(principal.status()));
  absl::StatusOr<std::string> stored =
      ReadApprovalJson(*store_, principal->workspace_id, net::PathParam(ctx));
  if (!stored.ok()) return respond(net::ErrorResponse(stored.status()));
  respond(net::JsonResponse(200, *std::move(stored)));
}

void DecideService::HandleReview(net::RequestContext& ctx, net::Responder respond, bool approve) {
  absl::StatusOr<State*> state = AdminState(ctx);
  if (!state.ok()) return respond(net::ErrorResponse(state.status()));
  simdjson::dom::parser parser;
  absl::StatusOr<simdjson::dom::element> body = api::JsonObjectBody(ctx.request.body(), parser);
  if (!body.ok()) return respond(net::ErrorResponse(body.status()));
  if (absl::Status s = api::RefuseUnknownKeys(*body, {"reviewer", "note"}); !s.ok()) {
    return respond(net::ErrorResponse(s));
  }
  simdjson::dom::element v;
  std::string_view reviewer, note;
  if ((*body)["reviewer"].get(v) != simdjson::SUCCESS || v.is_null()) {  // null is absent
    return respond(
        net::ErrorResponse(InvalidInput("missing_field", "reviewer is required", "reviewer")));
  }
  if (v.get(reviewer) != simdjson::SUCCESS) {
    return respond(net::ErrorResponse(
        InvalidInput("wrong_type", "reviewer must be a string (who reviewed)", "reviewer")));
  }
  if (reviewer.empty() || reviewer.size() > 200) {
    return respond(net::ErrorResponse(
        InvalidInput("invalid_value", "reviewer must be 1 to 200 bytes", "reviewer")));
  }
  if ((*body)["note"].get(v) == simdjson::SUCCESS && !v.is_null()) {  // null: no note
    if (v.get(note) != simdjson::SUCCESS) {
      return respond(
          net::ErrorResponse(InvalidInput("wrong_type", "note must be a string", "note")));
    }
    if (note.size() > 2000) {
      return respond(net::ErrorResponse(
          InvalidInput("invalid_value", "note must be at most 2000 bytes", "note")));
    }
  }
  const uint32_t ws = (*state)->workspace->id;
  LogLock lock(&erasures_, log_mu_);
  absl::StatusOr<std::string> stored = ReadApprovalJson(*store_, ws, net::PathParam(ctx));
  if (!stored.ok()) return respond(net::ErrorResponse(stored.status()));
  std::optional<Approval> a = ParseApproval(*stored);
  if (!a) {
    return respond(net::ErrorResponse(
        MakeError(absl::StatusCode::kNotFound, "approval_not_found",
                  StrCat("no approval ", net::PathParam(ctx), " in this workspace"), "id")));
  }
  const uint64_t id = a->decision;
  if (a->status != "pending") {
    return respond(net::ErrorResponse(
        MakeError(absl::StatusCode::kAlreadyExists, "approval_closed",
                  StrCat("approval ", net::PathParam(ctx), " is already ", a->status), "id")));
  }
  const int64_t now = clock_->NowMillis();
  // Past its time, it is expired whether or not the sweep (every second) has marked it yet.
  if (a->expires_ms != 0 && now >= a->expires_ms) {
    return respond(net::ErrorResponse(MakeError(
        absl::StatusCode::kAlreadyExists, "approval_closed",
        StrCat("approval ", net::PathParam(ctx), " expired at ", FormatIso8601(a->expires_ms)),
        "id")));
  }
  const std::shared_ptr<const decide::Catalog> snapshot = CatalogOf(**state);
  const decide::Catalog& catalog = *snapshot;
  a->status = approve ? "approved" : "rejected";
  a->reviewer = reviewer;
  a->note = note;
  a->decided_ms = now;
  // Who the customer is now (a first-time visitor may have a profile since), recorded in the
  // closed approval.
  absl::StatusOr<state::Profile> customer = ClosingApprovalCustomer(*store_, ws, *a);
  if (!customer.ok()) return respond(net::ErrorResponse(customer.status()));
  rocksdb::WriteBatch batch;
  rocksdb::Status put =
      batch.Put(store_->decisions(), storage::ApprovalKey(ws, id), ApprovalJson(*a));
  if (put.ok()) {
    put = batch.Delete(store_->decisions(), storage::ApprovalDueKey(ws, a->expires_ms, id));
  }
  if (!put.ok()) return respond(net::ErrorResponse(StoreError(put)));
  // The held slots as logged: what they teach, and for an approval, the contacts they make.
  absl::StatusOr<std::optional<LoggedDecision>> read = ReadLogged(*store_, ws, id);
  if (!read.ok()) return respond(net::ErrorResponse(read.status()));
  const std::optional<LoggedDecision>& logged = *read;
  if (approve) {
    // The customer may have withdrawn a consent since the decision was held: a slot whose action
    // or channel needs it is not approved (the approval stays pending, for a rejection).
    for (const Approval::Held& h : a->slots) {
      const std::string_view channel = logged && h.slot >= 1 && h.slot <= logged->slots.size()
                                           ? std::string_view(logged->slots[h.slot - 1].channel)
                                           : std::string_view();
      if (std::string_view purpose = WithdrawnConsent(catalog, h.action, channel, *customer);
          !purpose.empty()) {
        return respond(net::ErrorResponse(
            MakeError(absl::StatusCode::kAborted, "consent_withdrawn",
                      StrCat("the customer does not consent to ", purpose, ", which action ",
                             h.action, " (slot ", h.slot, ") needs; reject the approval instead"),
                      "id")));
      }
    }
  }
  // Approved, the held slots are acted on: their contacts, their actions' budgets (a person may
  // approve past a budget spent since the decision was held) and their reward wait. A deferred
  // decision's held slots wait for its activation too.
  StripeLocks contact_lock;
  std::unique_lock<std::mutex> budget_lock;
  std::vector<std::pair<std::string, BudgetUse>> spent;
  absl::StatusOr<std::optional<int64_t>> activated =
      logged && logged->deferred ? ActivatedAt(ws, id) : std::optional<int64_t>(now);
  if (!activated.ok()) return respond(net::ErrorResponse(activated.status()));
  if (approve && logged && activated->has_value()) {
    std::vector<Acted> acted;
    std::vector<size_t> acted_slots;  // their slot numbers
    for (const Approval::Held& h : a->slots) {
      if (h.slot >= 1 && h.slot <= logged->slots.size()) {
        const LoggedSlot& s = logged->slots[h.slot - 1];
        acted.push_back({s.action, s.channel, s.variant});
        acted_slots.push_back(h.slot);
      }
    }
    const std::vector<uint64_t> contact_rows = ContactRows(logged->customer, logged->visitor);
    if (catalog.settings.PerCustomer()) contact_lock = StripeLocks(contact_mu_, contact_rows);
    // Contacts made since the decision was held count: approving must not take the customer
    // past a limit a decision now would not (the approval stays pending, for a rejection).
    if (absl::Status s =
            CheckContactPolicy(catalog, ws, logged->customer, contact_rows, *customer, acted,
                               acted_slots, now, "held", "reject the approval instead");
        !s.ok()) {
      return respond(net::ErrorResponse(s));
    }
    if (catalog.settings.budgets) budget_lock = std::unique_lock((*state)->budget_mu);
    if (absl::Status s = Act(**state, catalog, catalog.Point(logged->point), id, logged->customer,
                             contact_rows, now, acted, &batch, &spent);
        !s.ok()) {
      return respond(net::ErrorResponse(s));
    }
  }
  if (absl::Status s = store_->Write(&batch); !s.ok()) return respond(net::ErrorResponse(s));
  for (const auto& [action, use] : spent) (*state)->budgets[action] = use;
  if (budget_lock.owns_lock()) budget_lock.unlock();
  if (contact_lock.owns_lock()) contact_lock.unlock();
  // A person's verdict is a label: the held slots' bandit learns it.
  if (logged) {
    std::vector<size_t> slots;
    for (const Approval::Held& h : a->slots) {
      if (h.slot >= 1 && h.slot <= logged->slots.size()) slots.push_back(h.slot - 1);
    }
    Teach(**state, *logged, slots,
          approve ? catalog.settings.approve_reward : catalog.settings.reject_reward);
  }
  std::string out;
  JsonWriter w(&out);
  WriteApproval(w, *a);
  respond(net::JsonResponse(200, std::move(out)));
}

absl::Status DecideService::RecordContacts(
    const decide::Catalog& catalog, uint32_t workspace_id, std::span<const uint64_t> rows,
    uint64_t decision, int64_t now_ms,
    const std::vector<std::pair<std::string, std::string>>& contacts,
    const std::string& negative_action, rocksdb::WriteBatch* batch) {
  if (contacts.empty() && negative_action.empty()) return absl::OkStatus();
  for (uint64_t row : rows) {
    const std::string key = storage::ContactKey(workspace_id, row);
    absl::StatusOr<std::optional<std::string>> stored = store_->Get(store_->decisions(), key);
    if (!stored.ok()) return stored.status();
    decide::ContactHistory history;
    if (stored->has_value()) {
      history = decide::ContactHistory::Decode(**stored).value_or(decide::ContactHistory{});
    }
    for (const auto& [action, channel] : contacts)
      history.contacts.push_back({action, channel, now_ms, decision});
    if (!negative_action.empty()) history.negatives.push_back({negative_action, now_ms, decision});
    history.Trim(now_ms, catalog.settings.contact_horizon_ms);
    rocksdb::Status put = batch->Put(store_->decisions(), key, history.Encode());
    if (!put.ok()) return StoreError(put);
  }
  return absl::OkStatus();
}

bool DecideService::BudgetSpent(const decide::Action& a, const BudgetUse& use, int64_t day) {
  const int64_t today = use.day == day ? use.count : 0;
  // Sums of decimal costs are not exact in binary (0.1 + 0.1 + 0.1 > 0.3): what is over by less
  // than a billionth of the budget is within it (far below any currency's smallest unit).
  const double allowed = a.budget_total_spend * (1 + 1e-9);
  return (a.budget_per_day > 0 && today >= a.budget_per_day) ||
         (a.budget_total_spend > 0 && use.spent + a.cost > allowed);
}

absl::StatusOr<std::vector<std::pair<std::string, DecideService::BudgetUse>>>
DecideService::SpendBudgets(State& state, const decide::Catalog& catalog,
                            const std::vector<size_t>& acted, int64_t now_ms,
                            rocksdb::WriteBatch* batch) {
  const int64_t day = now_ms / 86'400'000;
  std::vector<std::pair<std::string, BudgetUse>> out;
  for (size_t i : acted) {
    const decide::Action& a = catalog.actions[i];
    if (a.budget_per_day == 0 && a.budget_total_spend == 0) continue;
    auto it = state.budgets.find(a.id);
    BudgetUse use = it == state.budgets.end() ? BudgetUse{} : it->second;
    if (use.day != day) use = {day, 0, use.spent};
    ++use.count;
    use.spent += a.cost;
    std::string json;
    JsonWriter w(&json);
    w.StartObject();
    w.Key("day");
    w.Int(use.day);
    w.Key("count");
    w.Int(use.count);
    w.Key("spent");
    w.Double(use.spent);
    w.EndObject();
    rocksdb::Status put =
        batch->Put(store_->decisions(), storage::BudgetKey(state.workspace->id, a.id), json);
    if (!put.ok()) return StoreError(put);
    out.emplace_back(a.id, use);
  }
  return out;
}

}  // namespace whisperer::server
