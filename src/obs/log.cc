#include "obs/log.h"

#include <algorithm>
#include <atomic>

#include "common/clock.h"
#include "common/json_writer.h"
#include "common/status.h"
#include "common/strings.h"
#include "common/timestamp.h"
#include "spdlog/sinks/stdout_sinks.h"

namespace whisperer::obs {
namespace {

std::atomic<bool> g_json{true};
std::atomic<bool> g_started{false};

}  // namespace

std::string_view LevelName(spdlog::level::level_enum level) {
  switch (level) {
    case spdlog::level::trace:
      return "trace";
    case spdlog::level::debug:
      return "debug";
    case spdlog::level::info:
      return "info";
    case spdlog::level::warn:
      return "warn";
    case spdlog::level::err:
    case spdlog::level::critical:
      return "error";
    default:
      return "off";
  }
}

void AppendTextValue(std::string* line, std::string_view value) {
  const bool plain = !value.empty() && std::all_of(value.begin(), value.end(), [](char c) {
    return static_cast<unsigned char>(c) > ' ' && c != '"' && c != '\\' && c != '=' && c != 0x7f;
  });
  if (plain) {
    line->append(value);
    return;
  }
  // Quoted as a JSON string is (logfmt's rule): the line stays one line, and splits on blanks.
  JsonWriter w(line);
  w.String(value);
}

absl::Status InitLogging(std::string_view level, std::string_view format) {
  spdlog::level::level_enum lvl = spdlog::level::from_str(std::string(level));
  if (lvl == spdlog::level::off && level != "off") {
    return InvalidInput(
        "invalid_value",
        StrCat("log level '", level, "' is not one of trace, debug, info, warn, error, off"),
        "log.level");
  }
  if (format != "json" && format != "text") {
    return InvalidInput("invalid_value", StrCat("log format '", format, "' is not json or text"),
                        "log.format");
  }
  auto logger = spdlog::stderr_logger_mt("whisperer");
  spdlog::set_default_logger(logger);
  g_json = format == "json";
  // The line is built by LogEvent, with the level named as in the config (spdlog says
  // "warning"); spdlog adds the time to a text line, and the newline.
  spdlog::set_pattern(g_json ? "%v" : "%Y-%m-%dT%H:%M:%S.%eZ %v", spdlog::pattern_time_type::utc);
  spdlog::set_level(lvl);
  spdlog::flush_on(spdlog::level::info);
  g_started = true;
  return absl::OkStatus();
}

bool LoggingStarted() { return g_started; }

void LogEvent(spdlog::level::level_enum level, std::string_view message,
              std::initializer_list<Field> fields) {
  if (!spdlog::should_log(level)) return;
  std::string line;
  if (g_json) {
    JsonWriter w(&line);
    w.StartObject();
    w.Key("time");
    std::string time;
    AppendIso8601(&time, SystemClock::Get().NowMillis());
    w.String(time);
    w.Key("level");
    w.String(LevelName(level));
    w.Key("msg");
    w.String(message);
    for (const auto& [k, v] : fields) {
      w.Key(k);
      w.String(v);
    }
    w.EndObject();
  } else {
    StrAppend(&line, LevelName(level), " ");
    AppendTextValue(&line, message);
    for (const auto& [k, v] : fields) {
      StrAppend(&line, " ", k, "=");
      AppendTextValue(&line, v);
    }
  }
  spdlog::log(level, "{}", line);
}

bool LogLimiter::Due(std::chrono::steady_clock::time_point now, uint64_t* count) {
  std::lock_guard lock(mu_);
  ++count_;
  if (logged_ && now - last_ < every_) return false;
  logged_ = true;
  last_ = now;
  *count = count_;
  count_ = 0;
  return true;
}

}  // namespace whisperer::obs
