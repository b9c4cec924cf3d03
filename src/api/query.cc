#include "api/query.h"

#include <algorithm>
#include <charconv>
#include <vector>

#include "common/status.h"
#include "common/strings.h"
#include "simdjson.h"

namespace whisperer::api {
namespace {

int HexDigit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::optional<std::string_view> QueryParam(std::string_view target, std::string_view name) {
  size_t q = target.find('?');
  if (q == std::string_view::npos) return std::nullopt;
  std::string_view query = target.substr(q + 1);
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    size_t eq = pair.find('=');
    if (pair.substr(0, eq) == name) {
      return eq == std::string_view::npos ? std::string_view() : pair.substr(eq + 1);
    }
    if (amp == std::string_view::npos) break;
    query = query.substr(amp + 1);
  }
  return std::nullopt;
}

absl::StatusOr<std::string> PercentDecode(std::string_view value, std::string_view name) {
  std::string out;
  out.reserve(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    if (value[i] != '%') {
      out.push_back(value[i]);
      continue;
    }
    int hi = i + 2 < value.size() ? HexDigit(value[i + 1]) : -1;
    int lo = i + 2 < value.size() ? HexDigit(value[i + 2]) : -1;
    if (hi < 0 || lo < 0) {
      return InvalidInput("invalid_value", StrCat(name, " has a malformed %-escape"), name);
    }
    out.push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  if (!simdjson::validate_utf8(out.data(), out.size())) {
    return InvalidInput("invalid_value", StrCat(name, " is not valid UTF-8 once %-decoded"), name);
  }
  return out;
}

absl::StatusOr<uint64_t> ParseUintParam(std::string_view value, std::string_view name,
                                        uint64_t fallback, uint64_t max) {
  if (value.empty()) return fallback;
  uint64_t v = 0;
  auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || ptr != value.data() + value.size() || v > max) {
    return InvalidInput("invalid_value", StrCat(name, " must be a whole number up to ", max), name);
  }
  return v;
}

absl::StatusOr<uint64_t> PageLimit(std::string_view target, uint64_t fallback, uint64_t max) {
  absl::StatusOr<uint64_t> limit =
      ParseUintParam(QueryParam(target, "limit").value_or(""), "limit", fallback, max);
  if (limit.ok() && *limit == 0) {
    return InvalidInput("invalid_value", StrCat("limit must be 1 to ", max), "limit");
  }
  return limit;
}

bool RepeatedKey(simdjson::dom::object obj, std::string_view* key) {
  const size_t n = obj.size();
  if (n < 2) return false;
  if (n <= 32) {  // each key against those before it: no allocation for the usual objects
    for (auto it = obj.begin(); it != obj.end(); ++it) {
      for (auto before = obj.begin(); before != it; ++before) {
        if (before.key() == it.key()) {
          *key = it.key();
          return true;
        }
      }
    }
    return false;
  }
  std::vector<std::string_view> keys;
  keys.reserve(n);
  for (auto [k, v] : obj) keys.push_back(k);
  std::sort(keys.begin(), keys.end());
  auto twice = std::adjacent_find(keys.begin(), keys.end());
  if (twice == keys.end()) return false;
  *key = *twice;
  return true;
}

bool RepeatedKeyPath(simdjson::dom::element value, std::string* path, std::string* repeated) {
  auto prepend = [path](std::string head) {
    if (!path->empty() && path->front() != '[') head.push_back('.');
    *path = StrCat(head, *path);
  };
  if (value.is_object()) {
    simdjson::dom::object obj(value);
    std::string_view key;
    if (RepeatedKey(obj, &key)) {
      *path = std::string(key);
      *repeated = std::string(key);
      return true;
    }
    for (auto [k, child] : obj) {
      if (RepeatedKeyPath(child, path, repeated)) {
        prepend(std::string(k));
        return true;
      }
    }
  } else if (value.is_array()) {
    size_t i = 0;
    for (simdjson::dom::element child : simdjson::dom::array(value)) {
      if (RepeatedKeyPath(child, path, repeated)) {
        prepend(StrCat("[", i, "]"));
        return true;
      }
      ++i;
    }
  }
  return false;
}

absl::Status RepeatedKeyError(const std::string& path, std::string_view key) {
  return InvalidInput(
      "duplicate_key",
      StrCat("the key \"", key.substr(0, 64), "\" appears twice in one object; send it once"),
      path);
}

absl::StatusOr<simdjson::dom::element> JsonObjectBody(std::string_view body,
                                                      simdjson::dom::parser& parser) {
  simdjson::dom::element doc;
  if (const simdjson::error_code e = parser.parse(body.data(), body.size()).get(doc); e) {
    if (e == simdjson::UTF8_ERROR) return InvalidInput("invalid_utf8", "the body is not UTF-8");
    return InvalidInput("malformed_json",
                        StrCat("the body must be a JSON object: ", simdjson::error_message(e)));
  }
  if (!doc.is_object()) return InvalidInput("malformed_json", "the body must be a JSON object");
  if (std::string path, key; RepeatedKeyPath(doc, &path, &key)) return RepeatedKeyError(path, key);
  return doc;
}

}  // namespace whisperer::api
