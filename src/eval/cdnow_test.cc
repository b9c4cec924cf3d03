// RunCdnow on a small synthetic cdnow/ folder in the real files' formats (the real data is not
// available to unit tests; `whisperer eval cdnow` runs on it).
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "eval/eval.h"
#include "simdjson.h"
#include "testing/temp_dir.h"

namespace whisperer::eval {
namespace {

int64_t Day(int y, unsigned m, unsigned d) {
  return std::chrono::sys_days{std::chrono::year{y} / m / d}.time_since_epoch().count();
}

std::string Date(int64_t day) {
  std::chrono::year_month_day ymd{std::chrono::sys_days{std::chrono::days{day}}};
  char buf[16];
  std::snprintf(buf, sizeof(buf), "%04d%02u%02u", static_cast<int>(ymd.year()),
                static_cast<unsigned>(ymd.month()), static_cast<unsigned>(ymd.day()));
  return buf;
}

std::string Cents(int64_t cents) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%lld.%02lld", static_cast<long long>(cents / 100),
                static_cast<long long>(cents % 100));
  return buf;
}

std::string Weeks(int64_t days) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.2f", static_cast<double>(days) / 7);
  return buf;
}

// Writes `customers` simulated buyers into `dir`/cdnow/: first purchases in Q1 1997, repeat
// purchases (some days with two transactions) from a BG/NBD process to 1998-06-30 with
// Gamma-Gamma values, and both summary files computed here, independently of
// SummarizePurchases, by the README's rules.
void WriteFolder(const std::string& dir, int customers, uint64_t seed) {
  std::filesystem::create_directories(dir + "/cdnow");
  std::ofstream raw(dir + "/cdnow/CDNOW_sample.txt");
  std::ofstream summary(dir + "/cdnow/cdnow_customers_summary.csv");
  std::ofstream money(dir + "/cdnow/cdnow_customers_summary_with_transactions.csv");
  summary << "ID,frequency,recency,T\n";
  money << "ID,x,t_x,T,zbar\n";
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> uniform(0, 1);
  // BG/NBD: lambda ~ Gamma(r = 1, alpha = 8) per week, dropout p ~ Beta(a = 1, b = 3).
  std::gamma_distribution<double> rate(1, 1 / 8.0), beta_a(1, 1), beta_b(3, 1);
  // Gamma-Gamma spend: per customer nu ~ Gamma(q = 4, rate v = 15), each value Gamma(p = 6, nu).
  std::gamma_distribution<double> nu_dist(4, 1 / 15.0);
  const int64_t start = Day(1997, 1, 1), end = Day(1997, 9, 30), last = Day(1998, 6, 30);
  for (int id = 1; id <= customers; ++id) {
    const int64_t first = start + static_cast<int64_t>(uniform(rng) * 90);
    const double lambda = rate(rng);
    const double ga = beta_a(rng);
    const double dropout = ga / (ga + beta_b(rng));
    std::exponential_distribution<double> wait(lambda / 7);  // in days
    std::gamma_distribution<double> value(6, 1 / nu_dist(rng));
    std::vector<std::pair<int64_t, int64_t>> purchases = {
        {first, static_cast<int64_t>(value(rng) * 100)}};
    double t = static_cast<double>(first);
    while (true) {
      t += wait(rng);
      const auto day = static_cast<int64_t>(t);
      if (day > last) break;
      purchases.push_back({day, 1 + static_cast<int64_t>(value(rng) * 100)});
      if (uniform(rng) < 0.2) purchases.push_back({day, 999});  // a second on the same day
      if (uniform(rng) < dropout) break;
    }
    std::set<int64_t> repeat_days;
    int64_t repeat_cents = 0;
    for (const auto& [day, cents] : purchases) {
      char line[96];
      std::snprintf(line, sizeof(line), " %05d %04d %s %2d %8s\r\n", id * 10, id, Date(day).c_str(),
                    1, Cents(cents).c_str());
      raw << line;
      if (day != first && day <= end) {
        repeat_days.insert(day);
        repeat_cents += cents;
      }
    }
    const auto x = static_cast<int64_t>(repeat_days.size());
    const std::string t_x = Weeks(x > 0 ? *repeat_days.rbegin() - first : 0);
    const std::string T = Weeks(end - first);
    // Half-up to the cent, as the real file.
    const std::string zbar = Cents(x > 0 ? (2 * repeat_cents + x) / (2 * x) : 0);
    summary << id << ',' << x << ',' << t_x << ',' << T << '\n';
    money << id << ',' << x << ',' << t_x << ',' << T << ',' << zbar << '\n';
  }
}

double Number(simdjson::dom::element doc, const char* pointer) {
  double v = 0;
  EXPECT_FALSE(doc.at_pointer(pointer).get(v)) << pointer;
  return v;
}

TEST(CdnowEvalTest, ReportsFiguresOnASyntheticFolder) {
  whisperer::testing::TempDir dir;
  constexpr int kCustomers = 80;
  WriteFolder(dir.str(), kCustomers, 3);
  auto json = RunCdnow(dir.str());
  ASSERT_TRUE(json.ok()) << json.status();
  SCOPED_TRACE(*json);

  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  ASSERT_FALSE(parser.parse(*json).get(doc)) << *json;
  EXPECT_EQ(Number(doc, "/customers"), kCustomers);
  for (const char* p : {"/bg_nbd/r", "/bg_nbd/alpha", "/bg_nbd/a", "/bg_nbd/b"}) {
    const std::string param = p;
    EXPECT_GT(Number(doc, (param + "/value").c_str()), 0) << p;
    EXPECT_GT(Number(doc, (param + "/published").c_str()), 0) << p;
    bool match = true;
    EXPECT_FALSE(doc.at_pointer(param + "/match").get(match)) << p;
  }
  EXPECT_LT(Number(doc, "/bg_nbd/log_likelihood/value"), 0);
  EXPECT_GT(Number(doc, "/bg_nbd/iterations"), 0);
  for (const char* p : {"/gamma_gamma/p/value", "/gamma_gamma/q/value", "/gamma_gamma/v/value",
                        "/gamma_gamma_unrounded/v/value", "/gamma_gamma/profit_mean/value",
                        "/conditional_expected_purchases/expected/value"}) {
    EXPECT_GT(Number(doc, p), 0) << p;
  }
  simdjson::dom::array expected, first10, mismatched;
  ASSERT_FALSE(doc.at_pointer("/expected_purchases").get(expected));
  EXPECT_EQ(expected.size(), 6u);
  EXPECT_EQ(Number(doc, "/expected_purchases/5/t"), 78);
  EXPECT_GT(Number(doc, "/expected_purchases/5/expected/value"),
            Number(doc, "/expected_purchases/0/expected/value"));
  ASSERT_FALSE(doc.at_pointer("/gamma_gamma/profit_first_10").get(first10));
  EXPECT_EQ(first10.size(), 10u);
  // Every figure again in the flat list scripts/eval.py tabulates; synthetic data reproduces
  // none of the published ones.
  simdjson::dom::array figures;
  ASSERT_FALSE(doc.at_pointer("/figures").get(figures));
  EXPECT_GE(figures.size(), 40u);
  for (simdjson::dom::element row : figures) {
    std::string_view name;
    EXPECT_FALSE(row["name"].get(name));
    double ours = 0, published = 0;
    EXPECT_FALSE(row["ours"].get(ours)) << name;
    EXPECT_FALSE(row["published"].get(published)) << name;
    bool match = true;
    EXPECT_FALSE(row["match"].get(match)) << name;
  }
  ASSERT_FALSE(doc.at_pointer("/mismatched").get(mismatched));
  EXPECT_GT(mismatched.size(), 0u);
  // The summary files were written by the README's rules, so the rebuild matches them all.
  EXPECT_EQ(Number(doc, "/summary_rebuild/match_x_t_x_T/value"), kCustomers);
  EXPECT_EQ(Number(doc, "/summary_rebuild/match_zbar/value"), kCustomers);
}

TEST(CdnowEvalTest, MissingFilesAreNotFoundNamingThePath) {
  whisperer::testing::TempDir dir;
  auto json = RunCdnow(dir.str() + "/nowhere");
  EXPECT_EQ(json.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(json.status().message().find("nowhere/cdnow/cdnow_customers_summary.csv"),
            absl::string_view::npos)
      << json.status();

  WriteFolder(dir.str(), 20, 1);
  std::filesystem::remove(dir.path() / "cdnow" / "CDNOW_sample.txt");
  json = RunCdnow(dir.str());
  EXPECT_EQ(json.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(json.status().message().find("CDNOW_sample.txt"), absl::string_view::npos)
      << json.status();
}

TEST(CdnowEvalTest, MalformedTransactionIsInvalidArgument) {
  whisperer::testing::TempDir dir;
  WriteFolder(dir.str(), 20, 1);
  std::ofstream(dir.path() / "cdnow" / "CDNOW_sample.txt", std::ios::app)
      << " 00001 0001 19971340 1 9.99\n";
  auto json = RunCdnow(dir.str());
  EXPECT_EQ(json.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(json.status().message().find("19971340"), absl::string_view::npos) << json.status();
}

}  // namespace
}  // namespace whisperer::eval
