#include "api/query.h"

#include <algorithm>
#include <charconv>
#include <cmath>
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

bool IsDigit(char c) { return c >= '0' && c <= '9'; }

// True when the digits of an integer literal (no sign) are past what simdjson reads: above
// 18446744073709551615, or for a negative one below -9223372036854775808.
bool PastInt64Range(std::string_view digits, bool negative) {
  const std::string_view limit = negative ? "9223372036854775808" : "18446744073709551615";
  while (digits.size() > 1 && digits.front() == '0') digits.remove_prefix(1);
  return digits.size() != limit.size() ? digits.size() > limit.size() : digits > limit;
}

// The names of `target`'s query parameters, as written and in order; empty names ("?&=2")
// are none.
std::vector<std::string_view> QueryNames(std::string_view target) {
  std::vector<std::string_view> names;
  size_t q = target.find('?');
  if (q == std::string_view::npos) return names;
  std::string_view query = target.substr(q + 1);
  for (size_t start = 0; start <= query.size();) {
    const size_t amp = std::min(query.find('&', start), query.size());
    std::string_view name = query.substr(start, amp - start);
    name = name.substr(0, name.find('='));
    if (!name.empty()) names.push_back(name);
    start = amp + 1;
  }
  return names;
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

namespace {

// A name of `names` given twice; nullopt when none is.
std::optional<std::string_view> Repeated(std::vector<std::string_view> names) {
  std::sort(names.begin(), names.end());
  auto twice = std::adjacent_find(names.begin(), names.end());
  if (twice == names.end()) return std::nullopt;
  return *twice;
}

// The first of `names` not in `known`; nullopt when every one is.
std::optional<std::string_view> Unknown(const std::vector<std::string_view>& names,
                                        const std::vector<std::string>& known) {
  for (std::string_view name : names) {
    if (std::find(known.begin(), known.end(), name) == known.end()) return name;
  }
  return std::nullopt;
}

}  // namespace

std::optional<std::string_view> RepeatedQueryParam(std::string_view target) {
  return Repeated(QueryNames(target));
}

std::optional<std::string_view> UnknownQueryParam(std::string_view target,
                                                  const std::vector<std::string>& known) {
  return Unknown(QueryNames(target), known);
}

absl::Status CheckQuery(std::string_view target, const std::vector<std::string>* known,
                        std::string_view route) {
  if (known == nullptr) return absl::OkStatus();
  const std::vector<std::string_view> names = QueryNames(target);  // read once for both checks
  if (std::optional<std::string_view> repeated = Repeated(names)) {
    std::string_view name = repeated->substr(0, 64);
    return InvalidInput(
        "invalid_value",
        StrCat("query parameter '", name, "' is given more than once; give it once"), name);
  }
  std::optional<std::string_view> unknown = Unknown(names, *known);
  if (!unknown) return absl::OkStatus();
  std::string_view name = unknown->substr(0, 64);
  std::string expected;
  for (const std::string& k : *known) StrAppend(&expected, expected.empty() ? "" : ", ", k);
  return InvalidInput("invalid_value",
                      known->empty()
                          ? StrCat("unknown query parameter '", name, "': ", route, " takes none")
                          : StrCat("unknown query parameter '", name, "'; expected ", expected),
                      name);
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

bool WidenBigIntegers(std::string_view json, std::string* out) {
  out->clear();
  out->reserve(json.size() + 16);
  bool changed = false;
  size_t i = 0;
  while (i < json.size()) {
    const char c = json[i];
    if (c == '"') {  // a string, copied to its closing quote
      const size_t start = i++;
      while (i < json.size() && json[i] != '"') i += json[i] == '\\' ? 2 : 1;
      i = std::min(i + 1, json.size());
      out->append(json.substr(start, i - start));
      continue;
    }
    if (c != '-' && !IsDigit(c)) {
      out->push_back(c);
      ++i;
      continue;
    }
    // A number: sign, integer digits, then maybe a fraction and an exponent.
    const size_t start = i;
    const bool negative = c == '-';
    if (negative) ++i;
    const size_t digits_start = i;
    while (i < json.size() && IsDigit(json[i])) ++i;
    const std::string_view digits = json.substr(digits_start, i - digits_start);
    bool plain = true;
    if (i < json.size() && json[i] == '.') {
      plain = false;
      for (++i; i < json.size() && IsDigit(json[i]);) ++i;
    }
    if (i < json.size() && (json[i] == 'e' || json[i] == 'E')) {
      plain = false;
      ++i;
      if (i < json.size() && (json[i] == '+' || json[i] == '-')) ++i;
      while (i < json.size() && IsDigit(json[i])) ++i;
    }
    out->append(json.substr(start, i - start));
    if (plain && !digits.empty() && PastInt64Range(digits, negative)) {
      out->append(".0");
      changed = true;
    }
  }
  return changed;
}

bool ReplaceLoneSurrogates(std::string_view json, std::string* out) {
  return RewriteSurrogateEscapes(json, /*pairs_as_yaml=*/false, out);
}

simdjson::error_code ParseJsonAsJavaScript(simdjson::dom::parser& parser, std::string_view body,
                                           simdjson::dom::element* root) {
  simdjson::error_code error = parser.parse(body.data(), body.size(), true).get(*root);
  // Only on these errors, so other bodies pay nothing; each repair once, in the order the
  // errors come up.
  std::string surrogates, widened;
  std::string_view current = body;
  for (int pass = 0; pass < 2; ++pass) {
    if (error == simdjson::STRING_ERROR && surrogates.empty() &&
        ReplaceLoneSurrogates(current, &surrogates)) {
      current = surrogates;
    } else if (error == simdjson::NUMBER_ERROR && widened.empty() &&
               WidenBigIntegers(current, &widened)) {
      current = widened;
    } else {
      break;
    }
    error = parser.parse(current.data(), current.size(), true).get(*root);
  }
  return error;
}

std::optional<uint64_t> WholeNumber(simdjson::dom::element value, uint64_t max) {
  constexpr uint64_t kExact = (uint64_t{1} << 53) - 1;  // every whole number a double holds
  max = std::min(max, kExact);
  uint64_t n = 0;
  if (value.get(n) == simdjson::SUCCESS) return n <= max ? std::optional(n) : std::nullopt;
  double d = 0;
  if (value.get(d) != simdjson::SUCCESS || !(d >= 0) || d > static_cast<double>(max) ||
      d != std::floor(d)) {
    return std::nullopt;
  }
  return static_cast<uint64_t>(d);
}

absl::Status RefuseUnknownKeys(simdjson::dom::element body,
                               std::initializer_list<std::string_view> known,
                               bool segment_envelope) {
  // Segment's common fields, and those of the event types, that a request built like an event
  // may carry.
  static constexpr std::string_view kEnvelope[] = {
      "type",      "messageId",  "timestamp",    "originalTimestamp",
      "sentAt",    "receivedAt", "integrations", "version",
      "channel",   "traits",     "event",        "name",
      "category",  "userId",     "anonymousId",  "context",
      "properties"};
  simdjson::dom::object obj;
  if (body.get(obj) != simdjson::SUCCESS) return absl::OkStatus();
  for (auto [key, value] : obj) {
    if (std::find(known.begin(), known.end(), key) != known.end()) continue;
    if (segment_envelope &&
        std::find(std::begin(kEnvelope), std::end(kEnvelope), key) != std::end(kEnvelope)) {
      continue;
    }
    std::string expected;
    for (std::string_view k : known) StrAppend(&expected, expected.empty() ? "" : ", ", k);
    return InvalidInput("invalid_value",
                        StrCat("unknown field '", key.substr(0, 64), "'; expected ", expected),
                        std::string(key.substr(0, 64)));
  }
  return absl::OkStatus();
}

absl::StatusOr<simdjson::dom::element> JsonObjectBody(std::string_view body,
                                                      simdjson::dom::parser& parser) {
  simdjson::dom::element doc;
  if (const simdjson::error_code e = ParseJsonAsJavaScript(parser, body, &doc); e) {
    if (e == simdjson::UTF8_ERROR) return InvalidInput("invalid_utf8", "the body is not UTF-8");
    return InvalidInput("malformed_json",
                        StrCat("the body must be a JSON object: ", simdjson::error_message(e)));
  }
  // JSON, but not an object: as collection says it (segment_parser.cc).
  if (!doc.is_object()) return InvalidInput("wrong_type", "the body must be a JSON object");
  if (std::string path, key; RepeatedKeyPath(doc, &path, &key)) return RepeatedKeyError(path, key);
  return doc;
}

}  // namespace whisperer::api
