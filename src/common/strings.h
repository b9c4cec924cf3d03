// Small string helpers used across the server.
//
// They exist because Debian 12's abseil is built with its own absl::string_view, which does not
// accept std::string_view: abseil's StrCat and friends cannot take our views, so these replace
// them, and ToStd() converts what abseil returns (such as Status::message()).
// Thread-safety: pure functions.
#pragma once

#include <charconv>
#include <concepts>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

#include "absl/strings/string_view.h"

namespace whisperer {

inline std::string_view ToStd(absl::string_view s) { return {s.data(), s.size()}; }
inline absl::string_view ToAbsl(std::string_view s) { return {s.data(), s.size()}; }

namespace strings_internal {
inline void AppendPiece(std::string* out, std::string_view s) { out->append(s); }
inline void AppendPiece(std::string* out, absl::string_view s) { out->append(s.data(), s.size()); }
inline void AppendPiece(std::string* out, const char* s) { out->append(s); }
inline void AppendPiece(std::string* out, const std::string& s) { out->append(s); }
inline void AppendPiece(std::string* out, char c) { out->push_back(c); }
template <typename T>
requires(std::is_arithmetic_v<T> && !std::is_same_v<T, char> &&
         !std::is_same_v<T, bool>) void AppendPiece(std::string* out, T v) {
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  out->append(buf, end);
}
}  // namespace strings_internal

template <typename... Args>
void StrAppend(std::string* out, const Args&... args) {
  (strings_internal::AppendPiece(out, args), ...);
}

template <typename... Args>
std::string StrCat(const Args&... args) {
  std::string out;
  StrAppend(&out, args...);
  return out;
}

std::string_view StripWhitespace(std::string_view s);
bool EqualsIgnoreCase(std::string_view a, std::string_view b);
bool StartsWithIgnoreCase(std::string_view s, std::string_view prefix);
std::string ToLower(std::string_view s);

// A 64-bit value as exactly 16 lower-case hex digits, and back (nullopt for anything else: one
// spelling per value).
std::string Hex16(uint64_t v);
std::optional<uint64_t> ParseHex16(std::string_view s);

// A UTF-8 byte order mark at the start of `text` (as files saved "UTF-8 with BOM" begin) left
// out; it is part of no value.
std::string_view StripUtf8Bom(std::string_view text);

// Copies JSON text `json` to `out` with the \u escapes of UTF-16 surrogates rewritten: a lone
// one (a JavaScript string cut inside an emoji: JSON allows it, UTF-8 has no form for it) as
// \uFFFD, the replacement character; a pair kept as it is, or with `pairs_as_yaml` written as
// YAML's \U escape of the one character it stands for (yaml-cpp reads a \u escape as one
// character, and a surrogate is none). Other escapes are copied whole. False when nothing was
// rewritten.
bool RewriteSurrogateEscapes(std::string_view json, bool pairs_as_yaml, std::string* out);

// Standard base64 (RFC 4648, with padding). Decoding accepts missing padding; returns false on
// any other malformed input.
std::string Base64Encode(std::string_view data);
bool Base64Decode(std::string_view text, std::string* out);

}  // namespace whisperer
