#include "state/conditions.h"

#include <algorithm>
#include <charconv>

#include "common/status.h"
#include "common/strings.h"
#include "state/models.h"

namespace whisperer::state {
namespace {

using expr::Type;
using expr::Value;

// Slots in the order ConditionSchema() declares them.
enum Slot : int {
  kEventType,
  kEventName,
  kEventProperties,
  kDeviceType,
  kDeviceOs,
  kDeviceBrowser,
  kUtmSource,
  kUtmMedium,
  kUtmCampaign,
  kReferrerHost,
  kProfileEvents,
  kSessionsCount,
  kSessionEvents,
  kSessionViews,
  kOrdersCount,
  kOrdersRevenue,
  kReturning,
  kSinceFirstSeen,
  kTraits,
  kConsent,
  kCounts,
  kPersona,
  kOrdersAverage,
  kSessionsAverageViews,
  kShares,
  kJourneys,
  kScoreConversion,
  kLeadScore,
  kScoreChurn,
  kEventSentiment,
  kSentimentLatest,
  kSentimentAverage,
  kSentimentCount,
  kTextIntent,
  kTextIntentProbability,
  // profile.intent.* then session.intent.*, kIntentNames order each.
  kIntentFirst,
};

constexpr const char* kIntentNames[] = {"purchase_intent", "urgency", "price_sensitivity",
                                        "research_depth", "conversion_probability"};
constexpr int kIntentCount = 5;

}  // namespace

std::string CountName(std::string_view name) {
  std::string out;
  out.reserve(name.size());
  for (char c : name) {
    if (c >= 'A' && c <= 'Z') {
      out.push_back(static_cast<char>(c - 'A' + 'a'));
    } else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      out.push_back(c);
    } else if ((static_cast<unsigned char>(c) & 0xC0) != 0x80) {
      out.push_back('_');  // one per character: a UTF-8 sequence's continuation bytes add none
    }
  }
  return out;
}

namespace {

Value FromElement(simdjson::dom::element e) {
  std::string_view s;
  if (e.get(s) == simdjson::SUCCESS) return Value::String(s);
  double d;
  if (e.get(d) == simdjson::SUCCESS) return Value::Number(d);
  bool b;
  if (e.get(b) == simdjson::SUCCESS) return Value::Bool(b);
  if (e.is_array() || e.is_object()) return Value::Other();
  return Value::Missing();  // null: a null field is an absent one
}

// Moves `e` to its member `name`, or, when `e` is an array and `name` a whole number (a path's
// `[2]` or `.2`), to that element; false when there is none.
bool StepInto(simdjson::dom::element* e, const std::string& name) {
  if (e->is_object()) return (*e)[name].get(*e) == simdjson::SUCCESS;
  simdjson::dom::array array;
  uint32_t index = 0;
  const char* end = name.data() + name.size();
  if (e->get(array) != simdjson::SUCCESS || (name.size() > 1 && name[0] == '0') ||
      std::from_chars(name.data(), end, index).ptr != end || name.empty()) {
    return false;
  }
  return array.at(index).get(*e) == simdjson::SUCCESS;
}

Value NonEmpty(std::string_view s) { return s.empty() ? Value::Missing() : Value::String(s); }

// A trait's stored JSON as a value; strings are unescaped into `scratch`.
Value FromJsonScalar(const std::string& json, std::deque<std::string>* scratch) {
  if (json == "true") return Value::Bool(true);
  if (json == "false") return Value::Bool(false);
  if (json.size() >= 2 && json.front() == '"' && json.back() == '"') {
    std::string& out = scratch->emplace_back();
    for (size_t i = 1; i + 1 < json.size(); ++i) {
      char c = json[i];
      if (c == '\\' && i + 2 < json.size()) {
        char n = json[++i];
        switch (n) {
          case 'n':
            out.push_back('\n');
            break;
          case 't':
            out.push_back('\t');
            break;
          case 'r':
            out.push_back('\r');
            break;
          case 'b':
            out.push_back('\b');
            break;
          case 'f':
            out.push_back('\f');
            break;
          case 'u':  // kept as written: conditions compare plain text
            out.append("\\u");
            break;
          default:
            out.push_back(n);  // \" \\ \/
        }
        continue;
      }
      out.push_back(c);
    }
    return Value::String(out);
  }
  double d = 0;
  auto [p, ec] = std::from_chars(json.data(), json.data() + json.size(), d);
  if (ec == std::errc() && p == json.data() + json.size()) return Value::Number(d);
  if (json.starts_with('[') || json.starts_with('{')) return Value::Other();
  return Value::Missing();  // null
}

expr::Schema BuildSchema() {
  expr::Schema s;
  // The order must match enum Slot.
  s.AddField("event.type", Type::kString);
  s.AddField("event.name", Type::kString);
  s.AddPrefix("event.properties");
  s.AddField("event.device.type", Type::kString);
  s.AddField("event.device.os", Type::kString);
  s.AddField("event.device.browser", Type::kString);
  s.AddField("context.campaign.source", Type::kString);
  s.AddField("context.campaign.medium", Type::kString);
  s.AddField("context.campaign.name", Type::kString);
  s.AddField("context.referrer.host", Type::kString);
  s.AddField("profile.events", Type::kNumber);
  s.AddField("profile.sessions.count", Type::kNumber);
  s.AddField("profile.sessions.current.events", Type::kNumber);
  s.AddField("profile.sessions.current.views", Type::kNumber);
  s.AddField("profile.orders.count", Type::kNumber);
  s.AddField("profile.orders.revenue", Type::kNumber);
  s.AddField("profile.returning", Type::kBool);
  s.AddField("profile.since_first_seen", Type::kNumber);
  s.AddPrefix("profile.traits");
  s.AddPrefix("profile.consent", Type::kBool, /*one_name=*/true);
  s.AddPrefix("profile.counts", Type::kNumber);
  s.AddField("profile.persona", Type::kString);
  s.AddField("profile.orders.average", Type::kNumber);
  s.AddField("profile.sessions.average_views", Type::kNumber);
  s.AddPrefix("profile.shares", Type::kNumber);
  s.AddPrefix("profile.journeys", Type::kString, /*one_name=*/true);
  s.AddField("profile.scores.conversion", Type::kNumber);
  s.AddField("profile.scores.lead_score", Type::kNumber);
  s.AddField("profile.scores.churn", Type::kNumber);
  s.AddField("event.sentiment", Type::kNumber);
  s.AddField("profile.sentiment.latest", Type::kNumber);
  s.AddField("profile.sentiment.average", Type::kNumber);
  s.AddField("profile.sentiment.count", Type::kNumber);
  s.AddField("profile.text_intent", Type::kString);
  s.AddField("profile.text_intent_probability", Type::kNumber);
  for (const char* scope : {"profile", "session"}) {
    for (const char* name : kIntentNames) {
      s.AddField(StrCat(scope, ".intent.", name), Type::kNumber);
    }
  }
  return s;
}

}  // namespace

const expr::Schema& ConditionSchema() {
  static const expr::Schema* schema = new expr::Schema(BuildSchema());
  return *schema;
}

namespace {

// The first name `ref` uses that `names` does not know, as "column N: ..."; "" when none.
std::string UnknownName(const expr::Reference& ref, const ConditionNames& names) {
  const std::string at = StrCat("column ", ref.column, ": ");
  // The name below profile.<below> (the schema takes one name below journeys and consent).
  auto one_below = [&ref](std::string_view below) {
    return ref.names.size() == 3 && ref.names[0] == "profile" && ref.names[1] == below;
  };
  if (one_below("journeys")) {
    const std::string_view id = ref.names[2];
    auto j = names.journeys.find(id);
    if (j == names.journeys.end()) return StrCat(at, "no journey `", id, "` in this workspace");
    for (const std::string& s : ref.strings) {
      if (s == "converted" || s == "exited" ||
          std::find(j->second.begin(), j->second.end(), s) != j->second.end()) {
        continue;
      }
      std::string stages;
      for (const std::string& st : j->second) StrAppend(&stages, st, ", ");
      return StrCat(at, "journey `", id, "` has no stage `", s, "` (its stages: ", stages,
                    "converted or exited)");
    }
  } else if (ref.names == std::vector<std::string>{"profile", "persona"}) {
    for (const std::string& s : ref.strings) {
      if (!names.personas.contains(s)) return StrCat(at, "no persona `", s, "` in this workspace");
    }
  } else if (one_below("consent") && names.consent) {
    const std::string_view purpose = ref.names[2];
    if (!names.consent->Known(purpose)) {
      return StrCat(at, "`", purpose,
                    "` is not a consent purpose of this workspace (standard ones, or add it "
                    "under consent.purposes)");
    }
  }
  return "";
}

}  // namespace

absl::StatusOr<expr::Expr> CompileCondition(std::string_view source, std::string_view where,
                                            const ConditionNames* names) {
  absl::StatusOr<expr::Expr> e = expr::Expr::Compile(source, ConditionSchema());
  if (!e.ok()) {
    return MakeError(absl::StatusCode::kInvalidArgument, "invalid_config",
                     StrCat(where, ": ", e.status().message()), where);
  }
  if (names != nullptr) {
    for (const expr::Reference& ref : e->references()) {
      if (std::string unknown = UnknownName(ref, *names); !unknown.empty()) {
        return MakeError(absl::StatusCode::kInvalidArgument, "invalid_config",
                         StrCat(where, ": ", unknown), where);
      }
    }
  }
  return e;
}

EventBindings::EventBindings(const EventFacts& facts, simdjson::dom::element event,
                             const Profile& profile, const DeviceFacts* device, int64_t now_ms)
    : facts_(facts), event_(event), profile_(profile), device_(device), now_ms_(now_ms) {}

Value EventBindings::Field(int slot) const {
  const auto n = [](uint64_t v) { return Value::Number(static_cast<double>(v)); };
  switch (static_cast<Slot>(slot)) {
    case kEventType:
      return Value::String(api::EventTypeName(facts_.type));
    case kEventName:
      return Value::String(facts_.name);
    case kDeviceType:
      return device_ ? Value::String(device_->type) : Value::Missing();
    case kDeviceOs:
      return device_ ? NonEmpty(device_->os) : Value::Missing();
    case kDeviceBrowser:
      return device_ ? NonEmpty(device_->browser) : Value::Missing();
    case kUtmSource:
      return NonEmpty(facts_.utm_source);
    case kUtmMedium:
      return NonEmpty(facts_.utm_medium);
    case kUtmCampaign:
      return NonEmpty(facts_.utm_campaign);
    case kReferrerHost:
      return NonEmpty(facts_.referrer_host);
    case kProfileEvents:
      return n(profile_.seen.events);
    case kSessionsCount:
      return n(profile_.sessions.count);
    case kSessionEvents:
      return n(profile_.sessions.current_events);
    case kSessionViews:
      return n(profile_.sessions.current_views);
    case kOrdersCount:
      return n(profile_.orders);
    case kOrdersRevenue:
      return Value::Number(profile_.revenue);
    case kReturning:
      return Value::Bool(profile_.sessions.count > 1);
    case kSinceFirstSeen:
      if (profile_.seen.events == 0) return Value::Missing();
      return Value::Number(static_cast<double>(now_ms_ - profile_.seen.first_ms));
    case kPersona:
      return NonEmpty(profile_.persona.id);
    case kOrdersAverage:
      if (profile_.orders == 0) return Value::Missing();
      return Value::Number(profile_.revenue / static_cast<double>(profile_.orders));
    case kScoreConversion:
      if (profile_.scores.at_ms == 0) return Value::Missing();
      return Value::Number(profile_.scores.conversion);
    case kLeadScore:
      if (profile_.scores.at_ms == 0) return Value::Missing();
      return Value::Number(LeadScore(profile_.scores.conversion));
    case kScoreChurn:
      if (profile_.scores.at_ms == 0) return Value::Missing();
      return Value::Number(profile_.scores.churn);
    case kEventSentiment:
      if (std::optional<double> compound = facts_.sentiment()) return Value::Number(*compound);
      return Value::Missing();
    case kSentimentLatest:
      if (profile_.text.count == 0) return Value::Missing();
      return Value::Number(profile_.text.latest);
    case kSentimentAverage:
      if (profile_.text.count == 0) return Value::Missing();
      return Value::Number(profile_.text.mean);
    case kSentimentCount:
      return n(profile_.text.count);
    case kTextIntent:
      return NonEmpty(profile_.text.intent);
    case kTextIntentProbability:
      if (profile_.text.intent.empty()) return Value::Missing();
      return Value::Number(profile_.text.intent_probability);
    case kSessionsAverageViews:
      if (profile_.sessions.count == 0) return Value::Missing();
      return Value::Number(static_cast<double>(profile_.sessions.views) /
                           static_cast<double>(profile_.sessions.count));
    default:
      break;
  }
  if (slot >= kIntentFirst && slot < kIntentFirst + 2 * kIntentCount) {
    const bool session = slot >= kIntentFirst + kIntentCount;
    std::optional<Intent>& intent = session ? session_intent_ : profile_intent_;
    if (!intent) {
      intent = ComputeIntent(profile_, session ? IntentScope::kSession : IntentScope::kProfile,
                             now_ms_, IntentDetail::kScoresOnly);
    }
    switch ((slot - kIntentFirst) % kIntentCount) {
      case 0:
        return Value::Number(intent->purchase_intent.score);
      case 1:
        return Value::Number(intent->urgency.score);
      case 2:
        return Value::Number(intent->price_sensitivity.score);
      case 3:
        return Value::Number(intent->research_depth.score);
      default:
        return Value::Number(intent->conversion_probability);
    }
  }
  return Value::Missing();
}

Value EventBindings::Below(int slot, const std::vector<std::string>& rest) const {
  switch (static_cast<Slot>(slot)) {
    case kEventProperties: {
      simdjson::dom::element e;
      if (event_["properties"].get(e) != simdjson::SUCCESS) return Value::Missing();
      for (const std::string& part : rest) {
        if (!StepInto(&e, part)) return Value::Missing();
      }
      return FromElement(e);
    }
    case kTraits: {
      auto it = profile_.traits.find(rest.front());
      if (it == profile_.traits.end()) return Value::Missing();
      const std::string& json = it->second.json;
      if (rest.size() == 1) return FromJsonScalar(json, &scratch_);
      // Below a trait that is an object or an array (`profile.traits.address.city`,
      // `profile.traits.interests[0]`), as event properties.
      simdjson::dom::element e;
      if (json.empty() || (json.front() != '{' && json.front() != '[') ||
          trait_parser_.parse(json).get(e) != simdjson::SUCCESS) {
        return Value::Missing();
      }
      for (size_t i = 1; i < rest.size(); ++i) {
        if (!StepInto(&e, rest[i])) return Value::Missing();
      }
      Value v = FromElement(e);
      // The parser is reused by the next such trait: the string is kept apart.
      if (v.kind == Value::Kind::kString) v.str = scratch_.emplace_back(v.str);
      return v;
    }
    case kConsent: {
      if (rest.size() != 1) return Value::Missing();
      auto it = profile_.consent.find(rest.front());
      if (it == profile_.consent.end()) return Value::Missing();
      return Value::Bool(it->second.granted);
    }
    case kJourneys: {
      if (rest.size() != 1) return Value::Missing();
      auto it = profile_.journeys.find(rest.front());
      if (it == profile_.journeys.end()) return Value::Missing();
      const JourneyState& j = it->second;
      return Value::String(j.status == "active" ? std::string_view(j.stage)
                                                : std::string_view(j.status));
    }
    case kCounts:
    case kShares: {
      std::string wanted;
      for (const std::string& part : rest) {
        if (!wanted.empty()) wanted.push_back('_');
        wanted.append(part);
      }
      wanted = CountName(wanted);
      uint64_t count = 0;
      for (const auto& [name, n] : profile_.event_counts) {
        if (CountName(name) == wanted) count += n;
      }
      if (slot == kCounts) return Value::Number(static_cast<double>(count));
      if (profile_.seen.events == 0) return Value::Missing();
      return Value::Number(static_cast<double>(count) / static_cast<double>(profile_.seen.events));
    }
    default:
      return Value::Missing();
  }
}

}  // namespace whisperer::state
