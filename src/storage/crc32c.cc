#include "storage/crc32c.h"

#include <dlfcn.h>

#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__x86_64__)
#include <nmmintrin.h>

namespace whisperer::storage {
namespace {

using ExtendFunction = uint32_t (*)(uint32_t, const char*, size_t);

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

// The crc32 instruction where the CPU has it, else the library's own function (the next
// definition after the binary's). Defining Extend here replaces the library's for the whole
// process (see crc32c.h).
ExtendFunction Choose() {
  __builtin_cpu_init();  // Extend may be called by the library's static constructors
  if (__builtin_cpu_supports("sse4.2")) return ExtendSse42;
  return reinterpret_cast<ExtendFunction>(dlsym(RTLD_NEXT, kRocksDbExtendSymbol));
}

}  // namespace

bool Crc32cAccelerated() {
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("sse4.2")) return false;
  void* bound = dlsym(RTLD_DEFAULT, kRocksDbExtendSymbol);  // what the library's calls reach
  return bound == reinterpret_cast<void*>(&rocksdb::crc32c::Extend);
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
