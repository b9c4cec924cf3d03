#include "common/scratch.h"

#include <gtest/gtest.h>

#include <cstdint>

namespace whisperer {
namespace {

TEST(ScratchArray, HoldsNValuesOnTheStackUpToNAndOnTheHeapBeyond) {
  for (size_t n : {size_t{0}, size_t{1}, size_t{16}, size_t{17}, size_t{1000}}) {
    ScratchArray<uint64_t, 16> a(n);
    uint64_t* p = a.data();
    const auto* self = reinterpret_cast<const char*>(&a);
    const bool inside = reinterpret_cast<const char*>(p) >= self &&
                        reinterpret_cast<const char*>(p) < self + sizeof(a);
    EXPECT_EQ(inside, n <= 16) << n;
    for (size_t i = 0; i < n; ++i) p[i] = i * 3;  // every one writable (ASan checks the bounds)
    uint64_t sum = 0;
    for (size_t i = 0; i < n; ++i) sum += p[i];
    EXPECT_EQ(sum, n == 0 ? 0 : 3 * n * (n - 1) / 2) << n;
    EXPECT_EQ(a.data(), p);  // the same storage on every call
  }
}

}  // namespace
}  // namespace whisperer
