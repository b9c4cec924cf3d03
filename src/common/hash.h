// Hash64: a stable, seeded 64-bit hash of bytes (FNV-1a followed by the murmur3 finalizer).
// Stable across processes, builds and machines: it is used where hashes are persisted or must
// agree between processes (shard routing, dedupe keys). Not for secrets.
// Thread-safety: pure function.
#pragma once

#include <cstdint>
#include <string_view>
#include <utility>

namespace whisperer {

inline constexpr uint64_t kFnvOffsetBasis = 1469598103934665603ULL;
inline constexpr uint64_t kFnvPrime = 1099511628211ULL;

// The murmur3 64-bit finalizer: spreads every input bit over every output bit.
constexpr uint64_t Mix64(uint64_t h) {
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

// One byte of FNV-1a.
constexpr uint64_t FnvStep(uint64_t h, char c) {
  return (h ^ static_cast<unsigned char>(c)) * kFnvPrime;
}

constexpr uint64_t Hash64(std::string_view data, uint64_t seed = kFnvOffsetBasis) {
  uint64_t h = seed;
  for (char c : data) h = FnvStep(h, c);
  return Mix64(h);
}

// A 128-bit fingerprint: two independently seeded Hash64s. Collisions are negligible at any
// realistic count, so it stands for a long key where the key itself need not be kept (dedupe
// keys, suppressed identifiers, the in-memory identity graph).
struct Hash128 {
  uint64_t a = 0;
  uint64_t b = 0;
  friend bool operator==(const Hash128&, const Hash128&) = default;
  template <typename H>
  friend H AbslHashValue(H h, const Hash128& k) {
    return H::combine(std::move(h), k.a, k.b);
  }
};

// Fingerprint128 fed piece by piece: the fingerprint of a key that is never built (see
// storage::IdentityFingerprint). Feeding the pieces of a string gives that string's Fingerprint128.
class Fingerprinter {
 public:
  // Hash64(data) and Hash64(data, 0x9e3779b97f4a7c15) in one pass: two independent multiply
  // chains interleave, where one after the other each waited out every multiply.
  constexpr void Add(char c) {
    a_ = FnvStep(a_, c);
    b_ = FnvStep(b_, c);
  }
  constexpr void Add(std::string_view data) {
    for (char c : data) Add(c);
  }
  constexpr Hash128 Finish() const { return {Mix64(a_), Mix64(b_)}; }

 private:
  uint64_t a_ = kFnvOffsetBasis;
  uint64_t b_ = 0x9e3779b97f4a7c15ULL;
};

constexpr Hash128 Fingerprint128(std::string_view data) {
  Fingerprinter f;
  f.Add(data);
  return f.Finish();
}

}  // namespace whisperer
