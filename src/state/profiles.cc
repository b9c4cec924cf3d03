#include "state/profiles.h"

#include <algorithm>
#include <charconv>
#include <map>

#include "absl/container/flat_hash_set.h"
#include "common/hash.h"
#include "common/status.h"
#include "common/strings.h"
#include "learn/clv.h"
#include "obs/log.h"
#include "state/conditions.h"
#include "state/funnels.h"
#include "state/profile_codec.h"
#include "state/text_signals.h"
#include "storage/keys.h"

namespace whisperer::state {
namespace {

constexpr std::string_view kProfileCounterKey = "profiles/next_id";
// Merges are re-pointed when they happen, so a chain of pointers is at most as long as the
// merges made since; this bound only protects readers from a corrupt store.
constexpr int kMaxRedirects = 64;

absl::Status RocksError(const rocksdb::Status& s) {
  return MakeError(absl::StatusCode::kInternal, "storage_error", s.ToString());
}

absl::Status FromRocksIterator(const rocksdb::Status& s) {
  return s.ok() ? absl::OkStatus() : RocksError(s);
}

// The identifiers a stored event carried, prepared as resolution prepares them; a previousId
// under both types it may have been (a former userId or an anonymousId).
std::vector<identity::Identifier> CarriedIdentifiers(const EventFacts& facts,
                                                     const identity::IdentityRules& rules) {
  std::vector<identity::Identifier> raw = facts.identifiers;
  if (!facts.previous_id.empty()) {
    raw.push_back({std::string(identity::kUserId), facts.previous_id});
    raw.push_back({std::string(identity::kAnonymousId), facts.previous_id});
  }
  return identity::PrepareIdentifiers(std::move(raw), rules);
}

// When a profile is rebuilt from its events (an unmerge, an erasure), the consent that no event
// stated: given through the API, it is about the person, over an older statement of an event.
void KeepStatedConsent(const Profile& from, Profile* to) {
  for (const auto& [purpose, state] : from.consent) {
    if (!state.source.starts_with("event:")) state::SetConsent(*to, purpose, state);
  }
}

}  // namespace

ProfileEngine::ProfileEngine(storage::Store* store, const Clock* clock, obs::Registry* metrics)
    : store_(store),
      clock_(clock),
      models_(store, clock),
      sentiment_(text::SentimentAnalyzer::Create()) {
  created_ = &metrics->GetCounter("whisperer_profiles_created_total",
                                  "Profiles created for identifiers seen for the first time.");
  merges_ = &metrics->GetCounter("whisperer_profile_merges_total",
                                 "Profiles merged into another because an event linked them.");
  unresolved_ = &metrics->GetCounter(
      "whisperer_events_unresolved_total",
      "Events stored without a profile: every identifier they carry is blocked.");
  suppressed_events_ = &metrics->GetCounter(
      "whisperer_events_suppressed_total",
      "Events acknowledged but not stored: they carry an identifier erased with suppress=true.");
  metrics->AddGauge("whisperer_profiles_cached", "Profiles held in memory by the profile engine.",
                    [this] { return static_cast<double>(cached_profiles()); });
  evictions_ = &metrics->GetCounter(
      "whisperer_profile_cache_evictions_total",
      "Profiles dropped from memory to stay within ingest.profile_cache_mb (read again from the "
      "store when needed).");
  const char* refused_help = "Merges an event asked for and an identity rule refused, by reason.";
  refused_limit_ = &metrics->GetCounter("whisperer_profile_merges_refused_total", refused_help,
                                        {{"reason", "identifier_limit"}});
  refused_consent_ = &metrics->GetCounter("whisperer_profile_merges_refused_total", refused_help,
                                          {{"reason", "cross_device_consent"}});
  refused_separated_ = &metrics->GetCounter("whisperer_profile_merges_refused_total", refused_help,
                                            {{"reason", "unmerged"}});
  unlinked_ = &metrics->GetCounter(
      "whisperer_identifiers_unlinked_total",
      "Identifiers new to the graph that an event's profile could not take: a limit of their type, "
      "or identity.max_identifiers, was reached. The event still counts for the profile.");
  const char* consent_help =
      "Consent statements of events (context.consent) that set no purpose: under a name that is "
      "no purpose or category of the workspace, or with a value that is no yes or no.";
  consent_unknown_ = &metrics->GetCounter("whisperer_consent_statements_ignored_total",
                                          consent_help, {{"reason", "unknown_name"}});
  consent_invalid_ = &metrics->GetCounter("whisperer_consent_statements_ignored_total",
                                          consent_help, {{"reason", "invalid_value"}});
  late_journey_events_ = &metrics->GetCounter(
      "whisperer_journey_late_events_total",
      "Events dated before their customer's latest move in a journey, which therefore moved them "
      "in none of the journeys they came late for (an offline queue; history out of time order).");
}

void ProfileEngine::Configure(uint32_t workspace_id, WorkspaceProfileSettings settings) {
  models_.Configure(workspace_id, settings.models);
  settings_[workspace_id] = std::move(settings);
}

void ProfileEngine::SetIntentModel(uint32_t workspace_id,
                                   std::shared_ptr<const text::IntentModel> model) {
  if (model == nullptr) {
    intent_models_.erase(workspace_id);
  } else {
    intent_models_[workspace_id] = std::move(model);
  }
}

void ProfileEngine::ScoreEventTexts(uint32_t workspace_id, const WorkspaceProfileSettings& settings,
                                    simdjson::dom::element doc, EventFacts* facts) const {
  if (settings.text_properties.empty()) return;
  auto it = intent_models_.find(workspace_id);
  ScoreTexts(*sentiment_, it == intent_models_.end() ? nullptr : it->second.get(), doc,
             settings.text_properties, facts);
}

const WorkspaceProfileSettings& ProfileEngine::Settings(uint32_t workspace_id) const {
  auto it = settings_.find(workspace_id);
  return it == settings_.end() ? defaults_ : it->second;
}

absl::Status ProfileEngine::Start() {
  absl::StatusOr<std::optional<std::string>> v = store_->GetMeta(kProfileCounterKey);
  if (!v.ok()) return v.status();
  if (absl::Status s = LoadGraph(); !s.ok()) return s;
  if (absl::Status s = LoadTimers(); !s.ok()) return s;
  if (absl::Status s = models_.Start(); !s.ok()) return s;
  for (uint32_t workspace_id : models_.workspace_ids()) {
    if (auto model = models_.intent_model(workspace_id)) SetIntentModel(workspace_id, model);
  }
  suppressed_.clear();
  absl::Status scanned = store_->ScanMeta(
      storage::kSuppressionPrefix,
      [this](std::string_view key, std::string_view) { suppressed_.emplace(key); });
  if (!scanned.ok()) return scanned;
  next_profile_id_ = 1;
  if (v->has_value()) {
    const std::string& s = **v;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), next_profile_id_);
    if (ec != std::errc() || p != s.data() + s.size() || next_profile_id_ == 0) {
      return MakeError(absl::StatusCode::kDataLoss, "corrupt_meta",
                       StrCat("bad ", kProfileCounterKey, ": ", s));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Profile*> ProfileEngine::Load(uint32_t workspace_id, uint64_t profile_id) {
  Key key{workspace_id, profile_id};
  auto it = working_.find(key);
  if (it != working_.end()) return it->second.get();
  absl::StatusOr<Profile> p = [&]() -> absl::StatusOr<Profile> {
    auto cached = cache_.find(key);
    if (cached != cache_.end()) return DecodeProfile(cached->second);
    return ReadProfile(*store_, workspace_id, profile_id);
  }();
  if (!p.ok()) return p.status();
  if (p->id != profile_id) {
    return MakeError(
        absl::StatusCode::kDataLoss, "corrupt_identity",
        StrCat("identity graph points at merged profile ", ProfileIdString(profile_id)));
  }
  auto& slot = working_[key];
  slot = std::make_unique<Profile>(std::move(*p));
  return slot.get();
}

size_t ProfileEngine::CachedBytes(const std::string& encoded) {
  // The string's heap block (none when it fits the inline buffer) and the table slot.
  return (encoded.capacity() > 15 ? encoded.capacity() + 16 : 0) + sizeof(Key) +
         sizeof(std::string) + 1;
}

void ProfileEngine::Uncache(const Key& key) {
  auto it = cache_.find(key);
  if (it == cache_.end()) return;
  cache_bytes_ -= CachedBytes(it->second);
  cache_.erase(it);
  // An erasure finishes no group: the gauge follows here too.
  cached_count_.store(cache_.size(), std::memory_order_relaxed);
}

void ProfileEngine::Evict() {
  // Down to 90% of the limit, so eviction runs once per many groups rather than every group.
  // Which profiles go is arbitrary (hash order): a profile read again is decoded from the
  // store, so eviction costs a read, never data. Except the profiles of the group being
  // finished (dirty_, sorted): their rows may not be in the store yet when the next group reads
  // them (shard/shard_set.h writes a group while it resolves the next).
  const size_t target = cache_limit_bytes_ / 10 * 9;
  size_t evicted = 0;
  for (auto it = cache_.begin(); it != cache_.end() && cache_bytes_ > target;) {
    if (std::binary_search(dirty_.begin(), dirty_.end(), it->first)) {
      ++it;
      continue;
    }
    cache_bytes_ -= CachedBytes(it->second);
    cache_.erase(it++);
    ++evicted;
  }
  evictions_->Inc(evicted);
}

const DeviceFacts* ProfileEngine::Device(std::string_view user_agent, DeviceFacts* scratch) const {
  return DetectDevice(detector_.get(), user_agent, scratch);
}

Profile* ProfileEngine::Create(uint32_t workspace_id) {
  uint64_t id = next_profile_id_++;
  counter_dirty_ = true;
  auto& slot = working_[Key{workspace_id, id}];
  slot = std::make_unique<Profile>();
  slot->id = id;
  created_->Inc();
  return slot.get();
}

absl::Status ProfileEngine::LoadGraph() {
  graph_.clear();
  std::unique_ptr<rocksdb::Iterator> it(
      store_->db()->NewIterator(rocksdb::ReadOptions(), store_->identities()));
  for (it->SeekToFirst(); it->Valid(); it->Next()) {
    if (it->value().size() != 8) {
      return MakeError(absl::StatusCode::kDataLoss, "corrupt_identity", "bad identity row");
    }
    graph_[Fingerprint128(it->key().ToStringView())] = storage::GetBigEndian64(it->value().data());
  }
  return FromRocksIterator(it->status());
}

uint64_t ProfileEngine::Owner(uint32_t workspace_id, const identity::Identifier& id) const {
  auto it = graph_.find(storage::IdentityFingerprint(workspace_id, id.type, id.value));
  return it == graph_.end() ? 0 : it->second;
}

void ProfileEngine::Link(uint32_t workspace_id, const identity::Identifier& id,
                         uint64_t profile_id) {
  std::string key = storage::IdentityKey(workspace_id, id.type, id.value);
  graph_[Fingerprint128(key)] = profile_id;
  std::string value;
  storage::PutBigEndian64(&value, profile_id);
  pending_identities_.emplace_back(std::move(key), std::move(value));
}

absl::StatusOr<ProfileEngine::Outcome> ProfileEngine::Apply(uint32_t workspace_id,
                                                            uint64_t sequence,
                                                            std::string_view event_json,
                                                            rocksdb::WriteBatch* batch) {
  const WorkspaceProfileSettings& settings = Settings(workspace_id);
  simdjson::dom::element doc;
  if (parser_.parse(event_json.data(), event_json.size()).get(doc) != simdjson::SUCCESS) {
    unresolved_->Inc();
    return InvalidInput("invalid_event", "stored event is not JSON");
  }
  absl::StatusOr<EventFacts> facts = ExtractFacts(doc, settings.rules);
  if (!facts.ok()) {
    unresolved_->Inc();
    return facts.status();
  }
  if (facts->consent_invalid > 0) consent_invalid_->Inc(facts->consent_invalid);
  for (const auto& statement : facts->consent) {
    if (!settings.fold.consent.ForStated(statement.first, [](std::string_view) {})) {
      consent_unknown_->Inc();
    }
  }
  if (event_time_) {
    // Replay: time is the events' own; what timed out before this event happened first.
    facts->received_at_ms = facts->timestamp_ms;
    if (NextDeadline() <= facts->timestamp_ms) {
      if (absl::Status s = FireDueInGroup(facts->timestamp_ms); !s.ok()) return s;
    }
  }
  std::vector<identity::Identifier> raw = std::move(facts->identifiers);
  if (!facts->previous_id.empty()) {
    // alias: previousId is a former userId when the graph knows it as one, else an anonymousId
    // (what analytics.js sends by default).
    identity::Identifier prev{std::string(identity::kUserId),
                              identity::NormalizeIdentifier(identity::kUserId, facts->previous_id)};
    if (Owner(workspace_id, prev) == 0) prev.type = identity::kAnonymousId;
    raw.push_back(std::move(prev));
  }
  std::vector<identity::Identifier> ids =
      identity::PrepareIdentifiers(std::move(raw), settings.rules);
  if (!suppressed_.empty()) {
    auto suppressed = [&](std::string_view type, std::string_view value) {
      return suppressed_.count(storage::SuppressionKey(workspace_id, type, value)) > 0;
    };
    bool drop = false;
    for (const identity::Identifier& id : ids) drop = drop || suppressed(id.type, id.value);
    // previousId is suppressed under either type: once an erased userId left the graph, it
    // would be taken for an anonymousId above and come back as one.
    for (std::string_view type : {identity::kUserId, identity::kAnonymousId}) {
      drop = drop || (!facts->previous_id.empty() &&
                      suppressed(type, identity::NormalizeIdentifier(type, facts->previous_id)));
    }
    if (drop) {
      suppressed_events_->Inc();
      return Outcome::kSuppressed;
    }
  }
  if (ids.empty()) {
    unresolved_->Inc();
    return Outcome::kUnresolved;
  }
  std::vector<uint64_t> owners(ids.size());
  for (size_t i = 0; i < ids.size(); ++i) owners[i] = Owner(workspace_id, ids[i]);
  // An event that denies cross_device itself (context.consent) links no devices: its
  // statement is applied to the profile after resolution, but the customer said it with the
  // very event that would merge them.
  bool event_denies_cross_device = false;
  for (const auto& [name, granted] : facts->consent) {
    settings.fold.consent.ForStated(name, [&](std::string_view purpose) {
      if (purpose == kCrossDevice && !granted) event_denies_cross_device = true;
    });
  }
  absl::Status load_error;
  auto facts_of = [&](uint64_t id) -> identity::ProfileFacts {
    absl::StatusOr<Profile*> p = Load(workspace_id, id);
    if (!p.ok()) {
      if (load_error.ok()) load_error = p.status();
      return {};
    }
    identity::ProfileFacts f = (*p)->Facts();
    f.cross_device_denied = f.cross_device_denied || event_denies_cross_device;
    return f;
  };
  identity::ResolvePlan plan = identity::Resolve(ids, owners, facts_of, settings.rules);
  if (!load_error.ok()) return load_error;

  Profile* target = nullptr;
  if (plan.target == 0) {
    target = Create(workspace_id);
  } else {
    absl::StatusOr<Profile*> t = Load(workspace_id, plan.target);
    if (!t.ok()) return t.status();
    target = *t;
  }
  for (uint64_t loser_id : plan.merge) {
    absl::StatusOr<Profile*> loser = Load(workspace_id, loser_id);
    if (!loser.ok()) return loser.status();
    for (const identity::Identifier& id : (*loser)->identifiers) {
      Link(workspace_id, id, target->id);
    }
    MergeRecord record;
    record.at_ms = facts->received_at_ms;
    record.absorbed = loser_id;
    record.message_id = std::string(facts->message_id);
    record.event_type = std::string(api::EventTypeName(facts->type));
    record.identifiers = ids;
    std::vector<std::pair<std::string, JourneyState>> dropped;
    MergeProfiles(*target, std::move(**loser), std::move(record), &dropped);
    // The merged customer is one customer in each funnel, with the further progress: the round
    // that lost is counted out.
    std::vector<JourneyStep> taken_back;
    for (const auto& [journey_id, state] : dropped) {
      for (const auto& j : settings.journeys) {
        if (j->id == journey_id) UncountRound(*j, state, &taken_back);
      }
    }
    if (absl::Status s = CountSteps(workspace_id, taken_back); !s.ok()) return s;
    rocksdb::Status s = batch->Put(store_->profiles(), storage::ProfileKey(workspace_id, loser_id),
                                   storage::MergedIntoValue(target->id));
    if (!s.ok()) return RocksError(s);
    working_.erase(Key{workspace_id, loser_id});
    Uncache(Key{workspace_id, loser_id});
    models_.Forget(workspace_id, loser_id);
    merges_->Inc();
  }
  for (const identity::ResolvePlan::Refused& r : plan.refused) {
    switch (r.reason) {
      case identity::MergeRefusal::kLimit:
        refused_limit_->Inc();
        break;
      case identity::MergeRefusal::kConsent:
        refused_consent_->Inc();
        break;
      case identity::MergeRefusal::kSeparated:
        refused_separated_->Inc();
        break;
      case identity::MergeRefusal::kNone:
        break;
    }
  }
  for (const identity::Identifier& id : plan.link) {
    Link(workspace_id, id, target->id);
    target->identifiers.push_back(id);
  }
  unlinked_->Inc(plan.unlinked.size());
  DeviceFacts device;
  const DeviceFacts* device_ptr = Device(facts->user_agent, &device);
  // Bots' events are kept out of every statistic (FoldEvent keeps them out of the profile's
  // figures): their texts are not scored, and they move no persona, model, goal or journey
  // (whose funnels are the workspace's statistics too).
  const bool bot = device_ptr != nullptr && device_ptr->bot;
  if (!bot) ScoreEventTexts(workspace_id, settings, doc, &*facts);
  FoldEvent(*target, *facts, device_ptr, sequence, settings.fold);
  if (settings.personas != nullptr && !bot) {
    EventBindings bindings(*facts, doc, *target, device_ptr, facts->timestamp_ms);
    UpdatePersona(*settings.personas, bindings, *target, facts->timestamp_ms, sequence,
                  facts->message_id);
  }
  if (!bot) {
    models_.OnEvent(workspace_id, *target, *facts);
    if (event_sink_) event_sink_(workspace_id, target->id, sequence, *facts, batch);
  }
  JourneyEffects effects;
  if (!plan.merge.empty()) {
    // A merge may have brought in a journey stage with a running timeout.
    RunningDeadlines(*target, &effects.deadlines);
  }
  if (!bot) {
    AdvanceJourneys(settings.journeys, *target, *facts, doc, device_ptr, sequence, &effects);
  }
  if (effects.late) late_journey_events_->Inc();
  Schedule(workspace_id, target->id, effects.deadlines);
  if (absl::Status s = CountSteps(workspace_id, effects.steps); !s.ok()) return s;
  if (live_views_ != nullptr && !facts->product_id.empty() && !device.bot) {
    live_views_->Record(workspace_id, facts->product_id, target->id, facts->received_at_ms);
  }
  pending_timeline_.push_back(storage::TimelineKey(workspace_id, target->id, sequence));
  dirty_.push_back(Key{workspace_id, target->id});
  return Outcome::kFolded;
}

void ProfileEngine::Schedule(uint32_t workspace_id, uint64_t profile_id,
                             const std::vector<JourneyDeadline>& deadlines) {
  for (const JourneyDeadline& d : deadlines) {
    timers_.push({d.deadline_ms, workspace_id, profile_id, d.journey, d.stage});
  }
  next_deadline_.store(timers_.empty() ? INT64_MAX : timers_.top().deadline_ms,
                       std::memory_order_relaxed);
}

absl::Status ProfileEngine::LoadTimers() {
  timers_ = {};
  return ForEachProfile(*store_, std::nullopt, [&](uint32_t workspace_id, Profile&& p) {
    std::vector<JourneyDeadline> deadlines;
    RunningDeadlines(p, &deadlines);
    Schedule(workspace_id, p.id, deadlines);
  });
}

absl::Status ProfileEngine::ForEachProfile(const storage::Store& store,
                                           std::optional<uint32_t> workspace_id,
                                           const std::function<void(uint32_t, Profile&&)>& fn) {
  rocksdb::ReadOptions ro;
  std::string upper;
  rocksdb::Slice upper_slice;
  if (workspace_id && *workspace_id != UINT32_MAX) {
    upper = storage::WorkspacePrefix(*workspace_id + 1);
    upper_slice = upper;
    ro.iterate_upper_bound = &upper_slice;
  }
  std::unique_ptr<rocksdb::Iterator> it(store.db()->NewIterator(ro, store.profiles()));
  if (workspace_id) {
    it->Seek(storage::WorkspacePrefix(*workspace_id));
  } else {
    it->SeekToFirst();
  }
  for (; it->Valid(); it->Next()) {
    rocksdb::Slice key = it->key();
    if (key.size() != 12 || storage::DecodeMergedInto(it->value().ToStringView())) continue;
    absl::StatusOr<Profile> p = DecodeProfile(it->value().ToStringView());
    if (!p.ok()) continue;  // reported when the profile is next read
    fn(storage::GetBigEndian32(key.data()), *std::move(p));
  }
  return FromRocksIterator(it->status());
}

absl::Status ProfileEngine::FireDue(int64_t now_ms, rocksdb::WriteBatch* batch) {
  if (absl::Status s = FireDueInGroup(now_ms); !s.ok()) return s;
  return Finish(batch);
}

absl::Status ProfileEngine::FireDueInGroup(int64_t now_ms) {
  while (!timers_.empty() && timers_.top().deadline_ms <= now_ms) {
    Timer t = timers_.top();
    timers_.pop();
    const WorkspaceProfileSettings& settings = Settings(t.workspace);
    const Journey* journey = nullptr;
    for (const auto& j : settings.journeys) {
      if (j->id == t.journey) journey = j.get();
    }
    if (journey == nullptr) continue;  // no longer configured
    absl::StatusOr<Profile*> p = Load(t.workspace, t.profile);
    if (!p.ok()) {
      // Erased or merged away since (a merge reschedules the survivor's timers).
      if (p.status().code() == absl::StatusCode::kNotFound ||
          ErrorCodeOf(p.status()) == "corrupt_identity") {
        continue;
      }
      return p.status();
    }
    JourneyEffects effects;
    if (FireJourneyTimeout(*journey, **p, {t.journey, t.stage, t.deadline_ms}, &effects)) {
      dirty_.push_back(Key{t.workspace, t.profile});
      for (const JourneyDeadline& d : effects.deadlines) {
        timers_.push({d.deadline_ms, t.workspace, t.profile, d.journey, d.stage});
      }
      if (absl::Status s = CountSteps(t.workspace, effects.steps); !s.ok()) return s;
    }
  }
  next_deadline_.store(timers_.empty() ? INT64_MAX : timers_.top().deadline_ms,
                       std::memory_order_relaxed);
  return absl::OkStatus();
}

absl::Status ProfileEngine::CountSteps(uint32_t workspace_id,
                                       const std::vector<JourneyStep>& steps) {
  for (const JourneyStep& step : steps) {
    const Journey& j = *step.journey;
    // Rounded down: a cohort day before 1970 is the day the customer entered, not the next.
    int64_t day = learn::DayOfMillis(step.started_ms);
    const std::pair<FunnelDimension, std::string> rows[] = {
        {FunnelDimension::kAll, ""},
        {FunnelDimension::kDevice, step.device.empty() ? std::string("unknown") : step.device},
        {FunnelDimension::kSource, step.source.empty() ? std::string("(none)") : step.source},
        {FunnelDimension::kPersona, step.persona.empty() ? std::string("(none)") : step.persona}};
    for (const auto& [dimension, value] : rows) {
      std::string key = FunnelKey(workspace_id, j.id, step.version, day, dimension, value);
      auto it = funnels_.find(key);
      if (it == funnels_.end()) {
        FunnelCounts counts;
        absl::StatusOr<std::optional<std::string>> stored = store_->Get(store_->funnels(), key);
        if (!stored.ok()) return stored.status();
        if (stored->has_value()) {
          absl::StatusOr<FunnelCounts> decoded = DecodeFunnel(**stored);
          if (decoded.ok()) counts = *std::move(decoded);  // a corrupt row starts again
        }
        it = funnels_.emplace(key, std::move(counts)).first;
      }
      // A step of an earlier version (leaving it at a version change) counts in that version's
      // rows, as long as they are: the config holds the current version's stages only.
      const size_t stages = step.version == j.version
                                ? j.stages.size()
                                : std::max({it->second.entered.size(),
                                            static_cast<size_t>(std::max(step.from, 0)) + 1,
                                            static_cast<size_t>(std::max(step.to, 0)) + 1});
      CountStep(step, stages, &it->second);
      funnel_dirty_.push_back(std::move(key));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::pair<std::string, FunnelCounts>>> ProfileEngine::Funnel(
    const storage::Store& store, uint32_t workspace_id, const Journey& journey, int64_t from_day,
    int64_t to_day, FunnelDimension dimension, int64_t version) {
  if (version == 0) version = journey.version;
  std::map<std::string, FunnelCounts> groups;
  // The days `first` to `last`, both before 1970 or both not: a day is kept as 32 bits of two's
  // complement, so the days before 1970 (negative) sort after the others.
  auto scan = [&](int64_t first, int64_t last) -> absl::Status {
    const std::string lower = FunnelKeyPrefix(workspace_id, journey.id, version, first);
    std::string upper = FunnelKeyPrefix(workspace_id, journey.id, version, last);
    upper.push_back('\xff');  // past every key of day `last` (a dimension byte follows the day)
    const size_t head = lower.size() - 4;  // the day starts here
    rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(store.db()->NewIterator(ro, store.funnels()));
    for (it->Seek(lower); it->Valid(); it->Next()) {
      std::optional<FunnelKeyParts> parts =
          DecodeFunnelKeySuffix(it->key().ToStringView().substr(head));
      if (!parts || parts->dimension != dimension) continue;
      absl::StatusOr<FunnelCounts> counts = DecodeFunnel(it->value().ToStringView());
      if (!counts.ok()) return counts.status();
      FunnelCounts& group = groups[parts->value];
      group.Resize(version == journey.version
                       ? journey.stages.size()
                       : std::max(group.entered.size(), counts->entered.size()));
      group.Add(*counts);
    }
    return it->status().ok() ? absl::OkStatus() : RocksError(it->status());
  };
  if (from_day < 0) {
    if (absl::Status s = scan(from_day, std::min<int64_t>(to_day, -1)); !s.ok()) return s;
  }
  if (to_day >= 0) {
    if (absl::Status s = scan(std::max<int64_t>(from_day, 0), to_day); !s.ok()) return s;
  }
  // Every group as long as the longest (an earlier version's days may differ in length).
  size_t stages = 0;
  for (const auto& [value, group] : groups) stages = std::max(stages, group.entered.size());
  for (auto& [value, group] : groups) group.Resize(stages);
  return std::vector<std::pair<std::string, FunnelCounts>>(groups.begin(), groups.end());
}

absl::Status ProfileEngine::Finish(rocksdb::WriteBatch* batch) {
  // Rows go into the batch in key order per column family: RocksDB's memtable skiplist
  // remembers where the previous insert landed, so ascending keys skip most of each search.
  // Measured on the 1M-customer load (bench/run.sh) against inserting in event order.
  // Identity rows keep their order among equal keys: the last link of an identifier wins.
  std::stable_sort(pending_identities_.begin(), pending_identities_.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  for (const auto& [key, value] : pending_identities_) {
    rocksdb::Status s = batch->Put(store_->identities(), key, value);
    if (!s.ok()) return RocksError(s);
  }
  pending_identities_.clear();
  std::sort(funnel_dirty_.begin(), funnel_dirty_.end());
  funnel_dirty_.erase(std::unique(funnel_dirty_.begin(), funnel_dirty_.end()), funnel_dirty_.end());
  for (const std::string& key : funnel_dirty_) {
    rocksdb::Status s = batch->Put(store_->funnels(), key, EncodeFunnel(funnels_[key]));
    if (!s.ok()) return RocksError(s);
  }
  funnel_dirty_.clear();
  std::sort(pending_timeline_.begin(), pending_timeline_.end());
  for (const std::string& key : pending_timeline_) {
    rocksdb::Status s = batch->Put(store_->timeline(), key, "");
    if (!s.ok()) return RocksError(s);
  }
  pending_timeline_.clear();
  std::sort(dirty_.begin(), dirty_.end());
  dirty_.erase(std::unique(dirty_.begin(), dirty_.end()), dirty_.end());
  for (const Key& key : dirty_) {
    auto it = working_.find(key);
    if (it == working_.end()) continue;  // merged away later in the same group
    encode_scratch_.clear();
    EncodeProfile(*it->second, &encode_scratch_);
    auto [slot, added] = cache_.try_emplace(key);
    std::string& encoded = slot->second;
    if (!added) cache_bytes_ -= CachedBytes(encoded);  // a new entry's were never counted
    // A copy of exactly the encoded size: encoding straight into the cached string let it grow
    // by doubling, which left up to half of every cached profile unused (bench/, November
    // 2026: 1,073 instead of ~750 bytes per profile held).
    encoded = std::string(encode_scratch_);
    cache_bytes_ += CachedBytes(encoded);
    rocksdb::Status s =
        batch->Put(store_->profiles(), storage::ProfileKey(key.workspace, key.profile), encoded);
    if (!s.ok()) return RocksError(s);
  }
  working_.clear();
  if (cache_bytes_ > cache_limit_bytes_) Evict();
  dirty_.clear();
  cached_count_.store(cache_.size(), std::memory_order_relaxed);
  if (counter_dirty_) {
    rocksdb::Status s =
        batch->Put(store_->meta(), kProfileCounterKey, std::to_string(next_profile_id_));
    if (!s.ok()) return RocksError(s);
    counter_dirty_ = false;
  }
  return models_.Checkpoint(batch);
}

void ProfileEngine::Abandon() {
  working_.clear();
  cache_.clear();
  cache_bytes_ = 0;
  dirty_.clear();
  pending_identities_.clear();
  pending_timeline_.clear();
  funnels_.clear();
  funnel_dirty_.clear();
  // The graph is complete, not a cache: reload what the store holds (slow for big graphs, but
  // only after a failed write).
  if (absl::Status s = LoadGraph(); !s.ok()) {
    obs::LogEvent(spdlog::level::err, "identity_graph_reload_failed",
                  {{"error", ToStd(s.message())}});
  }
  // Ids handed out in the lost batch are not reused: skipping them is harmless, reusing one
  // that a concurrent reader might have seen is not.
  counter_dirty_ = true;
  // Suppressions added by a lost erasure must not stay in force.
  std::unordered_set<std::string> stored;
  absl::Status scanned =
      store_->ScanMeta(storage::kSuppressionPrefix,
                       [&stored](std::string_view key, std::string_view) { stored.emplace(key); });
  if (scanned.ok()) suppressed_ = std::move(stored);
}

absl::Status ProfileEngine::SetConsent(
    uint32_t workspace_id, uint64_t profile_id,
    const std::vector<std::pair<std::string, ConsentState>>& changes, rocksdb::WriteBatch* batch) {
  const WorkspaceProfileSettings& settings = Settings(workspace_id);
  for (const auto& [purpose, state] : changes) {
    if (!settings.fold.consent.Known(purpose)) {
      return InvalidInput("unknown_purpose", StrCat("unknown consent purpose `", purpose, "`"),
                          StrCat("purposes.", purpose));
    }
  }
  absl::StatusOr<Profile> current = ReadProfile(*store_, workspace_id, profile_id);
  if (!current.ok()) return current.status();
  absl::StatusOr<Profile*> p = Load(workspace_id, current->id);
  if (!p.ok()) return p.status();
  // The latest statement per purpose wins, as with events' (a sync of old preferences must not
  // undo what the customer said since).
  for (const auto& [purpose, state] : changes) state::SetConsent(**p, purpose, state);
  dirty_.push_back(Key{workspace_id, current->id});
  return Finish(batch);
}

absl::Status ProfileEngine::DeleteTimelines(uint32_t workspace_id,
                                            const std::vector<uint64_t>& profiles,
                                            rocksdb::WriteBatch* batch) {
  for (uint64_t id : profiles) {
    rocksdb::Status s =
        batch->DeleteRange(store_->timeline(), storage::TimelineKey(workspace_id, id, 0),
                           storage::TimelineKey(workspace_id, id + 1, 0));
    if (!s.ok()) return RocksError(s);
  }
  return absl::OkStatus();
}

absl::StatusOr<ProfileEngine::Erased> ProfileEngine::Erase(uint32_t workspace_id,
                                                           uint64_t profile_id, bool suppress,
                                                           rocksdb::WriteBatch* batch) {
  absl::StatusOr<Profile> profile = ReadProfile(*store_, workspace_id, profile_id);
  if (!profile.ok()) return profile.status();
  absl::StatusOr<std::vector<uint64_t>> sequences = Sequences(*store_, workspace_id, *profile);
  if (!sequences.ok()) return sequences.status();
  Erased erased;
  erased.profile = profile->id;
  for (uint64_t seq : *sequences) {
    absl::StatusOr<std::optional<std::string>> json = store_->GetEvent(workspace_id, seq);
    if (!json.ok()) return json.status();
    if (!json->has_value()) continue;
    if (absl::Status s = EraseEvent(workspace_id, seq, **json, batch); !s.ok()) return s;
    ++erased.events;
  }
  std::vector<uint64_t> ids = profile->absorbed;
  ids.push_back(profile->id);
  if (absl::Status s = DeleteTimelines(workspace_id, ids, batch); !s.ok()) return s;
  // An unmerge gave each side the events that carried its identifiers, so an event carrying
  // identifiers of both (this customer's login on the device the other was given) went to the
  // other side. It was this customer's event too: it goes, and that profile is rebuilt.
  bool rebuilt = false;
  for (uint64_t sibling : profile->separated) {
    absl::StatusOr<size_t> gone = EraseFromSibling(workspace_id, *profile, sibling, batch);
    if (!gone.ok()) return gone.status();
    erased.events += *gone;
    rebuilt = rebuilt || *gone > 0;
  }
  // The decision log: each decision of the customer (these profiles and the visitor each of its
  // userIds and anonymousIds was before: KeysOfCustomer), its rewards and its index row.
  const CustomerKeys keys = KeysOfCustomer(*profile);
  absl::flat_hash_set<uint64_t> seen;  // a visitor's decision is indexed under each identifier
  absl::flat_hash_set<uint64_t> visitor_hashes;  // its identifiers this profile does not hold
  for (uint64_t id : keys.index) {
    rocksdb::Status d;
    absl::Status rewards_scan;
    absl::Status s = store_->ScanPrefix(
        store_->decisions(), storage::ProfileDecisionPrefix(workspace_id, id),
        [&](std::string_view key, std::string_view) {
          const uint64_t decision = storage::DecisionOfKey(key);
          d = batch->Delete(store_->decisions(), key);
          if (!seen.insert(decision).second) return d.ok();
          // A first-time visitor's decision names every identifier it was made for: those this
          // profile does not hold (a userId given with the anonymousId the profile came from)
          // lose their index row, and the contacts and engagement kept under them go with the
          // rest (they count this customer's messages).
          if (d.ok()) {
            absl::StatusOr<std::optional<std::string>> record =
                store_->Get(store_->decisions(), storage::DecisionKey(workspace_id, decision));
            if (!record.ok()) {
              rewards_scan = record.status();
              return false;
            }
            for (uint64_t hash : RecordVisitorHashes(parser_, record->value_or(""))) {
              if (std::find(keys.hashes.begin(), keys.hashes.end(), hash) != keys.hashes.end()) {
                continue;
              }
              visitor_hashes.insert(hash);
              if (d.ok()) {
                d = batch->Delete(
                    store_->decisions(),
                    storage::ProfileDecisionKey(workspace_id, VisitorIndex(hash), decision));
              }
            }
          }
          if (d.ok()) {
            d = batch->Delete(store_->decisions(), storage::DecisionKey(workspace_id, decision));
          }
          // Its approval, if it was held (the expiry index row finds no approval and goes).
          if (d.ok()) {
            d = batch->Delete(store_->decisions(), storage::ApprovalKey(workspace_id, decision));
          }
          // Its activation, if it was deferred (a reward wait's index row finds no decision).
          if (d.ok()) {
            d = batch->Delete(store_->decisions(), storage::ActivationKey(workspace_id, decision));
          }
          // Its rewards, whatever their slots and ids. One by one: a range deletion in a column
          // family with a memtable insert hint, as the decision log has (storage/store.cc),
          // corrupts the memtable in Debian 12's RocksDB 7.8 (facebook/rocksdb#5118).
          if (d.ok()) {
            rewards_scan = store_->ScanPrefix(store_->decisions(),
                                              storage::RewardPrefix(workspace_id, decision),
                                              [&](std::string_view reward, std::string_view) {
                                                d = batch->Delete(store_->decisions(), reward);
                                                return d.ok();
                                              });
          }
          ++erased.decisions;
          return d.ok() && rewards_scan.ok();
        });
    if (!s.ok()) return s;
    if (!rewards_scan.ok()) return rewards_scan;
    if (!d.ok()) return RocksError(d);
  }
  // The customer's contact histories, engagement counts and control group bucket
  // (decide/contacts.h, decide/engagement.h, decide/decider.h).
  std::vector<uint64_t> hashes = keys.hashes;
  hashes.insert(hashes.end(), visitor_hashes.begin(), visitor_hashes.end());
  for (uint64_t hash : hashes) {
    rocksdb::Status d = batch->Delete(store_->decisions(), storage::ContactKey(workspace_id, hash));
    if (d.ok()) d = batch->Delete(store_->decisions(), storage::EngagementKey(workspace_id, hash));
    if (d.ok()) {
      d = batch->Delete(store_->decisions(), storage::ControlBucketKey(workspace_id, hash));
    }
    if (!d.ok()) return RocksError(d);
  }
  // The index rows of pending approvals' expiry (Q) and of reward waits (W) of those decisions:
  // their keys hold times this record does not, so the (short: pending ones only) lists are
  // read through.
  if (!seen.empty()) {
    for (const std::string& prefix :
         {storage::ApprovalDuePrefix(workspace_id), storage::RewardDuePrefix(workspace_id)}) {
      rocksdb::Status d;
      absl::Status s = store_->ScanPrefix(store_->decisions(), prefix,
                                          [&](std::string_view key, std::string_view) {
                                            if (seen.contains(storage::DecisionOfKey(key))) {
                                              d = batch->Delete(store_->decisions(), key);
                                            }
                                            return d.ok();
                                          });
      if (!s.ok()) return s;
      if (!d.ok()) return RocksError(d);
    }
  }
  // Per-customer counts: the experience API's trigger caps.
  erased.customers = keys.index;
  for (uint64_t hash : visitor_hashes) erased.customers.push_back(VisitorIndex(hash));
  for (uint64_t customer : erased.customers) {
    rocksdb::Status d =
        batch->Delete(store_->caps(), storage::TriggerCountKey(workspace_id, customer));
    if (!d.ok()) return RocksError(d);
  }
  models_.Forget(workspace_id, profile->id);
  for (uint64_t id : ids) {
    rocksdb::Status s = batch->Delete(store_->profiles(), storage::ProfileKey(workspace_id, id));
    if (!s.ok()) return RocksError(s);
    working_.erase(Key{workspace_id, id});
    Uncache(Key{workspace_id, id});
  }
  for (const identity::Identifier& id : profile->identifiers) {
    std::string key = storage::IdentityKey(workspace_id, id.type, id.value);
    rocksdb::Status s = batch->Delete(store_->identities(), key);
    if (!s.ok()) return RocksError(s);
    graph_.erase(Fingerprint128(key));
    if (suppress) {
      std::string suppression = storage::SuppressionKey(workspace_id, id.type, id.value);
      s = batch->Put(store_->meta(), suppression, "");
      if (!s.ok()) return RocksError(s);
      suppressed_.insert(std::move(suppression));
    }
    ++erased.identifiers;
  }
  dirty_.erase(std::remove_if(dirty_.begin(), dirty_.end(),
                              [&](const Key& k) {
                                return k.workspace == workspace_id &&
                                       std::find(ids.begin(), ids.end(), k.profile) != ids.end();
                              }),
               dirty_.end());
  if (rebuilt) {
    if (absl::Status s = Finish(batch); !s.ok()) return s;
  }
  return erased;
}

absl::Status ProfileEngine::EraseEvent(uint32_t workspace_id, uint64_t seq, const std::string& json,
                                       rocksdb::WriteBatch* batch) {
  // The event's dedupe entry holds its messageId: it goes too.
  simdjson::dom::element doc;
  std::string_view message_id;
  if (parser_.parse(json).get(doc) == simdjson::SUCCESS &&
      doc["messageId"].get(message_id) == simdjson::SUCCESS) {
    rocksdb::Status s =
        batch->Delete(store_->dedupe(), storage::DedupeKey(workspace_id, message_id));
    if (!s.ok()) return RocksError(s);
  }
  rocksdb::Status s = batch->Delete(store_->events(), storage::EventKey(workspace_id, seq));
  return s.ok() ? absl::OkStatus() : RocksError(s);
}

absl::Status ProfileEngine::ForEachStored(uint32_t workspace_id,
                                          const WorkspaceProfileSettings& settings,
                                          const std::vector<uint64_t>& sequences,
                                          const std::vector<identity::Identifier>& ids,
                                          StoredEventFn fn) {
  for (uint64_t seq : sequences) {
    absl::StatusOr<std::optional<std::string>> json = store_->GetEvent(workspace_id, seq);
    if (!json.ok()) return json.status();
    if (!json->has_value()) continue;
    simdjson::dom::element doc;
    absl::StatusOr<EventFacts> facts = absl::InvalidArgumentError("unreadable");
    if (parser_.parse(**json).get(doc) == simdjson::SUCCESS) {
      facts = ExtractFacts(doc, settings.rules);
    }
    bool carried = false;
    if (facts.ok()) {
      for (const identity::Identifier& id : CarriedIdentifiers(*facts, settings.rules)) {
        carried = carried || std::find(ids.begin(), ids.end(), id) != ids.end();
      }
    }
    if (absl::Status s = fn(seq, **json, doc, facts.ok() ? &*facts : nullptr, carried); !s.ok()) {
      return s;
    }
  }
  return absl::OkStatus();
}

void ProfileEngine::FoldStored(uint32_t workspace_id, const WorkspaceProfileSettings& settings,
                               simdjson::dom::element doc, EventFacts* facts, uint64_t seq,
                               Profile* side) {
  DeviceFacts device;
  const DeviceFacts* device_ptr = Device(facts->user_agent, &device);
  const bool bot = device_ptr != nullptr && device_ptr->bot;
  if (!bot) ScoreEventTexts(workspace_id, settings, doc, facts);
  FoldEvent(*side, *facts, device_ptr, seq, settings.fold);
  if (settings.personas != nullptr && !bot) {
    EventBindings bindings(*facts, doc, *side, device_ptr, facts->timestamp_ms);
    UpdatePersona(*settings.personas, bindings, *side, facts->timestamp_ms, seq, facts->message_id);
  }
}

absl::StatusOr<size_t> ProfileEngine::EraseFromSibling(uint32_t workspace_id, const Profile& erased,
                                                       uint64_t sibling_id,
                                                       rocksdb::WriteBatch* batch) {
  absl::StatusOr<Profile> sibling = ReadProfile(*store_, workspace_id, sibling_id);
  if (!sibling.ok()) {
    // Erased already (or split again, its old id no longer found): nothing of it to rebuild.
    if (sibling.status().code() == absl::StatusCode::kNotFound) return 0;
    return sibling.status();
  }
  if (sibling->id == erased.id) return 0;
  absl::StatusOr<std::vector<uint64_t>> sequences = Sequences(*store_, workspace_id, *sibling);
  if (!sequences.ok()) return sequences.status();
  const WorkspaceProfileSettings& settings = Settings(workspace_id);
  std::vector<uint64_t> timelines = sibling->absorbed;
  timelines.push_back(sibling->id);
  Profile rebuilt;
  rebuilt.id = sibling->id;
  rebuilt.identifiers = sibling->identifiers;
  size_t gone = 0;
  absl::Status walked =
      ForEachStored(workspace_id, settings, *sequences, erased.identifiers,
                    [&](uint64_t seq, const std::string& json, simdjson::dom::element doc,
                        EventFacts* facts, bool mentions) -> absl::Status {
                      // An unreadable event stays, unfolded, as an unmerge keeps it.
                      if (facts == nullptr) return absl::OkStatus();
                      if (!mentions) {
                        FoldStored(workspace_id, settings, doc, facts, seq, &rebuilt);
                        return absl::OkStatus();
                      }
                      if (absl::Status s = EraseEvent(workspace_id, seq, json, batch); !s.ok()) {
                        return s;
                      }
                      for (uint64_t id : timelines) {
                        rocksdb::Status s = batch->Delete(
                            store_->timeline(), storage::TimelineKey(workspace_id, id, seq));
                        if (!s.ok()) return RocksError(s);
                      }
                      ++gone;
                      return absl::OkStatus();
                    });
  if (!walked.ok()) return walked;
  if (gone == 0) return 0;
  // What no event says stays, as on an unmerge's kept side.
  KeepStatedConsent(*sibling, &rebuilt);
  rebuilt.merges = sibling->merges;
  rebuilt.absorbed = sibling->absorbed;
  rebuilt.journeys = sibling->journeys;
  rebuilt.separated = sibling->separated;
  models_.Forget(workspace_id, sibling->id);
  working_[Key{workspace_id, sibling->id}] = std::make_unique<Profile>(std::move(rebuilt));
  dirty_.push_back(Key{workspace_id, sibling->id});
  return gone;
}

absl::StatusOr<uint64_t> ProfileEngine::Unmerge(
    uint32_t workspace_id, uint64_t profile_id,
    const std::vector<identity::Identifier>& identifiers, rocksdb::WriteBatch* batch) {
  absl::StatusOr<Profile> current = ReadProfile(*store_, workspace_id, profile_id);
  if (!current.ok()) return current.status();
  std::vector<identity::Identifier> split, kept;
  for (identity::Identifier id : identifiers) {
    id.value = identity::NormalizeIdentifier(id.type, id.value);
    if (std::find(current->identifiers.begin(), current->identifiers.end(), id) ==
        current->identifiers.end()) {
      return InvalidInput(
          "unknown_identifier",
          StrCat("profile ", ProfileIdString(current->id), " has no ", id.type, " ", id.value),
          "identifiers");
    }
    if (std::find(split.begin(), split.end(), id) == split.end()) split.push_back(std::move(id));
  }
  for (const identity::Identifier& id : current->identifiers) {
    if (std::find(split.begin(), split.end(), id) == split.end()) kept.push_back(id);
  }
  if (split.empty() || kept.empty()) {
    return InvalidInput("invalid_value",
                        "name at least one of the profile's identifiers, and not all of them",
                        "identifiers");
  }
  absl::StatusOr<std::vector<uint64_t>> sequences = Sequences(*store_, workspace_id, *current);
  if (!sequences.ok()) return sequences.status();
  // Accepted: both halves start their examples afresh (a refused unmerge keeps them).
  models_.Forget(workspace_id, current->id);
  // One pass: each event goes with the split-off identifiers when it carried any of them, and
  // is folded into the side it goes to. An event that cannot be read stays on the kept side,
  // unfolded.
  const WorkspaceProfileSettings& settings = Settings(workspace_id);
  uint64_t new_id = Create(workspace_id)->id;
  Profile split_profile, kept_profile;
  split_profile.id = new_id;
  split_profile.identifiers = split;
  kept_profile.id = current->id;
  kept_profile.identifiers = kept;
  std::vector<uint64_t> split_seqs, kept_seqs;
  absl::Status walked =
      ForEachStored(workspace_id, settings, *sequences, split,
                    [&](uint64_t seq, const std::string&, simdjson::dom::element doc,
                        EventFacts* facts, bool carried) {
                      // Each side's persona as its own events make it, as when they arrived.
                      if (facts != nullptr) {
                        FoldStored(workspace_id, settings, doc, facts, seq,
                                   carried ? &split_profile : &kept_profile);
                      }
                      (carried ? split_seqs : kept_seqs).push_back(seq);
                      return absl::OkStatus();
                    });
  if (!walked.ok()) return walked;

  // What the events said is re-read from each side's own: a statement of the other side's
  // events is not this side's (an opt-in one person gave is not another's). Consent given
  // through the API is about the person, whichever profile: both keep it, over an older
  // statement of their events (a denial must not give way to the opt-in it replaced).
  for (Profile* p : {&split_profile, &kept_profile}) KeepStatedConsent(*current, p);
  kept_profile.merges = current->merges;
  // The ids of the profiles merged into this one named the customer it was; split, that is two
  // customers, and which one such an id meant is not known. Those ids are not found from now on
  // (a request that kept one, an erasure say, cannot act on the wrong half); what the decision
  // log keeps under them stays the kept profile's (KeysOfCustomer: `absorbed` stays).
  kept_profile.absorbed = current->absorbed;
  for (uint64_t absorbed : current->absorbed) {
    rocksdb::Status s =
        batch->Delete(store_->profiles(), storage::ProfileKey(workspace_id, absorbed));
    if (!s.ok()) return RocksError(s);
    working_.erase(Key{workspace_id, absorbed});
    Uncache(Key{workspace_id, absorbed});
  }
  // Journey progress stays with the kept profile; the split-off one starts afresh.
  kept_profile.journeys = current->journeys;
  kept_profile.separated = current->separated;
  kept_profile.separated.push_back(new_id);
  split_profile.separated.push_back(current->id);

  std::vector<uint64_t> old_ids = current->absorbed;
  old_ids.push_back(current->id);
  if (absl::Status s = DeleteTimelines(workspace_id, old_ids, batch); !s.ok()) return s;
  for (const auto& [profile, seqs] :
       {std::pair{&kept_profile, &kept_seqs}, std::pair{&split_profile, &split_seqs}}) {
    for (uint64_t seq : *seqs) {
      rocksdb::Status s =
          batch->Put(store_->timeline(), storage::TimelineKey(workspace_id, profile->id, seq), "");
      if (!s.ok()) return RocksError(s);
    }
  }
  for (const identity::Identifier& id : split) {
    Link(workspace_id, id, new_id);
  }
  working_[Key{workspace_id, new_id}] = std::make_unique<Profile>(std::move(split_profile));
  working_[Key{workspace_id, current->id}] = std::make_unique<Profile>(std::move(kept_profile));
  dirty_.push_back(Key{workspace_id, new_id});
  dirty_.push_back(Key{workspace_id, current->id});
  if (absl::Status s = Finish(batch); !s.ok()) return s;
  return new_id;
}

absl::StatusOr<std::vector<uint64_t>> ProfileEngine::Sequences(const storage::Store& store,
                                                               uint32_t workspace_id,
                                                               const Profile& profile) {
  std::vector<uint64_t> out;
  std::vector<uint64_t> ids = profile.absorbed;
  ids.push_back(profile.id);
  for (uint64_t id : ids) {
    std::string lower = storage::TimelineKey(workspace_id, id, 0);
    std::string upper = storage::TimelineKey(workspace_id, id + 1, 0);
    rocksdb::Slice upper_slice(upper);
    rocksdb::ReadOptions ro;
    ro.iterate_upper_bound = &upper_slice;
    std::unique_ptr<rocksdb::Iterator> it(store.db()->NewIterator(ro, store.timeline()));
    for (it->Seek(lower); it->Valid(); it->Next()) {
      rocksdb::Slice k = it->key();
      if (k.size() == storage::kTimelineKeyBytes) {
        out.push_back(storage::GetBigEndian64(k.data() + 12));
      }
    }
    if (!it->status().ok()) return RocksError(it->status());
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

absl::StatusOr<Profile> ProfileEngine::ReadProfile(const storage::Store& store,
                                                   uint32_t workspace_id, uint64_t profile_id) {
  uint64_t id = profile_id;
  for (int hop = 0; hop <= kMaxRedirects; ++hop) {
    absl::StatusOr<std::optional<std::string>> v =
        store.Get(store.profiles(), storage::ProfileKey(workspace_id, id));
    if (!v.ok()) return v.status();
    if (!v->has_value()) {
      return MakeError(absl::StatusCode::kNotFound, "profile_not_found",
                       StrCat("no profile ", ProfileIdString(profile_id)));
    }
    if (std::optional<uint64_t> next = storage::DecodeMergedInto(**v)) {
      id = *next;
      continue;
    }
    return DecodeProfile(**v);
  }
  return MakeError(absl::StatusCode::kDataLoss, "corrupt_profile",
                   StrCat("merge chain of ", ProfileIdString(profile_id), " does not end"));
}

absl::StatusOr<std::optional<uint64_t>> ProfileEngine::Lookup(const storage::Store& store,
                                                              uint32_t workspace_id,
                                                              std::string_view type,
                                                              std::string_view value) {
  std::string normalized = identity::NormalizeIdentifier(type, value);
  absl::StatusOr<std::optional<std::string>> v =
      store.Get(store.identities(), storage::IdentityKey(workspace_id, type, normalized));
  if (!v.ok()) return v.status();
  if (!v->has_value() || (*v)->size() != 8) return std::nullopt;
  return storage::GetBigEndian64((*v)->data());
}

absl::StatusOr<ProfileEngine::TimelinePage> ProfileEngine::Timeline(const storage::Store& store,
                                                                    uint32_t workspace_id,
                                                                    const Profile& profile,
                                                                    uint64_t before, size_t limit) {
  if (before == 0) before = UINT64_MAX;
  std::vector<uint64_t> ids = profile.absorbed;
  ids.push_back(profile.id);
  // The newest `limit + 1` sequences of each contributing profile, then the newest overall.
  std::vector<uint64_t> sequences;
  for (uint64_t id : ids) {
    std::string lower = storage::TimelineKey(workspace_id, id, 0);
    rocksdb::Slice lower_slice(lower);
    rocksdb::ReadOptions ro;
    ro.iterate_lower_bound = &lower_slice;
    std::unique_ptr<rocksdb::Iterator> it(store.db()->NewIterator(ro, store.timeline()));
    size_t taken = 0;
    for (it->SeekForPrev(storage::TimelineKey(workspace_id, id, before - 1));
         it->Valid() && taken <= limit; it->Prev(), ++taken) {
      rocksdb::Slice k = it->key();
      if (k.size() != storage::kTimelineKeyBytes || storage::GetBigEndian64(k.data() + 4) != id) {
        break;
      }
      sequences.push_back(storage::GetBigEndian64(k.data() + 12));
    }
    if (!it->status().ok()) return RocksError(it->status());
  }
  std::sort(sequences.begin(), sequences.end(), std::greater<>());
  sequences.erase(std::unique(sequences.begin(), sequences.end()), sequences.end());
  TimelinePage page;
  for (uint64_t seq : sequences) {
    if (page.events.size() == limit) {
      page.next_before = page.events.back().first;
      break;
    }
    absl::StatusOr<std::optional<std::string>> e = store.GetEvent(workspace_id, seq);
    if (!e.ok()) return e.status();
    if (!e->has_value()) continue;  // erased
    page.events.emplace_back(seq, std::move(**e));
  }
  return page;
}

}  // namespace whisperer::state
