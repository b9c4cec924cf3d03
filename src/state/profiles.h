// ProfileEngine: resolves every stored event to its customer and folds it into that customer's
// profile, in the same WriteBatch as the event (shard/shard_set.h calls it under the commit
// lock, in sequence order).
//
// Per event: ExtractFacts (state/profile.h) -> identifiers looked up in the identity graph ->
// identity::Resolve decides the target profile, merges and new links -> merges are carried out
// (the absorbed profile's identifiers are re-pointed, its row becomes a pointer to the
// survivor, its timeline stays readable through the survivor's `absorbed` list) -> the
// workspace's text properties scored (state/text_signals.h; not for bots) -> FoldEvent ->
// a timeline entry (profile, sequence). Finish() then writes every profile touched by the
// group. Because the engine is only driven under that one lock, and the group is written
// atomically with its events, concurrent ingestion from any number of connections can neither
// lose nor double-count an event, and what a reader sees in the store is always a state that
// some prefix of the event log produced.
//
// Memory: the identity graph is held in full (about 30 bytes per identifier, loaded at start);
// profiles read or written are cached in their binary form, up to ingest.profile_cache_mb,
// beyond which arbitrary profiles are dropped and read from the store again when needed (see
// BENCHMARKS.md for bytes per profile). If a group's write
// fails, Abandon() drops the caches so the next group starts from what the store holds.
//
// Reads (ReadProfile, Lookup, Timeline) go to the store directly and may run on any thread
// concurrently with ingestion.
//
// Thread-safety: Apply/Finish/Abandon/mutations from one thread at a time (the commit lock);
// the static readers from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <queue>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/hash.h"
#include "identity/resolver.h"
#include "obs/metrics.h"
#include "rocksdb/write_batch.h"
#include "simdjson.h"
#include "state/device.h"
#include "state/experience.h"
#include "state/funnels.h"
#include "state/journeys.h"
#include "state/models.h"
#include "state/personas.h"
#include "state/profile.h"
#include "storage/store.h"
#include "text/intent_model.h"
#include "text/sentiment.h"

namespace whisperer::state {

struct WorkspaceProfileSettings {
  identity::IdentityRules rules;
  FoldOptions fold;
  // Journeys every event of the workspace is run through (state/journeys.h).
  std::vector<std::shared_ptr<const Journey>> journeys;
  // Personas every profile of the workspace is scored against (state/personas.h).
  std::shared_ptr<const PersonaSet> personas;
  // The conversion and churn models (state/models.h).
  ModelSettings models;
  // Event properties (paths below `properties`, dots nesting) whose strings are scored for
  // sentiment, and for intent when the workspace has an intent model (state/text_signals.h).
  std::vector<std::string> text_properties;
};

class ProfileEngine {
 public:
  ProfileEngine(storage::Store* store, const Clock* clock, obs::Registry* metrics);

  // Settings of a workspace; workspaces not configured get the defaults.
  void Configure(uint32_t workspace_id, WorkspaceProfileSettings settings);
  const WorkspaceProfileSettings& Settings(uint32_t workspace_id) const;
  // Where `Product Viewed` events are counted for live viewer counts (state/experience.h);
  // none by default. Must outlive the engine.
  void SetLiveViews(LiveViews* views) { live_views_ = views; }
  // Told every event folded into a profile (bots' aside), with its sequence and the commit's
  // batch (what it puts there is written with the event, or not at all), on the commit
  // thread: it must be quick (server/decide_service.h keeps goal events). Set before the shards
  // start.
  using EventSink =
      std::function<void(uint32_t workspace_id, uint64_t profile_id, uint64_t sequence,
                         const EventFacts& facts, rocksdb::WriteBatch* batch)>;
  void SetEventSink(EventSink sink) { event_sink_ = std::move(sink); }
  const DeviceDetector* device_detector() const { return detector_.get(); }
  // The workspaces' models: readers from any thread; Rollback under the commit lock
  // (ShardSet::WriteExclusive).
  ModelEngine& models() { return models_; }
  const ModelEngine& models() const { return models_; }
  // Most memory the cached profiles may take (approximately); beyond it arbitrary profiles are
  // dropped and read again from the store when needed. Default 1 GiB.
  void SetCacheLimit(size_t bytes) { cache_limit_bytes_ = bytes; }
  // Device detection for user agents; without it devices are not recorded and bots not
  // recognised.
  void SetDeviceDetector(std::unique_ptr<DeviceDetector> detector) {
    detector_ = std::move(detector);
  }
  // The intent model of a workspace (text/intent_model.h), or null for none (the default): when
  // set, the top intent of each event's first scored text property is predicted and kept on the
  // profile. Call under the commit lock, like Apply (it replaces what Apply reads); the model
  // itself is shared and immutable.
  void SetIntentModel(uint32_t workspace_id, std::shared_ptr<const text::IntentModel> model);
  // The sentiment analyzer every workspace's texts are scored with (created once, immutable).
  const text::SentimentAnalyzer& sentiment() const { return *sentiment_; }

  // Loads the profile id counter. Call once before the first Apply.
  absl::Status Start();

  enum class Outcome : uint8_t {
    kFolded,      // resolved and folded; store the event
    kUnresolved,  // no usable identifier; store the event without a profile
    kSuppressed,  // carries an identifier erased with ?suppress=true: do not store the event
  };
  // Resolves and folds the event stored at `sequence`. An event the engine cannot read (never
  // the case for events the parser produced) is counted and left out of profiles: the error is
  // returned for the caller to log, and the caller still stores the event.
  absl::StatusOr<Outcome> Apply(uint32_t workspace_id, uint64_t sequence,
                                std::string_view event_json, rocksdb::WriteBatch* batch);
  // Writes the profiles touched since the last Finish into `batch`.
  absl::Status Finish(rocksdb::WriteBatch* batch);
  // The batch was not written: forget everything cached.
  void Abandon();

  // Journey timeouts: the earliest deadline kept (INT64_MAX when none), and FireDue, which
  // moves every profile whose deadline is at or before `now_ms` on (see state/journeys.h) and
  // writes the changes into `batch`. Run FireDue under the commit lock (ShardSet::
  // WriteExclusive); NextDeadline from any thread.
  int64_t NextDeadline() const { return next_deadline_.load(std::memory_order_relaxed); }
  absl::Status FireDue(int64_t now_ms, rocksdb::WriteBatch* batch);
  // Replaying history (`whisperer replay`): journey deadlines count from each event's own time,
  // and fire when an event of a later time is applied, instead of by the wall clock.
  void UseEventTimeForJourneys() { event_time_ = true; }

  // Sets consent purposes of a profile (PUT /v1/profiles/{id}/consent). NotFound when there is
  // no such profile; InvalidArgument for an unknown purpose.
  absl::Status SetConsent(uint32_t workspace_id, uint64_t profile_id,
                          const std::vector<std::pair<std::string, ConsentState>>& changes,
                          rocksdb::WriteBatch* batch);

  // Erases a profile (DELETE /v1/profiles/{id}): its row and the rows of profiles merged into
  // it, its identifiers, its events (and their dedupe entries), its timeline, the events of a
  // profile an unmerge separated from it that carry one of its identifiers (that profile is
  // rebuilt from the others), and its decisions
  // in the decision log with their rewards, contact histories and engagement counts (those of
  // the visitor it was included: KeysOfCustomer; what the bandits learned stays, as weights that
  // name no one). With
  // `suppress`, a 128-bit hash of each identifier is kept so that later events carrying one
  // are acknowledged but not stored. The deleted bytes leave the disk as RocksDB compacts.
  struct Erased {
    uint64_t profile = 0;  // the surviving id that was erased
    size_t events = 0;
    size_t identifiers = 0;
    size_t decisions = 0;
    // The customer's keys of per-customer counts (the profile ids, and state::VisitorIndex of
    // each identifier it was known by as a visitor): their `caps` rows are erased here, and a
    // service holding such counts in memory forgets them.
    std::vector<uint64_t> customers;
  };
  absl::StatusOr<Erased> Erase(uint32_t workspace_id, uint64_t profile_id, bool suppress,
                               rocksdb::WriteBatch* batch);

  // Splits `identifiers` off a profile (POST /v1/profiles/{id}/unmerge) into a new profile,
  // with the events that carried any of them; both profiles are rebuilt from their events and
  // are never merged again. Returns the new profile's id. InvalidArgument when the identifiers
  // are not all the profile's, or are all of them.
  absl::StatusOr<uint64_t> Unmerge(uint32_t workspace_id, uint64_t profile_id,
                                   const std::vector<identity::Identifier>& identifiers,
                                   rocksdb::WriteBatch* batch);

  // --- Readers, safe on any thread ---

  // The funnel of `journey` (its current version) for customers who entered it on UTC days
  // [from_day, to_day] (days since the epoch), one group per value of `dimension`, by value.
  // `version`: an earlier version of the journey instead (its rows are kept; 0 for the current
  // one), whose groups have as many stages as that version had.
  static absl::StatusOr<std::vector<std::pair<std::string, FunnelCounts>>> Funnel(
      const storage::Store& store, uint32_t workspace_id, const Journey& journey, int64_t from_day,
      int64_t to_day, FunnelDimension dimension, int64_t version = 0);

  // Every event sequence of `profile` and the profiles merged into it, ascending.
  static absl::StatusOr<std::vector<uint64_t>> Sequences(const storage::Store& store,
                                                         uint32_t workspace_id,
                                                         const Profile& profile);

  // Calls `fn(workspace_id, profile)` for every stored profile (merged ones only as part of their
  // survivor), of `workspace_id` or of all workspaces when nullopt, in id order. Rows that do
  // not decode are skipped (a read of that profile reports them).
  static absl::Status ForEachProfile(const storage::Store& store,
                                     std::optional<uint32_t> workspace_id,
                                     const std::function<void(uint32_t, Profile&&)>& fn);

  // The profile `profile_id`, following merges to the surviving profile. NotFound when absent.
  static absl::StatusOr<Profile> ReadProfile(const storage::Store& store, uint32_t workspace_id,
                                             uint64_t profile_id);
  // The profile an identifier belongs to; nullopt when none. `type` is an identifier type,
  // `value` as sent (normalized here).
  static absl::StatusOr<std::optional<uint64_t>> Lookup(const storage::Store& store,
                                                        uint32_t workspace_id,
                                                        std::string_view type,
                                                        std::string_view value);
  struct TimelinePage {
    std::vector<std::pair<uint64_t, std::string>> events;  // (sequence, event JSON), newest first
    std::optional<uint64_t> next_before;                   // cursor for the next page
  };
  // The events of `profile` (and of the profiles merged into it) with sequence below `before`
  // (0: from the newest), newest first, at most `limit`.
  static absl::StatusOr<TimelinePage> Timeline(const storage::Store& store, uint32_t workspace_id,
                                               const Profile& profile, uint64_t before,
                                               size_t limit);

  // Profiles held in memory, as of the last Finish (any thread).
  size_t cached_profiles() const { return cached_count_.load(std::memory_order_relaxed); }
  // Events that came too late to move a journey (whisperer_journey_late_events_total), since
  // start (any thread).
  uint64_t late_journey_events() const { return late_journey_events_->value(); }

 private:
  struct Key {
    uint32_t workspace;
    uint64_t profile;
    auto operator<=>(const Key&) const = default;  // by workspace, then profile
    template <typename H>
    friend H AbslHashValue(H h, const Key& k) {
      return H::combine(std::move(h), k.workspace, k.profile);
    }
  };

  absl::StatusOr<Profile*> Load(uint32_t workspace_id, uint64_t profile_id);
  // The identity graph lives in memory in full (graph_), keyed by the 128-bit fingerprint
  // (common/hash.h) of the storage::IdentityKey: about 30 bytes per identifier, no store read on
  // the hot path, and an answer for a new identifier without a lookup.
  absl::Status LoadGraph();
  // The profile `id` belongs to, or 0.
  uint64_t Owner(uint32_t workspace_id, const identity::Identifier& id) const;
  // Points `id` at `profile_id` in the graph; the row is written by Finish.
  void Link(uint32_t workspace_id, const identity::Identifier& id, uint64_t profile_id);
  Profile* Create(uint32_t workspace_id);
  // Deletes the timeline rows of `profiles`.
  absl::Status DeleteTimelines(uint32_t workspace_id, const std::vector<uint64_t>& profiles,
                               rocksdb::WriteBatch* batch);
  // Deletes stored event `seq`, whose JSON is `json`, and its dedupe entry.
  absl::Status EraseEvent(uint32_t workspace_id, uint64_t seq, const std::string& json,
                          rocksdb::WriteBatch* batch);
  // Reads the stored events `sequences` again (those gone are skipped) and calls `fn` with each:
  // its JSON, its parsed form and facts (null when it cannot be read), and whether it carried
  // one of `ids`.
  using StoredEventFn =
      absl::FunctionRef<absl::Status(uint64_t seq, const std::string& json,
                                     simdjson::dom::element doc, EventFacts* facts, bool carried)>;
  absl::Status ForEachStored(uint32_t workspace_id, const WorkspaceProfileSettings& settings,
                             const std::vector<uint64_t>& sequences,
                             const std::vector<identity::Identifier>& ids, StoredEventFn fn);
  // Folds a stored event, read again, into `side` as when it arrived: its texts scored and the
  // persona moved, unless it is a bot's (an unmerge, or an erasure, rebuilding a profile).
  void FoldStored(uint32_t workspace_id, const WorkspaceProfileSettings& settings,
                  simdjson::dom::element doc, EventFacts* facts, uint64_t seq, Profile* side);
  // For Erase: erases from profile `sibling_id` (split from `erased` by an unmerge, or it from
  // that one) the events that carry one of `erased`'s identifiers, and rebuilds it from the
  // events it keeps, as an unmerge rebuilds its kept side. Returns how many went (0 when the
  // sibling is gone too).
  absl::StatusOr<size_t> EraseFromSibling(uint32_t workspace_id, const Profile& erased,
                                          uint64_t sibling_id, rocksdb::WriteBatch* batch);

  storage::Store* store_;
  const Clock* clock_;
  static size_t CachedBytes(const std::string& encoded);
  void Uncache(const Key& key);
  void Evict();
  // The device of a user agent, or null when there is none to record.
  const DeviceFacts* Device(std::string_view user_agent, DeviceFacts* scratch) const;

  struct Timer {
    int64_t deadline_ms;
    uint32_t workspace;
    uint64_t profile;
    std::string journey;
    std::string stage;
    bool operator>(const Timer& o) const { return deadline_ms > o.deadline_ms; }
  };
  void Schedule(uint32_t workspace_id, uint64_t profile_id,
                const std::vector<JourneyDeadline>& deadlines);
  // FireDue without the Finish: profiles changed are left dirty for the caller's Finish.
  absl::Status FireDueInGroup(int64_t now_ms);
  // Counts journey steps into the funnel rows (read from the store on first touch).
  absl::Status CountSteps(uint32_t workspace_id, const std::vector<JourneyStep>& steps);
  // Timers of every active journey stage with a deadline, from the stored profiles.
  absl::Status LoadTimers();

  // Scores the workspace's text properties of `doc` into `facts` (state/text_signals.h).
  void ScoreEventTexts(uint32_t workspace_id, const WorkspaceProfileSettings& settings,
                       simdjson::dom::element doc, EventFacts* facts) const;

  ModelEngine models_;
  std::unique_ptr<const text::SentimentAnalyzer> sentiment_;
  absl::flat_hash_map<uint32_t, std::shared_ptr<const text::IntentModel>> intent_models_;
  std::unique_ptr<DeviceDetector> detector_;
  LiveViews* live_views_ = nullptr;
  EventSink event_sink_;
  std::priority_queue<Timer, std::vector<Timer>, std::greater<Timer>> timers_;
  std::atomic<int64_t> next_deadline_{INT64_MAX};
  bool event_time_ = false;
  std::unordered_map<uint32_t, WorkspaceProfileSettings> settings_;
  WorkspaceProfileSettings defaults_;
  simdjson::dom::parser parser_;
  uint64_t next_profile_id_ = 1;
  bool counter_dirty_ = false;
  // Profiles decoded for the group (or API change) in progress; Finish encodes the dirty ones
  // into cache_ and the batch, then empties it.
  absl::flat_hash_map<Key, std::unique_ptr<Profile>> working_;
  // Every profile read or written since start, in its binary form (state/profile_codec.h):
  // a few hundred bytes each, where the decoded Profile takes several times that.
  absl::flat_hash_map<Key, std::string> cache_;
  std::string encode_scratch_;  // Finish encodes here first
  size_t cache_bytes_ = 0;
  size_t cache_limit_bytes_ = size_t{1} << 30;
  obs::Counter* evictions_ = nullptr;
  absl::flat_hash_map<Hash128, uint64_t> graph_;  // identity key hash -> profile
  std::unordered_set<std::string> suppressed_;    // storage::SuppressionKey, all of them
  std::vector<Key> dirty_;
  // Rows for Finish to write in key order: identity links, and timeline entries.
  std::vector<std::pair<std::string, std::string>> pending_identities_;
  std::vector<std::string> pending_timeline_;
  // Funnel rows touched since start (state/funnels.h), and those to write at Finish.
  absl::flat_hash_map<std::string, FunnelCounts> funnels_;
  std::vector<std::string> funnel_dirty_;
  std::atomic<size_t> cached_count_{0};
  obs::Counter* merges_ = nullptr;
  obs::Counter* created_ = nullptr;
  obs::Counter* unresolved_ = nullptr;
  obs::Counter* suppressed_events_ = nullptr;
  obs::Counter* refused_limit_ = nullptr;
  obs::Counter* refused_consent_ = nullptr;
  obs::Counter* refused_separated_ = nullptr;
  obs::Counter* unlinked_ = nullptr;
  obs::Counter* consent_unknown_ = nullptr;
  obs::Counter* consent_invalid_ = nullptr;
  obs::Counter* late_journey_events_ = nullptr;
};

}  // namespace whisperer::state
