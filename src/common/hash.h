// Hash64: a stable, seeded 64-bit hash of bytes (FNV-1a followed by the murmur3 finalizer).
// Stable across processes, builds and machines: it is used where hashes are persisted or must
// agree between processes (shard routing, dedupe keys). Not for secrets.
// Thread-safety: pure function.
#pragma once

#include <cstdint>
#include <string_view>

namespace whisperer {

inline constexpr uint64_t kFnvOffsetBasis = 1469598103934665603ULL;

constexpr uint64_t Hash64(std::string_view data, uint64_t seed = kFnvOffsetBasis) {
  uint64_t h = seed;
  for (char c : data) {
    h ^= static_cast<unsigned char>(c);
    h *= 1099511628211ULL;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

}  // namespace whisperer
