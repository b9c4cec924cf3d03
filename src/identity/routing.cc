#include "identity/routing.h"

namespace whisperer::identity {

std::string_view RoutingKey(const api::Event& event) {
  return event.user_id.empty() ? std::string_view(event.anonymous_id)
                               : std::string_view(event.user_id);
}

uint64_t StableHash(std::string_view key) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : key) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  h *= 0xc4ceb9fe1a85ec53ULL;
  h ^= h >> 33;
  return h;
}

size_t ShardFor(const api::Event& event, size_t num_shards) {
  return StableHash(RoutingKey(event)) % num_shards;
}

}  // namespace whisperer::identity
