// Query strings and bodies of API requests: finding a parameter, percent-decoding it, reading
// numbers with an error that names the parameter, and reading a JSON object body.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "simdjson.h"

namespace whisperer::api {

// The raw value of parameter `name` in `target` ("/path?a=1&b=2"); nullopt when absent, "" for
// "?name" or "?name=".
std::optional<std::string_view> QueryParam(std::string_view target, std::string_view name);

// RFC 3986 percent-decoding ("%40" -> "@"). A '+' stays a '+' (phone numbers); a malformed
// escape, or a result that is not UTF-8, is an InvalidArgument naming `name`.
absl::StatusOr<std::string> PercentDecode(std::string_view value, std::string_view name);

// `value` as a whole number up to `max`; `fallback` when empty. The error names `name`.
absl::StatusOr<uint64_t> ParseUintParam(std::string_view value, std::string_view name,
                                        uint64_t fallback, uint64_t max);

// The `limit` query parameter of a paginated list: 1 to `max`, `fallback` when absent. 400
// invalid_value naming `limit` otherwise.
absl::StatusOr<uint64_t> PageLimit(std::string_view target, uint64_t fallback = 100,
                                   uint64_t max = 1000);

// `body` parsed by `parser` (which must outlive the result) as a JSON object; otherwise 400
// malformed_json "the body must be a JSON object".
absl::StatusOr<simdjson::dom::element> JsonObjectBody(std::string_view body,
                                                      simdjson::dom::parser& parser);

}  // namespace whisperer::api
