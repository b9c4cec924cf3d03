// Random identifiers: message ids the server assigns and the keys it generates.
// Thread-safety: safe from any thread (each thread has its own generator).
#pragma once

#include <string>
#include <string_view>

namespace whisperer {

// A random (version 4) UUID in its canonical 36-character form.
std::string NewUuid();

// A secret of `prefix` followed by 32 characters from [A-Za-z0-9], drawn from the operating
// system's random source (192 bits of entropy).
std::string NewSecretKey(std::string_view prefix);

}  // namespace whisperer
