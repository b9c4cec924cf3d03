// Event: one Segment-spec message after validation and normalization; what the rest of the
// pipeline (identity, shards, storage) sees. Plain value type, no thread affinity.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace whisperer::api {

enum class EventType : uint8_t { kIdentify, kTrack, kPage, kScreen, kGroup, kAlias };

// The spec's lower-case name ("identify", "track", ...).
std::string_view EventTypeName(EventType type);
std::optional<EventType> ParseEventType(std::string_view name);

struct Event {
  EventType type = EventType::kTrack;
  // Client-supplied, or assigned by the server when missing. Retries carry the same id and are
  // deduplicated on it.
  std::string message_id;
  // At least one of the two is non-empty.
  std::string user_id;
  std::string anonymous_id;
  // Skew-corrected event time and server receive time, milliseconds since the epoch.
  int64_t timestamp_ms = 0;
  int64_t received_at_ms = 0;
  // The normalized event as compact JSON: the stored and exported form. See
  // api/segment_parser.h for what normalization adds.
  std::string json;
};

}  // namespace whisperer::api
