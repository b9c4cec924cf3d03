// Structured logs: one JSON object per line on stderr (`log.format: json`, the default) or a
// human-readable line (`text`). Fields: time (UTC, ms), level, msg, and for JSON any key/value
// pairs passed to LogEvent.
// Thread-safety: InitLogging once at start-up, before other threads log; the rest from any thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <initializer_list>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/status.h"
#include "spdlog/spdlog.h"

namespace whisperer::obs {

// `level`: trace, debug, info, warn, error. `format`: json or text.
absl::Status InitLogging(std::string_view level, std::string_view format);
// Whether InitLogging has succeeded: from then on stderr is the log, in its format.
bool LoggingStarted();

// A level as the config names it (log.level): trace, debug, info, warn, error; the logs name
// levels so too.
std::string_view LevelName(spdlog::level::level_enum level);

using Field = std::pair<std::string_view, std::string_view>;
// `value` as the text format writes it (logfmt): as it is when it has no blank, quote,
// backslash, `=` or control character, else quoted and escaped as a JSON string, so that an
// event stays on one line and splits on blanks.
void AppendTextValue(std::string* line, std::string_view value);

// Logs `message` with extra string fields, e.g. LogEvent(info, "listening", {{"url", url}}).
void LogEvent(spdlog::level::level_enum level, std::string_view message,
              std::initializer_list<Field> fields = {});

// For a failure that can repeat many times a second (accepts, storage writes): log its first
// occurrence, then at most once per `every`, with how many occurred since the last line.
// Thread-safe.
class LogLimiter {
 public:
  explicit LogLimiter(std::chrono::milliseconds every) : every_(every) {}

  // Counts one occurrence; true when it is to be logged, with `*count` the occurrences since
  // the last logged one, this one included.
  bool Due(uint64_t* count) { return Due(std::chrono::steady_clock::now(), count); }
  bool Due(std::chrono::steady_clock::time_point now, uint64_t* count);

 private:
  const std::chrono::milliseconds every_;
  std::mutex mu_;
  bool logged_ = false;                           // GUARDED_BY(mu_)
  std::chrono::steady_clock::time_point last_{};  // GUARDED_BY(mu_)
  uint64_t count_ = 0;                            // GUARDED_BY(mu_)
};

}  // namespace whisperer::obs
