#include "common/duration.h"

#include <charconv>

#include "common/status.h"
#include "common/strings.h"

namespace whisperer {
namespace {

struct Unit {
  std::string_view suffix;
  int64_t millis;
};
// Longest suffix first so "ms" is not read as "m".
constexpr Unit kUnits[] = {
    {"ms", 1}, {"s", 1000}, {"m", 60'000}, {"h", 3'600'000}, {"d", 86'400'000}};

}  // namespace

absl::StatusOr<int64_t> ParseDurationMillis(std::string_view text) {
  int64_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr == text.data() || value < 0) {
    return InvalidInput("invalid_duration",
                        StrCat("'", text, "' is not a duration such as 500ms, 30s, 5m, 7d"));
  }
  std::string_view suffix(ptr, text.data() + text.size() - ptr);
  if (suffix.empty()) suffix = "s";
  for (const Unit& unit : kUnits) {
    if (suffix == unit.suffix) {
      if (value > kMaxDurationMillis / unit.millis) {
        return InvalidInput("invalid_duration",
                            StrCat("'", text, "' is longer than 36500d (100 years)"));
      }
      return value * unit.millis;
    }
  }
  return InvalidInput("invalid_duration",
                      StrCat("'", text, "' is not a duration such as 500ms, 30s, 5m, 7d"));
}

std::string FormatDurationMillis(int64_t millis) {
  for (int i = std::size(kUnits) - 1; i > 0; --i) {
    if (millis != 0 && millis % kUnits[i].millis == 0) {
      return StrCat(millis / kUnits[i].millis, kUnits[i].suffix);
    }
  }
  return StrCat(millis, "ms");
}

}  // namespace whisperer
