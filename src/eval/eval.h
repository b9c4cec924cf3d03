// The evaluation harness: `whisperer eval TASK --data DIR`.
//
// Each task reads one public dataset from the datasets folder `data_dir` (../shared/data or
// $WHISPERER_DATA; each dataset's README says what is in it), trains and scores the product's
// own model on it exactly as the server would, and returns its figures as one JSON object.
// scripts/eval.py (`make eval`) runs every task, computes the reference libraries' figures on
// the same splits in the same run and writes EVALUATION.md.
// Thread-safety: each call is independent.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace whisperer::eval {

// telco_churn/: the online churn model (FTRL-Proximal) trained by streaming the training rows of
// the fixed split once, scored on its test rows: AUC, log loss, calibration error.
absl::StatusOr<std::string> RunTelcoChurn(const std::string& data_dir);

// cdnow/: BG/NBD and Gamma-Gamma fitted by maximum likelihood on the calibration summary, with
// the conditional expectations the dataset's README lists.
absl::StatusOr<std::string> RunCdnow(const std::string& data_dir);

// banking77/: the fastText intent model trained on the training file less a dev split (every
// tenth example of each intent, in file order), accuracy on that dev split and on the test file.
absl::StatusOr<std::string> RunBanking77(const std::string& data_dir);

// bitext_customer_support/: the fastText intent model on the fixed 80/20 split.
absl::StatusOr<std::string> RunBitext(const std::string& data_dir);

// vader/ and sentiment_labelled_sentences/: the README's example sentences to 4 decimals,
// Pearson r against the mean human rating of each ground-truth corpus, accuracy on the labelled
// sentences.
absl::StatusOr<std::string> RunSentiment(const std::string& data_dir);

// Off-policy evaluation (learn/ope.h) on a synthetic logged bandit whose true values are known:
// every estimator's error for logs of 1,000, 10,000 and 100,000 rounds.
absl::StatusOr<std::string> RunOpeSynthetic(const std::string& data_dir);

// hillstrom/: the decision engine's bandit learned by replaying the training rows of the fixed
// split, its greedy policy's value estimated on the test rows (IPW, SNIPW, DR, bootstrap).
absl::StatusOr<std::string> RunHillstrom(const std::string& data_dir);

// open_bandit/: the production Bernoulli Thompson sampling policy (prior_bts.yaml) evaluated
// off-policy (eval/ope_log.h: DM, IPW, SNIPW, DR) on each campaign's uniformly random log, next
// to both logs' click rates. A wiring check, not an accuracy target.
absl::StatusOr<std::string> RunOpenBandit(const std::string& data_dir);

// One of the tasks above by its name (telco_churn, cdnow, banking77, bitext, sentiment,
// ope_synthetic, hillstrom, open_bandit); InvalidArgument for another name. (`whisperer eval
// ope`, the evaluation of a decision log, is eval/ope_log.h's RunOpeCommand.)
absl::StatusOr<std::string> Run(const std::string& task, const std::string& data_dir);

}  // namespace whisperer::eval
