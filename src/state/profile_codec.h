// The binary form of a Profile: how profiles are stored (the `profiles` column family) and how
// the profile engine holds them in memory between events.
//
// A version byte (1), then every field of state/profile.h in declaration order: integers as
// LEB128 varints (signed ones zigzag-encoded), strings and lists length-prefixed, revenue as
// the 8 bytes of the double. Typically a quarter of the size of the JSON form and several
// times faster to write and read, which matters because every event rewrites its profile.
// Written here rather than with a serialization library because the form is small, fixed and
// on the hot path; DecodeProfile checks every length against the input, so a corrupt row is a
// DataLoss error, never a crash.
//
// Thread-safety: pure functions.
#pragma once

#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "state/profile.h"

namespace whisperer::state {

// Appends the binary form of `profile` to `out`.
void EncodeProfile(const Profile& profile, std::string* out);
absl::StatusOr<Profile> DecodeProfile(std::string_view bytes);

}  // namespace whisperer::state
