#include "obs/log.h"

#include <gtest/gtest.h>

namespace whisperer::obs {
namespace {

std::string Text(std::string_view value) {
  std::string line;
  AppendTextValue(&line, value);
  return line;
}

TEST(TextLog, PlainValuesAsTheyAreOthersQuotedOnOneLine) {
  EXPECT_EQ(Text("listening"), "listening");
  EXPECT_EQ(Text("http://127.0.0.1:8080"), "http://127.0.0.1:8080");
  EXPECT_EQ(Text("crc32 instruction"), "\"crc32 instruction\"");
  EXPECT_EQ(Text("/tmp/we\"ird\\dir\nsecond"), "\"/tmp/we\\\"ird\\\\dir\\nsecond\"");
  EXPECT_EQ(Text("a=b"), "\"a=b\"");
  EXPECT_EQ(Text(""), "\"\"");
  EXPECT_EQ(Text("tab\there").find('\t'), std::string::npos);
}

}  // namespace
}  // namespace whisperer::obs
