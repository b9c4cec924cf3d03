// ISO-8601 timestamps as the Segment spec uses them.
//
// Accepted: `YYYY-MM-DD`, optionally followed by `T` (or a space) and `hh:mm`, `hh:mm:ss` or
// `hh:mm:ss.f...` (any number of fraction digits; milliseconds are kept), and a zone of `Z`,
// `±hh:mm`, `±hhmm` or `±hh`. A time without a zone is read as UTC. Written: always
// `YYYY-MM-DDThh:mm:ss.sssZ`, the form JavaScript's Date.toISOString() produces.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace whisperer {

// Milliseconds since the Unix epoch, or nullopt when `text` is not a valid timestamp (including
// impossible dates such as February 30th).
std::optional<int64_t> ParseIso8601(std::string_view text);

// Writes `millis` in the canonical form above: exactly kIso8601Bytes characters, no NUL.
inline constexpr size_t kIso8601Bytes = 24;
void FormatIso8601(int64_t millis, char out[kIso8601Bytes]);

// Appends `millis` in the canonical form above.
void AppendIso8601(std::string* out, int64_t millis);
std::string FormatIso8601(int64_t millis);

}  // namespace whisperer
