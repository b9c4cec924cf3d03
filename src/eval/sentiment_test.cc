#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

#include "eval/eval.h"
#include "gtest/gtest.h"
#include "simdjson.h"
#include "testing/temp_dir.h"
#include "text/sentiment.h"

namespace whisperer::eval {
namespace {

void Write(const std::filesystem::path& path, const std::string& text) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out << text;
}

std::string Fixed(double v) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.6f", v);
  return buf;
}

// A datasets folder laid out like ../shared/data, with a few lines per file.
class SentimentEvalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const std::filesystem::path vader = dir_.path() / "vader";
    const std::filesystem::path labelled = dir_.path() / "sentiment_labelled_sentences";
    // Another table with numeric cells comes first: only the one with the columns sentence and
    // compound holds the examples. Negative figures use U+2212, as in the real README.
    Write(vader / "README.md",
          "# VADER\n\n"
          "| corpus | Pearson r | overall precision | overall recall | overall F1 |\n"
          "|---|---|---|---|---|\n"
          "| tweets (4,200) | 0.881 | 0.99 | 0.94 | 0.96 |\n\n"
          "Reference outputs:\n"
          "  | sentence | neg | neu | pos | compound |\n"
          "  |---|---|---|---|---|\n"
          "  | The book was good. | 0.0 | 0.508 | 0.492 | 0.4404 |\n"
          "  | Today SUX! | 0.779 | 0.221 | 0.0 | \xE2\x88\x92"
          "0.5461 |\n\n"
          "Parsing notes\n");
    auto analyzer = text::SentimentAnalyzer::Create();
    // Ratings an exact linear function of our compound score: r = 1; for movie reviews, a
    // decreasing one: r = -1. CRLF line ends, no final newline, a tab inside a text.
    const std::string texts[] = {"good", "bad\tday", "great :)", "The table."};
    std::string rising, falling;
    for (int i = 0; i < 4; ++i) {
      double c = analyzer->Score(texts[i]).compound;
      if (i > 0) rising += "\r\n", falling += "\r\n";
      rising += "t" + std::to_string(i) + "\t" + Fixed(3 * c + 0.5) + "\t" + texts[i];
      falling += std::to_string(i) + "\t" + Fixed(-2 * c) + "\t" + texts[i];
    }
    Write(vader / "tweets_GroundTruth.txt", rising);
    Write(vader / "movieReviewSnippets_GroundTruth.txt", falling);
    Write(vader / "amazonReviewSnippets_GroundTruth.txt", rising);
    Write(vader / "nytEditorialSnippets_GroundTruth.txt", rising);
    // amazon_cells: all 4 right. imdb: "The table." is neutral (compound 0 < 0.05), so predicted
    // negative against its label 1; a NEL (U+0085) inside a sentence is not a line break.
    // yelp: "okay" (compound 0.2263) predicted positive, labelled 0.
    Write(labelled / "amazon_cells_labelled.txt", "good\t1\nbad\t0\ngreat\t1\nawful\t0\n");
    Write(labelled / "imdb_labelled.txt", "good \xC2\x85 film\t1\nbad\t0\nThe table.\t1\n");
    Write(labelled / "yelp_labelled.txt", "great food\t1\nokay\t0\n");
  }

  simdjson::dom::element Run() {
    auto json = RunSentiment(dir_.str());
    EXPECT_TRUE(json.ok()) << json.status();
    if (!json.ok()) return {};
    json_ = *json;
    simdjson::dom::element root;
    EXPECT_EQ(parser_.parse(json_).get(root), simdjson::SUCCESS) << json_;
    return root;
  }

  whisperer::testing::TempDir dir_;
  std::string json_;
  simdjson::dom::parser parser_;
};

TEST_F(SentimentEvalTest, ReadmeExamplesAreParsedAndMatchedTo4Decimals) {
  simdjson::dom::element root = Run();
  simdjson::dom::element ex = root["readme_examples"];
  EXPECT_EQ(uint64_t(ex["count"]), 2u) << json_;
  EXPECT_EQ(uint64_t(ex["matched"]), 2u) << json_;
  EXPECT_EQ(uint64_t(ex["shares_matched"]), 2u) << json_;
  simdjson::dom::array rows = ex["examples"];
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(std::string_view(rows.at(0)["sentence"]), "The book was good.");
  EXPECT_DOUBLE_EQ(double(rows.at(0)["expected"]), 0.4404);
  EXPECT_DOUBLE_EQ(double(rows.at(0)["ours"]), 0.4404);
  EXPECT_TRUE(bool(rows.at(0)["match"]));
  EXPECT_EQ(std::string_view(rows.at(1)["sentence"]), "Today SUX!");
  EXPECT_DOUBLE_EQ(double(rows.at(1)["expected"]), -0.5461);
  EXPECT_DOUBLE_EQ(double(rows.at(1)["ours"]), -0.5461);
}

TEST_F(SentimentEvalTest, ReportsAMismatchingExample) {
  Write(dir_.path() / "vader" / "README.md",
        "| sentence | compound |\n|---|---|\n| The book was good. | 0.4405 |\n"
        "| Not bad at all | 0.431 |\n");
  simdjson::dom::element ex = Run()["readme_examples"];
  EXPECT_EQ(uint64_t(ex["count"]), 2u) << json_;
  EXPECT_EQ(uint64_t(ex["matched"]), 1u) << json_;
  EXPECT_TRUE(ex["shares_matched"].error()) << json_;  // the table has no shares
  simdjson::dom::array rows = ex["examples"];
  EXPECT_FALSE(bool(rows.at(0)["match"]));
  EXPECT_DOUBLE_EQ(double(rows.at(0)["ours"]), 0.4404);
  EXPECT_TRUE(bool(rows.at(1)["match"]));  // 0.431 is 0.4310
}

TEST_F(SentimentEvalTest, PearsonOnEachGroundTruthCorpus) {
  simdjson::dom::array corpora = Run()["ground_truth"];
  ASSERT_EQ(corpora.size(), 4u) << json_;
  const char* names[] = {"tweets", "movie_reviews", "amazon_reviews", "nyt_editorials"};
  const double published[] = {0.881, 0.451, 0.565, 0.492};
  for (size_t i = 0; i < 4; ++i) {
    simdjson::dom::element c = corpora.at(i);
    EXPECT_EQ(std::string_view(c["corpus"]), names[i]);
    EXPECT_EQ(uint64_t(c["texts"]), 4u);
    EXPECT_NEAR(double(c["pearson_r"]), names[i] == std::string("movie_reviews") ? -1 : 1, 1e-5)
        << json_;
    EXPECT_DOUBLE_EQ(double(c["published_r"]), published[i]);
  }
}

TEST_F(SentimentEvalTest, AccuracyPerSourceAndOverall) {
  simdjson::dom::element root = Run();
  simdjson::dom::element l = root["labelled_sentences"];
  simdjson::dom::array sources = l["sources"];
  ASSERT_EQ(sources.size(), 3u) << json_;
  EXPECT_EQ(std::string_view(sources.at(0)["source"]), "amazon_cells");
  EXPECT_EQ(uint64_t(sources.at(0)["sentences"]), 4u);
  EXPECT_DOUBLE_EQ(double(sources.at(0)["accuracy"]), 1.0);
  EXPECT_EQ(std::string_view(sources.at(1)["source"]), "imdb");
  EXPECT_EQ(uint64_t(sources.at(1)["sentences"]), 3u);
  EXPECT_DOUBLE_EQ(double(sources.at(1)["accuracy"]), 2.0 / 3);
  EXPECT_EQ(std::string_view(sources.at(2)["source"]), "yelp");
  EXPECT_DOUBLE_EQ(double(sources.at(2)["accuracy"]), 0.5);
  EXPECT_EQ(uint64_t(l["overall"]["sentences"]), 9u);
  EXPECT_DOUBLE_EQ(double(l["overall"]["accuracy"]), 7.0 / 9);
  // 2 examples, 4 corpora of 4 texts, 9 sentences.
  EXPECT_EQ(uint64_t(root["texts_scored"]), 27u);
  EXPECT_GT(double(root["microseconds_per_text"]), 0.0);
}

TEST_F(SentimentEvalTest, MissingFolderOrFileIsNotFoundNamingThePath) {
  auto missing = RunSentiment(dir_.str() + "/absent");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(std::string(missing.status().message()).find("absent/vader/README.md"),
            std::string::npos)
      << missing.status();

  std::filesystem::remove(dir_.path() / "sentiment_labelled_sentences" / "yelp_labelled.txt");
  auto no_yelp = RunSentiment(dir_.str());
  EXPECT_EQ(no_yelp.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(std::string(no_yelp.status().message()).find("yelp_labelled.txt"), std::string::npos)
      << no_yelp.status();
}

TEST_F(SentimentEvalTest, MalformedLinesNameTheFileAndLine) {
  Write(dir_.path() / "vader" / "tweets_GroundTruth.txt", "1\t0.5\tgood\r\n2\tbad\r\n");
  auto bad = RunSentiment(dir_.str());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(bad.status().message()).find("tweets_GroundTruth.txt:2"), std::string::npos)
      << bad.status();

  Write(dir_.path() / "vader" / "README.md", "no table here\n");
  EXPECT_EQ(RunSentiment(dir_.str()).status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace whisperer::eval
