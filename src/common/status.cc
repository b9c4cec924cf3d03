#include "common/status.h"

#include <optional>
#include "common/strings.h"

#include "absl/strings/cord.h"

namespace whisperer {
namespace {

constexpr std::string_view kCodeUrl = "whisperer/code";
constexpr std::string_view kFieldUrl = "whisperer/field";

std::string PayloadOf(const absl::Status& status, std::string_view url) {
  auto payload = status.GetPayload(ToAbsl(url));
  return payload ? std::string(*payload) : std::string();
}

}  // namespace

absl::Status MakeError(absl::StatusCode code, std::string_view error_code, std::string_view message,
                       std::string_view field) {
  absl::Status status(code, ToAbsl(message));
  if (!error_code.empty()) status.SetPayload(ToAbsl(kCodeUrl), absl::Cord(ToAbsl(error_code)));
  if (!field.empty()) status.SetPayload(ToAbsl(kFieldUrl), absl::Cord(ToAbsl(field)));
  return status;
}

std::string ErrorCodeOf(const absl::Status& status) {
  std::string code = PayloadOf(status, kCodeUrl);
  if (!code.empty()) return code;
  return ToLower(absl::StatusCodeToString(status.code()));
}

std::string ErrorFieldOf(const absl::Status& status) { return PayloadOf(status, kFieldUrl); }

absl::Status WithFieldPrefix(const absl::Status& status, std::string_view prefix) {
  if (status.ok() || prefix.empty()) return status;
  std::string field = ErrorFieldOf(status);
  std::string joined(prefix);
  if (!field.empty()) {
    if (field.front() != '[') joined += '.';
    joined += field;
  }
  absl::Status out = status;
  out.SetPayload(ToAbsl(kFieldUrl), absl::Cord(joined));
  return out;
}

}  // namespace whisperer
