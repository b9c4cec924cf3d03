// JsonWriter: appends compact JSON to a caller-owned std::string.
//
// One writer serves every place the server writes JSON (stored events, HTTP responses, logs,
// export), so escaping and number formatting are the same everywhere. It is written here rather
// than taken from RapidJSON or nlohmann-json because the hot path needs to copy parsed simdjson
// values straight into the output without an intermediate document.
//
// Preconditions (asserted in debug builds): keys only inside objects, one value per key, and
// balanced Start/End calls. Not thread-safe; use one writer per thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "simdjson.h"

namespace whisperer {

// Appends `s` as a quoted JSON string, escaping quotes, backslashes and control characters.
// A byte that is not part of well-formed UTF-8 is written as U+FFFD, so the output is JSON
// whatever `s` holds (inputs are validated before they get here; this is the safety net).
void AppendJsonString(std::string* out, std::string_view s);

class JsonWriter {
 public:
  explicit JsonWriter(std::string* out) : out_(out) {}

  void StartObject();
  void EndObject();
  void StartArray();
  void EndArray();
  void Key(std::string_view key);
  void String(std::string_view value);
  // null for "", else the string.
  void StringOrNull(std::string_view value);
  void Int(int64_t value);
  void Uint(uint64_t value);
  void Double(double value);
  void Bool(bool value);
  void Null();
  // Appends a parsed value, re-serialized compactly.
  void Element(simdjson::dom::element value);
  // Appends `json`, which must be one complete, valid JSON value (one this writer produced).
  void RawValue(std::string_view json);

 private:
  void BeforeValue();

  std::string* out_;
  // One entry per open container: true once it holds a member, so the next needs a comma.
  std::vector<bool> has_member_;
  bool after_key_ = false;
};

}  // namespace whisperer
