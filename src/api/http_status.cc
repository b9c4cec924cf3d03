#include "api/http_status.h"

#include "common/json_writer.h"
#include "common/status.h"
#include "common/strings.h"

namespace whisperer::api {

int HttpStatusFor(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kOk:
      return 200;
    case absl::StatusCode::kInvalidArgument:
    case absl::StatusCode::kFailedPrecondition:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kPermissionDenied:
      return 403;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kUnimplemented:
      return 405;
    case absl::StatusCode::kAlreadyExists:
    case absl::StatusCode::kAborted:
      return 409;
    case absl::StatusCode::kOutOfRange:
      return 413;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kUnavailable:
      return 503;
    case absl::StatusCode::kDeadlineExceeded:
      return 504;
    default:
      return 500;
  }
}

void WriteErrorMembers(JsonWriter& w, const absl::Status& status) {
  w.Key("code");
  w.String(ErrorCodeOf(status));
  w.Key("message");
  w.String(ToStd(status.message()));
  std::string field = ErrorFieldOf(status);
  if (!field.empty()) {
    w.Key("field");
    w.String(field);
  }
}

void WriteError(JsonWriter& w, const absl::Status& status) {
  w.StartObject();
  WriteErrorMembers(w, status);
  w.EndObject();
}

std::string ErrorBody(const absl::Status& status) {
  std::string out;
  JsonWriter w(&out);
  w.StartObject();
  w.Key("error");
  WriteError(w, status);
  w.EndObject();
  return out;
}

}  // namespace whisperer::api
