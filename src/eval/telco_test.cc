#include <filesystem>
#include <fstream>
#include <random>

#include "common/strings.h"
#include "eval/eval.h"
#include "gtest/gtest.h"
#include "simdjson.h"

namespace whisperer::eval {
namespace {

// A synthetic telco_churn folder in the dataset's layout: month-to-month customers on fibre
// churn far more often, as in the real data.
std::string WriteTelcoFolder(const std::string& name, bool break_split) {
  std::string root = testing::TempDir() + "/" + name;
  std::filesystem::create_directories(root + "/telco_churn");
  std::ofstream data(root + "/telco_churn/Telco-Customer-Churn.csv");
  std::ofstream split(root + "/telco_churn/split_stratified80_20_seed42.csv");
  data << "customerID,gender,SeniorCitizen,Partner,Dependents,tenure,PhoneService,MultipleLines,"
          "InternetService,OnlineSecurity,OnlineBackup,DeviceProtection,TechSupport,StreamingTV,"
          "StreamingMovies,Contract,PaperlessBilling,PaymentMethod,MonthlyCharges,TotalCharges,"
          "Churn\n";
  split << "row_index,customerID,split\n";
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> unit(0, 1);
  const char* contracts[] = {"Month-to-month", "One year", "Two year"};
  const char* internet[] = {"DSL", "Fiber optic", "No"};
  for (int i = 0; i < 1500; ++i) {
    int c = static_cast<int>(rng() % 3), n = static_cast<int>(rng() % 3);
    int tenure = static_cast<int>(rng() % 73);
    double p = (c == 0 ? 0.45 : c == 1 ? 0.1 : 0.03) * (n == 1 ? 1.6 : 0.8);
    bool churn = unit(rng) < p;
    std::string id = StrCat("C", i);
    data << id << ",Male,0,No,No," << tenure << ",Yes,No," << internet[n] << ",No,No,No,No,No,No,"
         << contracts[c] << ",Yes,\"Electronic check\",70.5,"
         << (tenure == 0 ? std::string(" ") : std::to_string(tenure * 70.5)) << ","
         << (churn ? "Yes" : "No") << "\n";
    split << i << "," << (break_split && i == 3 ? std::string("nobody") : id) << ","
          << (i % 5 == 4 ? "test" : "train") << "\n";
  }
  return root;
}

TEST(TelcoEvalTest, TrainsOnTheTrainRowsAndScoresTheTestRows) {
  std::string root = WriteTelcoFolder("telco_ok", false);
  auto figures = RunTelcoChurn(root);
  ASSERT_TRUE(figures.ok()) << figures.status();
  simdjson::dom::parser parser;
  simdjson::dom::element doc = parser.parse(*figures);
  EXPECT_EQ(uint64_t(doc["train_rows"]), 1200u);
  EXPECT_EQ(uint64_t(doc["test_rows"]), 300u);
  EXPECT_EQ(uint64_t(doc["dev_rows"]), 240u);
  // The contract and the internet service carry the signal: well above chance.
  EXPECT_GT(double(doc["auc"]), 0.7);
  EXPECT_LT(double(doc["log_loss"]), 0.6);
  EXPECT_GE(double(doc["calibration_error"]), 0.0);
  EXPECT_GT(double(doc["options"]["alpha"]), 0.0);
}

TEST(TelcoEvalTest, ASplitThatNamesAnotherCustomerIsRejected) {
  std::string root = WriteTelcoFolder("telco_broken", true);
  auto figures = RunTelcoChurn(root);
  ASSERT_EQ(figures.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(figures.status().message()).find("row_index 3"), std::string::npos)
      << figures.status();
  EXPECT_EQ(RunTelcoChurn(testing::TempDir() + "/no_such_folder").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(eval::Run("no_such_task", root).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace whisperer::eval
