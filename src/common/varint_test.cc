#include "common/varint.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>
#include <string_view>

namespace whisperer {
namespace {

TEST(Varint, EncodesSevenBitsPerByteAndReadsBack) {
  struct Case {
    uint64_t value;
    size_t bytes;
  };
  const Case cases[] = {{0, 1},
                        {127, 1},
                        {128, 2},
                        {300, 2},
                        {16383, 2},
                        {16384, 3},
                        {uint64_t{1} << 63, 10},
                        {std::numeric_limits<uint64_t>::max(), kMaxVarintBytes}};
  for (const Case& c : cases) {
    char buf[kMaxVarintBytes];
    const size_t n = static_cast<size_t>(EncodeVarint(buf, c.value) - buf);
    EXPECT_EQ(n, c.bytes) << c.value;
    std::string appended = "x";
    PutVarint(&appended, c.value);
    EXPECT_EQ(appended, "x" + std::string(buf, n)) << c.value;
    std::string_view in(appended);
    in.remove_prefix(1);
    uint64_t back = 0;
    ASSERT_TRUE(GetVarint(&in, &back)) << c.value;
    EXPECT_EQ(back, c.value);
    EXPECT_TRUE(in.empty());
  }
  char buf[kMaxVarintBytes];
  EncodeVarint(buf, 300);
  EXPECT_EQ(static_cast<uint8_t>(buf[0]), 0xac);  // the low 7 bits, continued
  EXPECT_EQ(static_cast<uint8_t>(buf[1]), 0x02);
}

TEST(Varint, RefusesTruncatedInput) {
  std::string s;
  PutVarint(&s, 1'000'000);
  s.pop_back();
  std::string_view in(s);
  uint64_t v = 0;
  EXPECT_FALSE(GetVarint(&in, &v));
}

TEST(Varint, ZigZagKeepsSmallMagnitudesSmall) {
  EXPECT_EQ(ZigZag(0), 0u);
  EXPECT_EQ(ZigZag(-1), 1u);
  EXPECT_EQ(ZigZag(1), 2u);
  for (int64_t v : {int64_t{0}, int64_t{-5}, int64_t{5}, std::numeric_limits<int64_t>::min(),
                    std::numeric_limits<int64_t>::max()}) {
    EXPECT_EQ(UnZigZag(ZigZag(v)), v);
  }
}

}  // namespace
}  // namespace whisperer
