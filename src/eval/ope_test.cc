#include <filesystem>
#include <fstream>
#include <random>

#include "common/strings.h"
#include "eval/eval.h"
#include "gtest/gtest.h"
#include "simdjson.h"

namespace whisperer::eval {
namespace {

// A synthetic hillstrom folder in the dataset's layout: women who bought women's merchandise
// visit after the women's e-mail, everybody else after the men's; no e-mail rarely works.
std::string WriteHillstromFolder(const std::string& name, size_t rows) {
  std::string root = testing::TempDir() + "/" + name;
  std::filesystem::create_directories(root + "/hillstrom");
  std::ofstream data(
      root +
      "/hillstrom/"
      "Kevin_Hillstrom_MineThatData_E-MailAnalytics_DataMiningChallenge_2008.03.20.csv");
  std::ofstream split(root + "/hillstrom/split_stratified70_30_seed42.csv");
  data << "recency,history_segment,history,mens,womens,zip_code,newbie,channel,segment,visit,"
          "conversion,spend\r\n";
  split << "row_index,split\n";
  const char* arms[] = {"Mens E-Mail", "Womens E-Mail", "No E-Mail"};
  std::mt19937_64 rng(5);
  std::uniform_real_distribution<double> u(0, 1);
  for (size_t i = 0; i < rows; ++i) {
    const bool womens = i % 2 == 0;
    const int arm = static_cast<int>(i % 3);
    const double p = arm == 2 ? 0.05 : ((arm == 1) == womens ? 0.6 : 0.1);
    data << 1 + i % 12 << ",\"2) $100 - $200\"," << 100 + i % 50 << "," << !womens << "," << womens
         << ",Urban,0,Web," << arms[arm] << "," << (u(rng) < p) << ",0,0\r\n";
    split << i << "," << (i % 10 < 7 ? "train" : "test") << "\n";
  }
  return root;
}

TEST(Hillstrom, LearnsToSendEachCustomerTheEmailThatWorks) {
  absl::StatusOr<std::string> out =
      eval::Run("hillstrom", WriteHillstromFolder("hillstrom_ok", 6000));
  ASSERT_TRUE(out.ok()) << out.status();
  simdjson::dom::parser parser;
  simdjson::dom::element doc = parser.parse(*out);
  EXPECT_EQ(uint64_t(doc["train_rows"]), 4200u);
  EXPECT_EQ(uint64_t(doc["test_rows"]), 1800u);
  // Sending each customer the e-mail that works is worth about 0.6, any single arm at most about
  // 0.35, the uniform policy about 0.25.
  for (const char* estimator : {"ipw", "snipw", "dr"}) {
    const double value = double(doc["learned_policy"][estimator]["value"]);
    EXPECT_GT(value, 0.5) << estimator;
    EXPECT_LE(double(doc["learned_policy"][estimator]["low"]), value);
  }
  EXPECT_EQ(uint64_t(doc["arms"].at(2)["chosen_by_policy"]), 0u);  // never no e-mail
  EXPECT_NEAR(double(doc["uniform_value"]), (0.35 + 0.35 + 0.05) / 3, 0.05);
}

TEST(Hillstrom, MissingFilesAndBadRowsAreErrors) {
  EXPECT_FALSE(eval::Run("hillstrom", testing::TempDir() + "/nowhere").ok());
  std::string root = WriteHillstromFolder("hillstrom_short", 30);
  std::ofstream(root + "/hillstrom/split_stratified70_30_seed42.csv")
      << "row_index,split\n0,test\n";
  EXPECT_FALSE(eval::Run("hillstrom", root).ok());
}

TEST(OpeSynthetic, KnownTruthAndShrinkingErrors) {
  absl::StatusOr<std::string> out = eval::Run("ope_synthetic", "");
  ASSERT_TRUE(out.ok()) << out.status();
  simdjson::dom::parser parser;
  simdjson::dom::element doc = parser.parse(*out);
  const double truth = double(doc["true_value"]);
  EXPECT_GT(truth, double(doc["logging_value_first_log"]));  // the target beats the logger
  simdjson::dom::array sizes = doc["sizes"];
  ASSERT_EQ(sizes.size(), 3u);
  EXPECT_LT(double(sizes.at(2)["rmse"]["dr"]), double(sizes.at(0)["rmse"]["dr"]));
  EXPECT_LT(double(sizes.at(2)["rmse"]["ipw"]), double(sizes.at(0)["rmse"]["ipw"]));
  EXPECT_NEAR(double(sizes.at(2)["first_log"]["dr"]["value"]), truth, 0.01);
}

}  // namespace
}  // namespace whisperer::eval
