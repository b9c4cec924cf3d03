#include "api/auth.h"

#include "common/strings.h"

#include "common/status.h"

namespace whisperer::api {
namespace {

absl::Status Unauthenticated(std::string_view message) {
  return MakeError(absl::StatusCode::kUnauthenticated, "unauthenticated", message);
}

// The key in an Authorization header of `scheme` ("Basic" -> the user name, "Bearer" -> the
// token), or "" when the header uses another scheme.
absl::StatusOr<std::string> KeyFromHeader(std::string_view header, std::string_view scheme) {
  header = StripWhitespace(header);
  if (header.size() <= scheme.size() || !StartsWithIgnoreCase(header, scheme) ||
      header[scheme.size()] != ' ') {
    return std::string();
  }
  std::string_view value = StripWhitespace(header.substr(scheme.size() + 1));
  if (scheme == "Bearer") return std::string(value);
  std::string decoded;
  if (!Base64Decode(value, &decoded)) {
    return Unauthenticated("the Basic credentials are not valid base64");
  }
  return decoded.substr(0, decoded.find(':'));
}

// The key an Authorization header carries, Basic or Bearer (the scheme the header has), or ""
// when it carries none.
absl::StatusOr<std::string> HeaderKey(std::string_view authorization) {
  absl::StatusOr<std::string> key = KeyFromHeader(authorization, "Basic");
  if (!key.ok() || !key->empty()) return key;
  return KeyFromHeader(authorization, "Bearer");
}

}  // namespace

absl::Status KeyRing::Add(std::string key, Principal principal) {
  if (key.empty()) return InvalidInput("invalid_value", "a key may not be empty");
  auto [it, inserted] = keys_.emplace(std::move(key), std::move(principal));
  if (!inserted) {
    return MakeError(absl::StatusCode::kAlreadyExists, "duplicate_key",
                     "the same key is configured twice");
  }
  return absl::OkStatus();
}

const Principal* KeyRing::Find(std::string_view key) const {
  auto it = keys_.find(std::string(key));
  return it == keys_.end() ? nullptr : &it->second;
}

bool HasHeaderKey(std::string_view authorization) {
  // Malformed credentials count as a key (their error is the answer); `Basic Og==` (":", no
  // user name), as a browser's fetch may send, carries none.
  absl::StatusOr<std::string> key = HeaderKey(authorization);
  return !key.ok() || !key->empty();
}

absl::StatusOr<Principal> AuthenticateCollect(const KeyRing& keys, std::string_view authorization,
                                              std::string_view body_write_key) {
  absl::StatusOr<std::string> key = HeaderKey(authorization);
  if (!key.ok()) return key.status();
  if (key->empty()) *key = std::string(body_write_key);
  if (key->empty()) {
    return Unauthenticated(
        "no write key: send it as the user name of HTTP Basic auth or as writeKey in the body");
  }
  const Principal* p = keys.Find(*key);
  if (p == nullptr) return Unauthenticated("the write key is not valid");
  return *p;
}

absl::StatusOr<Principal> AuthenticateAdmin(const KeyRing& keys, std::string_view authorization) {
  // Basic as well as Bearer: the Segment clients and `curl -u KEY:` send keys that way, and a
  // write key sent so must get the 403 that says what it may do, not a 401 that says no key came.
  absl::StatusOr<std::string> key = HeaderKey(authorization);
  if (!key.ok()) return key.status();
  if (key->empty()) {
    return Unauthenticated("this endpoint needs an admin key: Authorization: Bearer <admin key>");
  }
  const Principal* p = keys.Find(*key);
  if (p == nullptr) return Unauthenticated("the admin key is not valid");
  if (p->role != Role::kAdmin) {
    return MakeError(
        absl::StatusCode::kPermissionDenied, "forbidden",
        "a write key may send events, decide and reward; this endpoint needs an admin key");
  }
  return *p;
}

}  // namespace whisperer::api
