// gzip for request bodies (`Content-Encoding: gzip`; the RudderStack node SDK compresses by
// default). Inflation stops as soon as the output would pass the limit, so a small "zip bomb"
// costs at most `max_bytes` of memory and the time to produce them.
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace whisperer::net {

// Errors: InvalidArgument `invalid_gzip` for a corrupt or truncated stream, OutOfRange
// `request_too_large` when the inflated body would exceed `max_bytes`.
absl::StatusOr<std::string> Gunzip(std::string_view compressed, size_t max_bytes);

// Compresses `data` as gzip (tests and tools).
std::string Gzip(std::string_view data);

}  // namespace whisperer::net
