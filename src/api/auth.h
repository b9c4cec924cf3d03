// Authentication of API requests, as Segment does it for collection and with bearer admin keys
// for everything else.
//
//   collection (/v1/track, /v1/batch, ...): HTTP Basic with the write key as user name, or
//     `Authorization: Bearer <key>`, or `writeKey` in the body (used when the header carries no
//     key). An admin key is accepted too (it may do everything a write key may). Missing or
//     unknown key: 401.
//   everything else that needs a key (reads, decisions' logs, approvals and configuration):
//     `Authorization: Bearer <admin key>`, or HTTP Basic with the admin key as user name.
//     Missing or unknown key: 401; a write key, sent either way: 403.
//
// Thread-safety: a KeyRing is built once at start-up and then only read, from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <unordered_map>

#include "absl/status/statusor.h"

namespace whisperer::api {

enum class Role : uint8_t { kWrite, kAdmin };

struct Principal {
  uint32_t workspace_id = 0;
  std::string workspace;
  Role role = Role::kWrite;
};

class KeyRing {
 public:
  // Fails with AlreadyExists when `key` already belongs to a principal.
  absl::Status Add(std::string key, Principal principal);
  const Principal* Find(std::string_view key) const;
  size_t size() const { return keys_.size(); }

 private:
  std::unordered_map<std::string, Principal> keys_;
};

// `authorization` is the header value (may be empty); `body_write_key` the body's writeKey.
// Whether `authorization` carries a key (Basic or Bearer), so that it can be checked before
// the body is read.
bool HasHeaderKey(std::string_view authorization);

absl::StatusOr<Principal> AuthenticateCollect(const KeyRing& keys, std::string_view authorization,
                                              std::string_view body_write_key);
absl::StatusOr<Principal> AuthenticateAdmin(const KeyRing& keys, std::string_view authorization);

}  // namespace whisperer::api
