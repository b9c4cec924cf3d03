// k-means clustering with k chosen by the silhouette, for persona discovery
// (`whisperer personas discover`): groups customers by standardised behavioural features.
//
//   Standardize   each feature to mean 0 and standard deviation 1 (a constant feature to 0), so
//                 that no feature weighs more because of its unit;
//   KMeans        Lloyd's iterations from k-means++ seeds (deterministic for a seed), the best of
//                 a few restarts by within-cluster sum of squares;
//   Silhouette    the mean silhouette coefficient, (b - a) / max(a, b) per point, where a is the
//                 mean distance to its own cluster and b to the nearest other; on at most
//                 `sample` points (chosen by the seed), since it costs O(n^2);
//   ChooseK       runs k = k_min..k_max and keeps the clustering with the highest silhouette.
//
// Written here rather than taken from a library: Debian packages no small C++ k-means (mlpack
// would bring Armadillo and a large dependency for forty lines), and this runs offline on at
// most millions of rows of about ten features.
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace whisperer::learn {

using Matrix = std::vector<std::vector<double>>;  // rows of equal length

struct Standardized {
  Matrix rows;
  std::vector<double> mean;    // per feature, of the input
  std::vector<double> stddev;  // per feature, of the input (0 for a constant feature)
};
Standardized Standardize(const Matrix& rows);

struct Clustering {
  size_t k = 0;
  Matrix centroids;         // k rows, in the standardized space
  std::vector<int> labels;  // per row, 0..k-1
  std::vector<size_t> sizes;
  double inertia = 0;     // within-cluster sum of squared distances
  double silhouette = 0;  // mean silhouette coefficient, -1..1
};

Clustering KMeans(const Matrix& rows, size_t k, uint64_t seed, int restarts = 4,
                  int max_iterations = 100);

double Silhouette(const Matrix& rows, const std::vector<int>& labels, size_t k, uint64_t seed,
                  size_t sample = 2000);

// The clustering with the best silhouette for k in [k_min, k_max] (k_max capped at the number
// of distinct rows). Every candidate's silhouette is in `tried` when given, indexed by k.
Clustering ChooseK(const Matrix& rows, size_t k_min, size_t k_max, uint64_t seed,
                   std::vector<double>* tried = nullptr);

}  // namespace whisperer::learn
