// `whisperer eval cdnow`: the lifetime-value models (learn/clv.h) on the CDNOW sample of Fader,
// Hardie & Lee (2005), next to the figures published for it (cdnow/README.md lists them with
// their sources):
//   - BG/NBD fitted on cdnow_customers_summary.csv (ID, frequency, recency, T);
//   - Gamma-Gamma fitted on the x > 0 rows of cdnow_customers_summary_with_transactions.csv
//     (ID, x, t_x, T, zbar), as lifetimes fits it;
//   - E[X(t)], E[Y(39) | x = 2, t_x = 30.43, T = 38.86] and the conditional expected average
//     profit from the fitted parameters;
//   - the calibration summary rebuilt from the raw transactions in CDNOW_sample.txt with
//     SummarizePurchases, counted against the file's x, t_x, T (and zbar) to 2 decimals, and
//     Gamma-Gamma fitted again on the rebuilt, unrounded mean values: the file rounds zbar to
//     cents, which moves v by about 0.004, enough to change its second decimal; the paper and
//     Hardie's spreadsheet worked from the unrounded values.
// Every published figure is written in place as {value, published, decimals, match, difference,
// agreeing_decimals}: `decimals` is the number the figure is published with, `match` says the
// value rounds to it there, `agreeing_decimals` is the largest k <= decimals with
// |value - published| <= 0.5e-k (-1 if none). All of them are listed again, labelled, in
// `figures` ({name, ours, published, decimals, match}), and `mismatched` names those that do not
// match.
#include <cctype>
#include <charconv>
#include <chrono>
#include <cmath>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "common/csv.h"
#include "common/json_writer.h"
#include "common/strings.h"
#include "eval/eval.h"
#include "eval/metrics.h"
#include "learn/clv.h"

namespace whisperer::eval {
namespace {

using learn::BgNbdParams;
using learn::GammaGammaParams;
using learn::RfmSummary;

// Published figures (cdnow/README.md).
// BG/NBD: Fader, Hardie & Lee (2005), Marketing Science 24(2).
constexpr double kBgNbdR = 0.243, kBgNbdAlpha = 4.414, kBgNbdA = 0.793, kBgNbdB = 2.426;
constexpr double kBgNbdLogLikelihood = -9582.4;
// Gamma-Gamma: Fader, Hardie & Lee (2005), JMR 42(4); lifetimes' docs print v = 15.45.
constexpr double kGgP = 6.25, kGgQ = 3.74, kGgV = 15.44, kGgVLifetimesDocs = 15.45;
// E[X(t)] from Hardie's spreadsheet, as asserted (to 3 decimals) by lifetimes' tests.
constexpr double kExpectedT[] = {0.1429, 1, 3, 31.8571, 32, 78};
constexpr double kExpectedX[] = {0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576};
// E[Y(39) | x = 2, t_x = 30.43, T = 38.86].
constexpr double kConditional = 1.226;
// Conditional expected average profit of customers 1..10 (Hardie's spreadsheet), and the mean
// over all customers (lifetimes' docs, from the file's rounded zbar).
constexpr double kProfitFirst10[] = {24.65, 18.91, 35.17, 35.17, 35.17,
                                     71.46, 18.91, 35.17, 27.28, 35.17};
constexpr double kProfitMean = 35.2529588256;
// Pearson correlation of frequency and monetary value among repeat buyers (lifetimes' docs).
constexpr double kCorrFrequencyMonetary = 0.113884;
// Customers in the sample, all of whose summaries the README says the transactions reproduce.
constexpr double kSampleCustomers = 2357;
// The calibration period ends on 1997-09-30, inclusive.
constexpr std::chrono::year_month_day kCalibrationEnd{std::chrono::year{1997},
                                                      std::chrono::September, std::chrono::day{30}};

// Writes published figures in place and keeps them for the flat `figures` list.
class Figures {
 public:
  explicit Figures(JsonWriter* json) : json_(json) {}

  // Writes the figure under `key` (no key inside an array); `name` is its label in `figures`
  // and `mismatched`.
  void Add(std::string_view key, std::string name, double value, double published, int decimals) {
    if (!key.empty()) json_->Key(key);
    const double scale = std::pow(10.0, decimals);
    const bool match =
        std::isfinite(value) && std::round(value * scale) == std::round(published * scale);
    int agreeing = -1;
    for (int k = decimals; k >= 0 && agreeing < 0; --k) {
      if (std::fabs(value - published) <= 0.5 * std::pow(10.0, -k)) agreeing = k;
    }
    json_->StartObject();
    json_->Key("value");
    json_->Double(value);
    json_->Key("published");
    json_->Double(published);
    json_->Key("decimals");
    json_->Int(decimals);
    json_->Key("match");
    json_->Bool(match);
    json_->Key("difference");
    json_->Double(value - published);
    json_->Key("agreeing_decimals");
    json_->Int(agreeing);
    json_->EndObject();
    rows_.push_back({std::move(name), value, published, decimals, match});
  }

  // "figures": [{name, ours, published, decimals, match}] (what scripts/eval.py tabulates) and
  // "mismatched": [name].
  void WriteLists() {
    json_->Key("figures");
    json_->StartArray();
    for (const Row& row : rows_) {
      json_->StartObject();
      json_->Key("name");
      json_->String(row.name);
      json_->Key("ours");
      json_->Double(row.value);
      json_->Key("published");
      json_->Double(row.published);
      json_->Key("decimals");
      json_->Int(row.decimals);
      json_->Key("match");
      json_->Bool(row.match);
      json_->EndObject();
    }
    json_->EndArray();
    json_->Key("mismatched");
    json_->StartArray();
    for (const Row& row : rows_) {
      if (!row.match) json_->String(row.name);
    }
    json_->EndArray();
  }

 private:
  struct Row {
    std::string name;
    double value;
    double published;
    int decimals;
    bool match;
  };
  JsonWriter* json_;
  std::vector<Row> rows_;
};

bool ParseDouble(std::string_view text, double* out) {
  text = StripWhitespace(text);
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size() && std::isfinite(*out);
}

absl::Status Annotate(const absl::Status& status) {
  return absl::Status(status.code(), ToAbsl(StrCat("cdnow: ", ToStd(status.message()))));
}

struct SummaryRow {
  std::string id;
  RfmSummary rfm;
};

// Reads `columns` (ID, then x, t_x, T and optionally the mean value) from a summary file.
absl::StatusOr<std::vector<SummaryRow>> ReadSummary(const std::string& path,
                                                    const std::vector<std::string>& columns) {
  std::vector<std::vector<std::string>> cells;
  absl::Status status = ReadCsvColumns(path, columns, &cells);
  if (!status.ok()) return Annotate(status);
  std::vector<SummaryRow> rows;
  rows.reserve(cells.size());
  for (size_t i = 0; i < cells.size(); ++i) {
    double v[4] = {0, 0, 0, 0};
    for (size_t c = 1; c < columns.size(); ++c) {
      if (!ParseDouble(cells[i][c], &v[c - 1])) {
        return absl::InvalidArgumentError(
            ToAbsl(StrCat("cdnow: ", path, ": record ", i + 1, ": ", columns[c],
                          " is not a number: '", cells[i][c], "'")));
      }
    }
    rows.push_back({cells[i][0], RfmSummary{v[0], v[1], v[2], v[3]}});
  }
  if (rows.empty()) {
    return absl::InvalidArgumentError(ToAbsl(StrCat("cdnow: ", path, ": no customers")));
  }
  return rows;
}

// Days since 1970-01-01 of a YYYYMMDD date, or false if it is not a valid date.
bool ParseDate(std::string_view text, int64_t* day) {
  int value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end != text.data() + text.size() || text.size() != 8) return false;
  std::chrono::year_month_day date{std::chrono::year{value / 10000},
                                   std::chrono::month{static_cast<unsigned>(value / 100 % 100)},
                                   std::chrono::day{static_cast<unsigned>(value % 100)}};
  if (!date.ok()) return false;
  *day = std::chrono::sys_days{date}.time_since_epoch().count();
  return true;
}

// CDNOW_sample.txt: whitespace-separated master id, sample id, YYYYMMDD, CDs, dollar value.
// Returns the purchases per sample id (without its zero padding).
absl::StatusOr<std::map<std::string, std::vector<learn::Purchase>>> ReadTransactions(
    const std::string& path) {
  auto text = ReadFileToString(path);
  if (!text.ok()) return Annotate(text.status());
  std::map<std::string, std::vector<learn::Purchase>> purchases;
  std::string_view rest = *text;
  size_t line = 0;
  while (!rest.empty()) {
    ++line;
    size_t eol = rest.find('\n');
    std::string_view record = rest.substr(0, eol);
    rest = eol == std::string_view::npos ? std::string_view() : rest.substr(eol + 1);
    std::vector<std::string_view> fields;
    size_t pos = 0;
    while (pos < record.size()) {
      while (pos < record.size() && std::isspace(static_cast<unsigned char>(record[pos]))) ++pos;
      size_t start = pos;
      while (pos < record.size() && !std::isspace(static_cast<unsigned char>(record[pos]))) ++pos;
      if (pos > start) fields.push_back(record.substr(start, pos - start));
    }
    if (fields.empty()) continue;
    learn::Purchase p;
    if (fields.size() != 5 || !ParseDate(fields[2], &p.day) || !ParseDouble(fields[4], &p.value)) {
      return absl::InvalidArgumentError(ToAbsl(StrCat(
          "cdnow: ", path, ": line ", line, " is not 'master_id sample_id YYYYMMDD cds dollars': '",
          StripWhitespace(record), "'")));
    }
    std::string_view id = fields[1];
    while (id.size() > 1 && id.front() == '0') id.remove_prefix(1);
    purchases[std::string(id)].push_back(p);
  }
  return purchases;
}

// Half-up to 2 decimals, as the summary files are written. The epsilon keeps a mean such as
// 22.345, stored as 22.3449999..., rounding up as it does in decimal.
double RoundHalfUp2(double v) { return std::floor(v * 100 + 0.5 + 1e-7) / 100; }

bool Same2(double ours, double file) { return std::fabs(RoundHalfUp2(ours) - file) < 1e-9; }

void WriteFit(JsonWriter& json, Figures& figures, std::string_view suffix,
              const GammaGammaParams& gg, size_t repeaters) {
  json.Key("customers");
  json.Uint(repeaters);
  figures.Add("p", StrCat("Gamma-Gamma p", suffix), gg.p, kGgP, 2);
  figures.Add("q", StrCat("Gamma-Gamma q", suffix), gg.q, kGgQ, 2);
  figures.Add("v", StrCat("Gamma-Gamma v", suffix), gg.v, kGgV, 2);
  json.Key("log_likelihood");
  json.Double(gg.log_likelihood);
  json.Key("iterations");
  json.Int(gg.iterations);
}

void WriteFirst10(JsonWriter& json, Figures& figures, std::string_view suffix,
                  const GammaGammaParams& gg, const std::vector<SummaryRow>& rows) {
  json.Key("profit_first_10");
  json.StartArray();
  for (size_t i = 0; i < std::size(kProfitFirst10) && i < rows.size(); ++i) {
    json.StartObject();
    json.Key("id");
    json.String(rows[i].id);
    figures.Add("profit", StrCat("E[profit] of customer ", rows[i].id, suffix),
                learn::GammaGammaConditionalSpend(gg, rows[i].rfm.x, rows[i].rfm.monetary),
                kProfitFirst10[i], 2);
    json.EndObject();
  }
  json.EndArray();
}

double MeanProfit(const GammaGammaParams& gg, const std::vector<SummaryRow>& rows) {
  double mean = 0;
  for (const SummaryRow& row : rows) {
    mean += learn::GammaGammaConditionalSpend(gg, row.rfm.x, row.rfm.monetary) /
            static_cast<double>(rows.size());
  }
  return mean;
}

}  // namespace

absl::StatusOr<std::string> RunCdnow(const std::string& data_dir) {
  const std::string dir = data_dir + "/cdnow/";
  auto summary =
      ReadSummary(dir + "cdnow_customers_summary.csv", {"ID", "frequency", "recency", "T"});
  if (!summary.ok()) return summary.status();
  auto with_money = ReadSummary(dir + "cdnow_customers_summary_with_transactions.csv",
                                {"ID", "x", "t_x", "T", "zbar"});
  if (!with_money.ok()) return with_money.status();
  auto transactions = ReadTransactions(dir + "CDNOW_sample.txt");
  if (!transactions.ok()) return transactions.status();

  std::vector<RfmSummary> rfm;
  for (const SummaryRow& row : *summary) rfm.push_back(row.rfm);
  auto bg = learn::FitBgNbd(rfm);
  if (!bg.ok()) return Annotate(bg.status());

  std::vector<RfmSummary> money;
  std::vector<double> repeat_x, repeat_m;
  for (const SummaryRow& row : *with_money) {
    money.push_back(row.rfm);
    if (row.rfm.x > 0) {
      repeat_x.push_back(row.rfm.x);
      repeat_m.push_back(row.rfm.monetary);
    }
  }
  auto gg = learn::FitGammaGamma(money);
  if (!gg.ok()) return Annotate(gg.status());

  // The summary rebuilt from the raw transactions, in the file's customer order.
  const int64_t end = std::chrono::sys_days{kCalibrationEnd}.time_since_epoch().count();
  std::vector<SummaryRow> rebuilt;
  size_t match_rft = 0, match_zbar = 0, missing = 0, unsummarized = 0;
  for (const SummaryRow& row : *with_money) {
    auto it = transactions->find(row.id);
    if (it == transactions->end()) {
      ++missing;
      continue;
    }
    auto s = learn::SummarizePurchases(it->second, end);
    if (!s.ok()) {
      ++unsummarized;
      continue;
    }
    if (s->x == row.rfm.x && Same2(s->t_x, row.rfm.t_x) && Same2(s->T, row.rfm.T)) ++match_rft;
    if (Same2(s->monetary, row.rfm.monetary)) ++match_zbar;
    rebuilt.push_back({row.id, *s});
  }
  std::vector<RfmSummary> rebuilt_rfm;
  size_t rebuilt_repeaters = 0;
  for (const SummaryRow& row : rebuilt) {
    rebuilt_rfm.push_back(row.rfm);
    if (row.rfm.x > 0) ++rebuilt_repeaters;
  }
  // Reported in place (not returned) when it fails: the other figures stand without it.
  auto gg_raw = learn::FitGammaGamma(rebuilt_rfm);

  std::string out;
  JsonWriter json(&out);
  Figures figures(&json);
  json.StartObject();
  json.Key("task");
  json.String("cdnow");
  json.Key("customers");
  json.Uint(rfm.size());

  json.Key("bg_nbd");
  json.StartObject();
  figures.Add("r", "BG/NBD r", bg->r, kBgNbdR, 3);
  figures.Add("alpha", "BG/NBD alpha", bg->alpha, kBgNbdAlpha, 3);
  figures.Add("a", "BG/NBD a", bg->a, kBgNbdA, 3);
  figures.Add("b", "BG/NBD b", bg->b, kBgNbdB, 3);
  figures.Add("log_likelihood", "BG/NBD log-likelihood", bg->log_likelihood, kBgNbdLogLikelihood,
              1);
  json.Key("iterations");
  json.Int(bg->iterations);
  json.EndObject();

  json.Key("expected_purchases");
  json.StartArray();
  for (size_t i = 0; i < std::size(kExpectedT); ++i) {
    json.StartObject();
    json.Key("t");
    json.Double(kExpectedT[i]);
    figures.Add("expected", StrCat("E[X(", kExpectedT[i], ")]"),
                learn::BgNbdExpectedPurchases(*bg, kExpectedT[i]), kExpectedX[i], 4);
    json.EndObject();
  }
  json.EndArray();

  json.Key("conditional_expected_purchases");
  json.StartObject();
  json.Key("t");
  json.Double(39);
  json.Key("x");
  json.Double(2);
  json.Key("t_x");
  json.Double(30.43);
  json.Key("T");
  json.Double(38.86);
  figures.Add("expected", "E[Y(39) | x = 2, t_x = 30.43, T = 38.86]",
              learn::BgNbdConditionalExpected(*bg, 39, 2, 30.43, 38.86), kConditional, 3);
  json.EndObject();

  // Gamma-Gamma on the file's zbar (rounded to cents), as lifetimes fits it.
  json.Key("gamma_gamma");
  json.StartObject();
  constexpr std::string_view kFile = " (file's cent-rounded zbar)";
  WriteFit(json, figures, kFile, *gg, repeat_x.size());
  figures.Add("v_lifetimes_docs", StrCat("Gamma-Gamma v", kFile, ", as lifetimes' docs print it"),
              gg->v, kGgVLifetimesDocs, 2);
  figures.Add("corr_frequency_monetary", "corr(frequency, zbar) among repeat buyers",
              Pearson(repeat_x, repeat_m), kCorrFrequencyMonetary, 6);
  WriteFirst10(json, figures, kFile, *gg, *with_money);
  figures.Add("profit_mean", StrCat("mean E[profit] over all customers", kFile),
              MeanProfit(*gg, *with_money), kProfitMean, 10);
  json.EndObject();

  // Gamma-Gamma on the unrounded mean values rebuilt from the transactions, as the paper and
  // Hardie's spreadsheet compute it (lifetimes' published mean is of the rounded file, so it is
  // not compared here).
  json.Key("gamma_gamma_unrounded");
  json.StartObject();
  if (gg_raw.ok()) {
    constexpr std::string_view kRaw = " (unrounded zbar from the transactions)";
    WriteFit(json, figures, kRaw, *gg_raw, rebuilt_repeaters);
    WriteFirst10(json, figures, kRaw, *gg_raw, rebuilt);
    json.Key("profit_mean");
    json.Double(MeanProfit(*gg_raw, rebuilt));
  } else {
    json.Key("error");
    json.String(ToStd(gg_raw.status().message()));
  }
  json.EndObject();

  json.Key("summary_rebuild");
  json.StartObject();
  json.Key("customers_in_file");
  json.Uint(with_money->size());
  json.Key("customers_in_transactions");
  json.Uint(transactions->size());
  json.Key("missing_from_transactions");
  json.Uint(missing);
  json.Key("without_calibration_purchase");
  json.Uint(unsummarized);
  figures.Add("match_x_t_x_T", "customers whose x, t_x, T rebuilt from CDNOW_sample.txt match",
              static_cast<double>(match_rft), kSampleCustomers, 0);
  figures.Add("match_zbar", "customers whose zbar rebuilt from CDNOW_sample.txt matches",
              static_cast<double>(match_zbar), kSampleCustomers, 0);
  json.Key("all_match");
  json.Bool(match_rft == with_money->size() && match_zbar == with_money->size());
  json.EndObject();

  figures.WriteLists();
  json.EndObject();
  return out;
}

}  // namespace whisperer::eval
