#include "common/ids.h"

#include <random>

namespace whisperer {

std::string NewUuid() {
  // Seeded once per thread from the OS; message ids need uniqueness, not secrecy.
  thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t hi = rng(), lo = rng();
  hi = (hi & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  lo = (lo & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // RFC 4122 variant
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(36, '-');
  int pos = 0;
  for (int i = 0; i < 32; ++i) {
    if (pos == 8 || pos == 13 || pos == 18 || pos == 23) ++pos;
    uint64_t word = i < 16 ? hi : lo;
    out[pos++] = kHex[(word >> (60 - 4 * (i % 16))) & 0xf];
  }
  return out;
}

std::string NewSecretKey(std::string_view prefix) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
  std::random_device rd;  // getrandom(2) on Linux
  std::uniform_int_distribution<int> pick(0, sizeof(kAlphabet) - 2);
  std::string out(prefix);
  for (int i = 0; i < 32; ++i) out.push_back(kAlphabet[pick(rd)]);
  return out;
}

}  // namespace whisperer
