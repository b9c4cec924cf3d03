// Quality metrics shared by the evaluation harness and the model registry.
// Thread-safety: pure functions.
#pragma once

#include <span>
#include <string>
#include <vector>

namespace whisperer::eval {

// Area under the ROC curve of `scores` for binary `labels` (ties count one half), by ranks.
// 0.5 when one class is missing.
double Auc(std::span<const double> scores, std::span<const int> labels);

// Mean negative log-likelihood of probabilities `p` (clipped to [1e-15, 1 - 1e-15]).
double LogLoss(std::span<const double> p, std::span<const int> labels);

// Expected calibration error: the example-weighted mean |mean p - positive rate| over `bins`
// equal-width probability bins.
double CalibrationError(std::span<const double> p, std::span<const int> labels, int bins = 10);

// Pearson correlation of x and y; 0 when either is constant.
double Pearson(std::span<const double> x, std::span<const double> y);

// The share of `predicted` equal to `truth`, position by position.
double Accuracy(std::span<const std::string> predicted, std::span<const std::string> truth);

}  // namespace whisperer::eval
