#include "common/csv.h"

#include <cstdio>
#include <fstream>

#include "gtest/gtest.h"

namespace whisperer {
namespace {

std::vector<std::vector<std::string>> ReadAll(std::string_view text, absl::Status* status) {
  CsvReader reader(text);
  std::vector<std::vector<std::string>> out;
  std::vector<std::string> fields;
  while (reader.Next(&fields)) out.push_back(fields);
  *status = reader.status();
  return out;
}

TEST(CsvReaderTest, QuotedFieldsHoldCommasQuotesAndLineBreaks) {
  absl::Status status;
  auto rows = ReadAll("text,category\r\n\"a, \"\"b\"\"\nc\",x\r\nplain,y\n", &status);
  ASSERT_TRUE(status.ok()) << status;
  ASSERT_EQ(rows.size(), 3u);
  EXPECT_EQ(rows[1][0], "a, \"b\"\nc");
  EXPECT_EQ(rows[1][1], "x");
  EXPECT_EQ(rows[2], (std::vector<std::string>{"plain", "y"}));
}

TEST(CsvReaderTest, LastRecordWithoutNewlineAndEmptyFields) {
  absl::Status status;
  auto rows = ReadAll("a,,\"\"\n,b", &status);
  ASSERT_TRUE(status.ok());
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0], (std::vector<std::string>{"a", "", ""}));
  EXPECT_EQ(rows[1], (std::vector<std::string>{"", "b"}));
}

TEST(CsvReaderTest, MalformedQuotesNameTheLine) {
  absl::Status status;
  ReadAll("a,b\nc,\"never closed\n", &status);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(status.message()).find("line 2"), std::string::npos) << status;
  ReadAll("a,b\nc,d\"e\n", &status);
  EXPECT_NE(std::string(status.message()).find("line 2"), std::string::npos) << status;
  ReadAll("\"a\"b,c\n", &status);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
}

TEST(ReadCsvColumnsTest, PicksColumnsByNameAndChecksFieldCounts) {
  std::string path = testing::TempDir() + "/csv_columns.csv";
  {
    std::ofstream out(path);
    out << "\xEF\xBB\xBFid,text,label\n1,hello,greet\n2,\"bye, now\",leave\n";
  }
  std::vector<std::vector<std::string>> rows;
  ASSERT_TRUE(ReadCsvColumns(path, {"label", "text"}, &rows).ok());
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1], (std::vector<std::string>{"leave", "bye, now"}));

  // Behind a byte order mark, a quoted first column name (as spreadsheets write UTF-8 CSV).
  {
    std::ofstream out(path);
    out << "\xEF\xBB\xBF\"id\",\"text\",label\n1,hello,greet\n";
  }
  rows.clear();
  absl::Status quoted = ReadCsvColumns(path, {"id", "text"}, &rows);
  ASSERT_TRUE(quoted.ok()) << quoted;
  EXPECT_EQ(rows, (std::vector<std::vector<std::string>>{{"1", "hello"}}));
  {
    std::ofstream out(path);
    out << "\xEF\xBB\xBFid,text,label\n1,hello,greet\n2,\"bye, now\",leave\n";
  }

  rows.clear();
  absl::Status missing = ReadCsvColumns(path, {"intent"}, &rows);
  EXPECT_NE(std::string(missing.message()).find("'intent'"), std::string::npos) << missing;

  {
    std::ofstream out(path);
    out << "a,b\n1,2\n3\n";
  }
  absl::Status short_row = ReadCsvColumns(path, {"a"}, &rows);
  EXPECT_NE(std::string(short_row.message()).find("line 3 has 1 fields"), std::string::npos)
      << short_row;
  EXPECT_EQ(ReadCsvColumns(path + ".absent", {"a"}, &rows).code(), absl::StatusCode::kNotFound);

  // A wanted column named twice is ambiguous; another one named twice does not matter.
  {
    std::ofstream out(path);
    out << "text,label,text,x,x\nhi,greet,ho,1,2\n";
  }
  absl::Status twice = ReadCsvColumns(path, {"text", "label"}, &rows);
  EXPECT_NE(std::string(twice.message()).find("names 'text' twice"), std::string::npos) << twice;
  rows.clear();
  EXPECT_TRUE(ReadCsvColumns(path, {"label"}, &rows).ok());
  // A wanted field that is not UTF-8 is refused, naming its line and column; others are not read.
  {
    std::ofstream out(path);
    out << "text,label,note\nhello,greet,\xff\nbye \xfe,leave,ok\n";
  }
  rows.clear();
  absl::Status bytes = ReadCsvColumns(path, {"text", "label"}, &rows);
  EXPECT_NE(std::string(bytes.message()).find("line 3: the text field is not valid UTF-8"),
            std::string::npos)
      << bytes;
  rows.clear();
  EXPECT_TRUE(ReadCsvColumns(path, {"label"}, &rows).ok());
  std::remove(path.c_str());
}

}  // namespace
}  // namespace whisperer
