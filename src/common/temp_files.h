// Scratch space for the commands that need some (replay's store, a read-only follower's
// secondary directory, a training file).
//
// Thread-safety: the functions are safe to call from any thread.
#pragma once

#include <filesystem>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace whisperer {

// $TMPDIR (as the C++ library reads it), or /tmp when it is unset, empty, missing or not a
// directory: a bad TMPDIR must not abort a command.
std::filesystem::path TempDirectory();

// Creates a new directory `<TempDirectory()>/<prefix>-XXXXXX` (mode 0700) and returns its
// path; an error naming the place and the reason when it cannot.
absl::StatusOr<std::string> MakeTempDirectory(std::string_view prefix);

}  // namespace whisperer
