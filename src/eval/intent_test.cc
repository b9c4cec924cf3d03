#include <filesystem>
#include <fstream>

#include "common/strings.h"
#include "eval/eval.h"
#include "gtest/gtest.h"
#include "simdjson.h"

namespace whisperer::eval {
namespace {

// A tiny dataset folder in the formats of ../shared/data, written for each test.
class IntentEvalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = ::testing::TempDir() + "/intent_eval_" + info->name();
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  void Write(const std::string& relative, const std::string& contents) {
    std::filesystem::path path = std::filesystem::path(dir_) / relative;
    std::filesystem::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary) << contents;
  }

  std::string dir_;
};

// Three phrasings per intent, cycled; text with commas and quotes is quoted as in RFC 4180.
const char* const kPhrasings[][3] = {
    {"where is my card", "\"my card, it has not arrived\"", "when will the card be delivered"},
    {"what is the exchange rate", "\"rate for \"\"euro\"\" to dollar\"", "how much is a euro"},
    {"I lost my wallet", "my card was stolen", "\"someone took my card, block it\""},
};
const char* const kIntents[] = {"card_arrival", "exchange_rate", "lost_or_stolen_card"};

// CSV rows "text,category": `counts[i]` examples of intent i, interleaved (not grouped by
// intent) so that the dev rule must count per intent, in file order.
std::string Banking77Csv(std::initializer_list<int> counts) {
  std::string out = "text,category\r\n";
  std::vector<int> left(counts);
  std::vector<int> written(left.size(), 0);
  for (bool any = true; any;) {
    any = false;
    for (size_t i = 0; i < left.size(); ++i) {
      if (left[i] == 0) continue;
      StrAppend(&out, kPhrasings[i][written[i] % 3], ",", kIntents[i], "\r\n");
      --left[i];
      ++written[i];
      any = true;
    }
  }
  return out;
}

simdjson::dom::element Parse(simdjson::dom::parser& parser, const std::string& json) {
  auto doc = parser.parse(json);
  EXPECT_FALSE(doc.error()) << json;
  return doc.value_unsafe();
}

TEST_F(IntentEvalTest, Banking77ReportsDevAndTestFigures) {
  // 20, 15 and 9 examples: the dev split (index % 10 == 9 within each intent) takes 2 + 1 + 0.
  Write("banking77/train.csv", Banking77Csv({20, 15, 9}));
  Write("banking77/test.csv", Banking77Csv({4, 4, 4}));
  auto json = RunBanking77(dir_);
  ASSERT_TRUE(json.ok()) << json.status();
  simdjson::dom::parser parser;
  auto report = Parse(parser, *json);
  EXPECT_EQ(std::string_view(report["task"].get_string().value()), "banking77");
  EXPECT_EQ(report["labels"].get_uint64().value(), 3u);
  EXPECT_EQ(report["train_examples"].get_uint64().value(), 44u);
  EXPECT_EQ(report["test_examples"].get_uint64().value(), 12u);
  EXPECT_EQ(report["test_accuracy"].get_double().value(), 1.0);  // test phrasings were seen
  EXPECT_GE(report["train_seconds"].get_double().value(), 0);
  EXPECT_GT(report["predict_us_per_message"].get_double().value(), 0);
  EXPECT_GT(report["model_bytes"].get_uint64().value(), 0u);
  EXPECT_EQ(report["options"]["thread"].get_int64().value(), 1);
  EXPECT_GT(report["options"]["epoch"].get_int64().value(), 0);
  auto dev = report["dev"];
  EXPECT_EQ(dev["examples"].get_uint64().value(), 3u);
  EXPECT_EQ(dev["train_examples"].get_uint64().value(), 41u);
  EXPECT_EQ(dev["accuracy"].get_double().value(), 1.0);
  EXPECT_GE(dev["train_seconds"].get_double().value(), 0);
}

TEST_F(IntentEvalTest, BitextUsesTheSplitFile) {
  // The real file's columns, with a response holding line breaks and commas.
  std::string data =
      "context,role,instruction,intent,entity_type,entity_value,start_offset,end_offset,"
      "category,tags,response\n";
  const char* const texts[][2] = {
      {"cancel_order", "I want to cancel my order"}, {"cancel_order", "cancel purchase 123"},
      {"cancel_order", "please cancel the order"},   {"track_refund", "where is my refund"},
      {"track_refund", "track the refund, please"},  {"track_refund", "status of my refund"},
  };
  std::string split = "row_index,split\n";
  size_t row = 0;
  for (int round = 0; round < 4; ++round) {
    for (const auto& [intent, text] : texts) {
      StrAppend(&data, "customer support,virtual assistant,\"", text, "\",", intent,
                ",,,,,ORDER,BL,\"Sure.\n\n1. Step one, then\n2. step two.\"\n");
      // Listed in reverse, so rows are found by index rather than by position.
      split.insert(std::string_view("row_index,split\n").size(),
                   StrCat(row++, ",", round == 3 ? "test" : "train", "\n"));
    }
  }
  Write("bitext_customer_support/Bitext_Sample_Customer_Support_Training_Dataset.csv", data);
  Write("bitext_customer_support/split_stratified80_20_seed42.csv", split);
  auto json = RunBitext(dir_);
  ASSERT_TRUE(json.ok()) << json.status();
  simdjson::dom::parser parser;
  auto report = Parse(parser, *json);
  EXPECT_EQ(std::string_view(report["task"].get_string().value()), "bitext_customer_support");
  EXPECT_EQ(report["labels"].get_uint64().value(), 2u);
  EXPECT_EQ(report["train_examples"].get_uint64().value(), 18u);
  EXPECT_EQ(report["test_examples"].get_uint64().value(), 6u);
  EXPECT_EQ(report["test_accuracy"].get_double().value(), 1.0);
  EXPECT_TRUE(report["dev"].is_null());

  // A split row pointing past the data is an error naming the file.
  Write("bitext_customer_support/split_stratified80_20_seed42.csv", "row_index,split\n24,train\n");
  auto bad = RunBitext(dir_);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(ToStd(bad.status().message()).find("split_stratified80_20_seed42.csv"),
            std::string_view::npos);
}

TEST_F(IntentEvalTest, MissingFilesAreNotFoundNamingThePath) {
  auto banking = RunBanking77(dir_ + "/nowhere");
  EXPECT_EQ(banking.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(ToStd(banking.status().message()).find(dir_ + "/nowhere/banking77/train.csv"),
            std::string_view::npos)
      << banking.status();
  Write("banking77/train.csv", Banking77Csv({10, 10, 10}));  // test.csv still missing
  banking = RunBanking77(dir_);
  EXPECT_EQ(banking.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(ToStd(banking.status().message()).find("banking77/test.csv"), std::string_view::npos)
      << banking.status();
  auto bitext = RunBitext(dir_);
  EXPECT_EQ(bitext.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(
      ToStd(bitext.status().message())
          .find("bitext_customer_support/Bitext_Sample_Customer_Support_Training_Dataset.csv"),
      std::string_view::npos)
      << bitext.status();
}

}  // namespace
}  // namespace whisperer::eval
