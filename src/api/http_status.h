// The one table from an error's canonical code to its HTTP status, and the JSON error body.
// Every handler answers errors through ErrorBody/HttpStatusFor, so the same failure gets the
// same status everywhere. Thread-safety: pure functions.
#pragma once

#include <string>

#include "absl/status/status.h"

namespace whisperer::api {

// InvalidArgument/FailedPrecondition 400, Unauthenticated 401, PermissionDenied 403,
// NotFound 404, Unimplemented 405 (method not allowed), AlreadyExists/Aborted 409,
// OutOfRange 413 (over a size limit), ResourceExhausted 429, Unavailable 503,
// DeadlineExceeded 504, anything else 500.
int HttpStatusFor(absl::StatusCode code);

// `{"error":{"code":"...","message":"...","field":"..."}}`; `field` only when set.
std::string ErrorBody(const absl::Status& status);

}  // namespace whisperer::api

namespace whisperer {
class JsonWriter;
namespace api {
// Writes the `code`, `message` and `field` members of `status` into an open object (a batch
// rejection adds its `index` before them).
void WriteErrorMembers(JsonWriter& writer, const absl::Status& status);
// Writes the `{"code","message","field"}` object of `status`.
void WriteError(JsonWriter& writer, const absl::Status& status);
}  // namespace api
}  // namespace whisperer
