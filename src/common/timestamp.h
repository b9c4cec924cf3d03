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

// 0000-01-01T00:00:00.000Z and 9999-12-31T23:59:59.999Z: the times the ISO 8601 form below
// can write.
inline constexpr int64_t kMinIso8601Millis = -62167219200000;
inline constexpr int64_t kMaxIso8601Millis = 253402300799999;

// Milliseconds since the Unix epoch, or nullopt when `text` is not a valid timestamp (including
// impossible dates such as February 30th, and times whose UTC form is outside years 0000 to
// 9999, such as 9999-12-31T23:00:00-02:00).
std::optional<int64_t> ParseIso8601(std::string_view text);

// Writes `millis` in the canonical form above: exactly kIso8601Bytes characters, no NUL.
inline constexpr size_t kIso8601Bytes = 24;
void FormatIso8601(int64_t millis, char out[kIso8601Bytes]);

// Appends `millis` in the canonical form above.
void AppendIso8601(std::string* out, int64_t millis);
std::string FormatIso8601(int64_t millis);

}  // namespace whisperer
