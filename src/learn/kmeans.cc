#include "learn/kmeans.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>

namespace whisperer::learn {
namespace {

double Distance2(const std::vector<double>& a, const std::vector<double>& b) {
  double d = 0;
  for (size_t i = 0; i < a.size(); ++i) d += (a[i] - b[i]) * (a[i] - b[i]);
  return d;
}

// Uniform in [0, 1), the same on every platform for a seed.
double Uniform(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

size_t Nearest(const std::vector<double>& row, const Matrix& centroids, double* d2) {
  size_t best = 0;
  double best_d = std::numeric_limits<double>::infinity();
  for (size_t c = 0; c < centroids.size(); ++c) {
    double d = Distance2(row, centroids[c]);
    if (d < best_d) {
      best_d = d;
      best = c;
    }
  }
  if (d2 != nullptr) *d2 = best_d;
  return best;
}

// k-means++: each next seed is a row drawn with probability proportional to its squared
// distance from the nearest seed so far.
Matrix Seeds(const Matrix& rows, size_t k, std::mt19937_64& rng) {
  Matrix seeds;
  seeds.push_back(rows[rng() % rows.size()]);
  std::vector<double> d2(rows.size(), std::numeric_limits<double>::infinity());
  while (seeds.size() < k) {
    double total = 0;
    for (size_t i = 0; i < rows.size(); ++i) {
      d2[i] = std::min(d2[i], Distance2(rows[i], seeds.back()));
      total += d2[i];
    }
    if (total <= 0) break;  // fewer distinct rows than k
    double target = Uniform(rng) * total;
    size_t pick = rows.size() - 1;
    for (size_t i = 0; i < rows.size(); ++i) {
      target -= d2[i];
      if (target < 0) {
        pick = i;
        break;
      }
    }
    seeds.push_back(rows[pick]);
  }
  return seeds;
}

Clustering Lloyd(const Matrix& rows, Matrix centroids, int max_iterations) {
  const size_t k = centroids.size();
  const size_t dims = rows.front().size();
  Clustering c;
  c.k = k;
  c.labels.assign(rows.size(), -1);
  for (int iteration = 0; iteration < max_iterations; ++iteration) {
    bool changed = false;
    for (size_t i = 0; i < rows.size(); ++i) {
      int label = static_cast<int>(Nearest(rows[i], centroids, nullptr));
      changed = changed || label != c.labels[i];
      c.labels[i] = label;
    }
    if (!changed) break;
    Matrix sums(k, std::vector<double>(dims, 0));
    std::vector<size_t> counts(k, 0);
    for (size_t i = 0; i < rows.size(); ++i) {
      size_t l = static_cast<size_t>(c.labels[i]);
      ++counts[l];
      for (size_t d = 0; d < dims; ++d) sums[l][d] += rows[i][d];
    }
    for (size_t l = 0; l < k; ++l) {
      if (counts[l] == 0) continue;  // keeps its centroid; no row is nearest to it
      for (size_t d = 0; d < dims; ++d) centroids[l][d] = sums[l][d] / counts[l];
    }
  }
  c.centroids = std::move(centroids);
  c.sizes.assign(k, 0);
  for (size_t i = 0; i < rows.size(); ++i) {
    ++c.sizes[static_cast<size_t>(c.labels[i])];
    c.inertia += Distance2(rows[i], c.centroids[static_cast<size_t>(c.labels[i])]);
  }
  return c;
}

size_t DistinctRows(const Matrix& rows) {
  Matrix sorted = rows;
  std::sort(sorted.begin(), sorted.end());
  return static_cast<size_t>(std::unique(sorted.begin(), sorted.end()) - sorted.begin());
}

}  // namespace

Standardized Standardize(const Matrix& rows) {
  Standardized s;
  if (rows.empty()) return s;
  const size_t dims = rows.front().size();
  const double n = static_cast<double>(rows.size());
  s.mean.assign(dims, 0);
  s.stddev.assign(dims, 0);
  for (const auto& row : rows) {
    for (size_t d = 0; d < dims; ++d) s.mean[d] += row[d] / n;
  }
  for (const auto& row : rows) {
    for (size_t d = 0; d < dims; ++d) s.stddev[d] += (row[d] - s.mean[d]) * (row[d] - s.mean[d]);
  }
  for (size_t d = 0; d < dims; ++d) {
    s.stddev[d] = std::sqrt(s.stddev[d] / n);
    // A constant feature's mean carries rounding error, and so its deviation does too.
    if (s.stddev[d] <= 1e-12 * (std::fabs(s.mean[d]) + 1)) s.stddev[d] = 0;
  }
  s.rows = rows;
  for (auto& row : s.rows) {
    for (size_t d = 0; d < dims; ++d) {
      row[d] = s.stddev[d] > 0 ? (row[d] - s.mean[d]) / s.stddev[d] : 0;
    }
  }
  return s;
}

Clustering KMeans(const Matrix& rows, size_t k, uint64_t seed, int restarts, int max_iterations) {
  std::mt19937_64 rng(seed);
  Clustering best;
  if (rows.empty() || k == 0) return best;
  for (int r = 0; r < std::max(1, restarts); ++r) {
    Clustering c = Lloyd(rows, Seeds(rows, k, rng), max_iterations);
    if (best.k == 0 || c.inertia < best.inertia) best = std::move(c);
  }
  best.silhouette = Silhouette(rows, best.labels, best.k, seed);
  return best;
}

double Silhouette(const Matrix& rows, const std::vector<int>& labels, size_t k, uint64_t seed,
                  size_t sample) {
  if (k < 2 || rows.size() < 2) return 0;
  std::vector<size_t> picked(rows.size());
  std::iota(picked.begin(), picked.end(), 0);
  if (picked.size() > sample) {
    std::mt19937_64 rng(seed ^ 0x5137ull);
    for (size_t i = 0; i < sample; ++i) {
      size_t j = i + static_cast<size_t>(rng() % (picked.size() - i));
      std::swap(picked[i], picked[j]);
    }
    picked.resize(sample);
  }
  double total = 0;
  std::vector<double> sum(k);
  std::vector<size_t> count(k);
  for (size_t i : picked) {
    std::fill(sum.begin(), sum.end(), 0);
    std::fill(count.begin(), count.end(), 0);
    for (size_t j : picked) {
      if (j == i) continue;
      size_t l = static_cast<size_t>(labels[j]);
      sum[l] += std::sqrt(Distance2(rows[i], rows[j]));
      ++count[l];
    }
    size_t own = static_cast<size_t>(labels[i]);
    if (count[own] == 0) continue;  // alone in its cluster (in the sample): counts as 0
    double a = sum[own] / static_cast<double>(count[own]);
    double b = std::numeric_limits<double>::infinity();
    for (size_t l = 0; l < k; ++l) {
      if (l != own && count[l] > 0) b = std::min(b, sum[l] / static_cast<double>(count[l]));
    }
    if (std::isinf(b)) continue;
    double m = std::max(a, b);
    total += m > 0 ? (b - a) / m : 0;
  }
  return total / static_cast<double>(picked.size());
}

Clustering ChooseK(const Matrix& rows, size_t k_min, size_t k_max, uint64_t seed,
                   std::vector<double>* tried) {
  Clustering best;
  if (rows.empty()) return best;
  k_max = std::min(k_max, DistinctRows(rows));
  k_min = std::max<size_t>(k_min, 2);
  if (tried != nullptr) tried->assign(k_max + 1, 0);
  for (size_t k = k_min; k <= k_max; ++k) {
    Clustering c = KMeans(rows, k, seed);
    if (tried != nullptr) (*tried)[k] = c.silhouette;
    if (best.k == 0 || c.silhouette > best.silhouette) best = std::move(c);
  }
  if (best.k == 0) best = KMeans(rows, 1, seed);  // one distinct row: one cluster
  return best;
}

}  // namespace whisperer::learn
