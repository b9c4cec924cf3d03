// telco_churn: the online churn model on IBM's Telco customer churn sample.
//
// The model is the one the server runs (learn::FtrlModel with its calibrator), trained by
// streaming the training rows of the fixed split once, in file order (alpha and L1 chosen on a
// dev split cut from the training rows, see TelcoOptions), each row predicted before
// it is learned (progressive validation), then frozen and scored on the test rows. The row's
// columns become hashed features the way a profile's traits do: every categorical column as
// name=value, the three numeric columns scaled to about [0, 1] (by their documented ranges, so
// nothing is learned from the test rows), tenure also as a bucket, and three crosses of the
// contract with what most changes churn in it.
#include <chrono>
#include <cmath>
#include <span>

#include "common/csv.h"
#include "common/json_writer.h"
#include "common/strings.h"
#include "eval/eval.h"
#include "eval/metrics.h"
#include "learn/ftrl.h"

namespace whisperer::eval {

namespace {

constexpr const char* kCategorical[] = {
    "gender",          "SeniorCitizen",    "Partner",          "Dependents",
    "PhoneService",    "MultipleLines",    "InternetService",  "OnlineSecurity",
    "OnlineBackup",    "DeviceProtection", "TechSupport",      "StreamingTV",
    "StreamingMovies", "Contract",         "PaperlessBilling", "PaymentMethod"};

// The server's defaults except the learning rate and L1, which are chosen per run on a dev split
// (the last fifth of the training stream; the test rows are never used to choose): one pass over
// 5,634 rows is short, so the best alpha is larger than on an endless event stream.
learn::FtrlOptions TelcoOptions(double alpha, double l1) {
  learn::FtrlOptions o;
  o.bits = 18;
  o.alpha = alpha;
  o.beta = 1;
  o.l1 = l1;
  o.l2 = 1;
  o.refit_every = 128;
  o.calibration_window = 1 << 20;
  return o;
}

constexpr double kAlphas[] = {0.02, 0.05, 0.1, 0.2};
constexpr double kL1s[] = {0, 0.5, 1, 2};

double ParseNumber(const std::string& s) {
  // TotalCharges is " " for the 11 customers with tenure 0: they have been charged nothing yet.
  std::string_view v = StripWhitespace(s);
  if (v.empty()) return 0;
  return std::strtod(std::string(v).c_str(), nullptr);
}

std::string_view TenureBucket(double months) {
  if (months < 6) return "0-5";
  if (months < 12) return "6-11";
  if (months < 24) return "12-23";
  if (months < 48) return "24-47";
  return "48+";
}

}  // namespace

absl::StatusOr<std::string> RunTelcoChurn(const std::string& data_dir) {
  const std::string dir = data_dir + "/telco_churn";
  std::vector<std::string> columns(std::begin(kCategorical), std::end(kCategorical));
  const size_t kTenure = columns.size();
  columns.insert(columns.end(),
                 {"tenure", "MonthlyCharges", "TotalCharges", "Churn", "customerID"});
  std::vector<std::vector<std::string>> rows;
  if (absl::Status s = ReadCsvColumns(dir + "/Telco-Customer-Churn.csv", columns, &rows); !s.ok()) {
    return s;
  }
  std::vector<std::vector<std::string>> split;
  if (absl::Status s = ReadCsvColumns(dir + "/split_stratified80_20_seed42.csv",
                                      {"row_index", "customerID", "split"}, &split);
      !s.ok()) {
    return s;
  }
  std::vector<size_t> train, test;
  for (const auto& r : split) {
    size_t index = static_cast<size_t>(ParseNumber(r[0]));
    if (index >= rows.size() || rows[index][kTenure + 4] != r[1]) {
      return absl::InvalidArgumentError(
          ToAbsl(StrCat(dir, "/split_stratified80_20_seed42.csv: row_index ", r[0],
                        " does not name customer ", r[1], " in Telco-Customer-Churn.csv")));
    }
    (r[2] == "test" ? test : train).push_back(index);
  }
  if (train.empty() || test.empty()) {
    return absl::InvalidArgumentError(
        ToAbsl(StrCat(dir, ": the split has no train or no test rows")));
  }

  learn::FeatureBuilder features(TelcoOptions(0, 0).bits);
  auto build = [&](const std::vector<std::string>& row) {
    features.Clear();
    for (size_t c = 0; c < std::size(kCategorical); ++c) features.Categorical(columns[c], row[c]);
    double tenure = ParseNumber(row[kTenure]);
    double monthly = ParseNumber(row[kTenure + 1]);
    double total = ParseNumber(row[kTenure + 2]);
    features.Numeric("tenure", tenure / 72);
    features.Numeric("log_tenure", std::log1p(tenure) / std::log(73.0));
    features.Numeric("monthly_charges", monthly / 120);
    features.Numeric("total_charges", total / 9000);
    std::string_view bucket = TenureBucket(tenure);
    features.Categorical("tenure_bucket", bucket);
    const std::string& contract = row[13];
    features.Cross("Contract", contract, "tenure_bucket", bucket);
    features.Cross("Contract", contract, "InternetService", row[6]);
    features.Cross("Contract", contract, "PaymentMethod", row[15]);
  };
  auto label_of = [&](const std::vector<std::string>& row) {
    return row[kTenure + 3] == "Yes" ? 1 : 0;
  };

  // One pass over `stream` with the given options.
  auto train_on = [&](std::span<const size_t> stream, const learn::FtrlOptions& options) {
    learn::FtrlModel model(options);
    for (size_t i : stream) {
      build(rows[i]);
      model.Learn(features.features(), label_of(rows[i]));
    }
    return model;
  };
  auto score = [&](const learn::FtrlModel& model, std::span<const size_t> rows_to_score,
                   std::vector<double>* p, std::vector<double>* raw, std::vector<int>* y) {
    for (size_t i : rows_to_score) {
      build(rows[i]);
      double logit = model.Logit(features.features());
      if (raw) raw->push_back(learn::Sigmoid(logit));
      p->push_back(model.Calibrate(logit));
      y->push_back(label_of(rows[i]));
    }
  };

  // Choose alpha and L1 on the dev split: train on the first four fifths of the training stream,
  // score the last fifth.
  const size_t dev_start = train.size() * 4 / 5;
  std::span<const size_t> fit_rows(train.data(), dev_start);
  std::span<const size_t> dev_rows(train.data() + dev_start, train.size() - dev_start);
  double best_alpha = kAlphas[0], best_l1 = kL1s[0], best_dev_auc = -1;
  for (double alpha : kAlphas) {
    for (double l1 : kL1s) {
      std::vector<double> p;
      std::vector<int> y;
      score(train_on(fit_rows, TelcoOptions(alpha, l1)), dev_rows, &p, nullptr, &y);
      double auc = Auc(p, y);
      if (auc > best_dev_auc) {
        best_dev_auc = auc;
        best_alpha = alpha;
        best_l1 = l1;
      }
    }
  }

  auto start = std::chrono::steady_clock::now();
  learn::FtrlModel model = train_on(train, TelcoOptions(best_alpha, best_l1));
  double train_seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();

  std::vector<double> p, raw;
  std::vector<int> y;
  score(model, test, &p, &raw, &y);

  std::string out;
  JsonWriter w(&out);
  w.StartObject();
  w.Key("task");
  w.String("telco_churn");
  w.Key("model");
  w.String("FTRL-Proximal logistic regression, one pass, Platt-calibrated");
  w.Key("train_rows");
  w.Uint(train.size());
  w.Key("test_rows");
  w.Uint(test.size());
  w.Key("test_positives");
  w.Int(std::count(y.begin(), y.end(), 1));
  w.Key("auc");
  w.Double(Auc(p, y));
  w.Key("log_loss");
  w.Double(LogLoss(p, y));
  w.Key("calibration_error");
  w.Double(CalibrationError(p, y));
  w.Key("raw_log_loss");
  w.Double(LogLoss(raw, y));
  w.Key("raw_calibration_error");
  w.Double(CalibrationError(raw, y));
  w.Key("progressive_log_loss");
  w.Double(model.progressive_log_loss());
  w.Key("nonzero_weights");
  w.Uint(model.nonzero_weights());
  w.Key("train_seconds");
  w.Double(train_seconds);
  w.Key("dev_rows");
  w.Uint(dev_rows.size());
  w.Key("dev_auc");
  w.Double(best_dev_auc);
  w.Key("options");
  w.StartObject();
  const learn::FtrlOptions& o = model.options();
  w.Key("bits");
  w.Int(o.bits);
  w.Key("alpha");
  w.Double(o.alpha);
  w.Key("beta");
  w.Double(o.beta);
  w.Key("l1");
  w.Double(o.l1);
  w.Key("l2");
  w.Double(o.l2);
  w.EndObject();
  w.EndObject();
  return out;
}

}  // namespace whisperer::eval
