#include "eval/metrics.h"

#include <cmath>

#include "gtest/gtest.h"

namespace whisperer::eval {
namespace {

TEST(MetricsTest, AucCountsOrderedPairsAndHalvesTies) {
  std::vector<double> s = {0.1, 0.4, 0.35, 0.8};
  std::vector<int> y = {0, 0, 1, 1};
  // Pairs (pos, neg): (0.35,0.1) yes, (0.35,0.4) no, (0.8,*) yes twice -> 3 of 4.
  EXPECT_DOUBLE_EQ(Auc(s, y), 0.75);
  std::vector<double> tied = {0.5, 0.5, 0.5, 0.5};
  EXPECT_DOUBLE_EQ(Auc(tied, y), 0.5);
  std::vector<int> one_class = {1, 1, 1, 1};
  EXPECT_DOUBLE_EQ(Auc(s, one_class), 0.5);
}

TEST(MetricsTest, LogLossAndCalibration) {
  std::vector<double> p = {0.9, 0.1};
  std::vector<int> y = {1, 0};
  EXPECT_NEAR(LogLoss(p, y), -std::log(0.9), 1e-12);
  // Bin [0.9,1): mean p 0.9, rate 1; bin [0.1,0.2): mean 0.1, rate 0 -> |0.9-1| + |0.1-0| over 2.
  EXPECT_NEAR(CalibrationError(p, y), 0.1, 1e-12);
  std::vector<double> zero_one = {0.0, 1.0};
  EXPECT_LT(LogLoss(zero_one, y), 40);  // clipped, not infinite
}

TEST(MetricsTest, PearsonAndAccuracy) {
  std::vector<double> x = {1, 2, 3, 4};
  std::vector<double> y = {2, 4, 6, 8};
  std::vector<double> z = {8, 6, 4, 2};
  std::vector<double> flat = {1, 1, 1, 1};
  EXPECT_NEAR(Pearson(x, y), 1.0, 1e-12);
  EXPECT_NEAR(Pearson(x, z), -1.0, 1e-12);
  EXPECT_EQ(Pearson(x, flat), 0.0);
  std::vector<std::string> a = {"a", "b", "c", "d"};
  std::vector<std::string> b = {"a", "x", "c", "y"};
  EXPECT_DOUBLE_EQ(Accuracy(a, b), 0.5);
}

}  // namespace
}  // namespace whisperer::eval
