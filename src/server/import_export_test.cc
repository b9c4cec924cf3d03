#include "server/import_export.h"

#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "common/status.h"
#include "common/strings.h"
#include "net/gzip.h"
#include "testing/temp_dir.h"

namespace whisperer::server {
namespace {

class ImportExportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    storage::Store::Options o;
    o.path = (dir_.path() / "data").string();
    store_ = *storage::Store::Open(o);
    shards_ = std::make_unique<shard::ShardSet>(store_.get(), &SystemClock::Get(), &metrics_,
                                                shard::ShardSet::Options{.num_shards = 2});
    ASSERT_TRUE(shards_->Start().ok());
  }
  std::string Write(const std::string& name, const std::string& content) {
    std::string path = (dir_.path() / name).string();
    std::ofstream(path, std::ios::binary) << content;
    return path;
  }
  absl::StatusOr<ImportSummary> Import(const std::string& path, std::ostream* progress = nullptr) {
    ImportOptions options;
    options.file = path;
    options.lines_per_batch = 2;
    options.progress = progress;
    ImportSummary summary;
    absl::Status s =
        ImportFile(options, api::Limits{}, shards_.get(), 1, &SystemClock::Get(), &summary);
    last_ = summary;
    if (!s.ok()) return s;
    return summary;
  }
  ImportSummary last_;  // of the last Import, also when it failed

  testing::TempDir dir_;
  obs::Registry metrics_;
  std::unique_ptr<storage::Store> store_;
  std::unique_ptr<shard::ShardSet> shards_;
};

constexpr char kLines[] =
    R"({"type":"track","userId":"u1","event":"A","messageId":"i1","timestamp":"2020-01-01T00:00:00Z"})"
    "\n"
    R"({"type":"identify","userId":"u1","traits":{"plan":"pro"},"messageId":"i2"})"
    "\r\n"
    "\n"
    R"({"type":"track","userId":"u1"})"
    "\n"
    "not json\n"
    R"({"type":"page","anonymousId":"a","messageId":"i3"})";  // no final newline

TEST_F(ImportExportTest, ImportsPlainAndGzipAndReportsRejectedLines) {
  std::ostringstream progress;
  auto summary = Import(Write("events.ndjson", kLines), &progress);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->lines, 5u);
  EXPECT_EQ(summary->stored, 3u);
  EXPECT_EQ(summary->rejected, 2u);
  ASSERT_EQ(summary->first_rejections.size(), 2u);
  EXPECT_EQ(summary->first_rejections[0].first, 4u);  // 1-based, blank lines counted
  EXPECT_EQ(summary->first_rejections[1].first, 5u);
  EXPECT_NE(progress.str().find("100.0%"), std::string::npos);

  std::ostringstream text;
  PrintImportSummary(*summary, text);
  EXPECT_NE(text.str().find("imported 3 events from 5 lines; 2 rejected"), std::string::npos);
  EXPECT_NE(text.str().find("line 4: missing_field (event)"), std::string::npos);
  EXPECT_NE(text.str().find("line 5: malformed_json"), std::string::npos);

  // The same events gzip-compressed are all duplicates.
  summary = Import(Write("events.ndjson.gz", net::Gzip(kLines)));
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->stored, 0u);
  EXPECT_EQ(summary->duplicates, 3u);

  std::ostringstream out;
  auto count = ExportEvents(*store_, 1, out);
  ASSERT_TRUE(count.ok());
  EXPECT_EQ(*count, 3u);
  std::string exported = out.str();
  EXPECT_EQ(std::count(exported.begin(), exported.end(), '\n'), 3);
  // Historical timestamps are kept (no sentAt: no skew correction).
  EXPECT_NE(exported.find(R"("timestamp":"2020-01-01T00:00:00.000Z")"), std::string::npos);
  EXPECT_LT(exported.find("\"i1\""), exported.find("\"i2\""));
}

// Files saved by editors and spreadsheets as "UTF-8 with BOM" start with one: it is not part of
// the first event.
TEST_F(ImportExportTest, AByteOrderMarkBeforeTheFirstLineIsSkipped) {
  auto summary =
      Import(Write("bom.ndjson",
                   "\xEF\xBB\xBF{\"type\":\"track\",\"userId\":\"u\",\"event\":\"A\"}\n"
                   "\xEF\xBB\xBF{\"type\":\"track\",\"userId\":\"u\",\"event\":\"B\"}\n"));
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->stored, 1u);
  ASSERT_EQ(summary->first_rejections.size(), 1u);
  EXPECT_EQ(summary->first_rejections[0].first, 2u);  // only the file's own mark is skipped
}

TEST_F(ImportExportTest, MissingFileIsNotFound) {
  EXPECT_EQ(Import((dir_.path() / "nope.ndjson").string()).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(ImportExportTest, OverlongLineIsRejectedWithoutHoldingIt) {
  std::string big =
      R"({"type":"track","userId":"u","event":")" + std::string(3 << 20, 'x') + "\"}\n";
  auto summary = Import(Write("big.ndjson", big + R"({"type":"track","userId":"u","event":"ok"})"));
  ASSERT_TRUE(summary.ok());
  EXPECT_EQ(summary->stored, 1u);
  EXPECT_EQ(summary->rejected, 1u);
  EXPECT_EQ(summary->first_rejections[0].second.code(), absl::StatusCode::kOutOfRange);
}

TEST_F(ImportExportTest, LinesOfSpacesTabsOrCarriageReturnsAreBlank) {
  auto summary = Import(Write("blank.ndjson", std::string(kLines) + "\n \t\r\n\t\n  \n"));
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->lines, 5u);  // as without them
  EXPECT_EQ(summary->rejected, 2u);
}

TEST_F(ImportExportTest, CorruptGzipFailsNamingTheFileOnce) {
  std::string z = net::Gzip(kLines);
  z[z.size() / 2] ^= 0x5a;
  z.resize(z.size() - 4);
  const std::string path = Write("bad.ndjson.gz", z);
  auto summary = Import(path);
  ASSERT_FALSE(summary.ok());
  EXPECT_EQ(ErrorCodeOf(summary.status()), "invalid_gzip");
  const std::string_view message = ToStd(summary.status().message());
  EXPECT_EQ(message.find(path), 0u) << message;
  EXPECT_EQ(message.find(path, 1), std::string_view::npos) << message;
}

TEST_F(ImportExportTest, WhatIsNoRegularFileIsNamedSo) {
  for (const std::string& path : {dir_.path().string(), std::string("/dev/null")}) {
    absl::StatusOr<uint64_t> size = ImportFileSize(path);
    ASSERT_FALSE(size.ok());
    EXPECT_EQ(ErrorCodeOf(size.status()), "invalid_argument") << path;
    EXPECT_NE(size.status().message().find("no regular file"), absl::string_view::npos);
  }
  absl::StatusOr<uint64_t> missing = ImportFileSize((dir_.path() / "none.ndjson").string());
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(ErrorCodeOf(missing.status()), "file_not_found");
}

TEST_F(ImportExportTest, TruncatedGzipFailsEvenWhenWhatItHoldsReadsCleanly) {
  // Cut anywhere inside the stream, even just before the trailer (every line is there but
  // nothing says the file is whole), the import reports the file as truncated.
  // Three events: the cut comes with the last one waiting for a batch of two.
  const std::string z = net::Gzip(std::string(kLines) + "\n");
  uint64_t stored = 0;
  for (size_t keep : {z.size() / 2, z.size() - 4}) {
    auto summary = Import(Write("cut.ndjson.gz", z.substr(0, keep)));
    ASSERT_FALSE(summary.ok()) << keep;
    EXPECT_NE(summary.status().message().find("truncated"), std::string::npos) << summary.status();
    stored += last_.stored;  // what was stored before the cut is counted
  }
  EXPECT_EQ(stored, 3u);  // the second cut finds the first's events there: duplicates
  // The whole file imports cleanly, and finds every line already there: the complete lines
  // before the cut were imported, the last batch of them too.
  auto whole = Import(Write("whole.ndjson.gz", z));
  ASSERT_TRUE(whole.ok()) << whole.status();
  EXPECT_EQ(whole->stored, 0u);
  EXPECT_EQ(whole->duplicates + whole->rejected, whole->lines);
}

}  // namespace
}  // namespace whisperer::server
