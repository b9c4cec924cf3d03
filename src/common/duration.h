// Durations as people write them in config files and flags: "500ms", "30s", "5m", "2h", "7d".
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace whisperer {

// Parses a non-negative duration into milliseconds. A bare number is seconds.
absl::StatusOr<int64_t> ParseDurationMillis(std::string_view text);

// The shortest exact form of `millis` in the syntax above ("7d", "1500ms").
std::string FormatDurationMillis(int64_t millis);

}  // namespace whisperer
