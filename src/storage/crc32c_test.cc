#include "storage/crc32c.h"

#include <dlfcn.h>

#include <cstdint>
#include <random>
#include <string>

#include "gtest/gtest.h"

namespace whisperer::storage {
namespace {

using rocksdb::crc32c::Extend;

TEST(Crc32c, MatchesTheStandardCheckValues) {
  EXPECT_EQ(Extend(0, "123456789", 9), 0xE3069283u);
  // RFC 3720, B.4.
  std::string zeros(32, '\0'), ones(32, '\xff'), ascending(32, '\0');
  for (int i = 0; i < 32; ++i) ascending[i] = static_cast<char>(i);
  EXPECT_EQ(Extend(0, zeros.data(), zeros.size()), 0x8A9136AAu);
  EXPECT_EQ(Extend(0, ones.data(), ones.size()), 0x62A8AB43u);
  EXPECT_EQ(Extend(0, ascending.data(), ascending.size()), 0x46DD794Eu);
  EXPECT_EQ(Extend(0, "", 0), 0u);
}

TEST(Crc32c, AgreesWithTheLibrarysOwnAtEveryLengthAndAlignment) {
  using ExtendFunction = uint32_t (*)(uint32_t, const char*, size_t);
  auto library = reinterpret_cast<ExtendFunction>(dlsym(RTLD_NEXT, kRocksDbExtendSymbol));
  ASSERT_NE(library, nullptr) << "librocksdb's crc32c::Extend not found";
  std::mt19937 rng(7);
  std::string buffer(4096 + 8, '\0');
  for (char& c : buffer) c = static_cast<char>(rng());
  for (size_t offset = 0; offset < 8; ++offset) {
    for (size_t n : {0, 1, 3, 7, 8, 9, 15, 16, 17, 63, 64, 65, 255, 1000, 4096}) {
      uint32_t seed = rng();
      ASSERT_EQ(Extend(seed, buffer.data() + offset, n), library(seed, buffer.data() + offset, n))
          << "offset " << offset << " length " << n;
    }
  }
  // Extending in pieces is the same as at once, as the WAL's fragments rely on.
  uint32_t whole = Extend(0, buffer.data(), 1000);
  EXPECT_EQ(Extend(Extend(0, buffer.data(), 333), buffer.data() + 333, 667), whole);
}

}  // namespace
}  // namespace whisperer::storage
