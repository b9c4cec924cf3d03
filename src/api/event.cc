#include "api/event.h"

namespace whisperer::api {
namespace {
constexpr std::string_view kNames[] = {"identify", "track", "page", "screen", "group", "alias"};
}  // namespace

std::string_view EventTypeName(EventType type) { return kNames[static_cast<int>(type)]; }

std::optional<EventType> ParseEventType(std::string_view name) {
  for (size_t i = 0; i < std::size(kNames); ++i) {
    if (kNames[i] == name) return static_cast<EventType>(i);
  }
  return std::nullopt;
}

}  // namespace whisperer::api
