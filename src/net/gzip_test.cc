#include "net/gzip.h"

#include <gtest/gtest.h>

#include "common/status.h"

namespace whisperer::net {
namespace {

TEST(GzipTest, RoundTrip) {
  std::string data(100'000, 'a');
  for (size_t i = 0; i < data.size(); i += 7) data[i] = static_cast<char>('a' + i % 26);
  auto out = Gunzip(Gzip(data), data.size());
  ASSERT_TRUE(out.ok()) << out.status();
  EXPECT_EQ(*out, data);
}

TEST(GzipTest, BombStopsAtLimit) {
  std::string bomb = Gzip(std::string(50'000'000, '\0'));  // ~50 KB compressed
  EXPECT_LT(bomb.size(), 100'000u);
  auto out = Gunzip(bomb, 500 * 1024);
  ASSERT_FALSE(out.ok());
  EXPECT_EQ(out.status().code(), absl::StatusCode::kOutOfRange);
  EXPECT_EQ(ErrorCodeOf(out.status()), "request_too_large");
}

TEST(GzipTest, CorruptAndTruncated) {
  EXPECT_EQ(ErrorCodeOf(Gunzip("not gzip at all", 1000).status()), "invalid_gzip");
  std::string z = Gzip("hello world, hello world");
  EXPECT_EQ(ErrorCodeOf(Gunzip(z.substr(0, z.size() - 6), 1000).status()), "invalid_gzip");
  EXPECT_EQ(ErrorCodeOf(Gunzip("", 1000).status()), "invalid_gzip");
}

TEST(GzipTest, MembersFollowOneAnotherButNothingElseMay) {
  // `cat a.gz b.gz` is gzip (RFC 1952, 2.2); a member followed by other bytes is not.
  absl::StatusOr<std::string> both = Gunzip(Gzip("hello ") + Gzip("world"), 1000);
  ASSERT_TRUE(both.ok()) << both.status();
  EXPECT_EQ(*both, "hello world");
  EXPECT_EQ(ErrorCodeOf(Gunzip(Gzip("hello") + "garbage", 1000).status()), "invalid_gzip");
  EXPECT_EQ(ErrorCodeOf(Gunzip(Gzip("hello") + "\x1f", 1000).status()), "invalid_gzip");
  // The limit counts every member.
  EXPECT_EQ(ErrorCodeOf(Gunzip(Gzip("hello ") + Gzip("world"), 8).status()), "request_too_large");
}

TEST(GzipTest, ExactlyAtLimitIsAccepted) {
  std::string data(1000, 'x');
  EXPECT_TRUE(Gunzip(Gzip(data), 1000).ok());
  EXPECT_FALSE(Gunzip(Gzip(data), 999).ok());
}

}  // namespace
}  // namespace whisperer::net
