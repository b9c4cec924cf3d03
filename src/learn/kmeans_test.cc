#include "learn/kmeans.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>

namespace whisperer::learn {
namespace {

// `per` points around each centre, spread `spread` in every dimension.
Matrix Blobs(const Matrix& centres, size_t per, double spread, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<double> noise(0, spread);
  Matrix rows;
  for (const auto& c : centres) {
    for (size_t i = 0; i < per; ++i) {
      std::vector<double> row = c;
      for (double& v : row) v += noise(rng);
      rows.push_back(row);
    }
  }
  return rows;
}

TEST(Standardize, MeanZeroUnitDeviationAndConstantsToZero) {
  Standardized s = Standardize({{1, 10, 5}, {3, 30, 5}});
  EXPECT_EQ(s.mean, (std::vector<double>{2, 20, 5}));
  EXPECT_EQ(s.stddev, (std::vector<double>{1, 10, 0}));
  EXPECT_EQ(s.rows, (Matrix{{-1, -1, 0}, {1, 1, 0}}));
}

TEST(KMeans, FindsSeparatedBlobsAndTheirSizes) {
  Matrix rows = Blobs({{0, 0}, {10, 0}, {0, 10}}, 50, 0.5, 1);
  rows.resize(rows.size() - 20);  // the third blob has 30 points
  Clustering c = KMeans(rows, 3, 7);
  ASSERT_EQ(c.k, 3u);
  std::vector<size_t> sizes = c.sizes;
  std::sort(sizes.begin(), sizes.end());
  EXPECT_EQ(sizes, (std::vector<size_t>{30, 50, 50}));
  // Every blob is one cluster.
  for (size_t b = 0; b < 3; ++b) {
    size_t first = b * 50;
    if (first >= rows.size()) break;
    for (size_t i = first; i < std::min(first + 50, rows.size()); ++i) {
      EXPECT_EQ(c.labels[i], c.labels[first]) << i;
    }
  }
  EXPECT_GT(c.silhouette, 0.8);
}

TEST(KMeans, SameSeedSameAnswer) {
  Matrix rows = Blobs({{0, 0, 0}, {4, 4, 4}}, 100, 1.5, 2);
  Clustering a = KMeans(rows, 4, 11), b = KMeans(rows, 4, 11);
  EXPECT_EQ(a.labels, b.labels);
  EXPECT_EQ(a.inertia, b.inertia);
}

TEST(Silhouette, PerfectAndPoorClusterings) {
  Matrix rows = {{0}, {0.1}, {10}, {10.1}};
  EXPECT_NEAR(Silhouette(rows, {0, 0, 1, 1}, 2, 1), 0.99, 0.01);
  EXPECT_LT(Silhouette(rows, {0, 1, 0, 1}, 2, 1), 0);
  EXPECT_EQ(Silhouette(rows, {0, 0, 0, 0}, 1, 1), 0);
}

TEST(ChooseK, PicksTheNumberOfBlobs) {
  Matrix rows = Blobs({{0, 0}, {8, 0}, {0, 8}, {8, 8}}, 40, 0.6, 3);
  std::vector<double> tried;
  Clustering c = ChooseK(rows, 2, 8, 5, &tried);
  EXPECT_EQ(c.k, 4u);
  ASSERT_EQ(tried.size(), 9u);
  for (size_t k = 2; k <= 8; ++k) EXPECT_LE(tried[k], c.silhouette) << k;
}

TEST(ChooseK, FewDistinctRowsCapK) {
  Matrix rows = {{1, 1}, {1, 1}, {5, 5}, {5, 5}, {5, 5}};
  Clustering c = ChooseK(rows, 2, 8, 1);
  EXPECT_EQ(c.k, 2u);
  Clustering one = ChooseK({{2, 2}, {2, 2}}, 2, 8, 1);
  EXPECT_EQ(one.k, 1u);
  EXPECT_EQ(one.sizes, (std::vector<size_t>{2}));
}

}  // namespace
}  // namespace whisperer::learn
