// Profile: the unified picture of one customer, folded from that customer's events in sequence
// order. ExtractFacts() reads what matters from one stored event; FoldEvent() applies it;
// MergeProfiles() combines two profiles when identity resolution finds they are one customer.
//
// What the profile keeps (the read API shows all of it, docs/api.md):
//   - identifiers, and traits with the time each was set (latest timestamp wins, also across
//     merges);
//   - first/last seen, event count and counts by event name (track events by name; page,
//     screen, identify, group and alias by type);
//   - revenue and order count from `Order Completed` (properties.revenue, else .total), first
//     and last order time, and for lifetime value (state/models.h) the number of UTC days with
//     an order and the revenue of the first such day (a day's orders are one purchase, and the
//     first purchase is left out of the spend model); recency/frequency/monetary figures are
//     derived when read;
//   - sessions: a gap longer than the session timeout (default 30 minutes) starts a new one;
//     count, total length, page and screen views per session, and the current session. An event
//     older than the current session's last event is counted in the current session;
//   - devices (from the user agent, see DeviceFacts), platforms (context.library.name),
//     channels (`channel`), sources (UTM: context.campaign source/medium/name) and referrer
//     hosts (context.page.referrer), each with first/last seen and a count;
//   - consent per purpose (granted or denied, when, and from which source), set by the consent
//     API or by context.consent of events (ConsentPurposes says which of their keys count);
//   - merge history (which profile was absorbed, when, by which event, through which
//     identifiers), absorbed profile ids (whose timelines are part of this one), and profiles
//     this one was separated from by an unmerge;
//   - the sentiment of the texts the customer wrote in the event properties the workspace names
//     (models.text.properties, state/text_signals.h): the latest score, a running mean and
//     counts, and the latest predicted intent of such a text when the workspace has an intent
//     model. Texts themselves are not kept.
// Events whose user agent is a bot are counted in `botEvents` and kept out of every other
// statistic (and, by the profile engine, out of journeys, personas and models). A user agent of
// unknown device type (HTTP libraries, TVs) records no device.
//
// Lists that grow with the data (event names, devices, sources, referrers, platforms,
// channels, traits) are capped (kMaxListEntries, kMaxTraits); beyond a cap new entries are
// counted under "(other)" or dropped, so one profile stays small however much it sends.
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "api/event.h"
#include "common/json_writer.h"
#include "identity/resolver.h"
#include "simdjson.h"

namespace whisperer::state {

inline constexpr size_t kMaxListEntries = 50;
// Where the entries beyond a list's cap are counted.
inline constexpr std::string_view kOtherEntry = "(other)";
inline constexpr size_t kMaxEventNames = 200;
inline constexpr size_t kMaxTraits = 200;
// The longest name an entry of a list keeps (an event name, a trait's key, a referrer host, a
// campaign...): a longer one is counted under kOtherEntry (a trait is not kept). The caps on
// entries alone let one customer's profile reach megabytes with names of 30 KB, re-encoded
// and written on each of its events.
inline constexpr size_t kMaxEntryBytes = 256;
// The largest trait value kept, as JSON: a larger one is kept as null at its time (the event
// keeps the value), so that an older value, this profile's or a merged one's, no longer stands
// for the latest.
inline constexpr size_t kMaxTraitBytes = 4096;
// Order days kept per profile (Profile::order_day_list): nearly three years of daily orders.
inline constexpr size_t kMaxOrderDays = 1000;

// The consent purposes every workspace knows; workspaces may add their own.
inline constexpr std::string_view kCrossDevice = "cross_device";
inline constexpr std::string_view kStandardPurposes[] = {"personalization", "cross_device",
                                                         "analytics",       "marketing_email",
                                                         "marketing_sms",   "marketing_push"};

// True when `purpose` is a standard purpose or one of `extra` (a workspace's consent.purposes).
bool IsConsentPurpose(std::string_view purpose, std::span<const std::string> extra);

// A workspace's consent purposes (kStandardPurposes and those it adds) and the names events
// may state them under: a purpose's own name, or a consent manager's category (Segment's
// context.consent.categoryPreferences, e.g. OneTrust's "C0004" or "Advertising") that the
// workspace maps to purposes. A statement under any other name sets nothing: the purposes a
// profile holds stay the ones decisions and the consent API know, however many names senders
// invent.
class ConsentPurposes {
 public:
  void AddPurpose(std::string name) { extra_.push_back(std::move(name)); }
  void AddCategory(std::string name, std::vector<std::string> purposes) {
    categories_[std::move(name)] = std::move(purposes);
  }
  bool Known(std::string_view purpose) const { return IsConsentPurpose(purpose, extra_); }
  bool operator==(const ConsentPurposes&) const = default;
  // Calls `f` with each purpose a statement under `name` sets; false when it sets none.
  template <typename F>
  bool ForStated(std::string_view name, F&& f) const {
    if (auto it = categories_.find(name); it != categories_.end()) {
      for (const std::string& p : it->second) f(std::string_view(p));
      return !it->second.empty();
    }
    if (!Known(name)) return false;
    f(name);
    return true;
  }

 private:
  std::vector<std::string> extra_;
  std::map<std::string, std::vector<std::string>, std::less<>> categories_;
};

struct TraitValue {
  std::string json;  // the value as compact JSON
  int64_t set_at_ms = 0;
};

struct Seen {
  int64_t first_ms = 0;
  int64_t last_ms = 0;
  uint64_t events = 0;
  void Touch(int64_t ts);
  void Absorb(const Seen& other);
};

struct DeviceFacts {
  std::string type;  // mobile, tablet, desktop, bot or unknown
  std::string os;
  std::string os_version;
  std::string browser;
  std::string browser_version;
  bool bot = false;
};

struct DeviceSeen : DeviceFacts, Seen {};

struct SourceSeen : Seen {
  std::string source;
  std::string medium;
  std::string campaign;
};

struct ConsentState {
  bool granted = false;
  int64_t at_ms = 0;
  std::string source;  // "api", "event:<messageId>", or "request" (a decide's, never stored)
};

struct MergeRecord {
  int64_t at_ms = 0;                              // when the merging event was received
  uint64_t absorbed = 0;                          // the profile merged into this one
  std::string message_id;                         // the event that proved them one customer
  std::string event_type;                         // its type
  std::vector<identity::Identifier> identifiers;  // the identifiers the event carried
};

struct JourneyTransition {
  std::string from;  // "" when entering
  std::string to;    // a stage id, "converted" or "exited"
  int64_t at_ms = 0;
  uint64_t sequence = 0;   // the event that caused it; 0 for a timeout
  std::string message_id;  // its messageId; "" for a timeout
  std::string reason;      // entry, advance, goal, exit, timeout, version_changed
};

// Where a profile is in one journey (state/journeys.h).
struct JourneyState {
  int64_t version = 0;
  std::string stage;  // the current (or last) stage
  int stage_index = 0;
  std::string status;  // active, converted or exited
  int64_t entered_ms = 0;
  int64_t deadline_ms = 0;                 // when the stage times out; 0 for none
  std::vector<JourneyTransition> history;  // the latest kMaxJourneyHistory transitions
  // Of this round through the journey (for funnels): when the customer entered it, and the
  // device type and UTM source of the entering event.
  int64_t started_ms = 0;
  std::string entry_device;
  std::string entry_source;
  std::string entry_persona;  // the customer's persona then ("" for none)
};
inline constexpr size_t kMaxJourneyHistory = 50;

// A change of the customer's persona (state/personas.h): to `persona` ("" when no persona
// qualifies any more) with that confidence, because of the event `message_id`.
struct PersonaChange {
  std::string persona;
  double confidence = 0;
  int64_t at_ms = 0;
  uint64_t sequence = 0;
  std::string message_id;
};
struct PersonaState {
  std::string id;  // "" for none
  double confidence = 0;
  int64_t since_ms = 0;
  std::vector<PersonaChange> history;  // the latest kMaxPersonaHistory changes, oldest first
};
inline constexpr size_t kMaxPersonaHistory = 20;

// Kinds of behaviour the intent signals (state/intent.h) are computed from; an event may be of
// several (ClassifySignals).
enum class Signal : uint8_t {
  kProductView,  // Product Viewed
  kListView,     // Product List Viewed, Product List Filtered, Products Searched
  kCartAdd,      // Product Added
  kCheckout,     // Checkout Started, Checkout Step Viewed/Completed, Payment Info Entered
  kOrder,        // Order Completed
  kWishlist,     // Product Added to Wishlist
  kCoupon,       // Coupon Entered, Coupon Applied
  kPromotion,    // Promotion Viewed, Promotion Clicked
  kPriceSort,    // a product list sorted or filtered by price (properties.sorts[].type, sort)
  kComparison,   // Products Compared, Product Compared, Comparison Viewed
  kReview,       // Product Reviewed, Reviews Viewed, Specifications Viewed
  kTrust,        // Returns Policy Viewed, Guarantee Viewed, Shipping Info Viewed
};
inline constexpr size_t kSignalKinds = 12;
using SignalCounts = std::array<uint32_t, kSignalKinds>;

struct Sessions {
  uint64_t count = 0;
  int64_t total_ms = 0;  // summed session lengths, including the current one
  uint64_t views = 0;    // page and screen events in all sessions
  int64_t current_start_ms = 0;
  int64_t current_last_ms = 0;
  uint64_t current_events = 0;
  uint64_t current_views = 0;
  SignalCounts current_signals{};  // events of each Signal kind in the current session
  int64_t previous_last_ms = 0;    // the last event of the session before the current one
};

// The customer's latest scores by the workspace's models (state/models.h), from the last event.
struct ModelScores {
  double conversion = 0;  // probability of the goal event within the window
  double churn = 0;       // probability of churning
  int64_t at_ms = 0;      // event time of the scoring; 0 when never scored
  // When each model (conversion, churn) last kept a moment of this customer as an example.
  std::array<int64_t, 2> sampled_ms{};
};

// The sentiment of the texts scored for this customer (state/text_signals.h): VADER compound
// scores in [-1, 1]. Nothing grows: counts, a running mean, and the latest text's score, where
// and when it was written (the strings capped at kMaxTextRefBytes).
inline constexpr double kPositiveSentiment = 0.05;   // compound >= this: positive (VADER's cut)
inline constexpr double kNegativeSentiment = -0.05;  // compound <= this: negative
// The longest messageId (api/segment_parser.cc) and intent label (text::kMaxIntentLabelBytes).
inline constexpr size_t kMaxTextRefBytes = 256;
struct TextSentiment {
  uint64_t count = 0;     // texts scored; 0: none (and every other field empty)
  double mean = 0;        // mean compound of all of them
  uint64_t positive = 0;  // compound >= kPositiveSentiment
  uint64_t negative = 0;  // compound <= kNegativeSentiment
  // The latest text by event time (among one event's texts, the first in config order).
  double latest = 0;
  std::string latest_property;  // its property path as configured ("review.body")
  int64_t latest_ms = 0;        // its event's timestamp
  std::string latest_message_id;
  // The top intent of the latest text the workspace's intent model (text/intent_model.h)
  // predicted; "" when none was predicted.
  std::string intent;
  double intent_probability = 0;
  int64_t intent_ms = 0;  // the event time of that text
};

struct Profile {
  uint64_t id = 0;
  std::vector<identity::Identifier> identifiers;
  std::map<std::string, TraitValue, std::less<>> traits;
  Seen seen;  // first/last seen and the event count
  std::map<std::string, uint64_t, std::less<>> event_counts;
  double revenue = 0;
  uint64_t orders = 0;
  int64_t first_order_ms = 0;
  int64_t last_order_ms = 0;
  // Days (UTC) with an order, and the revenue of the orders on the first of them. The days are
  // kept, sorted (order_day_list), up to kMaxOrderDays: an order arriving late, or a merge, counts
  // a day already counted once. Past that many (or for a profile stored before days were kept,
  // when its days cannot be told from its first and last order) the list is empty and a day is
  // counted again when it is neither the first nor the last order's.
  uint64_t order_days = 0;
  double first_day_revenue = 0;
  std::vector<int32_t> order_day_list;  // days since 1970-01-01 (UTC), sorted
  Sessions sessions;
  std::vector<DeviceSeen> devices;
  std::map<std::string, Seen, std::less<>> platforms;
  std::map<std::string, Seen, std::less<>> channels;
  std::vector<SourceSeen> sources;
  std::map<std::string, Seen, std::less<>> referrers;
  std::map<std::string, ConsentState, std::less<>> consent;
  std::vector<MergeRecord> merges;
  std::vector<uint64_t> absorbed;   // profiles merged into this one (their timelines are ours)
  std::vector<uint64_t> separated;  // never to be merged with again (unmerge)
  std::map<std::string, JourneyState, std::less<>> journeys;
  PersonaState persona;
  SignalCounts signals{};  // events of each Signal kind, all sessions
  ModelScores scores;
  TextSentiment text;
  uint64_t bot_events = 0;
  uint64_t last_sequence = 0;  // the last event folded in

  bool Denied(std::string_view purpose) const;
  identity::ProfileFacts Facts() const;
};

// What one stored event says about its customer. Views point into the parsed document, which
// must outlive the facts.
struct EventFacts {
  api::EventType type = api::EventType::kTrack;
  std::string_view message_id;
  std::string_view name;  // track: the event name
  int64_t timestamp_ms = 0;
  int64_t received_at_ms = 0;
  std::vector<identity::Identifier> identifiers;  // as sent; see identity::PrepareIdentifiers
  std::string previous_id;                        // alias
  std::vector<std::pair<std::string_view, std::string>> traits;  // name -> compact JSON
  std::optional<double> revenue;                                 // Order Completed
  std::string_view user_agent;
  std::string_view library;
  std::string_view channel;
  std::string_view utm_source, utm_medium, utm_campaign;
  std::string referrer_host;
  std::vector<std::pair<std::string, bool>> consent;  // as stated: name -> granted
  uint32_t consent_invalid = 0;  // statements left out: their value is no yes or no
  uint32_t signals = 0;          // bit i: of Signal kind i
  std::string product_id;        // Product Viewed: properties.product_id (string or number)
  // The event's text properties the workspace names, scored (ScoreTexts, state/text_signals.h;
  // ExtractFacts leaves them empty): in config order, `property` pointing into the settings.
  struct ScoredText {
    std::string_view property;
    double compound = 0;
  };
  std::vector<ScoredText> texts;
  // The top intent of the first of them, when the workspace has an intent model.
  std::string text_intent;
  double text_intent_probability = 0;
  // The compound of the first scored text (event.sentiment in conditions); nullopt when none.
  std::optional<double> sentiment() const {
    return texts.empty() ? std::nullopt : std::optional<double>(texts.front().compound);
  }
};

// Reads the facts from a stored (normalized) event. `rules` names the external id types.
absl::StatusOr<EventFacts> ExtractFacts(simdjson::dom::element event,
                                        const identity::IdentityRules& rules);

// The consent statements of an event's (or a request's) `context`: context.consent with
// purposes or a consent manager's categories as keys, and its categoryPreferences (Segment's
// form), into `f->consent` (`f->consent_invalid` counts those with no yes or no).
void ReadContextConsent(simdjson::dom::element context, EventFacts* f);

// Sets `purpose` to `state` unless the profile holds a later statement of it (ties: the new one
// wins).
void SetConsent(Profile& profile, std::string_view purpose, ConsentState state);

// Sets on `profile` the consent `f` states (the names `purposes` knows, as the purposes they
// stand for), at `f.timestamp_ms` (at most `f.received_at_ms`), from `source`; a later statement
// already held wins.
void FoldConsent(Profile& profile, const EventFacts& f, const ConsentPurposes& purposes,
                 std::string_view source);

// The host of an absolute URL ("https://www.google.com/search?q" -> "www.google.com"), or "".
std::string UrlHost(std::string_view url);

class DeviceDetector;
// The device facts of `user_agent` in `scratch`, or null without a detector or user agent.
const DeviceFacts* DetectDevice(const DeviceDetector* detector, std::string_view user_agent,
                                DeviceFacts* scratch);

struct FoldOptions {
  int64_t session_timeout_ms = 30 * 60 * 1000;
  ConsentPurposes consent;  // which consent statements of events count, and as which purposes
};

// Applies one event (already resolved to `profile`). `device` is null when the event has no
// user agent.
void FoldEvent(Profile& profile, const EventFacts& facts, const DeviceFacts* device,
               uint64_t sequence, const FoldOptions& options);

// One order (an `Order Completed` of `revenue` at `ts_ms`): revenue, order count, first and last
// order, and the days with an order (Profile::order_days).
void AddOrder(Profile& p, int64_t ts_ms, double revenue);

// Folds `loser` into `survivor`: identifiers and lists united, counts summed, traits and consent
// by latest time, merge histories concatenated and `record` appended; text sentiment counts
// summed, means weighted by their counts, the latest text and intent by event time; of each
// journey both were in, the further progress (the state that lost goes to `dropped_journeys`
// when given: state/journeys.h MergeJourneys).
void MergeProfiles(Profile& survivor, Profile&& loser, MergeRecord record,
                   std::vector<std::pair<std::string, JourneyState>>* dropped_journeys = nullptr);

// `key`: the time `ms` in ISO 8601 (UTC, milliseconds), or null when 0.
void WriteTime(JsonWriter& w, std::string_view key, int64_t ms);

// "prf_<hex>" and back.
std::string ProfileIdString(uint64_t id);
std::optional<uint64_t> ParseProfileId(std::string_view s);
// What a profile's contact history and engagement counts are keyed by (decide/contacts.h,
// decide/engagement.h): the hash of its id string, as a first-time visitor's are keyed by the
// hash of their identifier.
uint64_t ProfileHash(uint64_t id);
// A first-time visitor (a userId or anonymousId no profile has yet, asking /v1/decide) is keyed
// by the hash of "type:value", the value normalized (identity::NormalizeIdentifier); the
// decision log indexes their decisions under VisitorIndex of it, an id with the top bit set,
// which profile ids (counted from 1) never reach.
uint64_t VisitorHash(std::string_view type, std::string_view normalized_value);
inline uint64_t VisitorIndex(uint64_t visitor_hash) { return visitor_hash | (uint64_t{1} << 63); }
// Everything one customer's decisions, contact histories and engagement counts are kept under:
// those of `profile`, of the profiles merged into it, and of the visitor each of its userIds and
// anonymousIds was before it had a profile. The profile's own come first.
struct CustomerKeys {
  std::vector<uint64_t> index;   // decision-log index ids (profile ids and VisitorIndex)
  std::vector<uint64_t> hashes;  // contact and engagement keys (ProfileHash and VisitorHash)
};
CustomerKeys KeysOfCustomer(const Profile& profile);
// VisitorHash of each identifier in a logged decision's "visitor" list (server/decide_service.cc
// writes it for a first-time visitor: with a userId they were given the profile may not hold);
// none for a customer's decision or an unreadable record.
std::vector<uint64_t> RecordVisitorHashes(simdjson::dom::parser& parser, std::string_view record);

// The profile as JSON: the body of GET /v1/profiles/{id} (the stored form is binary,
// state/profile_codec.h). `now_ms` is used for the derived recency figures. `scores` writes the
// value of the "scores" key (the models' answers, state/models.h); without it, null.
void WriteProfile(const Profile& profile, int64_t now_ms, JsonWriter& w,
                  const std::function<void(JsonWriter&)>& scores = {});
// Just the `consent` object of that form.
void WriteConsent(const Profile& profile, JsonWriter& w);
// [{"type", "value"}, ...]: a profile's identifiers, or those a pending approval keeps.
void WriteIdentifiers(JsonWriter& w, const std::vector<identity::Identifier>& ids);

}  // namespace whisperer::state
