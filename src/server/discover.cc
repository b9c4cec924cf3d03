// `whisperer personas discover`: clusters a workspace's stored profiles on their behavioural
// features (state/personas.h DiscoveryFeatures; learn/kmeans.h) and describes each cluster by
// the features that set it apart, with a condition to start a persona rule from.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <map>
#include <ostream>

#include "common/json_writer.h"
#include "common/status.h"
#include "common/strings.h"
#include "learn/kmeans.h"
#include "server/server.h"
#include "server/workspaces.h"
#include "state/conditions.h"
#include "state/personas.h"
#include "state/profiles.h"
#include "storage/store.h"

namespace whisperer::server {
namespace {

// Features shown per cluster, and how far (in standard deviations of log(1 + x)) a cluster's
// centre must be from the whole's to count as setting it apart.
constexpr size_t kDefiningFeatures = 3;
constexpr double kDefiningZ = 0.5;

std::string Number(double v) {
  char buf[32];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    std::snprintf(buf, sizeof(buf), "%.0f", v);
  } else {
    std::snprintf(buf, sizeof(buf), "%.3g", v);
  }
  return buf;
}

double Quantile(std::vector<double> values, double q) {
  if (values.empty()) return 0;
  size_t i = static_cast<size_t>(q * static_cast<double>(values.size() - 1));
  std::nth_element(values.begin(), values.begin() + static_cast<ptrdiff_t>(i), values.end());
  return values[i];
}

struct Defining {
  size_t feature;
  double z;           // the cluster centre, in standard deviations from the whole
  double mean;        // in the feature's own unit
  double all_mean;    // of every profile
  std::string start;  // a condition that holds for most of the cluster
};

}  // namespace

absl::Status DiscoverPersonas(const DiscoverCommand& command, std::ostream& out,
                              std::ostream& log) {
  absl::StatusOr<WorkspaceReader> reader = OpenWorkspaceReader(command.data_dir, command.workspace);
  if (!reader.ok()) return reader.status();
  const storage::Store& store = *reader->store;
  const uint32_t ws = reader->workspace_id;

  // Pass 1: the workspace's most frequent event names become share features, by the name
  // conditions read them with (profile.shares.<name>), which joins spellings of one event.
  std::map<std::string, uint64_t> totals;
  absl::Status s =
      state::ProfileEngine::ForEachProfile(store, ws, [&](uint32_t, state::Profile&& p) {
        for (const auto& [name, n] : p.event_counts) {
          if (name != state::kOtherEntry) totals[state::CountName(name)] += n;
        }
      });
  if (!s.ok()) return s;
  std::vector<std::pair<std::string, uint64_t>> by_count(totals.begin(), totals.end());
  std::stable_sort(by_count.begin(), by_count.end(),
                   [](const auto& a, const auto& b) { return a.second > b.second; });
  std::vector<std::string> event_names;
  for (const auto& [name, n] : by_count) {
    if (event_names.size() == command.event_names) break;
    event_names.push_back(name);
  }
  const std::vector<std::string> names = state::DiscoveryFeatureNames(event_names);

  // Pass 2: the features of every profile with events.
  learn::Matrix raw;
  s = state::ProfileEngine::ForEachProfile(store, ws, [&](uint32_t, state::Profile&& p) {
    if (p.seen.events == 0) return;  // bots only
    raw.push_back(state::DiscoveryFeatures(p, event_names));
    if (raw.size() % 100'000 == 0) log << "read " << raw.size() << " profiles\n";
  });
  if (!s.ok()) return s;
  if (raw.size() < 2) {
    return MakeError(absl::StatusCode::kFailedPrecondition, "not_enough_profiles",
                     StrCat("workspace ", command.workspace, " has ", raw.size(),
                            " profiles with events; clustering needs at least 2"));
  }
  log << "clustering " << raw.size() << " profiles on " << names.size() << " features, k = 2.."
      << command.max_k << "\n";

  // Counts are heavy-tailed: cluster on log(1 + x), standardized.
  learn::Matrix logs = raw;
  for (auto& row : logs) {
    for (double& v : row) v = std::log1p(std::max(0.0, v));
  }
  learn::Standardized standard = learn::Standardize(logs);
  std::vector<double> tried;
  learn::Clustering c = learn::ChooseK(standard.rows, 2, command.max_k, command.seed, &tried);

  std::vector<double> all_mean(names.size(), 0);
  std::vector<double> all_min = raw.front(), all_max = raw.front();
  for (const auto& row : raw) {
    for (size_t f = 0; f < names.size(); ++f) {
      all_min[f] = std::min(all_min[f], row[f]);
      all_max[f] = std::max(all_max[f], row[f]);
    }
  }
  for (const auto& row : raw) {
    for (size_t f = 0; f < names.size(); ++f)
      all_mean[f] += row[f] / static_cast<double>(raw.size());
  }
  std::vector<std::vector<Defining>> defining(c.k);
  for (size_t k = 0; k < c.k; ++k) {
    for (size_t f = 0; f < names.size(); ++f) {
      double z = c.centroids[k][f];
      if (std::fabs(z) < kDefiningZ) continue;
      std::vector<double> values;
      for (size_t i = 0; i < raw.size(); ++i) {
        if (static_cast<size_t>(c.labels[i]) == k) values.push_back(raw[i][f]);
      }
      double mean = 0;
      for (double v : values) mean += v / static_cast<double>(values.size());
      // A threshold most of the cluster passes (three quarters, else half) and that is not
      // passed by every profile anyway.
      std::string start;
      if (names[f] == "profile.returning") {
        start = z > 0 ? "profile.returning" : "not profile.returning";
      } else if (z > 0) {
        for (double q : {0.25, 0.5}) {
          double t = Quantile(values, q);
          if (start.empty() && t > all_min[f]) start = StrCat(names[f], " >= ", Number(t));
        }
      } else {
        for (double q : {0.75, 0.5}) {
          double t = Quantile(values, q);
          if (start.empty() && t < all_max[f]) start = StrCat(names[f], " <= ", Number(t));
        }
      }
      defining[k].push_back({f, z, mean, all_mean[f], std::move(start)});
    }
    std::sort(defining[k].begin(), defining[k].end(),
              [](const Defining& a, const Defining& b) { return std::fabs(a.z) > std::fabs(b.z); });
    if (defining[k].size() > kDefiningFeatures) defining[k].resize(kDefiningFeatures);
  }
  // Largest cluster first.
  std::vector<size_t> order(c.k);
  for (size_t k = 0; k < c.k; ++k) order[k] = k;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return c.sizes[a] > c.sizes[b]; });

  if (command.json) {
    std::string body;
    JsonWriter w(&body);
    w.StartObject();
    w.Key("workspace");
    w.String(command.workspace);
    w.Key("profiles");
    w.Uint(raw.size());
    w.Key("features");
    w.StartArray();
    for (const std::string& n : names) w.String(n);
    w.EndArray();
    w.Key("means");  // of every profile, per feature
    w.StartArray();
    for (double m : all_mean) w.Double(m);
    w.EndArray();
    w.Key("k");
    w.Uint(c.k);
    w.Key("silhouette");
    w.Double(c.silhouette);
    w.Key("silhouetteByK");
    w.StartObject();
    for (size_t k = 2; k < tried.size(); ++k) {
      w.Key(std::to_string(k));
      w.Double(tried[k]);
    }
    w.EndObject();
    w.Key("clusters");
    w.StartArray();
    for (size_t k : order) {
      w.StartObject();
      w.Key("profiles");
      w.Uint(c.sizes[k]);
      w.Key("share");
      w.Double(static_cast<double>(c.sizes[k]) / static_cast<double>(raw.size()));
      w.Key("defining");
      w.StartArray();
      for (const Defining& d : defining[k]) {
        w.StartObject();
        w.Key("feature");
        w.String(names[d.feature]);
        w.Key("mean");
        w.Double(d.mean);
        w.Key("allMean");
        w.Double(d.all_mean);
        w.Key("z");
        w.Double(d.z);
        w.Key("condition");
        w.String(d.start);
        w.EndObject();
      }
      w.EndArray();
      w.EndObject();
    }
    w.EndArray();
    w.EndObject();
    out << body << "\n";
    return absl::OkStatus();
  }

  out << "workspace " << command.workspace << ": " << raw.size() << " profiles, " << names.size()
      << " features; k = " << c.k << " (silhouette " << Number(c.silhouette) << "; by k:";
  for (size_t k = 2; k < tried.size(); ++k) out << " " << k << "=" << Number(tried[k]);
  out << ")\n";
  for (size_t rank = 0; rank < order.size(); ++rank) {
    size_t k = order[rank];
    out << "\ncluster " << rank + 1 << ": " << c.sizes[k] << " profiles ("
        << Number(100.0 * static_cast<double>(c.sizes[k]) / static_cast<double>(raw.size()))
        << "%)\n";
    if (defining[k].empty()) out << "  close to the whole on every feature\n";
    for (const Defining& d : defining[k]) {
      out << "  " << names[d.feature] << ": mean " << Number(d.mean) << " (all "
          << Number(d.all_mean) << "), z " << (d.z > 0 ? "+" : "") << Number(d.z);
      if (!d.start.empty()) out << "; rule: " << d.start;
      out << "\n";
    }
  }
  return absl::OkStatus();
}

}  // namespace whisperer::server
