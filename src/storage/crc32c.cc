#include "storage/crc32c.h"

#include <dlfcn.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>

// The function of librocksdb's util/crc32c.h that every WAL record and table block checksum
// goes through: CRC32C (Castagnoli) of data[0, n) continuing from init_crc. Defining it here
// replaces the library's for the whole process (see crc32c.h).
namespace rocksdb::crc32c {
uint32_t Extend(uint32_t init_crc, const char* data, size_t n);
}

namespace whisperer::storage {
namespace {

using ExtendFunction = uint32_t (*)(uint32_t, const char*, size_t);
constexpr char kExtendSymbol[] = "_ZN7rocksdb6crc32c6ExtendEjPKcm";

__attribute__((target("sse4.2"))) uint32_t ExtendSse42(uint32_t init_crc, const char* data,
                                                       size_t n) {
  uint32_t crc = ~init_crc;
  for (; n > 0 && reinterpret_cast<uintptr_t>(data) % 8 != 0; --n)
    crc = _mm_crc32_u8(crc, static_cast<uint8_t>(*data++));
  uint64_t crc64 = crc;
  for (; n >= 8; n -= 8, data += 8) {
    uint64_t word;
    std::memcpy(&word, data, 8);
    crc64 = _mm_crc32_u64(crc64, word);
  }
  crc = static_cast<uint32_t>(crc64);
  for (; n > 0; --n) crc = _mm_crc32_u8(crc, static_cast<uint8_t>(*data++));
  return ~crc;
}

// Without SSE4.2: the library's own function, the next definition after the binary's.
ExtendFunction Choose() {
  __builtin_cpu_init();  // Extend may be called by the library's static constructors
  if (__builtin_cpu_supports("sse4.2")) return ExtendSse42;
  return reinterpret_cast<ExtendFunction>(dlsym(RTLD_NEXT, kExtendSymbol));
}

}  // namespace

bool Crc32cAccelerated() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("sse4.2") &&
         dlsym(RTLD_DEFAULT, kExtendSymbol) == reinterpret_cast<void*>(&rocksdb::crc32c::Extend);
}

}  // namespace whisperer::storage

uint32_t rocksdb::crc32c::Extend(uint32_t init_crc, const char* data, size_t n) {
  static const whisperer::storage::ExtendFunction extend = whisperer::storage::Choose();
  return extend(init_crc, data, n);
}

#else  // not x86-64: the library's CRC32C stays

namespace whisperer::storage {
bool Crc32cAccelerated() { return false; }
}  // namespace whisperer::storage

#endif
