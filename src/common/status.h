// Error values used on every data path of the server.
//
// Every fallible function returns absl::Status or absl::StatusOr<T>. Abseil marks both
// must-use, so a dropped error is a compiler warning (an error in CI); the one greppable way to
// drop one on purpose is `status.IgnoreError()`.
//
// An error that can reach a user carries, besides abseil's canonical code (which says what the
// caller should do next: fix the input, authenticate, retry later), two payloads:
//   - `code`: a stable snake_case identifier such as `missing_field`, documented in
//     docs/openapi.json, for programs to branch on;
//   - `field`: the JSON path the error is about, such as `batch[3].userId`.
// api/http_status.h holds the one table from canonical code to HTTP status.
//
// Thread-safety: free functions only, safe from any thread.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace whisperer {

// Returns an error with the canonical `code`, machine-readable `error_code`, human message and,
// when not empty, the JSON path `field`.
absl::Status MakeError(absl::StatusCode code, std::string_view error_code, std::string_view message,
                       std::string_view field = {});

inline absl::Status InvalidInput(std::string_view error_code, std::string_view message,
                                 std::string_view field = {}) {
  return MakeError(absl::StatusCode::kInvalidArgument, error_code, message, field);
}

// The machine-readable code of `status`: its payload, or one derived from the canonical code
// (`invalid_argument`, `unavailable`, ...) when none was set.
std::string ErrorCodeOf(const absl::Status& status);

// The JSON path `status` is about, or "" when it is not about one field.
std::string ErrorFieldOf(const absl::Status& status);

// Returns `status` with `prefix` prepended to its field path (`batch[3]` + `userId` ->
// `batch[3].userId`), keeping its code, message and error code.
absl::Status WithFieldPrefix(const absl::Status& status, std::string_view prefix);

}  // namespace whisperer
