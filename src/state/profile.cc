#include "state/profile.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <iterator>
#include <limits>

#include "common/hash.h"
#include "common/status.h"
#include "common/strings.h"
#include "common/timestamp.h"
#include "learn/clv.h"
#include "state/device.h"
#include "state/intent.h"
#include "state/journeys.h"
#include "state/personas.h"
#include "state/text_signals.h"

namespace whisperer::state {
void WriteTime(JsonWriter& w, std::string_view key, int64_t ms) {
  w.Key(key);
  if (ms == 0) {
    w.Null();
    return;
  }
  char buf[kIso8601Bytes];
  FormatIso8601(ms, buf);
  w.String(std::string_view(buf, kIso8601Bytes));
}

namespace {

using identity::Identifier;

std::string_view StringOr(simdjson::dom::element e, std::string_view key) {
  std::string_view out;
  if (e.is_object() && e[key].get(out) == simdjson::SUCCESS) return out;
  return {};
}

// A JSON string or number as identifier text (Segment accepts numeric ids).
std::string IdText(simdjson::dom::element v) {
  std::string_view s;
  if (v.get(s) == simdjson::SUCCESS) return std::string(s);
  int64_t i;
  if (v.get(i) == simdjson::SUCCESS) return std::to_string(i);
  return {};
}

std::optional<double> Number(simdjson::dom::element obj, std::string_view key) {
  simdjson::dom::element v;
  if (!obj.is_object() || obj[key].get(v) != simdjson::SUCCESS) return std::nullopt;
  double d;
  if (v.get(d) == simdjson::SUCCESS) return d;
  int64_t i;
  if (v.get(i) == simdjson::SUCCESS) return static_cast<double>(i);
  uint64_t u;
  if (v.get(u) == simdjson::SUCCESS) return static_cast<double>(u);
  std::string_view s;  // "19.99" as a string is common in e-commerce feeds
  if (v.get(s) == simdjson::SUCCESS) {
    double parsed;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), parsed);
    // Not "NaN" or "inf", which from_chars reads too: one would make every sum it joins unknown.
    if (ec == std::errc() && p == s.data() + s.size() && std::isfinite(parsed)) return parsed;
  }
  return std::nullopt;
}

std::optional<bool> ConsentValue(simdjson::dom::element v) {
  bool b;
  if (v.get(b) == simdjson::SUCCESS) return b;
  std::string_view s;
  if (v.get(s) == simdjson::SUCCESS) {
    if (s == "granted" || s == "true" || s == "yes" || s == "opt_in") return true;
    if (s == "denied" || s == "false" || s == "no" || s == "opt_out") return false;
  }
  return std::nullopt;
}

void ReadConsentObject(simdjson::dom::object obj, EventFacts* f) {
  for (auto [key, value] : obj) {
    if (key == "categoryPreferences") continue;
    if (std::optional<bool> g = ConsentValue(value)) {
      f->consent.emplace_back(std::string(key), *g);
    } else {
      ++f->consent_invalid;
    }
  }
}

template <typename Map>
Seen& CappedEntry(Map& map, std::string_view key) {
  auto it = map.find(key);
  if (it != map.end()) return it->second;
  if (map.size() >= kMaxListEntries || key.size() > kMaxEntryBytes) {
    return map[std::string(kOtherEntry)];
  }
  return map[std::string(key)];
}

void Count(std::map<std::string, uint64_t, std::less<>>& counts, std::string_view name,
           uint64_t n) {
  auto it = counts.find(name);
  if (it != counts.end()) {
    it->second += n;
  } else if (counts.size() >= kMaxEventNames || name.size() > kMaxEntryBytes) {
    counts[std::string(kOtherEntry)] += n;
  } else {
    counts.emplace(std::string(name), n);
  }
}

void SetTrait(Profile& p, std::string_view key, std::string json, int64_t at_ms) {
  if (key.size() > kMaxEntryBytes) return;
  // Too large to hold: null, set at its time, so that neither this profile's older value nor
  // one a merge brings stands for the latest.
  if (json.size() > kMaxTraitBytes) json = "null";
  auto it = p.traits.find(key);
  if (it == p.traits.end()) {
    if (p.traits.size() >= kMaxTraits) return;
    p.traits.emplace(std::string(key), TraitValue{std::move(json), at_ms});
  } else if (at_ms >= it->second.set_at_ms) {
    it->second = TraitValue{std::move(json), at_ms};
  }
}

void AddIdentifier(Profile& p, const Identifier& id) {
  if (std::find(p.identifiers.begin(), p.identifiers.end(), id) == p.identifiers.end()) {
    p.identifiers.push_back(id);
  }
}

void AddUnique(std::vector<uint64_t>& list, uint64_t v) {
  if (std::find(list.begin(), list.end(), v) == list.end()) list.push_back(v);
}

void WriteSeenFields(JsonWriter& w, const Seen& s) {
  WriteTime(w, "firstSeen", s.first_ms);
  WriteTime(w, "lastSeen", s.last_ms);
  w.Key("events");
  w.Uint(s.events);
}

void WriteSeenMap(JsonWriter& w, std::string_view key, std::string_view name_key,
                  const std::map<std::string, Seen, std::less<>>& map) {
  w.Key(key);
  w.StartArray();
  for (const auto& [name, seen] : map) {
    w.StartObject();
    w.Key(name_key);
    w.String(name);
    WriteSeenFields(w, seen);
    w.EndObject();
  }
  w.EndArray();
}

// a + b for sums of revenue: finite numbers whose sum would overflow (two orders of 1e308) stay
// at the largest finite one, so a profile's figures stay numbers.
double AddRevenue(double a, double b) {
  const double sum = a + b;
  return std::isfinite(sum) ? sum : std::copysign(std::numeric_limits<double>::max(), sum);
}

// Whether every day `p` has an order on is in its order_day_list, so days count exactly.
bool OrderDaysKept(const Profile& p) { return p.order_day_list.size() == p.order_days; }

// `l`'s orders into `s`'s: a day both have orders on is counted once (when only one or neither
// kept its days, the days of their first and last orders).
void MergeOrders(Profile& s, const Profile& l) {
  if (l.orders == 0) return;
  if (s.orders == 0) {
    s.revenue = l.revenue;
    s.orders = l.orders;
    s.first_order_ms = l.first_order_ms;
    s.last_order_ms = l.last_order_ms;
    s.order_days = l.order_days;
    s.order_day_list = l.order_day_list;
    s.first_day_revenue = l.first_day_revenue;
    return;
  }
  const int64_t s_first = learn::DayOfMillis(s.first_order_ms),
                l_first = learn::DayOfMillis(l.first_order_ms);
  const int64_t s_last = learn::DayOfMillis(s.last_order_ms),
                l_last = learn::DayOfMillis(l.last_order_ms);
  if (s_first == l_first) {
    s.first_day_revenue = AddRevenue(s.first_day_revenue, l.first_day_revenue);
  } else if (l_first < s_first) {
    s.first_day_revenue = l.first_day_revenue;
  }
  if (OrderDaysKept(s) && OrderDaysKept(l)) {
    std::vector<int32_t> days;
    days.reserve(s.order_day_list.size() + l.order_day_list.size());
    std::set_union(s.order_day_list.begin(), s.order_day_list.end(), l.order_day_list.begin(),
                   l.order_day_list.end(), std::back_inserter(days));
    s.order_days = days.size();
    if (days.size() > kMaxOrderDays) days = {};
    s.order_day_list = std::move(days);
  } else {
    const uint64_t shared = (s_first == l_first) + (s_last == l_last && s_last != s_first);
    s.order_days = std::max<uint64_t>(1, s.order_days + l.order_days - shared);
    s.order_day_list = {};
  }
  s.revenue = AddRevenue(s.revenue, l.revenue);
  s.orders += l.orders;
  s.first_order_ms = std::min(s.first_order_ms, l.first_order_ms);
  s.last_order_ms = std::max(s.last_order_ms, l.last_order_ms);
}

void WriteIdList(JsonWriter& w, std::string_view key, const std::vector<uint64_t>& ids) {
  w.Key(key);
  w.StartArray();
  for (uint64_t id : ids) w.String(ProfileIdString(id));
  w.EndArray();
}

}  // namespace

void AddOrder(Profile& p, int64_t ts, double revenue) {
  const int64_t day = learn::DayOfMillis(ts);
  if (p.orders == 0) {
    p.first_order_ms = p.last_order_ms = ts;
    p.order_days = 1;
    p.order_day_list.assign(1, static_cast<int32_t>(day));
    p.first_day_revenue = revenue;
  } else {
    const int64_t first_day = learn::DayOfMillis(p.first_order_ms);
    bool new_day;
    if (OrderDaysKept(p)) {
      auto it = std::lower_bound(p.order_day_list.begin(), p.order_day_list.end(), day);
      new_day = it == p.order_day_list.end() || *it != day;
      if (new_day && p.order_day_list.size() < kMaxOrderDays) {
        p.order_day_list.insert(it, static_cast<int32_t>(day));
      } else if (new_day) {
        p.order_day_list = {};  // too many to keep: counted by the first and last from now on
      }
    } else {
      new_day = day < first_day || (day > first_day && day != learn::DayOfMillis(p.last_order_ms));
    }
    if (new_day) ++p.order_days;
    if (day < first_day) {
      p.first_day_revenue = revenue;
    } else if (day == first_day) {
      p.first_day_revenue = AddRevenue(p.first_day_revenue, revenue);
    }
    p.first_order_ms = std::min(p.first_order_ms, ts);
    p.last_order_ms = std::max(p.last_order_ms, ts);
  }
  p.revenue = AddRevenue(p.revenue, revenue);
  ++p.orders;
}

void SetConsent(Profile& p, std::string_view purpose, ConsentState state) {
  auto it = p.consent.find(purpose);
  if (it == p.consent.end()) {
    p.consent.emplace(std::string(purpose), std::move(state));
  } else if (state.at_ms >= it->second.at_ms) {
    it->second = std::move(state);
  }
}

void WriteIdentifiers(JsonWriter& w, const std::vector<Identifier>& ids) {
  w.StartArray();
  for (const Identifier& id : ids) {
    w.StartObject();
    w.Key("type");
    w.String(id.type);
    w.Key("value");
    w.String(id.value);
    w.EndObject();
  }
  w.EndArray();
}

void Seen::Touch(int64_t ts) {
  if (events == 0 || ts < first_ms) first_ms = ts;
  if (events == 0 || ts > last_ms) last_ms = ts;
  ++events;
}

void Seen::Absorb(const Seen& other) {
  if (other.events == 0) return;
  if (events == 0 || other.first_ms < first_ms) first_ms = other.first_ms;
  if (events == 0 || other.last_ms > last_ms) last_ms = other.last_ms;
  events += other.events;
}

bool IsConsentPurpose(std::string_view purpose, std::span<const std::string> extra) {
  return std::find(std::begin(kStandardPurposes), std::end(kStandardPurposes), purpose) !=
             std::end(kStandardPurposes) ||
         std::find(extra.begin(), extra.end(), purpose) != extra.end();
}

bool Profile::Denied(std::string_view purpose) const {
  auto it = consent.find(purpose);
  return it != consent.end() && !it->second.granted;
}

identity::ProfileFacts Profile::Facts() const {
  return identity::ProfileFacts{&identifiers, Denied(kCrossDevice), &separated, &absorbed};
}

std::string UrlHost(std::string_view url) {
  size_t scheme = url.find("://");
  if (scheme == std::string_view::npos) return {};
  std::string_view rest = url.substr(scheme + 3);
  size_t end = rest.find_first_of("/?#");
  std::string_view host = rest.substr(0, end);
  if (size_t at = host.rfind('@'); at != std::string_view::npos) host.remove_prefix(at + 1);
  if (host.starts_with('[')) {  // an IPv6 address, bracketed: its port follows the bracket
    if (size_t close = host.find(']'); close != std::string_view::npos) {
      host = host.substr(0, close + 1);
    }
  } else if (size_t colon = host.rfind(':'); colon != std::string_view::npos) {
    host = host.substr(0, colon);
  }
  std::string out;
  for (char c : host) out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
  return out;
}

void ReadContextConsent(simdjson::dom::element context, EventFacts* f) {
  simdjson::dom::object consent;
  if (context["consent"].get(consent) != simdjson::SUCCESS) return;
  ReadConsentObject(consent, f);
  simdjson::dom::object prefs;
  if (consent["categoryPreferences"].get(prefs) == simdjson::SUCCESS) ReadConsentObject(prefs, f);
}

void FoldConsent(Profile& p, const EventFacts& f, const ConsentPurposes& purposes,
                 std::string_view source) {
  // A statement is no later than when it was received: a clock far ahead must not shut out
  // every later statement.
  const int64_t at = std::min(f.timestamp_ms, f.received_at_ms);
  for (const auto& [name, granted] : f.consent) {
    purposes.ForStated(name, [&](std::string_view purpose) {
      SetConsent(p, purpose, ConsentState{granted, at, std::string(source)});
    });
  }
}

absl::StatusOr<EventFacts> ExtractFacts(simdjson::dom::element event,
                                        const identity::IdentityRules& rules) {
  EventFacts f;
  std::optional<api::EventType> type = api::ParseEventType(StringOr(event, "type"));
  if (!type) return InvalidInput("invalid_event", "stored event has no known type", "type");
  f.type = *type;
  f.message_id = StringOr(event, "messageId");
  std::optional<int64_t> ts = ParseIso8601(StringOr(event, "timestamp"));
  if (!ts) return InvalidInput("invalid_event", "stored event has no timestamp", "timestamp");
  f.timestamp_ms = *ts;
  f.received_at_ms = ParseIso8601(StringOr(event, "receivedAt")).value_or(*ts);

  if (std::string_view v = StringOr(event, "userId"); !v.empty()) {
    f.identifiers.push_back({std::string(identity::kUserId), std::string(v)});
  }
  if (std::string_view v = StringOr(event, "anonymousId"); !v.empty()) {
    f.identifiers.push_back({std::string(identity::kAnonymousId), std::string(v)});
  }
  if (f.type == api::EventType::kTrack) f.name = StringOr(event, "event");
  if (f.type == api::EventType::kAlias) {
    simdjson::dom::element prev;
    if (event["previousId"].get(prev) == simdjson::SUCCESS) {
      // The engine decides whether it is a userId or an anonymousId.
      f.previous_id = IdText(prev);
    }
  }

  simdjson::dom::element context;
  bool has_context = event["context"].get(context) == simdjson::SUCCESS && context.is_object();

  // identify carries traits at the top level; every other type may carry them in context.
  simdjson::dom::object traits;
  bool has_traits = false;
  if (f.type == api::EventType::kIdentify) {
    has_traits = event["traits"].get(traits) == simdjson::SUCCESS;
  }
  if (!has_traits && has_context) has_traits = context["traits"].get(traits) == simdjson::SUCCESS;
  if (has_traits) {
    for (auto [key, value] : traits) {
      std::string json;
      JsonWriter w(&json);
      w.Element(value);
      f.traits.emplace_back(key, std::move(json));
      if (key == identity::kEmail || key == identity::kPhone) {
        std::string text = IdText(value);
        if (!text.empty()) f.identifiers.push_back({std::string(key), std::move(text)});
      }
    }
  }
  for (const std::string& ext : rules.external_ids) {
    if (has_traits) {
      simdjson::dom::element v;
      if (traits[ext].get(v) == simdjson::SUCCESS) {
        std::string text = IdText(v);
        if (!text.empty()) f.identifiers.push_back({ext, std::move(text)});
      }
    }
  }
  if (has_context) {
    simdjson::dom::array external;
    // Entries of a type the workspace knows: email, phone and its external ids (userId and
    // anonymousId have fields of their own), whether or not it names external ids.
    if (context["externalIds"].get(external) == simdjson::SUCCESS) {
      for (simdjson::dom::element e : external) {
        std::string_view ext_type = StringOr(e, "type");
        if (!rules.KnownType(ext_type) || ext_type == identity::kUserId ||
            ext_type == identity::kAnonymousId) {
          continue;
        }
        simdjson::dom::element id;
        if (e["id"].get(id) == simdjson::SUCCESS) {
          std::string text = IdText(id);
          if (!text.empty()) f.identifiers.push_back({std::string(ext_type), std::move(text)});
        }
      }
    }
    f.user_agent = StringOr(context, "userAgent");
    simdjson::dom::element library;
    if (context["library"].get(library) == simdjson::SUCCESS) {
      f.library = StringOr(library, "name");
    }
    simdjson::dom::element campaign;
    if (context["campaign"].get(campaign) == simdjson::SUCCESS) {
      f.utm_source = StringOr(campaign, "source");
      f.utm_medium = StringOr(campaign, "medium");
      f.utm_campaign = StringOr(campaign, "name");
    }
    simdjson::dom::element page;
    if (context["page"].get(page) == simdjson::SUCCESS) {
      f.referrer_host = UrlHost(StringOr(page, "referrer"));
    }
    ReadContextConsent(context, &f);
  }
  f.channel = StringOr(event, "channel");
  simdjson::dom::element props;
  bool has_props = event["properties"].get(props) == simdjson::SUCCESS;
  if (f.referrer_host.empty() && has_props) f.referrer_host = UrlHost(StringOr(props, "referrer"));
  f.signals = ClassifySignals(f.type, f.name, has_props ? &props : nullptr);
  if (has_props && f.type == api::EventType::kTrack && f.name == "Product Viewed") {
    simdjson::dom::element id;
    if (props["product_id"].get(id) == simdjson::SUCCESS) f.product_id = IdText(id);
  }
  if (f.type == api::EventType::kTrack && f.name == "Order Completed") {
    if (has_props) f.revenue = Number(props, "revenue");
    if (!f.revenue && has_props) f.revenue = Number(props, "total");
    if (!f.revenue) f.revenue = 0.0;  // an order without an amount still counts as an order
  }
  return f;
}

const DeviceFacts* DetectDevice(const DeviceDetector* detector, std::string_view user_agent,
                                DeviceFacts* scratch) {
  if (detector == nullptr || user_agent.empty()) return nullptr;
  DeviceInfo info = detector->Detect(user_agent);
  scratch->type = DeviceTypeName(info.type);
  scratch->bot = info.type == DeviceType::kBot;
  scratch->os = std::move(info.os);
  scratch->os_version = std::move(info.os_version);
  scratch->browser = std::move(info.browser);
  scratch->browser_version = std::move(info.browser_version);
  return scratch;
}

void FoldEvent(Profile& p, const EventFacts& f, const DeviceFacts* device, uint64_t sequence,
               const FoldOptions& options) {
  if (sequence > p.last_sequence) p.last_sequence = sequence;
  // Identity and consent are facts about the person whoever the sender is; the statistics
  // below leave bots out.
  if (!f.consent.empty()) FoldConsent(p, f, options.consent, StrCat("event:", f.message_id));
  if (device != nullptr && device->bot) {
    ++p.bot_events;
    return;
  }
  for (const auto& [key, json] : f.traits) SetTrait(p, key, json, f.timestamp_ms);

  const int64_t ts = f.timestamp_ms;
  p.seen.Touch(ts);
  std::string_view name;
  switch (f.type) {
    case api::EventType::kTrack:
      name = f.name;
      break;
    default:
      name = api::EventTypeName(f.type);
  }
  Count(p.event_counts, name, 1);
  FoldTexts(p.text, f);
  if (f.revenue) AddOrder(p, ts, *f.revenue);

  Sessions& s = p.sessions;
  const bool view = f.type == api::EventType::kPage || f.type == api::EventType::kScreen;
  const int64_t timeout = options.session_timeout_ms;
  // An event that arrives late (an offline queue, an import) and falls more than the timeout
  // before the current session belongs to an earlier one. Only the previous session's last
  // event is kept, so this is an approximation: within the timeout of that event it is that
  // session; otherwise a session of its own is counted (late events of one old session that
  // arrive interleaved with others' may count it twice). It never changes the current session.
  const bool earlier = s.count > 0 && ts < s.current_start_ms - timeout;
  if (earlier) {
    const bool previous = s.previous_last_ms != 0 && ts <= s.previous_last_ms + timeout &&
                          ts >= s.previous_last_ms - timeout;
    if (!previous) ++s.count;
    s.previous_last_ms = std::max(s.previous_last_ms, ts);
  } else if (s.count == 0 || ts - s.current_last_ms > timeout) {
    if (s.count > 0) s.previous_last_ms = s.current_last_ms;
    ++s.count;
    s.current_start_ms = ts;
    s.current_last_ms = ts;
    s.current_events = 0;
    s.current_views = 0;
    s.current_signals = {};
  } else if (ts > s.current_last_ms) {
    s.total_ms += ts - s.current_last_ms;
    s.current_last_ms = ts;
  } else if (ts < s.current_start_ms) {  // late, but within the timeout: the session began then
    s.total_ms += s.current_start_ms - ts;
    s.current_start_ms = ts;
  }
  if (!earlier) ++s.current_events;
  if (view) {
    if (!earlier) ++s.current_views;
    ++s.views;
  }
  for (size_t k = 0; k < kSignalKinds; ++k) {
    if (f.signals & (1u << k)) {
      if (!earlier) ++s.current_signals[k];
      ++p.signals[k];
    }
  }

  if (device != nullptr && device->type != "unknown") {
    auto it = std::find_if(p.devices.begin(), p.devices.end(), [&](const DeviceSeen& d) {
      return d.type == device->type && d.os == device->os && d.browser == device->browser;
    });
    if (it == p.devices.end() && p.devices.size() < kMaxListEntries) {
      DeviceSeen d;
      static_cast<DeviceFacts&>(d) = *device;
      p.devices.push_back(std::move(d));
      it = p.devices.end() - 1;
    }
    if (it != p.devices.end()) {
      // The versions of the latest event in time: one that arrives late from an offline
      // queue, sent before an upgrade, does not bring the old version back.
      if (it->events == 0 || ts >= it->last_ms) {
        it->os_version = device->os_version;
        it->browser_version = device->browser_version;
      }
      it->Touch(ts);
    }
  }
  if (!f.library.empty()) CappedEntry(p.platforms, f.library).Touch(ts);
  if (!f.channel.empty()) CappedEntry(p.channels, f.channel).Touch(ts);
  if (!f.referrer_host.empty()) CappedEntry(p.referrers, f.referrer_host).Touch(ts);
  if (!f.utm_source.empty() || !f.utm_medium.empty() || !f.utm_campaign.empty()) {
    // A campaign with a part past kMaxEntryBytes is one entry for all of them, as past the cap
    // of the other lists.
    const bool too_long = f.utm_source.size() > kMaxEntryBytes ||
                          f.utm_medium.size() > kMaxEntryBytes ||
                          f.utm_campaign.size() > kMaxEntryBytes;
    const std::string_view source = too_long ? kOtherEntry : std::string_view(f.utm_source);
    const std::string_view medium = too_long ? "" : std::string_view(f.utm_medium);
    const std::string_view campaign = too_long ? "" : std::string_view(f.utm_campaign);
    auto it = std::find_if(p.sources.begin(), p.sources.end(), [&](const SourceSeen& s) {
      return s.source == source && s.medium == medium && s.campaign == campaign;
    });
    if (it == p.sources.end() && p.sources.size() < kMaxListEntries) {
      SourceSeen src;
      src.source = source;
      src.medium = medium;
      src.campaign = campaign;
      p.sources.push_back(std::move(src));
      it = p.sources.end() - 1;
    }
    if (it != p.sources.end()) it->Touch(ts);
  }
}

void MergeProfiles(Profile& s, Profile&& l, MergeRecord record,
                   std::vector<std::pair<std::string, JourneyState>>* dropped_journeys) {
  for (const Identifier& id : l.identifiers) AddIdentifier(s, id);
  for (auto& [key, value] : l.traits) SetTrait(s, key, std::move(value.json), value.set_at_ms);
  s.seen.Absorb(l.seen);
  for (const auto& [name, n] : l.event_counts) Count(s.event_counts, name, n);
  MergeOrders(s, l);
  // Sessions on two devices are two sessions, even when they overlap in time.
  Sessions& a = s.sessions;
  const Sessions& b = l.sessions;
  const int64_t a_last = a.count > 0 ? a.current_last_ms : 0;
  if (b.count > 0 && (a.count == 0 || b.current_last_ms > a.current_last_ms)) {
    a.current_start_ms = b.current_start_ms;
    a.current_last_ms = b.current_last_ms;
    a.current_events = b.current_events;
    a.current_views = b.current_views;
    a.current_signals = b.current_signals;
  }
  // The session before the current one: the latest of either's that ended before it began (the
  // other device's current one, say: the customer came back on this one).
  int64_t previous = 0;
  for (int64_t last : {a.previous_last_ms, b.previous_last_ms, a_last,
                       b.count > 0 ? b.current_last_ms : int64_t{0}}) {
    if (last != 0 && last < a.current_start_ms) previous = std::max(previous, last);
  }
  a.previous_last_ms = previous;
  for (size_t k = 0; k < kSignalKinds; ++k) s.signals[k] += l.signals[k];
  a.count += b.count;
  a.total_ms += b.total_ms;
  a.views += b.views;
  for (DeviceSeen& d : l.devices) {
    auto it = std::find_if(s.devices.begin(), s.devices.end(), [&](const DeviceSeen& e) {
      return e.type == d.type && e.os == d.os && e.browser == d.browser;
    });
    if (it != s.devices.end()) {
      if (d.events != 0 && d.last_ms > it->last_ms) {  // the versions seen last, in time
        it->os_version = std::move(d.os_version);
        it->browser_version = std::move(d.browser_version);
      }
      it->Absorb(d);
    } else if (s.devices.size() < kMaxListEntries) {
      s.devices.push_back(std::move(d));
    }
  }
  for (const auto& [k, v] : l.platforms) CappedEntry(s.platforms, k).Absorb(v);
  for (const auto& [k, v] : l.channels) CappedEntry(s.channels, k).Absorb(v);
  for (const auto& [k, v] : l.referrers) CappedEntry(s.referrers, k).Absorb(v);
  for (SourceSeen& src : l.sources) {
    auto it = std::find_if(s.sources.begin(), s.sources.end(), [&](const SourceSeen& e) {
      return e.source == src.source && e.medium == src.medium && e.campaign == src.campaign;
    });
    if (it != s.sources.end()) {
      it->Absorb(src);
    } else if (s.sources.size() < kMaxListEntries) {
      s.sources.push_back(std::move(src));
    }
  }
  for (auto& [purpose, state] : l.consent) SetConsent(s, purpose, std::move(state));
  for (MergeRecord& m : l.merges) s.merges.push_back(std::move(m));
  s.merges.push_back(std::move(record));
  std::sort(s.merges.begin(), s.merges.end(),
            [](const MergeRecord& x, const MergeRecord& y) { return x.at_ms < y.at_ms; });
  AddUnique(s.absorbed, l.id);
  for (uint64_t id : l.absorbed) AddUnique(s.absorbed, id);
  for (uint64_t id : l.separated) AddUnique(s.separated, id);
  MergeJourneys(s, l, dropped_journeys);
  MergePersonas(s, l);
  MergeTexts(s.text, l.text);
  s.bot_events += l.bot_events;
  s.last_sequence = std::max(s.last_sequence, l.last_sequence);
}

std::string ProfileIdString(uint64_t id) {
  char buf[17];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), id, 16);
  return StrCat("prf_", std::string_view(buf, static_cast<size_t>(end - buf)));
}

uint64_t ProfileHash(uint64_t id) { return Hash64(ProfileIdString(id)); }

uint64_t VisitorHash(std::string_view type, std::string_view normalized_value) {
  return Hash64(StrCat(type, ":", normalized_value));
}

std::vector<uint64_t> RecordVisitorHashes(simdjson::dom::parser& parser, std::string_view record) {
  std::vector<uint64_t> hashes;
  simdjson::dom::element doc;
  simdjson::dom::array visitor;
  if (record.empty() || parser.parse(record).get(doc) != simdjson::SUCCESS ||
      doc["visitor"].get(visitor) != simdjson::SUCCESS) {
    return hashes;
  }
  for (simdjson::dom::element id : visitor) {
    std::string_view type, value;
    if (id["type"].get(type) == simdjson::SUCCESS && id["value"].get(value) == simdjson::SUCCESS) {
      hashes.push_back(VisitorHash(type, value));
    }
  }
  return hashes;
}

CustomerKeys KeysOfCustomer(const Profile& profile) {
  CustomerKeys keys;
  keys.index.push_back(profile.id);
  keys.index.insert(keys.index.end(), profile.absorbed.begin(), profile.absorbed.end());
  for (uint64_t id : keys.index) keys.hashes.push_back(ProfileHash(id));
  for (const identity::Identifier& id : profile.identifiers) {
    if (id.type != identity::kUserId && id.type != identity::kAnonymousId) continue;
    const uint64_t hash = VisitorHash(id.type, id.value);
    keys.index.push_back(VisitorIndex(hash));
    keys.hashes.push_back(hash);
  }
  return keys;
}

std::optional<uint64_t> ParseProfileId(std::string_view s) {
  if (s.substr(0, 4) != "prf_" || s.size() < 5 || s.size() > 20) return std::nullopt;
  uint64_t id = 0;
  auto [p, ec] = std::from_chars(s.data() + 4, s.data() + s.size(), id, 16);
  if (ec != std::errc() || p != s.data() + s.size() || id == 0) return std::nullopt;
  // One spelling per id: no leading zeros, lower case.
  if (ProfileIdString(id) != s) return std::nullopt;
  return id;
}

void WriteConsent(const Profile& p, JsonWriter& w) {
  w.StartObject();
  for (const auto& [purpose, c] : p.consent) {
    w.Key(purpose);
    w.StartObject();
    w.Key("state");
    w.String(c.granted ? "granted" : "denied");
    WriteTime(w, "at", c.at_ms);
    w.Key("source");
    w.String(c.source);
    w.EndObject();
  }
  w.EndObject();
}

void WriteProfile(const Profile& p, int64_t now_ms, JsonWriter& w,
                  const std::function<void(JsonWriter&)>& scores) {
  w.StartObject();
  w.Key("profileId");
  w.String(ProfileIdString(p.id));
  w.Key("identifiers");
  WriteIdentifiers(w, p.identifiers);
  w.Key("traits");
  w.StartObject();
  for (const auto& [key, t] : p.traits) {
    w.Key(key);
    w.StartObject();
    w.Key("value");
    w.RawValue(t.json);
    WriteTime(w, "setAt", t.set_at_ms);
    w.EndObject();
  }
  w.EndObject();
  WriteSeenFields(w, p.seen);
  w.Key("eventCounts");
  w.StartObject();
  for (const auto& [name, n] : p.event_counts) {
    w.Key(name);
    w.Uint(n);
  }
  w.EndObject();
  w.Key("botEvents");
  w.Uint(p.bot_events);

  w.Key("orders");
  w.StartObject();
  w.Key("count");
  w.Uint(p.orders);
  w.Key("revenue");
  w.Double(p.revenue);
  WriteTime(w, "first", p.first_order_ms);
  WriteTime(w, "last", p.last_order_ms);
  w.Key("days");
  w.Uint(p.order_days);
  w.Key("firstDayRevenue");
  w.Double(p.first_day_revenue);
  w.EndObject();
  // Recency / frequency / monetary, derived at read time.
  w.Key("rfm");
  w.StartObject();
  w.Key("recencyDays");
  if (p.last_order_ms == 0) {
    w.Null();
  } else {
    w.Double(static_cast<double>(std::max<int64_t>(0, now_ms - p.last_order_ms)) / 86'400'000.0);
  }
  w.Key("frequency");
  w.Uint(p.orders);
  w.Key("monetary");
  w.Double(p.revenue);
  w.Key("averageOrderValue");
  w.Double(p.orders == 0 ? 0.0 : p.revenue / static_cast<double>(p.orders));
  w.EndObject();

  const Sessions& s = p.sessions;
  w.Key("sessions");
  w.StartObject();
  w.Key("count");
  w.Uint(s.count);
  w.Key("totalMs");
  w.Int(s.total_ms);
  w.Key("views");
  w.Uint(s.views);
  w.Key("averageLengthMs");
  w.Double(s.count == 0 ? 0.0 : static_cast<double>(s.total_ms) / static_cast<double>(s.count));
  w.Key("viewsPerSession");
  w.Double(s.count == 0 ? 0.0 : static_cast<double>(s.views) / static_cast<double>(s.count));
  w.Key("current");
  if (s.count == 0) {
    w.Null();
  } else {
    w.StartObject();
    WriteTime(w, "start", s.current_start_ms);
    WriteTime(w, "last", s.current_last_ms);
    w.Key("events");
    w.Uint(s.current_events);
    w.Key("views");
    w.Uint(s.current_views);
    w.EndObject();
  }
  w.EndObject();

  w.Key("devices");
  w.StartArray();
  for (const DeviceSeen& d : p.devices) {
    w.StartObject();
    w.Key("type");
    w.String(d.type);
    w.Key("os");
    w.String(d.os);
    w.Key("osVersion");
    w.String(d.os_version);
    w.Key("browser");
    w.String(d.browser);
    w.Key("browserVersion");
    w.String(d.browser_version);
    WriteSeenFields(w, d);
    w.EndObject();
  }
  w.EndArray();
  WriteSeenMap(w, "platforms", "library", p.platforms);
  WriteSeenMap(w, "channels", "channel", p.channels);
  w.Key("sources");
  w.StartArray();
  for (const SourceSeen& src : p.sources) {
    w.StartObject();
    w.Key("source");
    w.String(src.source);
    w.Key("medium");
    w.String(src.medium);
    w.Key("campaign");
    w.String(src.campaign);
    WriteSeenFields(w, src);
    w.EndObject();
  }
  w.EndArray();
  WriteSeenMap(w, "referrers", "host", p.referrers);

  w.Key("consent");
  WriteConsent(p, w);

  w.Key("merges");
  w.StartArray();
  for (const MergeRecord& m : p.merges) {
    w.StartObject();
    WriteTime(w, "at", m.at_ms);
    w.Key("absorbed");
    w.String(ProfileIdString(m.absorbed));
    w.Key("messageId");
    w.String(m.message_id);
    w.Key("eventType");
    w.String(m.event_type);
    w.Key("identifiers");
    WriteIdentifiers(w, m.identifiers);
    w.EndObject();
  }
  w.EndArray();
  w.Key("journeys");
  w.StartObject();
  for (const auto& [id, j] : p.journeys) {
    w.Key(id);
    w.StartObject();
    w.Key("version");
    w.Int(j.version);
    w.Key("stage");
    w.String(j.stage);
    w.Key("status");
    w.String(j.status);
    WriteTime(w, "enteredAt", j.entered_ms);
    WriteTime(w, "deadline", j.deadline_ms);
    w.Key("history");
    w.StartArray();
    for (const JourneyTransition& t : j.history) {
      w.StartObject();
      w.Key("from");
      w.String(t.from);
      w.Key("to");
      w.String(t.to);
      WriteTime(w, "at", t.at_ms);
      w.Key("messageId");
      w.String(t.message_id);
      w.Key("reason");
      w.String(t.reason);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndObject();
  w.Key("intent");
  WriteIntent(p, now_ms, w);
  w.Key("persona");
  if (p.persona.id.empty() && p.persona.history.empty()) {
    w.Null();
  } else {
    w.StartObject();
    w.Key("id");
    w.StringOrNull(p.persona.id);
    w.Key("confidence");
    w.Double(p.persona.confidence);
    WriteTime(w, "since", p.persona.since_ms);
    w.Key("history");
    w.StartArray();
    for (const PersonaChange& c : p.persona.history) {
      w.StartObject();
      w.Key("persona");
      w.StringOrNull(c.persona);
      w.Key("confidence");
      w.Double(c.confidence);
      WriteTime(w, "at", c.at_ms);
      w.Key("messageId");
      w.String(c.message_id);
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
  }
  w.Key("sentiment");
  WriteTextSentiment(p.text, w);
  w.Key("textIntent");
  WriteTextIntent(p.text, w);
  w.Key("scores");
  if (scores) {
    scores(w);
  } else {
    w.Null();
  }
  WriteIdList(w, "absorbedProfiles", p.absorbed);
  WriteIdList(w, "separatedFrom", p.separated);
  w.Key("lastSequence");
  w.Uint(p.last_sequence);
  w.EndObject();
}

}  // namespace whisperer::state
