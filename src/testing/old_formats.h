// Values as earlier versions of the store wrote them, for tests that a store written then is
// still read correctly. Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "storage/keys.h"

namespace whisperer::testing {

// A dedupe entry as written before November 2026: [sequence u64][receivedAt ms i64][messageId].
inline std::string OldDedupeEntry(uint64_t sequence, int64_t received_at_ms,
                                  std::string_view message_id) {
  std::string value;
  storage::PutBigEndian64(&value, sequence);
  storage::PutBigEndian64(&value, static_cast<uint64_t>(received_at_ms));
  value.append(message_id);
  return value;
}

}  // namespace whisperer::testing
