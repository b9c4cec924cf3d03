// The propensity models of each workspace — conversion (lead score) and churn — learning online
// from labels that arrive late, and their registry (versions, metrics, drift, rollback).
//
// Examples. After an event is folded into a profile, the customer is scored by both models and
// the scores are kept on the profile (profile.scores.* in conditions). At most once per
// `sample_every` per customer, the moment is also kept as a pending example: its features as
// they are now (nothing later can leak into it) and its time. Its label arrives later:
//   conversion  1 when the goal event comes within `window` after the moment; 0 when the window
//               passes without it;
//   churn       1 when the cancel event comes, or when `inactive` passes with no event at all;
//               0 when any other event comes first.
// The window is measured in event time (each event's timestamp, never later than when it was
// received), per workspace, so imported history is labelled the way live traffic is; a window
// that ends is noticed when a later event of the workspace arrives. A moment already behind
// that clock (a backfill next to live traffic) is labelled by the customer's own later events.
// Labelled examples are learned at once by FTRL-Proximal (learn/ftrl.h). Pending examples are held
// in memory, at most `max_pending` per workspace (beyond that new moments are not kept, and
// counted), and written at a clean shutdown or the end of an import (SavePending), to be read back
// once by the next Start. The live models are written every 30 s, when a version is cut, and at a
// clean shutdown or the end of an import: a crash (kill -9) loses the pending examples and what was
// learned since the last write. Events are never lost; only what the models learned from them.
//
// Features (ProfileFeatures): counts and amounts on log scales (events, sessions, orders,
// revenue, days since first seen, the gap before the current session, views per session, the
// current session's events), the intent signals of state/intent.h, the persona, the latest
// device type and source, the counts of each event name, and the traits named in the config —
// all hashed (learn::FeatureBuilder).
//
// Registry. Every `version_every` labelled examples a model's state is cut as a new version,
// with the metrics of the examples learned since the previous one (AUC, log loss, calibration
// error, each prediction made before its label was learned) and the population stability index
// of its score distribution against the previous version's. Versions and the live model are
// stored in the `models` column family, in a group commit's write; a rollback makes an earlier
// version's state live again (as a new version saying so). The configured alpha, L1 and L2 apply
// to a stored model when it is loaded; a changed table size (bits) starts it afresh.
//
// Thread-safety: OnEvent, Forget, Checkpoint and Rollback run under the commit lock (one thread
// at a time). Score/Explain and the registry readers may run on any thread: they read the
// published copies, which are replaced at each checkpoint.
#pragma once

#include <array>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <queue>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "common/clock.h"
#include "common/json_writer.h"
#include "learn/clv.h"
#include "learn/ftrl.h"
#include "rocksdb/write_batch.h"
#include "state/profile.h"
#include "storage/store.h"
#include "text/intent_model.h"

namespace whisperer::state {

inline constexpr int64_t kDayMs = 86'400'000;

struct ModelSettings {
  bool enabled = true;
  std::string goal_event = "Order Completed";  // conversion: the goal
  int64_t conversion_window_ms = 7 * kDayMs;
  int64_t churn_inactive_ms = 30 * kDayMs;  // churn: this long without an event
  std::string cancel_event;                 // churn: an explicit cancellation ("" for none)
  double churn_high = 0.6;                  // risk levels: high at or above, medium at or above
  double churn_medium = 0.3;
  std::vector<std::string> traits;  // profile traits used as features
  learn::FtrlOptions ftrl;
  int64_t sample_every_ms = kDayMs;  // one pending example per customer and model per this
  size_t max_pending = 200'000;      // per workspace and model
  uint64_t version_every = 10'000;   // labelled examples per version
  // Lifetime value (learn/clv.h): refitted on the workspace's order history this often (0:
  // only by `whisperer models fit clv` / POST /v1/models/clv/fit), and each customer's value
  // projected over `clv_horizon_days`, discounted by `clv_monthly_discount` per month.
  int64_t clv_refit_every_ms = kDayMs;
  int64_t clv_horizon_days = 365;
  double clv_monthly_discount = 0.01;
};

// Lead score 0-100: the calibrated conversion probability, rounded to a whole number.
inline double LeadScore(double conversion) { return std::round(conversion * 100); }

enum class ModelKind : uint8_t { kConversion = 0, kChurn = 1 };
inline constexpr size_t kModelKinds = 2;
std::string_view ModelName(ModelKind kind);  // "conversion", "churn"
std::optional<ModelKind> ModelKindOf(std::string_view name);

// Builds the features of `profile` as it is at `now_ms` into `out` (cleared first).
void ProfileFeatures(const Profile& profile, int64_t now_ms, const ModelSettings& settings,
                     learn::FeatureBuilder* out);

// A model's figures over the examples of one version.
struct ModelMetrics {
  uint64_t examples = 0;
  uint64_t positives = 0;
  double auc = 0;
  double log_loss = 0;
  double calibration_error = 0;
  double psi = 0;  // score distribution against the previous version's; 0 for the first
};

struct ModelVersion {
  uint64_t version = 0;
  int64_t created_ms = 0;
  uint64_t examples_total = 0;  // learned since the model began
  ModelMetrics metrics;
  std::string reason;     // "scheduled" or "rollback"
  uint64_t restored = 0;  // for a rollback: the version whose state was restored
};

// The lifetime value models of a workspace (learn/clv.h), fitted on its customers' orders.
struct ClvFit {
  uint64_t version = 0;
  int64_t fitted_ms = 0;  // also the end of the calibration period
  learn::ClvModel model;
  uint64_t customers = 0;  // with at least one order
  uint64_t repeaters = 0;  // with a repeat order (what Gamma-Gamma is fitted on)
  uint64_t restored = 0;   // for a rollback: the version whose parameters were restored
  std::string reason;      // "fit", "scheduled" or "rollback"
};

// A version of a workspace's message intent model (text/intent_model.h), trained offline by
// `whisperer models train intent`.
struct IntentVersion {
  uint64_t version = 0;
  int64_t trained_ms = 0;
  uint64_t examples = 0;  // trained on
  uint64_t labels = 0;
  uint64_t holdout = 0;          // examples held out to measure accuracy (not trained on)
  double accuracy = 0;           // on the held-out examples
  std::string reason = "train";  // "train" or "rollback"
  uint64_t restored = 0;         // for a rollback: the version whose model was restored
  // The version whose stored image this version answers with (itself when trained; 0: the one
  // image of data written before images were kept per version).
  uint64_t image = 0;
  bool stored = true;  // false once the image was dropped (kKeptIntentImages)
};

// Intent models are tens of MB: the images of the latest kKeptIntentImages trained versions are
// kept, older versions keep their figures only and cannot be rolled back to.
inline constexpr size_t kKeptIntentImages = 3;

// A profile's RFM summary in weeks at `now_ms`, as the papers summarise CDNOW: x = days with
// an order - 1, t_x and T from the first order, and the mean spend of the repeat days (the first
// day's revenue left out); nullopt without orders. See Profile::order_days for how days are
// counted.
std::optional<learn::RfmSummary> ProfileRfm(const Profile& profile, int64_t now_ms);

// The score of a customer by one model, with its explanation.
struct ModelExplanation {
  double probability = 0;
  struct Factor {
    std::string feature;
    double contribution = 0;  // signed, in log-odds
  };
  std::vector<Factor> factors;  // largest first
  uint64_t version = 0;
};

class ModelEngine {
 public:
  ModelEngine(storage::Store* store, const Clock* clock);

  void Configure(uint32_t workspace_id, ModelSettings settings);
  // Loads the live models and the version lists of every configured workspace.
  absl::Status Start();

  // After `facts` were folded into `profile`: resolves this profile's pending examples that the
  // event decides, expires those whose window ended, keeps a new pending example when due, and
  // sets profile.scores.
  void OnEvent(uint32_t workspace_id, Profile& profile, const EventFacts& facts);
  // The profile is gone (merged into another, erased or split): its pending examples are
  // dropped unlabelled.
  void Forget(uint32_t workspace_id, uint64_t profile_id);
  // Writes the live models (and any version cut since the last call) into `batch` when due
  // (every 30 s if anything changed, or when a version was cut) or when `force`, and republishes
  // the readers' copies when they are a second old and anything changed. Called by the profile
  // engine at each group commit, and every second by the server while traffic is quiet.
  absl::Status Checkpoint(rocksdb::WriteBatch* batch, bool force = false);
  // Writes every pending example (at a clean shutdown or the end of an import, under the commit
  // lock, after a forced Checkpoint). Start reads them back and deletes them, so that a crash
  // after the restart cannot label them twice.
  absl::Status SavePending(rocksdb::WriteBatch* batch);
  // Makes `version`'s state live again. NotFound for an unknown model or version.
  absl::StatusOr<ModelVersion> Rollback(uint32_t workspace_id, ModelKind kind, uint64_t version,
                                        rocksdb::WriteBatch* batch);

  // Lifetime value. FitClv reads every stored profile of the workspace (any thread, no lock)
  // and fits both models; InstallClv (under the commit lock) makes the fit the next version and
  // writes it; RollbackClv restores an earlier version's parameters as a new version.
  // InvalidArgument from FitClv when no customer has a repeat order yet.
  static absl::StatusOr<ClvFit> FitClv(const storage::Store& store, uint32_t workspace_id,
                                       int64_t now_ms);
  absl::StatusOr<ClvFit> InstallClv(uint32_t workspace_id, ClvFit fit, rocksdb::WriteBatch* batch);
  absl::StatusOr<ClvFit> RollbackClv(uint32_t workspace_id, uint64_t version,
                                     rocksdb::WriteBatch* batch);
  // Writes `fit` as the next version of the workspace's stored CLV versions, without a running
  // engine (`whisperer models fit clv` on a data directory no server holds).
  static absl::StatusOr<ClvFit> StoreClv(storage::Store& store, uint32_t workspace_id, ClvFit fit);
  // Stores a trained intent model as the workspace's next intent version (offline: no server
  // may hold the directory). A server started on it loads the latest version.
  static absl::StatusOr<IntentVersion> StoreIntent(storage::Store& store, uint32_t workspace_id,
                                                   IntentVersion version,
                                                   const std::string& model_image);
  // Makes earlier intent version `version` the next version (under the commit lock): loads its
  // image and answers with it from now on. NotFound for an unknown version, FailedPrecondition
  // when its image is no longer stored.
  absl::StatusOr<IntentVersion> RollbackIntent(uint32_t workspace_id, uint64_t version,
                                               rocksdb::WriteBatch* batch);
  // The latest stored intent model of a workspace loaded at Start (null when none).
  std::shared_ptr<const text::IntentModel> intent_model(uint32_t workspace_id) const;
  // {"name": "intent", ...}: the intent model's versions with their accuracy.
  bool WriteIntent(uint32_t workspace_id, bool with_versions, JsonWriter& w) const;

  // When the workspace's lifetime value is next due for its scheduled refit (INT64_MAX: never),
  // and the record that one was attempted at `now_ms` (whatever its outcome).
  int64_t ClvDueAt(uint32_t workspace_id) const;
  void ClvAttempted(uint32_t workspace_id, int64_t now_ms);
  // The workspaces with models on.
  std::vector<uint32_t> workspace_ids() const;

  // --- Readers, any thread ---
  const ModelSettings* Settings(uint32_t workspace_id) const;
  // The readers' copy of a live model (as of the last publish) and its latest version number;
  // a null model when models are off. The copy never changes while it is held.
  std::pair<std::shared_ptr<const learn::FtrlModel>, uint64_t> PublishedModel(uint32_t workspace_id,
                                                                              ModelKind kind) const;
  // Scores `profile` at its latest event with the published model; nullopt when models are off.
  std::optional<ModelExplanation> Explain(uint32_t workspace_id, ModelKind kind,
                                          const Profile& profile, size_t factors) const;
  // The days after a customer's last event in which a churn intervention matters most: from the
  // median to the 90th percentile of the gaps after which this workspace's customers came back
  // (nullopt until 20 returns were seen).
  std::optional<std::pair<double, double>> InterventionWindowDays(uint32_t workspace_id) const;
  // The value of a profile's "scores" key: conversion {probability, leadScore, version,
  // factors} and churn {probability, risk, version, factors, interventionWindow}, scored at the
  // profile's latest event with the published models, and lifetimeValue (null until a CLV
  // version exists, or for a customer without orders) projected from `now_ms`; null when
  // models are off or the profile has no event counted (bot traffic only).
  void WriteScores(uint32_t workspace_id, const Profile& profile, int64_t now_ms,
                   JsonWriter& w) const;
  // {"name": "clv", ...}: the lifetime value models' latest version (and every version).
  bool WriteClv(uint32_t workspace_id, bool with_versions, JsonWriter& w) const;
  // {"name", "kind", "version", "examplesTotal", "pending", "metrics", "versions": [...]}.
  bool WriteModel(uint32_t workspace_id, ModelKind kind, bool with_versions, JsonWriter& w) const;

  // Counters for /metrics and tests.
  uint64_t learned(uint32_t workspace_id, ModelKind kind) const;
  size_t pending(uint32_t workspace_id, ModelKind kind) const;

 private:
  struct Pending {
    int64_t at_ms = 0;
    std::vector<learn::Feature> features;
  };
  struct Expiry {
    int64_t deadline_ms;
    uint64_t profile;
    int64_t at_ms;  // the pending example it expires (a newer one is left alone)
    bool operator>(const Expiry& o) const { return deadline_ms > o.deadline_ms; }
  };
  static constexpr int kScoreBins = 10;
  struct Live {
    explicit Live(const learn::FtrlOptions& options) : model(options) {}
    learn::FtrlModel model;
    absl::flat_hash_map<uint64_t, Pending> pending;
    std::priority_queue<Expiry, std::vector<Expiry>, std::greater<Expiry>> expiries;
    uint64_t skipped = 0;  // moments not kept: max_pending reached
    // Since the current version began: (prediction, label) pairs and the score histogram.
    std::vector<std::pair<double, int>> window;
    std::array<double, kScoreBins> scores{};
    std::array<double, kScoreBins> reference_scores{};  // the previous version's
    std::vector<ModelVersion> versions;
    // Versions cut since the last checkpoint, with their state as it was then.
    std::vector<std::pair<ModelVersion, std::string>> unsaved;
    // The readers' copy of `model` published last, and the one published before it, whose
    // memory the next Publish reuses once no reader holds it (PublishedCopy).
    std::shared_ptr<learn::FtrlModel> published;
    std::shared_ptr<learn::FtrlModel> spare;
  };
  struct Workspace {
    ModelSettings settings;
    learn::FeatureBuilder builder{18};  // sized by settings.ftrl.bits in Configure
    std::array<std::unique_ptr<Live>, kModelKinds> live;
    int64_t clock_ms = 0;  // event time: the latest event's
    // Return gaps (days) for the intervention window: a bounded reservoir.
    std::vector<double> gaps;
    uint64_t gaps_seen = 0;
    std::vector<ClvFit> clv;  // every version, oldest first
    int64_t clv_attempted_ms = 0;
    std::vector<IntentVersion> intent;                      // every version, oldest first
    std::shared_ptr<const text::IntentModel> intent_model;  // the latest, loaded at Start
  };
  struct Published {
    std::array<std::shared_ptr<const learn::FtrlModel>, kModelKinds> models;
    std::array<std::vector<ModelVersion>, kModelKinds> versions;
    std::array<uint64_t, kModelKinds> learned{};
    std::array<size_t, kModelKinds> pending{};
    std::array<uint64_t, kModelKinds> skipped{};
    std::vector<double> gaps;
    std::vector<ClvFit> clv;
    std::vector<IntentVersion> intent;
  };

  void Learn(Workspace& ws, ModelKind kind, const Pending& example, int label);
  absl::Status LoadPending(uint32_t workspace_id, ModelKind kind, Live& live,
                           const ModelSettings& settings);
  void Expire(Workspace& ws, ModelKind kind);
  void CutVersion(Workspace& ws, ModelKind kind, std::string reason, uint64_t restored,
                  int64_t now_ms);
  void Publish(uint32_t workspace_id, Workspace& ws);
  static std::shared_ptr<const learn::FtrlModel> PublishedCopy(Live& live);

  storage::Store* store_;
  const Clock* clock_;
  std::map<uint32_t, Workspace> workspaces_;
  int64_t last_checkpoint_ms_ = 0;
  int64_t last_publish_ms_ = 0;
  bool changed_since_save_ = false;     // anything learned, pending or cut since the last write
  bool changed_since_publish_ = false;  // ... since the readers' copies were made

  mutable std::mutex published_mu_;
  std::map<uint32_t, Published> published_;
};

}  // namespace whisperer::state
