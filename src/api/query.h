// Query strings and bodies of API requests: finding a parameter, percent-decoding it, reading
// numbers with an error that names the parameter, and reading a JSON object body (refusing keys
// that appear twice).
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "simdjson.h"

namespace whisperer::api {

// The raw value of parameter `name` in `target` ("/path?a=1&b=2"); nullopt when absent, "" for
// "?name" or "?name=".
std::optional<std::string_view> QueryParam(std::string_view target, std::string_view name);

// A parameter name that appears more than once in `target`'s query ("?limit=5&limit=9" ->
// "limit"), as written (not percent-decoded); nullopt when none does. QueryParam reads the
// first of them and a client may have meant the last, or both, so the server refuses such a
// request rather than guess.
std::optional<std::string_view> RepeatedQueryParam(std::string_view target);

// The first parameter name in `target`'s query that is not one of `known`, as written; nullopt
// when every one is. QueryParam matches names as written, so a name with a %-escape
// ("li%6dit") is unknown too: it would never be read.
std::optional<std::string_view> UnknownQueryParam(std::string_view target,
                                                  const std::vector<std::string>& known);

// 400 invalid_value naming the first parameter of `target`'s query given twice, else the first
// that is not in `known` ("unknown query parameter 'limt'; expected limit, cursor"), as an
// unknown body key is refused: a misspelt one would otherwise be ignored and its default
// taken. A null `known` takes any query, a name given twice too (the route reads none). `route`
// names the endpoint when it takes none.
absl::Status CheckQuery(std::string_view target, const std::vector<std::string>* known,
                        std::string_view route);

// RFC 3986 percent-decoding ("%40" -> "@"). A '+' stays a '+' (phone numbers); a malformed
// escape, or a result that is not UTF-8, is an InvalidArgument naming `name`.
absl::StatusOr<std::string> PercentDecode(std::string_view value, std::string_view name);

// `value` as a whole number up to `max`; `fallback` when empty. The error names `name`.
absl::StatusOr<uint64_t> ParseUintParam(std::string_view value, std::string_view name,
                                        uint64_t fallback, uint64_t max);

// The `limit` query parameter of a paginated list: 1 to `max`, `fallback` when absent. 400
// invalid_value naming `limit` otherwise.
absl::StatusOr<uint64_t> PageLimit(std::string_view target, uint64_t fallback = 100,
                                   uint64_t max = 1000);

// Copies `json` to `out` with every integer literal past the 64-bit range (which simdjson refuses)
// written as a double ("20000000000000000000" -> "20000000000000000000.0"); strings are copied
// untouched. False when there was no such literal.
bool WidenBigIntegers(std::string_view json, std::string* out);

// Copies `json` to `out` with every \u escape of a lone UTF-16 surrogate (which simdjson refuses)
// written as \uFFFD, the replacement character; pairs and other escapes are copied untouched.
// False when there was none.
bool ReplaceLoneSurrogates(std::string_view json, std::string* out);

// `body` parsed by `parser` into `root` as a JavaScript client meant it:
// - integers past the 64-bit range are read as the doubles the client holds. JavaScript writes
//   numbers below 1e21 without an exponent, so a client sends 2e19 as 20000000000000000000,
//   which simdjson does not read as an integer;
// - an escaped lone surrogate reads as U+FFFD. JavaScript strings may hold one (a string cut in
//   the middle of an emoji), JSON.stringify escapes it, and JSON's grammar allows it, but it
//   has no UTF-8 form, so simdjson refuses it.
simdjson::error_code ParseJsonAsJavaScript(simdjson::dom::parser& parser, std::string_view body,
                                           simdjson::dom::element* root);

// `body` parsed by `parser` (which must outlive the result) as a JSON object; otherwise 400
// malformed_json when it is not JSON, wrong_type when it is JSON but no object, or 400
// duplicate_key when a key appears twice in one of its objects (RepeatedKeyPath).
absl::StatusOr<simdjson::dom::element> JsonObjectBody(std::string_view body,
                                                      simdjson::dom::parser& parser);

// 400 invalid_value naming the first key of the object `body` that is not in `known` ("unknown
// field 'slot'; expected ..."): a misspelt key ("slot" for "slots", "deferactivation") would
// otherwise be ignored and its default taken. With `segment_envelope`, the common fields of
// Segment's spec (type, messageId, timestamp, sentAt, integrations, traits, ...) are ignored as
// well, so that a client may send a request built like an event. OK for a non-object.
absl::Status RefuseUnknownKeys(simdjson::dom::element body,
                               std::initializer_list<std::string_view> known,
                               bool segment_envelope = false);

// `value` as a whole number from 0 to `max` (at most 2^53 - 1), written as JSON allows one: 3,
// 3.0 or 3e0 (a JavaScript client may send any of them); nullopt for anything else (a string,
// 2.5, a negative number, one past `max`).
std::optional<uint64_t> WholeNumber(simdjson::dom::element value, uint64_t max);

// Keys that appear twice in one object. JSON leaves which of the two counts undefined (simdjson
// would read the first, a JavaScript reader of what is stored the last), so a body with one is
// refused rather than read one way and kept the other.
//
// A key that appears twice among the members of `obj` (not below them); false when none does.
bool RepeatedKey(simdjson::dom::object obj, std::string_view* key);
// The path ("properties.revenue", "items[2].sku") of the first key that appears twice in one
// object of `value`, depth first, and the key; false when none does.
bool RepeatedKeyPath(simdjson::dom::element value, std::string* path, std::string* repeated);
// 400 duplicate_key naming the key, its field the path.
absl::Status RepeatedKeyError(const std::string& path, std::string_view key);

}  // namespace whisperer::api
