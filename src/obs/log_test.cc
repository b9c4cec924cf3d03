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

// Levels are named as log.level names them, which InitLogging takes back.
TEST(Log, LevelsAreNamedAsTheConfigNamesThem) {
  EXPECT_EQ(LevelName(spdlog::level::warn), "warn");
  EXPECT_EQ(LevelName(spdlog::level::err), "error");
  EXPECT_EQ(LevelName(spdlog::level::info), "info");
  EXPECT_EQ(LevelName(spdlog::level::debug), "debug");
  EXPECT_EQ(LevelName(spdlog::level::trace), "trace");
  for (auto level : {spdlog::level::trace, spdlog::level::debug, spdlog::level::info,
                     spdlog::level::warn, spdlog::level::err}) {
    EXPECT_EQ(spdlog::level::from_str(std::string(LevelName(level))), level);
  }
}

TEST(LogLimiter, FirstThenOncePerIntervalWithTheCountSince) {
  LogLimiter limiter(std::chrono::milliseconds(1000));
  const auto t0 = std::chrono::steady_clock::time_point() + std::chrono::hours(1);
  uint64_t count = 0;
  EXPECT_TRUE(limiter.Due(t0, &count));
  EXPECT_EQ(count, 1u);
  EXPECT_FALSE(limiter.Due(t0 + std::chrono::milliseconds(10), &count));
  EXPECT_FALSE(limiter.Due(t0 + std::chrono::milliseconds(999), &count));
  EXPECT_TRUE(limiter.Due(t0 + std::chrono::milliseconds(1000), &count));
  EXPECT_EQ(count, 3u);  // the two held back and this one
  EXPECT_TRUE(limiter.Due(t0 + std::chrono::milliseconds(5000), &count));
  EXPECT_EQ(count, 1u);
}

}  // namespace
}  // namespace whisperer::obs
