// Routing: which identifier an event is keyed on, and which shard owns it.
//
// Today the profile key of an event is its userId, else its anonymousId; identity resolution
// (merging the identifiers of one customer into a canonical profile id) replaces RoutingKey
// without changing its callers. The hash is stable across processes and builds, so a key always
// maps to the same shard for a given shard count.
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "api/event.h"

namespace whisperer::identity {

std::string_view RoutingKey(const api::Event& event);

// common/hash.h's Hash64 (FNV-1a + murmur3 finalizer), so short, similar ids spread evenly.
uint64_t StableHash(std::string_view key);

// The shard in [0, num_shards) that owns `event`'s profile. Precondition: num_shards > 0.
size_t ShardFor(const api::Event& event, size_t num_shards);

}  // namespace whisperer::identity
