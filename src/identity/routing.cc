#include "identity/routing.h"

#include "common/hash.h"

namespace whisperer::identity {

std::string_view RoutingKey(const api::Event& event) {
  return event.user_id.empty() ? std::string_view(event.anonymous_id)
                               : std::string_view(event.user_id);
}

uint64_t StableHash(std::string_view key) { return Hash64(key); }

size_t ShardFor(const api::Event& event, size_t num_shards) {
  return StableHash(RoutingKey(event)) % num_shards;
}

}  // namespace whisperer::identity
