// Durations as people write them in config files and flags: "500ms", "30s", "5m", "2h", "7d".
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace whisperer {

// The longest duration parsed: 100 years. Longer ones mean "never", which the options that
// allow it spell otherwise, and in nanoseconds (timers) they would overflow.
inline constexpr int64_t kMaxDurationMillis = 36'500LL * 86'400'000;

// Parses a non-negative duration of at most kMaxDurationMillis into milliseconds. A bare number
// is seconds.
absl::StatusOr<int64_t> ParseDurationMillis(std::string_view text);

// The shortest exact form of `millis` in the syntax above ("7d", "1500ms").
std::string FormatDurationMillis(int64_t millis);

}  // namespace whisperer
