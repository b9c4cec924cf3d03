#include "state/models.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <limits>
#include <set>

#include "common/duration.h"
#include "common/strings.h"
#include "common/timestamp.h"
#include "common/varint.h"
#include "state/conditions.h"
#include "state/intent.h"
#include "state/profiles.h"
#include "storage/keys.h"

namespace whisperer::state {

namespace {

// The live models are written to the store every 30 s (and whenever a version is cut), and
// copied for the readers every second.
constexpr int64_t kCheckpointEveryMs = 30'000;
constexpr int64_t kPublishEveryMs = 1'000;
constexpr size_t kVersionImagesKept = 20;  // older versions keep their metrics, not their state
constexpr size_t kWindowCap = 100'000;     // (prediction, label) pairs kept per version
constexpr size_t kGapReservoir = 4096;

// Key layout in the models column family: [workspace u32][model name]'\0' then
//   'L'                  the live model's image (learn::FtrlModel::Serialize)
//   'V' [version u64]    a version's record (EncodeVersion)
//   'I' [version u64]    a version's image, for the latest kVersionImagesKept versions
std::string ModelKey(uint32_t workspace_id, std::string_view name, char what,
                     std::optional<uint64_t> version = std::nullopt) {
  std::string key = storage::WorkspacePrefix(workspace_id);
  key.append(name);
  key.push_back('\0');
  key.push_back(what);
  if (version) storage::PutBigEndian64(&key, *version);
  return key;
}

void PutDouble(std::string* out, double v) {
  uint64_t bits;
  std::memcpy(&bits, &v, sizeof bits);
  PutVarint(out, bits);
}
bool GetDouble(std::string_view* in, double* v) {
  uint64_t bits;
  if (!GetVarint(in, &bits)) return false;
  std::memcpy(v, &bits, sizeof bits);
  return true;
}

std::string EncodeVersion(const ModelVersion& v) {
  std::string out;
  PutVarint(&out, v.version);
  PutVarint(&out, static_cast<uint64_t>(v.created_ms));
  PutVarint(&out, v.examples_total);
  PutVarint(&out, v.metrics.examples);
  PutVarint(&out, v.metrics.positives);
  PutDouble(&out, v.metrics.auc);
  PutDouble(&out, v.metrics.log_loss);
  PutDouble(&out, v.metrics.calibration_error);
  PutDouble(&out, v.metrics.psi);
  PutVarint(&out, v.restored);
  PutVarint(&out, v.reason.size());
  out.append(v.reason);
  return out;
}

std::optional<ModelVersion> DecodeVersion(std::string_view in) {
  ModelVersion v;
  uint64_t created = 0, reason_size = 0;
  if (!GetVarint(&in, &v.version) || !GetVarint(&in, &created) ||
      !GetVarint(&in, &v.examples_total) || !GetVarint(&in, &v.metrics.examples) ||
      !GetVarint(&in, &v.metrics.positives) || !GetDouble(&in, &v.metrics.auc) ||
      !GetDouble(&in, &v.metrics.log_loss) || !GetDouble(&in, &v.metrics.calibration_error) ||
      !GetDouble(&in, &v.metrics.psi) || !GetVarint(&in, &v.restored) ||
      !GetVarint(&in, &reason_size) || reason_size != in.size()) {
    return std::nullopt;
  }
  v.created_ms = static_cast<int64_t>(created);
  v.reason = std::string(in);
  return v;
}

double Log1p(double x) { return std::log1p(std::max(0.0, x)); }

int ScoreBin(double p) { return std::clamp(static_cast<int>(p * 10), 0, 9); }

// Population stability index of `current` against `reference` (both histograms of counts),
// with empty bins smoothed to a small share so the index stays finite.
double Psi(const std::array<double, 10>& reference, const std::array<double, 10>& current) {
  double r_total = 0, c_total = 0;
  for (int i = 0; i < 10; ++i) {
    r_total += reference[i];
    c_total += current[i];
  }
  if (r_total == 0 || c_total == 0) return 0;
  double psi = 0;
  for (int i = 0; i < 10; ++i) {
    double r = std::max(reference[i] / r_total, 1e-4);
    double c = std::max(current[i] / c_total, 1e-4);
    psi += (c - r) * std::log(c / r);
  }
  return psi;
}

// Rank AUC, log loss and 10-bin calibration error of (prediction, label) pairs.
ModelMetrics Measure(std::vector<std::pair<double, int>> pairs) {
  ModelMetrics m;
  m.examples = pairs.size();
  if (pairs.empty()) return m;
  std::sort(pairs.begin(), pairs.end());
  double rank_sum = 0;
  std::array<double, 10> sum_p{}, sum_y{};
  for (size_t i = 0; i < pairs.size();) {
    size_t j = i;
    while (j < pairs.size() && pairs[j].first == pairs[i].first) ++j;
    double mean_rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2;
    for (size_t k = i; k < j; ++k) {
      const auto& [p, y] = pairs[k];
      if (y) {
        rank_sum += mean_rank;
        ++m.positives;
      }
      double q = std::clamp(p, 1e-15, 1 - 1e-15);
      m.log_loss -= y ? std::log(q) : std::log(1 - q);
      sum_p[ScoreBin(p)] += p;
      sum_y[ScoreBin(p)] += y;
    }
    i = j;
  }
  double n = static_cast<double>(pairs.size());
  double pos = static_cast<double>(m.positives);
  m.log_loss /= n;
  for (int b = 0; b < 10; ++b) m.calibration_error += std::abs(sum_p[b] - sum_y[b]) / n;
  m.auc = (m.positives == 0 || m.positives == pairs.size())
              ? 0.5
              : (rank_sum - pos * (pos + 1) / 2) / (pos * (n - pos));
  return m;
}

// The value of a trait as a feature: numbers on a log scale, strings and bools as categories.
void TraitFeature(std::string_view name, std::string_view json, learn::FeatureBuilder* out) {
  if (json.empty() || json == "null" || json.front() == '{' || json.front() == '[') return;
  if (json.front() == '"') {
    std::string_view value = json.substr(1, json.size() >= 2 ? json.size() - 2 : 0);
    out->Categorical(StrCat("trait.", name), value.substr(0, 64));
    return;
  }
  if (json == "true" || json == "false") {
    out->Categorical(StrCat("trait.", name), json);
    return;
  }
  double v = std::strtod(std::string(json).c_str(), nullptr);
  out->Numeric(StrCat("trait.", name), v < 0 ? -Log1p(-v) : Log1p(v));
}

constexpr std::string_view kClvName = "clv";

// A CLV version's record: JSON, so that it reads the same in a dump of the store.
std::string EncodeClv(const ClvFit& fit) {
  std::string out;
  JsonWriter w(&out);
  const learn::BgNbdParams& bg = fit.model.purchases;
  const learn::GammaGammaParams& gg = fit.model.spend;
  w.StartObject();
  for (auto [key, value] : std::initializer_list<std::pair<const char*, double>>{
           {"r", bg.r},
           {"alpha", bg.alpha},
           {"a", bg.a},
           {"b", bg.b},
           {"bgnbdLogLikelihood", bg.log_likelihood},
           {"p", gg.p},
           {"q", gg.q},
           {"v", gg.v},
           {"gammaGammaLogLikelihood", gg.log_likelihood}}) {
    w.Key(key);
    w.Double(value);
  }
  w.Key("version");
  w.Uint(fit.version);
  w.Key("fittedMs");
  w.Int(fit.fitted_ms);
  w.Key("customers");
  w.Uint(fit.customers);
  w.Key("repeaters");
  w.Uint(fit.repeaters);
  w.Key("restored");
  w.Uint(fit.restored);
  w.Key("reason");
  w.String(fit.reason);
  w.EndObject();
  return out;
}

// A log-likelihood: null is +infinity (JSON has none; see learn::FitGammaGamma's one-price limit).
simdjson::error_code GetLogLikelihood(simdjson::dom::element doc, std::string_view key,
                                      double& out) {
  simdjson::dom::element value;
  if (auto e = doc[key].get(value); e != simdjson::SUCCESS) return e;
  if (value.is_null()) {
    out = std::numeric_limits<double>::infinity();
    return simdjson::SUCCESS;
  }
  return value.get(out);
}

std::optional<ClvFit> DecodeClv(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(std::string(json)).get(doc) != simdjson::SUCCESS) return std::nullopt;
  ClvFit fit;
  learn::BgNbdParams& bg = fit.model.purchases;
  learn::GammaGammaParams& gg = fit.model.spend;
  std::string_view reason;
  bool ok =
      doc["r"].get(bg.r) == simdjson::SUCCESS && doc["alpha"].get(bg.alpha) == simdjson::SUCCESS &&
      doc["a"].get(bg.a) == simdjson::SUCCESS && doc["b"].get(bg.b) == simdjson::SUCCESS &&
      GetLogLikelihood(doc, "bgnbdLogLikelihood", bg.log_likelihood) == simdjson::SUCCESS &&
      doc["p"].get(gg.p) == simdjson::SUCCESS && doc["q"].get(gg.q) == simdjson::SUCCESS &&
      doc["v"].get(gg.v) == simdjson::SUCCESS &&
      GetLogLikelihood(doc, "gammaGammaLogLikelihood", gg.log_likelihood) == simdjson::SUCCESS &&
      doc["version"].get(fit.version) == simdjson::SUCCESS &&
      doc["fittedMs"].get(fit.fitted_ms) == simdjson::SUCCESS &&
      doc["customers"].get(fit.customers) == simdjson::SUCCESS &&
      doc["repeaters"].get(fit.repeaters) == simdjson::SUCCESS &&
      doc["restored"].get(fit.restored) == simdjson::SUCCESS &&
      doc["reason"].get(reason) == simdjson::SUCCESS;
  if (!ok) return std::nullopt;
  fit.reason = std::string(reason);
  return fit;
}

// The stored version records of model `name`, oldest first (records that do not decode are
// skipped).
template <typename Version>
absl::StatusOr<std::vector<Version>> ReadVersions(
    const storage::Store& store, uint32_t workspace_id, std::string_view name,
    std::optional<Version> (*decode)(std::string_view)) {
  std::vector<Version> out;
  absl::Status s = store.ScanPrefix(store.models(), ModelKey(workspace_id, name, 'V'),
                                    [&](std::string_view, std::string_view value) {
                                      if (auto v = decode(value)) out.push_back(*std::move(v));
                                      return true;
                                    });
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<std::vector<ClvFit>> ReadClvVersions(const storage::Store& store,
                                                    uint32_t workspace_id) {
  return ReadVersions<ClvFit>(store, workspace_id, kClvName, &DecodeClv);
}

// Numbers `fit` as the version after `versions` (the stored ones, oldest first) and puts its
// record into `batch`: the one way a CLV version is written, by a server or offline.
absl::StatusOr<ClvFit> PutClvVersion(const storage::Store& store, uint32_t workspace_id,
                                     const std::vector<ClvFit>& versions, ClvFit fit,
                                     rocksdb::WriteBatch* batch) {
  fit.version = versions.empty() ? 1 : versions.back().version + 1;
  rocksdb::Status put = batch->Put(
      store.models(), ModelKey(workspace_id, kClvName, 'V', fit.version), EncodeClv(fit));
  if (!put.ok()) return absl::InternalError(ToAbsl(put.ToString()));
  return fit;
}

constexpr std::string_view kIntentName = "intent";

std::string EncodeIntent(const IntentVersion& v) {
  std::string out;
  PutVarint(&out, v.version);
  PutVarint(&out, static_cast<uint64_t>(v.trained_ms));
  PutVarint(&out, v.examples);
  PutVarint(&out, v.labels);
  PutVarint(&out, v.holdout);
  PutDouble(&out, v.accuracy);
  // Since images are kept per version: the image, the restored version and the reason.
  PutVarint(&out, v.image);
  PutVarint(&out, v.restored);
  out.append(v.reason);
  return out;
}

std::optional<IntentVersion> DecodeIntent(std::string_view in) {
  IntentVersion v;
  uint64_t trained = 0;
  if (!GetVarint(&in, &v.version) || !GetVarint(&in, &trained) || !GetVarint(&in, &v.examples) ||
      !GetVarint(&in, &v.labels) || !GetVarint(&in, &v.holdout) || !GetDouble(&in, &v.accuracy)) {
    return std::nullopt;
  }
  v.trained_ms = static_cast<int64_t>(trained);
  if (in.empty()) {  // written when only the latest image was kept, under image 0
    v.image = 0;
    return v;
  }
  if (!GetVarint(&in, &v.image) || !GetVarint(&in, &v.restored)) return std::nullopt;
  v.reason = std::string(in);
  return v;
}

// The stored versions, each marked with whether its image is still stored.
absl::StatusOr<std::vector<IntentVersion>> ReadIntentVersions(const storage::Store& store,
                                                              uint32_t workspace_id) {
  absl::StatusOr<std::vector<IntentVersion>> versions =
      ReadVersions<IntentVersion>(store, workspace_id, kIntentName, &DecodeIntent);
  if (!versions.ok()) return versions;
  std::set<uint64_t> images;
  absl::Status s = store.ScanPrefix(
      store.models(), ModelKey(workspace_id, kIntentName, 'I'),
      [&](std::string_view key, std::string_view) {
        images.insert(storage::GetBigEndian64(key.data() + key.size() - sizeof(uint64_t)));
        return true;
      });
  if (!s.ok()) return s;
  for (IntentVersion& v : *versions) {
    // Image 0 belongs to the latest version that was written before images were kept per
    // version; older such versions had theirs overwritten.
    v.stored = images.contains(v.image) &&
               (v.image != 0 || &v == &versions->back() || versions->back().image != 0);
  }
  return versions;
}

absl::StatusOr<std::unique_ptr<text::IntentModel>> LoadIntentImage(const storage::Store& store,
                                                                   uint32_t workspace_id,
                                                                   const IntentVersion& v) {
  absl::StatusOr<std::optional<std::string>> image =
      store.Get(store.models(), ModelKey(workspace_id, kIntentName, 'I', v.image));
  if (!image.ok()) return image.status();
  if (!v.stored || !image->has_value()) {
    return absl::FailedPreconditionError(
        ToAbsl(StrCat("intent version ", v.version, "'s model is no longer stored (the ",
                      kKeptIntentImages, " most recently used models are kept)")));
  }
  absl::StatusOr<std::unique_ptr<text::IntentModel>> model =
      text::IntentModel::Deserialize(**image);
  if (!model.ok()) {
    return absl::DataLossError(ToAbsl(StrCat("workspace ", workspace_id, " intent model image ",
                                             v.image, ": ", ToStd(model.status().message()))));
  }
  return model;
}

void WriteParams(JsonWriter& w, std::initializer_list<std::pair<const char*, double>> params) {
  w.StartObject();
  for (auto [key, value] : params) {
    w.Key(key);
    w.Double(value);
  }
  w.EndObject();
}

// The members every version record starts with: its number, when it was made (under `at_key`),
// why, and the version a rollback restored.
void WriteVersionHead(JsonWriter& w, uint64_t version, std::string_view at_key, int64_t at_ms,
                      std::string_view reason, uint64_t restored) {
  w.Key("version");
  w.Uint(version);
  w.Key(at_key);
  w.String(FormatIso8601(at_ms));
  w.Key("reason");
  w.String(reason);
  if (restored != 0) {
    w.Key("restoredVersion");
    w.Uint(restored);
  }
}

void WriteClvFit(const ClvFit& fit, JsonWriter& w) {
  const learn::BgNbdParams& bg = fit.model.purchases;
  const learn::GammaGammaParams& gg = fit.model.spend;
  w.StartObject();
  WriteVersionHead(w, fit.version, "fittedAt", fit.fitted_ms, fit.reason, fit.restored);
  w.Key("customers");
  w.Uint(fit.customers);
  w.Key("repeatCustomers");
  w.Uint(fit.repeaters);
  w.Key("bgnbd");
  WriteParams(w, {{"r", bg.r},
                  {"alpha", bg.alpha},
                  {"a", bg.a},
                  {"b", bg.b},
                  {"logLikelihood", bg.log_likelihood}});
  w.Key("gammaGamma");
  WriteParams(w, {{"p", gg.p}, {"q", gg.q}, {"v", gg.v}, {"logLikelihood", gg.log_likelihood}});
  w.EndObject();
}

}  // namespace

std::optional<learn::RfmSummary> ProfileRfm(const Profile& profile, int64_t now_ms) {
  if (profile.orders == 0 || profile.order_days == 0) return std::nullopt;
  constexpr double kWeekMs = 7.0 * kDayMs;
  learn::RfmSummary rfm;
  rfm.x = static_cast<double>(profile.order_days - 1);
  rfm.T = std::max(0.0, static_cast<double>(now_ms - profile.first_order_ms) / kWeekMs);
  if (rfm.x > 0) {
    rfm.t_x = std::clamp(
        static_cast<double>(profile.last_order_ms - profile.first_order_ms) / kWeekMs, 0.0, rfm.T);
    rfm.monetary = (profile.revenue - profile.first_day_revenue) / rfm.x;
  }
  return rfm;
}

absl::StatusOr<ClvFit> ModelEngine::FitClv(const storage::Store& store, uint32_t workspace_id,
                                           int64_t now_ms) {
  std::vector<learn::RfmSummary> rows;
  ClvFit fit;
  absl::Status s = ProfileEngine::ForEachProfile(store, workspace_id, [&](uint32_t, Profile&& p) {
    std::optional<learn::RfmSummary> rfm = ProfileRfm(p, now_ms);
    if (!rfm) return;
    // Repeat orders that carried no revenue, or revenue past what a double holds (1e308 three
    // times), say nothing about spend: count the customer as one who has not bought again,
    // rather than let one customer stop the workspace's fit.
    if (rfm->x > 0 && !(rfm->monetary > 0 && std::isfinite(rfm->monetary))) {
      *rfm = {0, 0, rfm->T, 0};
    }
    rows.push_back(*rfm);
  });
  if (!s.ok()) return s;
  fit.customers = rows.size();
  for (const learn::RfmSummary& r : rows) fit.repeaters += r.x > 0;
  if (fit.repeaters == 0) {
    return absl::InvalidArgumentError(
        ToAbsl(StrCat("no customer has a repeat order with revenue yet (", fit.customers,
                      " with orders): lifetime value needs repeat purchases to fit on")));
  }
  absl::StatusOr<learn::BgNbdParams> purchases = learn::FitBgNbd(rows);
  if (!purchases.ok()) return purchases.status();
  absl::StatusOr<learn::GammaGammaParams> spend = learn::FitGammaGamma(rows);
  if (!spend.ok()) return spend.status();
  fit.model = {*purchases, *spend};
  fit.fitted_ms = now_ms;
  fit.reason = "fit";
  return fit;
}

absl::StatusOr<ClvFit> ModelEngine::StoreClv(storage::Store& store, uint32_t workspace_id,
                                             ClvFit fit) {
  absl::StatusOr<std::vector<ClvFit>> versions = ReadClvVersions(store, workspace_id);
  if (!versions.ok()) return versions.status();
  rocksdb::WriteBatch batch;
  absl::StatusOr<ClvFit> put =
      PutClvVersion(store, workspace_id, *versions, std::move(fit), &batch);
  if (!put.ok()) return put.status();
  if (absl::Status s = store.Write(&batch); !s.ok()) return s;
  return put;
}

absl::StatusOr<ClvFit> ModelEngine::InstallClv(uint32_t workspace_id, ClvFit fit,
                                               rocksdb::WriteBatch* batch) {
  auto it = workspaces_.find(workspace_id);
  if (it == workspaces_.end() || !it->second.settings.enabled) {
    return absl::NotFoundError("models are off in this workspace");
  }
  Workspace& ws = it->second;
  absl::StatusOr<ClvFit> put = PutClvVersion(*store_, workspace_id, ws.clv, std::move(fit), batch);
  if (!put.ok()) return put.status();
  ws.clv.push_back(*put);
  Publish(workspace_id, ws);
  return put;
}

absl::StatusOr<ClvFit> ModelEngine::RollbackClv(uint32_t workspace_id, uint64_t version,
                                                rocksdb::WriteBatch* batch) {
  auto it = workspaces_.find(workspace_id);
  if (it == workspaces_.end() || !it->second.settings.enabled) {
    return absl::NotFoundError("models are off in this workspace");
  }
  for (const ClvFit& old : it->second.clv) {
    if (old.version != version) continue;
    ClvFit fit = old;
    fit.reason = "rollback";
    fit.restored = version;
    fit.fitted_ms = clock_->NowMillis();
    return InstallClv(workspace_id, std::move(fit), batch);
  }
  return absl::NotFoundError(ToAbsl(StrCat("model clv has no version ", version)));
}

absl::StatusOr<IntentVersion> ModelEngine::StoreIntent(storage::Store& store, uint32_t workspace_id,
                                                       IntentVersion version,
                                                       const std::string& model_image) {
  absl::StatusOr<std::vector<IntentVersion>> versions = ReadIntentVersions(store, workspace_id);
  if (!versions.ok()) return versions.status();
  version.version = versions->empty() ? 1 : versions->back().version + 1;
  version.image = version.version;
  version.reason = "train";
  version.restored = 0;
  rocksdb::WriteBatch batch;
  rocksdb::Status s =
      batch.Put(store.models(), ModelKey(workspace_id, kIntentName, 'V', version.version),
                EncodeIntent(version));
  if (s.ok()) {
    s = batch.Put(store.models(), ModelKey(workspace_id, kIntentName, 'I', version.image),
                  model_image);
  }
  // Images (tens of MB each) of all but the latest kKeptIntentImages trainings are dropped.
  std::vector<uint64_t> kept = {version.image};
  for (auto it = versions->rbegin(); it != versions->rend(); ++it) {
    if (it->stored && kept.size() < kKeptIntentImages &&
        std::find(kept.begin(), kept.end(), it->image) == kept.end()) {
      kept.push_back(it->image);
    }
  }
  for (const IntentVersion& v : *versions) {
    if (s.ok() && v.stored && std::find(kept.begin(), kept.end(), v.image) == kept.end()) {
      s = batch.Delete(store.models(), ModelKey(workspace_id, kIntentName, 'I', v.image));
    }
  }
  if (!s.ok()) return absl::InternalError(ToAbsl(s.ToString()));
  if (absl::Status w = store.Write(&batch); !w.ok()) return w;
  return version;
}

absl::StatusOr<IntentVersion> ModelEngine::RollbackIntent(uint32_t workspace_id, uint64_t version,
                                                          rocksdb::WriteBatch* batch) {
  auto it = workspaces_.find(workspace_id);
  if (it == workspaces_.end()) {
    return absl::NotFoundError(ToAbsl(StrCat("model intent has no version ", version)));
  }
  Workspace& ws = it->second;
  auto old = std::find_if(ws.intent.begin(), ws.intent.end(),
                          [&](const IntentVersion& v) { return v.version == version; });
  if (old == ws.intent.end()) {
    return absl::NotFoundError(ToAbsl(StrCat("model intent has no version ", version)));
  }
  absl::StatusOr<std::unique_ptr<text::IntentModel>> model =
      LoadIntentImage(*store_, workspace_id, *old);
  if (!model.ok()) return model.status();
  IntentVersion next = *old;
  next.version = ws.intent.back().version + 1;
  next.trained_ms = clock_->NowMillis();
  next.reason = "rollback";
  next.restored = version;
  rocksdb::Status put = batch->Put(
      store_->models(), ModelKey(workspace_id, kIntentName, 'V', next.version), EncodeIntent(next));
  if (!put.ok()) return absl::InternalError(ToAbsl(put.ToString()));
  ws.intent.push_back(next);
  ws.intent_model = std::shared_ptr<const text::IntentModel>(*std::move(model));
  Publish(workspace_id, ws);
  return next;
}

std::shared_ptr<const text::IntentModel> ModelEngine::intent_model(uint32_t workspace_id) const {
  auto it = workspaces_.find(workspace_id);
  return it == workspaces_.end() ? nullptr : it->second.intent_model;
}

int64_t ModelEngine::ClvDueAt(uint32_t workspace_id) const {
  auto it = workspaces_.find(workspace_id);
  if (it == workspaces_.end() || !it->second.settings.enabled ||
      it->second.settings.clv_refit_every_ms <= 0) {
    return INT64_MAX;
  }
  const Workspace& ws = it->second;
  int64_t last = ws.clv_attempted_ms;
  if (!ws.clv.empty()) last = std::max(last, ws.clv.back().fitted_ms);
  return last + ws.settings.clv_refit_every_ms;
}

void ModelEngine::ClvAttempted(uint32_t workspace_id, int64_t now_ms) {
  auto it = workspaces_.find(workspace_id);
  if (it != workspaces_.end()) it->second.clv_attempted_ms = now_ms;
}

std::vector<uint32_t> ModelEngine::workspace_ids() const {
  std::vector<uint32_t> out;
  for (const auto& [id, ws] : workspaces_) {
    if (ws.settings.enabled) out.push_back(id);
  }
  return out;
}

std::string_view ModelName(ModelKind kind) {
  return kind == ModelKind::kConversion ? "conversion" : "churn";
}

std::optional<ModelKind> ModelKindOf(std::string_view name) {
  if (name == "conversion") return ModelKind::kConversion;
  if (name == "churn") return ModelKind::kChurn;
  return std::nullopt;
}

void ProfileFeatures(const Profile& profile, int64_t now_ms, const ModelSettings& settings,
                     learn::FeatureBuilder* out) {
  out->Clear();
  const double day = static_cast<double>(kDayMs);
  out->Numeric("events", Log1p(static_cast<double>(profile.seen.events)) / 5);
  out->Numeric("sessions", Log1p(static_cast<double>(profile.sessions.count)) / 3);
  out->Numeric("orders", Log1p(static_cast<double>(profile.orders)) / 2);
  out->Numeric("revenue", Log1p(profile.revenue) / 6);
  out->Numeric("days_since_first_seen",
               Log1p(static_cast<double>(now_ms - profile.seen.first_ms) / day) / 4);
  if (profile.sessions.previous_last_ms > 0) {
    out->Numeric("days_since_previous_session",
                 Log1p(static_cast<double>(profile.sessions.current_start_ms -
                                           profile.sessions.previous_last_ms) /
                       day) /
                     3);
  } else {
    out->Categorical("first_session", "yes");
  }
  if (profile.sessions.count > 0) {
    out->Numeric("views_per_session", Log1p(static_cast<double>(profile.sessions.views) /
                                            static_cast<double>(profile.sessions.count)) /
                                          3);
  }
  out->Numeric("session_events", Log1p(static_cast<double>(profile.sessions.current_events)) / 3);
  if (profile.orders > 0) {
    out->Numeric("days_since_last_order",
                 Log1p(static_cast<double>(now_ms - profile.last_order_ms) / day) / 4);
  }
  Intent intent = ComputeIntent(profile, IntentScope::kProfile, now_ms, IntentDetail::kScoresOnly);
  out->Numeric("intent.purchase", intent.purchase_intent.score);
  out->Numeric("intent.urgency", intent.urgency.score);
  out->Numeric("intent.price_sensitivity", intent.price_sensitivity.score);
  out->Numeric("intent.research_depth", intent.research_depth.score);
  if (!profile.persona.id.empty()) out->Categorical("persona", profile.persona.id);
  if (!profile.devices.empty()) {
    const DeviceSeen* latest = &profile.devices.front();
    for (const DeviceSeen& d : profile.devices) {
      if (d.last_ms > latest->last_ms) latest = &d;
    }
    out->Categorical("device", latest->type);
  }
  if (!profile.sources.empty()) {
    const SourceSeen* latest = &profile.sources.front();
    for (const SourceSeen& s : profile.sources) {
      if (s.last_ms > latest->last_ms) latest = &s;
    }
    out->Categorical("source", latest->source);
  }
  for (const auto& [name, count] : profile.event_counts) {
    out->Categorical("count", name, Log1p(static_cast<double>(count)) / 3);
  }
  for (const std::string& trait : settings.traits) {
    auto it = profile.traits.find(trait);
    if (it != profile.traits.end()) TraitFeature(trait, it->second.json, out);
  }
}

ModelEngine::ModelEngine(storage::Store* store, const Clock* clock)
    : store_(store), clock_(clock) {}

void ModelEngine::Configure(uint32_t workspace_id, ModelSettings settings) {
  Workspace& ws = workspaces_[workspace_id];
  ws.settings = std::move(settings);
  ws.builder = learn::FeatureBuilder(ws.settings.ftrl.bits);
  for (size_t k = 0; k < kModelKinds; ++k) {
    ws.live[k] = std::make_unique<Live>(ws.settings.ftrl);
  }
}

absl::Status ModelEngine::Start() {
  for (auto& [id, ws] : workspaces_) {
    if (!ws.settings.enabled) continue;
    for (size_t k = 0; k < kModelKinds; ++k) {
      ModelKind kind = static_cast<ModelKind>(k);
      Live& live = *ws.live[k];
      absl::StatusOr<std::optional<std::string>> image =
          store_->Get(store_->models(), ModelKey(id, ModelName(kind), 'L'));
      if (!image.ok()) return image.status();
      if (image->has_value()) {
        absl::StatusOr<learn::FtrlModel> model = learn::FtrlModel::Deserialize(**image);
        if (!model.ok()) {
          return absl::DataLossError(ToAbsl(StrCat("workspace ", id, " model ", ModelName(kind),
                                                   ": ", ToStd(model.status().message()))));
        }
        // A changed table size (models.ftrl.bits) hashes every feature elsewhere: the stored
        // state means nothing to it, so the model starts afresh (its versions stay listed).
        if (model->options().bits == ws.settings.ftrl.bits) {
          live.model = *std::move(model);
          live.model.SetHyperparameters(ws.settings.ftrl);
        }
      }
      std::string prefix = ModelKey(id, ModelName(kind), 'V');
      absl::Status s = store_->ScanPrefix(store_->models(), prefix,
                                          [&](std::string_view, std::string_view value) {
                                            if (auto v = DecodeVersion(value)) {
                                              live.versions.push_back(std::move(*v));
                                            }
                                            return true;
                                          });
      if (!s.ok()) return s;
      if (s = LoadPending(id, kind, live, ws.settings); !s.ok()) return s;
    }
    absl::StatusOr<std::vector<ClvFit>> clv = ReadClvVersions(*store_, id);
    if (!clv.ok()) return clv.status();
    ws.clv = *std::move(clv);
    absl::StatusOr<std::vector<IntentVersion>> intent = ReadIntentVersions(*store_, id);
    if (!intent.ok()) return intent.status();
    ws.intent = *std::move(intent);
    if (!ws.intent.empty() && ws.intent.back().stored) {
      absl::StatusOr<std::unique_ptr<text::IntentModel>> model =
          LoadIntentImage(*store_, id, ws.intent.back());
      if (!model.ok()) return model.status();
      ws.intent_model = std::shared_ptr<const text::IntentModel>(*std::move(model));
    }
    Publish(id, ws);
  }
  last_checkpoint_ms_ = clock_->NowMillis();
  return absl::OkStatus();
}

const ModelSettings* ModelEngine::Settings(uint32_t workspace_id) const {
  auto it = workspaces_.find(workspace_id);
  return it == workspaces_.end() || !it->second.settings.enabled ? nullptr : &it->second.settings;
}

void ModelEngine::Learn(Workspace& ws, ModelKind kind, const Pending& example, int label) {
  Live& live = *ws.live[static_cast<size_t>(kind)];
  double p = live.model.Learn(example.features, label);
  if (live.window.size() < kWindowCap) live.window.emplace_back(p, label);
  if (ws.settings.version_every > 0 && live.window.size() >= ws.settings.version_every) {
    CutVersion(ws, kind, "scheduled", 0, clock_->NowMillis());
  }
}

void ModelEngine::CutVersion(Workspace& ws, ModelKind kind, std::string reason, uint64_t restored,
                             int64_t now_ms) {
  Live& live = *ws.live[static_cast<size_t>(kind)];
  ModelVersion v;
  v.version = live.versions.empty() ? 1 : live.versions.back().version + 1;
  v.created_ms = now_ms;
  v.examples_total = live.model.examples();
  v.metrics = Measure(std::move(live.window));
  v.metrics.psi = Psi(live.reference_scores, live.scores);
  v.reason = std::move(reason);
  v.restored = restored;
  live.unsaved.emplace_back(v, live.model.Serialize());
  live.versions.push_back(std::move(v));
  live.window.clear();
  live.reference_scores = live.scores;
  live.scores = {};
}

void ModelEngine::Expire(Workspace& ws, ModelKind kind) {
  Live& live = *ws.live[static_cast<size_t>(kind)];
  while (!live.expiries.empty() && live.expiries.top().deadline_ms <= ws.clock_ms) {
    Expiry e = live.expiries.top();
    live.expiries.pop();
    auto it = live.pending.find(e.profile);
    if (it == live.pending.end() || it->second.at_ms != e.at_ms) continue;  // resolved already
    // The window passed: no conversion; for churn, no activity — churned.
    Learn(ws, kind, it->second, kind == ModelKind::kChurn ? 1 : 0);
    live.pending.erase(it);
  }
}

void ModelEngine::OnEvent(uint32_t workspace_id, Profile& profile, const EventFacts& facts) {
  auto wit = workspaces_.find(workspace_id);
  if (wit == workspaces_.end() || !wit->second.settings.enabled) return;
  Workspace& ws = wit->second;
  const ModelSettings& settings = ws.settings;
  // Event time, never later than the event was received (a client clock in the future must not
  // expire everyone's window).
  int64_t at_ms = facts.timestamp_ms;
  if (facts.received_at_ms > 0 && (at_ms == 0 || at_ms > facts.received_at_ms)) {
    at_ms = facts.received_at_ms;
  }
  ws.clock_ms = std::max(ws.clock_ms, at_ms);
  changed_since_save_ = changed_since_publish_ = true;
  const bool track = facts.type == api::EventType::kTrack;
  const bool goal = track && facts.name == settings.goal_event;
  const bool cancel =
      track && !settings.cancel_event.empty() && facts.name == settings.cancel_event;

  // A customer coming back after a gap: what the intervention window is made of.
  if (profile.sessions.current_events == 1 && profile.sessions.previous_last_ms > 0) {
    double gap =
        static_cast<double>(profile.sessions.current_start_ms - profile.sessions.previous_last_ms) /
        static_cast<double>(kDayMs);
    ++ws.gaps_seen;
    if (ws.gaps.size() < kGapReservoir) {
      ws.gaps.push_back(gap);
    } else {
      // Reservoir sampling with a deterministic stream (profile id and count).
      uint64_t r = (profile.id * 0x9e3779b97f4a7c15ULL + ws.gaps_seen) % ws.gaps_seen;
      if (r < kGapReservoir) ws.gaps[r] = gap;
    }
  }

  for (size_t k = 0; k < kModelKinds; ++k) {
    ModelKind kind = static_cast<ModelKind>(k);
    Live& live = *ws.live[k];
    Expire(ws, kind);
    auto it = live.pending.find(profile.id);
    if (it != live.pending.end() && at_ms > it->second.at_ms) {
      bool decided = false;
      int label = 0;
      if (kind == ModelKind::kConversion) {
        if (goal && at_ms - it->second.at_ms <= settings.conversion_window_ms) {
          decided = true;
          label = 1;
        } else if (at_ms - it->second.at_ms > settings.conversion_window_ms) {
          decided = true;  // late: the window passed before this event (the sweep had not run)
        }
      } else {
        decided = true;
        label = cancel || at_ms - it->second.at_ms > settings.churn_inactive_ms ? 1 : 0;
      }
      if (decided) {
        Learn(ws, kind, it->second, label);
        live.pending.erase(it);
        it = live.pending.end();
      }
    }
  }

  // Score the customer now (profile.scores), and keep the moment as a pending example when due.
  // An event older than the one last scored (sent late) is folded in, but the customer is scored
  // as of their latest moment: the scores never move back in time.
  const int64_t score_ms = std::max(at_ms, profile.scores.at_ms);
  ProfileFeatures(profile, score_ms, settings, &ws.builder);
  for (size_t k = 0; k < kModelKinds; ++k) {
    ModelKind kind = static_cast<ModelKind>(k);
    Live& live = *ws.live[k];
    double p = live.model.Predict(ws.builder.features());
    live.scores[ScoreBin(p)] += 1;
    (kind == ModelKind::kConversion ? profile.scores.conversion : profile.scores.churn) = p;
    // A moment that is itself the outcome is not an example of what leads to it.
    if ((kind == ModelKind::kConversion && goal) || (kind == ModelKind::kChurn && cancel)) continue;
    auto it = live.pending.find(profile.id);
    if (it != live.pending.end()) continue;
    if (live.pending.size() >= settings.max_pending) {
      ++live.skipped;
      continue;
    }
    int64_t last = profile.scores.sampled_ms[k];
    if (last != 0 && score_ms - last < settings.sample_every_ms) continue;
    profile.scores.sampled_ms[k] = score_ms;
    Pending& example = live.pending[profile.id];
    example.at_ms = score_ms;
    example.features.assign(ws.builder.features().begin(), ws.builder.features().end());
    int64_t window =
        kind == ModelKind::kConversion ? settings.conversion_window_ms : settings.churn_inactive_ms;
    // A moment whose window the workspace's clock has passed already (history loaded after
    // later events, such as a backfill next to live traffic) would expire at the next event as
    // if nothing followed it: only the customer's own later events label it (above).
    if (score_ms + window > ws.clock_ms)
      live.expiries.push({score_ms + window, profile.id, score_ms});
  }
  profile.scores.at_ms = score_ms;
}

void ModelEngine::Forget(uint32_t workspace_id, uint64_t profile_id) {
  auto it = workspaces_.find(workspace_id);
  if (it == workspaces_.end()) return;
  for (auto& live : it->second.live) {
    // The registry's pendingExamples count follows at the next publish.
    if (live && live->pending.erase(profile_id) > 0) {
      changed_since_save_ = changed_since_publish_ = true;
    }
  }
}

absl::Status ModelEngine::Checkpoint(rocksdb::WriteBatch* batch, bool force) {
  int64_t now = clock_->NowMillis();
  bool any_cut = false;
  for (auto& [id, ws] : workspaces_) {
    for (auto& live : ws.live) any_cut = any_cut || (live && !live->unsaved.empty());
  }
  if (!force && !any_cut &&
      (!changed_since_save_ || now - last_checkpoint_ms_ < kCheckpointEveryMs)) {
    if (changed_since_publish_ && now - last_publish_ms_ >= kPublishEveryMs) {
      last_publish_ms_ = now;
      changed_since_publish_ = false;
      for (auto& [id, ws] : workspaces_) {
        if (ws.settings.enabled) Publish(id, ws);
      }
    }
    return absl::OkStatus();
  }
  last_checkpoint_ms_ = now;
  last_publish_ms_ = now;
  changed_since_save_ = false;
  changed_since_publish_ = false;
  for (auto& [id, ws] : workspaces_) {
    if (!ws.settings.enabled) continue;
    for (size_t k = 0; k < kModelKinds; ++k) {
      ModelKind kind = static_cast<ModelKind>(k);
      Live& live = *ws.live[k];
      std::string image = live.model.Serialize();
      rocksdb::Status s = batch->Put(store_->models(), ModelKey(id, ModelName(kind), 'L'), image);
      for (const auto& [v, version_image] : live.unsaved) {
        if (s.ok()) {
          s = batch->Put(store_->models(), ModelKey(id, ModelName(kind), 'V', v.version),
                         EncodeVersion(v));
        }
        if (s.ok()) {
          s = batch->Put(store_->models(), ModelKey(id, ModelName(kind), 'I', v.version),
                         version_image);
        }
        if (s.ok() && v.version > kVersionImagesKept) {
          s = batch->Delete(store_->models(),
                            ModelKey(id, ModelName(kind), 'I', v.version - kVersionImagesKept));
        }
      }
      if (!s.ok()) return absl::InternalError(ToAbsl(StrCat("models checkpoint: ", s.ToString())));
      live.unsaved.clear();
    }
    Publish(id, ws);
  }
  return absl::OkStatus();
}

// Pending examples: a 0 byte and [varint table bits] (models.ftrl.bits when they were hashed),
// then [varint profile][signed varint at_ms][varint n][n x (varint index, 4-byte float value)]
// after one another. (Rows written before the bits were kept start with a profile id, never 0.)
absl::Status ModelEngine::SavePending(rocksdb::WriteBatch* batch) {
  for (auto& [id, ws] : workspaces_) {
    if (!ws.settings.enabled) continue;
    for (size_t k = 0; k < kModelKinds; ++k) {
      const Live& live = *ws.live[k];
      const std::string key = ModelKey(id, ModelName(static_cast<ModelKind>(k)), 'P');
      rocksdb::Status s;
      if (live.pending.empty()) {
        s = batch->Delete(store_->models(), key);
      } else {
        std::string out(1, '\0');
        PutVarint(&out, static_cast<uint64_t>(live.model.options().bits));
        for (const auto& [profile, example] : live.pending) {
          PutVarint(&out, profile);
          PutVarint(&out, ZigZag(example.at_ms));
          PutVarint(&out, example.features.size());
          for (const learn::Feature& f : example.features) {
            PutVarint(&out, f.index);
            out.append(reinterpret_cast<const char*>(&f.value), sizeof f.value);
          }
        }
        s = batch->Put(store_->models(), key, out);
      }
      if (!s.ok()) return absl::InternalError(ToAbsl(StrCat("pending examples: ", s.ToString())));
    }
  }
  return absl::OkStatus();
}

absl::Status ModelEngine::LoadPending(uint32_t workspace_id, ModelKind kind, Live& live,
                                      const ModelSettings& settings) {
  const std::string key = ModelKey(workspace_id, ModelName(kind), 'P');
  absl::StatusOr<std::optional<std::string>> stored = store_->Get(store_->models(), key);
  if (!stored.ok()) return stored.status();
  if (!stored->has_value()) return absl::OkStatus();
  const uint64_t slots = uint64_t{1} << live.model.options().bits;
  const int64_t window =
      kind == ModelKind::kConversion ? settings.conversion_window_ms : settings.churn_inactive_ms;
  std::string_view in = **stored;
  if (!in.empty() && in.front() == '\0') {
    // Hashed into another table size (models.ftrl.bits changed): dropped, they were only
    // pending, and their indices would mean other features here.
    in.remove_prefix(1);
    uint64_t bits = 0;
    if (!GetVarint(&in, &bits) || bits != static_cast<uint64_t>(live.model.options().bits)) {
      in = {};
    }
  }
  while (!in.empty() && live.pending.size() < settings.max_pending) {
    uint64_t profile = 0, at = 0, n = 0;
    if (!GetVarint(&in, &profile) || !GetVarint(&in, &at) || !GetVarint(&in, &n) || n > in.size()) {
      break;
    }
    Pending example;
    example.at_ms = UnZigZag(at);
    example.features.resize(n);
    bool ok = true;
    for (learn::Feature& f : example.features) {
      uint64_t index = 0;
      ok = GetVarint(&in, &index) && index < slots && in.size() >= sizeof f.value;
      if (!ok) break;
      f.index = static_cast<uint32_t>(index);
      std::memcpy(&f.value, in.data(), sizeof f.value);
      in.remove_prefix(sizeof f.value);
    }
    // A malformed record, or features of another table size (models.ftrl.bits changed): the
    // rest is dropped; they were only pending.
    if (!ok) break;
    live.expiries.push({example.at_ms + window, profile, example.at_ms});
    live.pending[profile] = std::move(example);
  }
  // Read once: a crash after this start must not label them again.
  rocksdb::WriteBatch remove;
  if (rocksdb::Status s = remove.Delete(store_->models(), key); !s.ok()) {
    return absl::InternalError(ToAbsl(s.ToString()));
  }
  return store_->Write(&remove);
}

absl::StatusOr<ModelVersion> ModelEngine::Rollback(uint32_t workspace_id, ModelKind kind,
                                                   uint64_t version, rocksdb::WriteBatch* batch) {
  auto wit = workspaces_.find(workspace_id);
  if (wit == workspaces_.end() || !wit->second.settings.enabled) {
    return absl::NotFoundError("models are off in this workspace");
  }
  Workspace& ws = wit->second;
  Live& live = *ws.live[static_cast<size_t>(kind)];
  absl::StatusOr<std::optional<std::string>> image =
      store_->Get(store_->models(), ModelKey(workspace_id, ModelName(kind), 'I', version));
  if (!image.ok()) return image.status();
  if (!image->has_value()) {
    return absl::NotFoundError(
        ToAbsl(StrCat("model ", ModelName(kind), " has no stored state for version ", version,
                      " (the latest ", kVersionImagesKept, " versions keep theirs)")));
  }
  absl::StatusOr<learn::FtrlModel> model = learn::FtrlModel::Deserialize(**image);
  if (!model.ok()) return model.status();
  if (model->options().bits != ws.settings.ftrl.bits) {
    return absl::FailedPreconditionError(
        ToAbsl(StrCat("version ", version, " hashed its features into 2^", model->options().bits,
                      " slots; the configured models.ftrl.bits is ", ws.settings.ftrl.bits)));
  }
  live.model = *std::move(model);
  live.model.SetHyperparameters(ws.settings.ftrl);
  CutVersion(ws, kind, "rollback", version, clock_->NowMillis());
  if (absl::Status s = Checkpoint(batch, /*force=*/true); !s.ok()) return s;
  return live.versions.back();
}

// A fresh copy of each weight table every second (2 MiB at the default 18 bits) cost the
// commit thread milliseconds of page faults on a virtualised host, and every request waiting
// on that group commit saw it (/v1/track p99 4-5 ms against 1.8 ms with models off). So the
// copy published before the last one is overwritten in place once no reader holds it: the
// vectors keep their memory and the copy is a memcpy.
std::shared_ptr<const learn::FtrlModel> ModelEngine::PublishedCopy(Live& live) {
  if (live.spare != nullptr && live.spare.use_count() == 1) {
    // use_count() is a relaxed load; the fence orders our writes after the last reader's
    // reads, which its release of the pointer published.
    std::atomic_thread_fence(std::memory_order_acquire);
    *live.spare = live.model;
  } else {
    live.spare = std::make_shared<learn::FtrlModel>(live.model);
  }
  std::swap(live.spare, live.published);
  return live.published;
}

void ModelEngine::Publish(uint32_t workspace_id, Workspace& ws) {
  Published p;
  for (size_t k = 0; k < kModelKinds; ++k) {
    Live& live = *ws.live[k];
    p.models[k] = PublishedCopy(live);
    p.versions[k] = live.versions;
    p.learned[k] = live.model.examples();
    p.pending[k] = live.pending.size();
    p.skipped[k] = live.skipped;
  }
  p.gaps = ws.gaps;
  p.clv = ws.clv;
  p.intent = ws.intent;
  std::lock_guard lock(published_mu_);
  published_[workspace_id] = std::move(p);
}

std::pair<std::shared_ptr<const learn::FtrlModel>, uint64_t> ModelEngine::PublishedModel(
    uint32_t workspace_id, ModelKind kind) const {
  std::lock_guard lock(published_mu_);
  auto it = published_.find(workspace_id);
  if (it == published_.end()) return {nullptr, 0};
  const auto& versions = it->second.versions[static_cast<size_t>(kind)];
  return {it->second.models[static_cast<size_t>(kind)],
          versions.empty() ? 0 : versions.back().version};
}

std::optional<ModelExplanation> ModelEngine::Explain(uint32_t workspace_id, ModelKind kind,
                                                     const Profile& profile, size_t factors) const {
  const ModelSettings* settings = Settings(workspace_id);
  if (settings == nullptr) return std::nullopt;
  auto [model, version] = PublishedModel(workspace_id, kind);
  if (model == nullptr) return std::nullopt;
  learn::FeatureBuilder builder(settings->ftrl.bits, /*keep_names=*/true);
  int64_t at = profile.scores.at_ms != 0 ? profile.scores.at_ms : profile.seen.last_ms;
  ProfileFeatures(profile, at, *settings, &builder);
  ModelExplanation out;
  out.probability = model->Predict(builder.features());
  out.version = version;
  for (const learn::Contribution& c : model->TopContributions(builder.features(), factors)) {
    out.factors.push_back({builder.names()[c.feature], c.logit});
  }
  return out;
}

std::optional<std::pair<double, double>> ModelEngine::InterventionWindowDays(
    uint32_t workspace_id) const {
  std::vector<double> gaps;
  {
    std::lock_guard lock(published_mu_);
    auto it = published_.find(workspace_id);
    if (it == published_.end()) return std::nullopt;
    gaps = it->second.gaps;
  }
  if (gaps.size() < 20) return std::nullopt;
  std::sort(gaps.begin(), gaps.end());
  auto quantile = [&](double q) { return gaps[static_cast<size_t>(q * (gaps.size() - 1))]; };
  return std::make_pair(quantile(0.5), quantile(0.9));
}

void ModelEngine::WriteScores(uint32_t workspace_id, const Profile& profile, int64_t now_ms,
                              JsonWriter& w) const {
  const ModelSettings* settings = Settings(workspace_id);
  std::optional<ModelExplanation> conversion, churn;
  // A profile with no event counted (bot traffic only) has no moment to be scored at.
  if (settings != nullptr && (profile.scores.at_ms != 0 || profile.seen.events != 0)) {
    conversion = Explain(workspace_id, ModelKind::kConversion, profile, 5);
    churn = Explain(workspace_id, ModelKind::kChurn, profile, 5);
  }
  if (!conversion || !churn) {
    w.Null();
    return;
  }
  auto write_common = [&](const ModelExplanation& e) {
    w.Key("probability");
    w.Double(e.probability);
    w.Key("version");
    w.Uint(e.version);
    w.Key("factors");
    w.StartArray();
    for (const ModelExplanation::Factor& f : e.factors) {
      w.StartObject();
      w.Key("feature");
      w.String(f.feature);
      w.Key("contribution");
      w.Double(f.contribution);
      w.EndObject();
    }
    w.EndArray();
  };
  const int64_t at = profile.scores.at_ms != 0 ? profile.scores.at_ms : profile.seen.last_ms;
  w.StartObject();
  w.Key("at");
  w.String(FormatIso8601(at));
  w.Key("conversion");
  w.StartObject();
  write_common(*conversion);
  w.Key("leadScore");
  w.Int(static_cast<int64_t>(LeadScore(conversion->probability)));
  w.EndObject();
  w.Key("churn");
  w.StartObject();
  write_common(*churn);
  w.Key("risk");
  w.String(churn->probability >= settings->churn_high     ? "high"
           : churn->probability >= settings->churn_medium ? "medium"
                                                          : "low");
  w.Key("interventionWindow");
  if (auto window = InterventionWindowDays(workspace_id)) {
    w.StartObject();
    w.Key("fromDays");
    w.Double(window->first);
    w.Key("toDays");
    w.Double(window->second);
    w.Key("from");
    w.String(FormatIso8601(profile.seen.last_ms + static_cast<int64_t>(window->first * kDayMs)));
    w.Key("to");
    w.String(FormatIso8601(profile.seen.last_ms + static_cast<int64_t>(window->second * kDayMs)));
    w.EndObject();
  } else {
    w.Null();
  }
  w.EndObject();
  w.Key("lifetimeValue");
  std::optional<ClvFit> clv;
  {
    std::lock_guard lock(published_mu_);
    auto it = published_.find(workspace_id);
    if (it != published_.end() && !it->second.clv.empty()) clv = it->second.clv.back();
  }
  std::optional<learn::RfmSummary> rfm = ProfileRfm(profile, now_ms);
  if (!clv || !rfm) {
    w.Null();
  } else {
    learn::ClvOptions options;
    options.horizon = static_cast<double>(settings->clv_horizon_days) / 7;
    options.monthly_discount_rate = settings->clv_monthly_discount;
    learn::ClvEstimate e = learn::EstimateClv(clv->model, *rfm, options);
    auto number = [&](const char* key, double v) {
      w.Key(key);
      if (std::isfinite(v)) {
        w.Double(v);
      } else {
        w.Null();
      }
    };
    w.StartObject();
    number("probabilityAlive", e.prob_alive);
    number("expectedPurchases", e.expected_purchases);
    number("expectedSpendPerPurchase", e.expected_spend);
    number("expectedValue", e.value);
    number("historicalValue", profile.revenue);
    w.Key("horizonDays");
    w.Int(settings->clv_horizon_days);
    w.Key("version");
    w.Uint(clv->version);
    w.EndObject();
  }
  w.EndObject();
}

bool ModelEngine::WriteIntent(uint32_t workspace_id, bool with_versions, JsonWriter& w) const {
  if (Settings(workspace_id) == nullptr) return false;
  std::lock_guard lock(published_mu_);
  auto it = published_.find(workspace_id);
  if (it == published_.end()) return false;
  const std::vector<IntentVersion>& versions = it->second.intent;
  auto write_version = [&](const IntentVersion& v) {
    w.StartObject();
    WriteVersionHead(w, v.version, "trainedAt", v.trained_ms, v.reason, v.restored);
    w.Key("stored");
    w.Bool(v.stored);
    w.Key("examples");
    w.Uint(v.examples);
    w.Key("labels");
    w.Uint(v.labels);
    w.Key("metrics");
    w.StartObject();
    w.Key("heldOut");
    w.Uint(v.holdout);
    w.Key("accuracy");
    if (v.holdout > 0) {
      w.Double(v.accuracy);
    } else {
      w.Null();  // nothing was held out to measure it on
    }
    w.EndObject();
    w.EndObject();
  };
  w.StartObject();
  w.Key("name");
  w.String(kIntentName);
  w.Key("algorithm");
  w.String("fastText supervised classifier (word and character n-grams, softmax)");
  w.Key("version");
  w.Uint(versions.empty() ? 0 : versions.back().version);
  w.Key("latest");
  if (versions.empty()) {
    w.Null();
  } else {
    write_version(versions.back());
  }
  if (with_versions) {
    w.Key("versions");
    w.StartArray();
    for (const IntentVersion& v : versions) write_version(v);
    w.EndArray();
  }
  w.EndObject();
  return true;
}

bool ModelEngine::WriteClv(uint32_t workspace_id, bool with_versions, JsonWriter& w) const {
  const ModelSettings* settings = Settings(workspace_id);
  if (settings == nullptr) return false;
  std::lock_guard lock(published_mu_);
  auto it = published_.find(workspace_id);
  if (it == published_.end()) return false;
  const std::vector<ClvFit>& versions = it->second.clv;
  w.StartObject();
  w.Key("name");
  w.String(kClvName);
  w.Key("algorithm");
  w.String("BG/NBD purchases + Gamma-Gamma spend, maximum likelihood (libLBFGS)");
  w.Key("refitEveryHours");
  w.Double(static_cast<double>(settings->clv_refit_every_ms) / 3'600'000);
  w.Key("version");
  w.Uint(versions.empty() ? 0 : versions.back().version);
  w.Key("latest");
  if (versions.empty()) {
    w.Null();
  } else {
    WriteClvFit(versions.back(), w);
  }
  if (with_versions) {
    w.Key("versions");
    w.StartArray();
    for (const ClvFit& fit : versions) WriteClvFit(fit, w);
    w.EndArray();
  }
  w.EndObject();
  return true;
}

uint64_t ModelEngine::learned(uint32_t workspace_id, ModelKind kind) const {
  auto it = workspaces_.find(workspace_id);
  return it == workspaces_.end() ? 0 : it->second.live[static_cast<size_t>(kind)]->model.examples();
}

size_t ModelEngine::pending(uint32_t workspace_id, ModelKind kind) const {
  auto it = workspaces_.find(workspace_id);
  return it == workspaces_.end() ? 0 : it->second.live[static_cast<size_t>(kind)]->pending.size();
}

bool ModelEngine::WriteModel(uint32_t workspace_id, ModelKind kind, bool with_versions,
                             JsonWriter& w) const {
  const ModelSettings* settings = Settings(workspace_id);
  if (settings == nullptr) return false;
  std::lock_guard lock(published_mu_);
  auto it = published_.find(workspace_id);
  if (it == published_.end()) return false;
  const Published& p = it->second;
  const size_t k = static_cast<size_t>(kind);
  auto write_metrics = [&](const ModelMetrics& m) {
    w.StartObject();
    w.Key("examples");
    w.Uint(m.examples);
    w.Key("positives");
    w.Uint(m.positives);
    w.Key("auc");
    w.Double(m.auc);
    w.Key("logLoss");
    w.Double(m.log_loss);
    w.Key("calibrationError");
    w.Double(m.calibration_error);
    w.Key("psi");
    w.Double(m.psi);
    w.EndObject();
  };
  auto write_version = [&](const ModelVersion& v) {
    w.StartObject();
    WriteVersionHead(w, v.version, "createdAt", v.created_ms, v.reason, v.restored);
    w.Key("examplesTotal");
    w.Uint(v.examples_total);
    w.Key("metrics");
    write_metrics(v.metrics);
    w.EndObject();
  };
  w.StartObject();
  w.Key("name");
  w.String(ModelName(kind));
  w.Key("algorithm");
  w.String("FTRL-Proximal logistic regression, Platt-calibrated");
  w.Key("label");
  if (kind == ModelKind::kConversion) {
    w.String(StrCat("'", settings->goal_event, "' within ",
                    FormatDurationMillis(settings->conversion_window_ms)));
  } else {
    w.String(StrCat(
        "no event for ", FormatDurationMillis(settings->churn_inactive_ms),
        settings->cancel_event.empty() ? "" : StrCat(", or '", settings->cancel_event, "'")));
  }
  w.Key("version");
  w.Uint(p.versions[k].empty() ? 0 : p.versions[k].back().version);
  w.Key("examplesLearned");
  w.Uint(p.learned[k]);
  w.Key("pendingExamples");
  w.Uint(p.pending[k]);
  w.Key("skippedExamples");
  w.Uint(p.skipped[k]);
  const double psi = p.versions[k].empty() ? 0 : p.versions[k].back().metrics.psi;
  w.Key("drift");
  w.StartObject();
  w.Key("psi");
  w.Double(psi);
  w.Key("level");
  // The usual reading of the index: below 0.1 stable, 0.1-0.25 moderate, above 0.25 major.
  w.String(psi < 0.1 ? "stable" : psi < 0.25 ? "moderate" : "major");
  w.EndObject();
  w.Key("latest");
  if (p.versions[k].empty()) {
    w.Null();
  } else {
    write_version(p.versions[k].back());
  }
  if (with_versions) {
    w.Key("versions");
    w.StartArray();
    for (const ModelVersion& v : p.versions[k]) write_version(v);
    w.EndArray();
  }
  w.EndObject();
  return true;
}

}  // namespace whisperer::state
