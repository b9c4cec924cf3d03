#include "eval/metrics.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace whisperer::eval {

double Auc(std::span<const double> scores, std::span<const int> labels) {
  const size_t n = scores.size();
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), 0);
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) { return scores[a] < scores[b]; });
  // Mann-Whitney U: the sum of the positives' ranks, tied scores sharing their mean rank.
  double positive_rank_sum = 0;
  size_t positives = 0;
  for (size_t i = 0; i < n;) {
    size_t j = i;
    while (j < n && scores[order[j]] == scores[order[i]]) ++j;
    double mean_rank = (static_cast<double>(i + 1) + static_cast<double>(j)) / 2;
    for (size_t k = i; k < j; ++k) {
      if (labels[order[k]]) {
        positive_rank_sum += mean_rank;
        ++positives;
      }
    }
    i = j;
  }
  size_t negatives = n - positives;
  if (positives == 0 || negatives == 0) return 0.5;
  double np = static_cast<double>(positives);
  return (positive_rank_sum - np * (np + 1) / 2) / (np * static_cast<double>(negatives));
}

double LogLoss(std::span<const double> p, std::span<const int> labels) {
  if (p.empty()) return 0;
  double sum = 0;
  for (size_t i = 0; i < p.size(); ++i) {
    double q = std::clamp(p[i], 1e-15, 1 - 1e-15);
    sum -= labels[i] ? std::log(q) : std::log(1 - q);
  }
  return sum / static_cast<double>(p.size());
}

double CalibrationError(std::span<const double> p, std::span<const int> labels, int bins) {
  if (p.empty() || bins <= 0) return 0;
  std::vector<double> sum_p(bins), sum_y(bins);
  std::vector<size_t> count(bins);
  for (size_t i = 0; i < p.size(); ++i) {
    int b = std::min(bins - 1, static_cast<int>(std::clamp(p[i], 0.0, 1.0) * bins));
    sum_p[b] += p[i];
    sum_y[b] += labels[i];
    ++count[b];
  }
  double error = 0;
  for (int b = 0; b < bins; ++b) error += std::abs(sum_p[b] - sum_y[b]);
  return error / static_cast<double>(p.size());
}

double Pearson(std::span<const double> x, std::span<const double> y) {
  const size_t n = std::min(x.size(), y.size());
  if (n == 0) return 0;
  double mx = std::accumulate(x.begin(), x.begin() + n, 0.0) / static_cast<double>(n);
  double my = std::accumulate(y.begin(), y.begin() + n, 0.0) / static_cast<double>(n);
  double sxy = 0, sxx = 0, syy = 0;
  for (size_t i = 0; i < n; ++i) {
    sxy += (x[i] - mx) * (y[i] - my);
    sxx += (x[i] - mx) * (x[i] - mx);
    syy += (y[i] - my) * (y[i] - my);
  }
  if (sxx == 0 || syy == 0) return 0;
  return sxy / std::sqrt(sxx * syy);
}

double Accuracy(std::span<const std::string> predicted, std::span<const std::string> truth) {
  const size_t n = std::min(predicted.size(), truth.size());
  if (n == 0) return 0;
  size_t right = 0;
  for (size_t i = 0; i < n; ++i) right += predicted[i] == truth[i];
  return static_cast<double>(right) / static_cast<double>(n);
}

}  // namespace whisperer::eval
