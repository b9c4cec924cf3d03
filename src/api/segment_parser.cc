#include "api/segment_parser.h"

#include <algorithm>
#include <optional>
#include <vector>

#include "api/query.h"
#include "common/ids.h"
#include "common/json_writer.h"
#include "common/status.h"
#include "common/strings.h"
#include "common/timestamp.h"

namespace whisperer::api {
namespace {

using simdjson::dom::element;
using simdjson::dom::element_type;
using simdjson::dom::object;

constexpr size_t kMaxMessageIdBytes = 256;

std::string_view TypeWord(element_type t) {
  switch (t) {
    case element_type::OBJECT:
      return "an object";
    case element_type::ARRAY:
      return "an array";
    case element_type::STRING:
      return "a string";
    case element_type::INT64:
    case element_type::UINT64:
    case element_type::DOUBLE:
      return "a number";
    case element_type::BOOL:
      return "a boolean";
    case element_type::NULL_VALUE:
      return "null";
  }
  return "a value";
}

absl::Status WrongType(std::string_view field, std::string_view expected, element value) {
  return InvalidInput("wrong_type",
                      StrCat(field.empty() ? "the event" : field, " must be ", expected, ", not ",
                             TypeWord(value.type())),
                      field);
}

// Batch-level values applied to every event of a batch.
struct Defaults {
  std::optional<int64_t> sent_at_ms;
  std::optional<object> context;
  std::optional<object> integrations;
};

// The spec-defined fields of one event, collected before anything is written so that an invalid
// event produces no output.
struct Fields {
  std::optional<EventType> type;
  std::string user_id;
  std::string anonymous_id;
  std::string_view message_id;
  std::optional<int64_t> original_ms;  // `originalTimestamp`, else `timestamp`
  bool original_given = false;         // `originalTimestamp` itself
  std::optional<int64_t> timestamp_ms;
  std::optional<int64_t> received_ms;  // `receivedAt`, when valid (RequestInfo::archive)
  std::optional<int64_t> sent_at_ms;
  std::optional<object> context;
  std::optional<object> integrations;
  bool has_event = false, has_group_id = false, has_previous_id = false;
};

absl::Status ReadTimestamp(element value, std::string_view field, std::optional<int64_t>* out) {
  if (value.is_null()) return absl::OkStatus();
  if (!value.is_string()) return WrongType(field, "an ISO-8601 string", value);
  std::string_view text(value);
  *out = ParseIso8601(text);
  if (!*out) {
    return InvalidInput("invalid_timestamp",
                        StrCat(field, " '", text.substr(0, 64),
                               "' is not an ISO-8601 timestamp such as "
                               "2024-05-01T12:00:00.000Z"),
                        field);
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ReadId(element value, std::string_view field, std::string* out) {
  switch (value.type()) {
    case element_type::STRING:
      *out = std::string_view(value);
      return absl::OkStatus();
    case element_type::INT64:
      *out = std::to_string(int64_t(value));
      return absl::OkStatus();
    case element_type::UINT64:
      *out = std::to_string(uint64_t(value));
      return absl::OkStatus();
    case element_type::NULL_VALUE:
      out->clear();
      return absl::OkStatus();
    default:
      return WrongType(field, "a string", value);
  }
}

absl::Status ReadWriteKey(element body, std::string_view* out) {
  *out = {};
  element value;
  if (!body.is_object() || body["writeKey"].get(value) != simdjson::SUCCESS || value.is_null()) {
    return absl::OkStatus();
  }
  if (!value.is_string()) return WrongType("writeKey", "a string", value);
  *out = std::string_view(value);
  return absl::OkStatus();
}

absl::Status ReadObject(element value, std::string_view field, std::optional<object>* out) {
  if (value.is_null()) return absl::OkStatus();
  if (!value.is_object()) return WrongType(field, "an object", value);
  *out = object(value);
  return absl::OkStatus();
}

namespace {

absl::Status RequireNonEmptyString(element value, std::string_view field, bool* present) {
  if (value.is_null()) return absl::OkStatus();
  if (!value.is_string()) return WrongType(field, "a string", value);
  *present = !std::string_view(value).empty();
  return absl::OkStatus();
}

// Fields the normalizer writes itself; everything else is copied through in order.
bool IsWrittenSeparately(std::string_view key) {
  return key == "type" || key == "messageId" || key == "userId" || key == "anonymousId" ||
         key == "timestamp" || key == "originalTimestamp" || key == "sentAt" ||
         key == "receivedAt" || key == "writeKey" || key == "context" || key == "integrations";
}

// Fields of the spec other than those written separately; null in one of them means absent.
bool IsSpecField(std::string_view key) {
  return key == "event" || key == "name" || key == "category" || key == "properties" ||
         key == "traits" || key == "groupId" || key == "previousId";
}

absl::Status CollectFields(object event, std::optional<EventType> path_type, Fields* f) {
  f->type = path_type;
  for (auto [key, value] : event) {
    absl::Status s;
    if (key == "type") {
      if (path_type) continue;        // the endpoint decides, as in Segment
      if (value.is_null()) continue;  // absent, as every spec field's null: missing_field below
      if (!value.is_string()) return WrongType("type", "a string", value);
      f->type = ParseEventType(std::string_view(value));
      if (!f->type) {
        return InvalidInput("invalid_value",
                            StrCat("type '", std::string_view(value).substr(0, 32),
                                   "' is not one of identify, track, page, screen, group, "
                                   "alias"),
                            "type");
      }
    } else if (key == "userId") {
      s = ReadId(value, "userId", &f->user_id);
    } else if (key == "anonymousId") {
      s = ReadId(value, "anonymousId", &f->anonymous_id);
    } else if (key == "messageId") {
      if (value.is_null()) continue;
      if (!value.is_string()) return WrongType("messageId", "a string", value);
      f->message_id = std::string_view(value);
      if (f->message_id.size() > kMaxMessageIdBytes) {
        return InvalidInput("invalid_value",
                            StrCat("messageId is longer than ", kMaxMessageIdBytes, " bytes"),
                            "messageId");
      }
    } else if (key == "timestamp") {
      s = ReadTimestamp(value, "timestamp", &f->timestamp_ms);
    } else if (key == "originalTimestamp") {
      s = ReadTimestamp(value, "originalTimestamp", &f->original_ms);
      f->original_given = f->original_ms.has_value();
    } else if (key == "receivedAt") {
      // Set by the server that stored the event: read for archives only, and an invalid one
      // is as none.
      if (!ReadTimestamp(value, "receivedAt", &f->received_ms).ok()) f->received_ms.reset();
    } else if (key == "sentAt") {
      s = ReadTimestamp(value, "sentAt", &f->sent_at_ms);
    } else if (key == "context") {
      s = ReadObject(value, "context", &f->context);
    } else if (key == "integrations") {
      s = ReadObject(value, "integrations", &f->integrations);
    } else if (key == "properties" || key == "traits") {
      std::optional<object> ignored;
      s = ReadObject(value, key, &ignored);
    } else if (key == "event") {
      s = RequireNonEmptyString(value, "event", &f->has_event);
    } else if (key == "name" || key == "category") {
      bool ignored;
      s = RequireNonEmptyString(value, key, &ignored);
    } else if (key == "groupId") {
      std::string id;
      s = ReadId(value, "groupId", &id);
      f->has_group_id = !id.empty();
    } else if (key == "previousId") {
      std::string id;
      s = ReadId(value, "previousId", &id);
      f->has_previous_id = !id.empty();
    }
    if (!s.ok()) return s;
  }
  if (!f->type) return InvalidInput("missing_field", "type is required", "type");
  if (f->user_id.empty() && f->anonymous_id.empty()) {
    return InvalidInput("missing_field", "userId or anonymousId is required", "userId");
  }
  switch (*f->type) {
    case EventType::kTrack:
      if (!f->has_event) return InvalidInput("missing_field", "track needs an event name", "event");
      break;
    case EventType::kGroup:
      if (!f->has_group_id) return InvalidInput("missing_field", "group needs groupId", "groupId");
      break;
    case EventType::kAlias:
      if (f->user_id.empty()) return InvalidInput("missing_field", "alias needs userId", "userId");
      if (!f->has_previous_id) {
        return InvalidInput("missing_field", "alias needs previousId", "previousId");
      }
      break;
    default:
      break;
  }
  if (!f->original_ms) f->original_ms = f->timestamp_ms;
  return absl::OkStatus();
}

// Writes `key` with the members of `own`, then the members of `defaults` that `own` lacks, then
// the non-empty `extra` entries whose key is in neither. Writes nothing when all are empty.
void WriteMerged(JsonWriter& w, std::string_view key, const std::optional<object>& own,
                 const std::optional<object>& defaults,
                 std::initializer_list<std::pair<std::string_view, std::string_view>> extra) {
  auto has = [](const std::optional<object>& obj, std::string_view k) {
    if (!obj) return false;
    for (auto field : *obj) {
      if (field.key == k) return true;
    }
    return false;
  };
  bool any = (own && own->size() > 0) || (defaults && defaults->size() > 0);
  for (auto& [k, v] : extra) any = any || !v.empty();
  if (!any) return;
  w.Key(key);
  w.StartObject();
  if (own) {
    for (auto field : *own) {
      w.Key(field.key);
      w.Element(field.value);
    }
  }
  if (defaults) {
    for (auto field : *defaults) {
      if (has(own, field.key)) continue;
      w.Key(field.key);
      w.Element(field.value);
    }
  }
  for (auto& [k, v] : extra) {
    if (v.empty() || has(own, k) || has(defaults, k)) continue;
    w.Key(k);
    w.String(v);
  }
  w.EndObject();
}

absl::StatusOr<Event> Normalize(element root, std::optional<EventType> path_type,
                                const Defaults& defaults, const RequestInfo& info,
                                const Limits& limits) {
  if (!root.is_object()) return WrongType("", "an object", root);
  object obj(root);
  if (std::string path, key; RepeatedKeyPath(root, &path, &key)) {
    return RepeatedKeyError(path, key);
  }
  Fields f;
  if (absl::Status s = CollectFields(obj, path_type, &f); !s.ok()) return s;

  Event event;
  event.type = *f.type;
  event.message_id = f.message_id.empty() ? NewUuid() : std::string(f.message_id);
  event.user_id = std::move(f.user_id);
  event.anonymous_id = std::move(f.anonymous_id);
  event.received_at_ms = info.received_at_ms;
  std::optional<int64_t> sent = f.sent_at_ms ? f.sent_at_ms : defaults.sent_at_ms;
  // An event as stored (RequestInfo::archive) keeps its corrected time.
  const bool stored_time = info.archive && f.received_ms && f.timestamp_ms;
  if (stored_time) {
    event.timestamp_ms = *f.timestamp_ms;
  } else if (f.original_ms && sent) {
    event.timestamp_ms = info.received_at_ms - (*sent - *f.original_ms);
  } else if (f.original_ms) {
    event.timestamp_ms = *f.original_ms;
  } else {
    event.timestamp_ms = info.received_at_ms;
  }
  if (event.timestamp_ms < kMinIso8601Millis || event.timestamp_ms > kMaxIso8601Millis) {
    // Each time was valid alone; their difference is not (a sentAt of 9999 for an event of
    // year 0): no time can be stored for the event.
    return InvalidInput("invalid_timestamp",
                        "the time corrected for clock skew, receivedAt - (sentAt - "
                        "timestamp), falls outside the years 0000-9999: sentAt or the event's "
                        "time is wrong",
                        "sentAt");
  }

  std::string& out = event.json;
  out.reserve(512);
  JsonWriter w(&out);
  w.StartObject();
  w.Key("type");
  w.String(EventTypeName(event.type));
  w.Key("messageId");
  w.String(event.message_id);
  if (!event.user_id.empty()) {
    w.Key("userId");
    w.String(event.user_id);
  }
  if (!event.anonymous_id.empty()) {
    w.Key("anonymousId");
    w.String(event.anonymous_id);
  }
  for (auto [key, value] : obj) {
    if (IsWrittenSeparately(key)) continue;
    if (value.is_null() && IsSpecField(key)) continue;  // null means absent
    w.Key(key);
    if ((key == "groupId" || key == "previousId") && !value.is_string() && !value.is_null()) {
      std::string id;
      ReadId(value, key, &id).IgnoreError();  // validated in CollectFields
      w.String(id);
    } else {
      w.Element(value);
    }
  }
  WriteMerged(w, "context", f.context, defaults.context,
              {{"ip", info.ip}, {"userAgent", info.user_agent}});
  WriteMerged(w, "integrations", f.integrations, defaults.integrations, {});
  auto write_time = [&](std::string_view key, int64_t ms) {
    w.Key(key);
    char text[kIso8601Bytes];
    FormatIso8601(ms, text);
    w.String(std::string_view(text, kIso8601Bytes));
  };
  if (f.original_ms && (f.original_given || !stored_time)) {
    write_time("originalTimestamp", *f.original_ms);
  }
  if (sent) write_time("sentAt", *sent);
  write_time("receivedAt", event.received_at_ms);
  write_time("timestamp", event.timestamp_ms);
  w.EndObject();

  // The limit is on the event as the client sent it (serialized without blanks, as the SDKs
  // measure it before sending): what the server adds (receivedAt, timestamp, a messageId, the
  // request's ip and User-Agent, the batch's context) does not count, or an SDK would see an
  // event it checked against 32 KiB answered 200 and rejected. Measured only for the rare event
  // whose stored form is over the limit.
  if (out.size() > limits.max_event_bytes) {
    const size_t sent = simdjson::minify(root).size();
    if (sent > limits.max_event_bytes) {
      return MakeError(
          absl::StatusCode::kOutOfRange, "event_too_large",
          StrCat("the event is ", sent, " bytes; the limit is ", limits.max_event_bytes));
    }
  }
  return event;
}

}  // namespace

absl::StatusOr<simdjson::dom::element> SegmentParser::ParseJson(std::string_view body) {
  element root;
  const simdjson::error_code error = ParseJsonAsJavaScript(parser_, body, &root);
  if (error == simdjson::UTF8_ERROR) {
    return InvalidInput("invalid_utf8", "the body is not valid UTF-8");
  }
  if (error == simdjson::EMPTY) {
    return InvalidInput("malformed_json", "the body is empty; expected a JSON object");
  }
  if (error) {
    return InvalidInput("malformed_json",
                        StrCat("the body is not valid JSON: ", simdjson::error_message(error)));
  }
  return root;
}

absl::StatusOr<ParsedRequest> SegmentParser::ParseSingle(EventType type, std::string_view body,
                                                         const RequestInfo& info) {
  // The body is within max_request_bytes (the HTTP server's limit); the event within
  // max_event_bytes as sent, without the blanks of a pretty-printed body (Normalize), as in a
  // batch.
  absl::StatusOr<element> root = ParseJson(body);
  if (!root.ok()) return root.status();
  absl::StatusOr<Event> event = Normalize(*root, type, Defaults{}, info, limits_);
  if (!event.ok()) return event.status();
  ParsedRequest out;
  std::string_view write_key;
  if (absl::Status s = ReadWriteKey(*root, &write_key); !s.ok()) return s;
  out.write_key = write_key;
  out.events.push_back(*std::move(event));
  return out;
}

absl::StatusOr<ParsedRequest> SegmentParser::ParseBatch(std::string_view body,
                                                        const RequestInfo& info) {
  if (body.size() > limits_.max_request_bytes) {
    return MakeError(
        absl::StatusCode::kOutOfRange, "request_too_large",
        StrCat("the request is ", body.size(), " bytes; the limit is ", limits_.max_request_bytes));
  }
  absl::StatusOr<element> root = ParseJson(body);
  if (!root.ok()) return root.status();
  if (!root->is_object()) return WrongType("", "an object", *root);
  object envelope(*root);
  // The envelope's own keys, and its defaults for every event (each event is checked alone:
  // Normalize).
  if (std::string_view key; RepeatedKey(envelope, &key)) {
    return RepeatedKeyError(std::string(key), key);
  }
  for (auto [name, value] : envelope) {
    if (name == "batch") continue;  // each event is checked alone: Normalize
    std::string path, key;
    if (RepeatedKeyPath(value, &path, &key)) {
      return RepeatedKeyError(StrCat(name, !path.empty() && path.front() == '[' ? "" : ".", path),
                              key);
    }
  }

  Defaults defaults;
  std::optional<simdjson::dom::array> batch;
  for (auto [key, value] : envelope) {
    absl::Status s;
    if (key == "batch") {
      if (!value.is_array()) return WrongType("batch", "an array", value);
      batch = simdjson::dom::array(value);
    } else if (key == "sentAt") {
      s = ReadTimestamp(value, "sentAt", &defaults.sent_at_ms);
    } else if (key == "context") {
      s = ReadObject(value, "context", &defaults.context);
    } else if (key == "integrations") {
      s = ReadObject(value, "integrations", &defaults.integrations);
    }
    if (!s.ok()) return s;
  }
  if (!batch) return InvalidInput("missing_field", "batch is required", "batch");
  if (batch->size() > limits_.max_batch_events) {
    return MakeError(
        absl::StatusCode::kOutOfRange, "batch_too_large",
        StrCat("the batch has ", batch->size(), " events; the limit is ", limits_.max_batch_events),
        "batch");
  }

  ParsedRequest out;
  std::string_view write_key;
  if (absl::Status s = ReadWriteKey(*root, &write_key); !s.ok()) return s;
  out.write_key = write_key;
  out.events.reserve(batch->size());
  size_t index = 0;
  for (element item : *batch) {
    absl::StatusOr<Event> event = Normalize(item, std::nullopt, defaults, info, limits_);
    if (event.ok()) {
      out.events.push_back(*std::move(event));
    } else {
      out.rejected.push_back(
          {index, WithFieldPrefix(event.status(), StrCat("batch[", index, "]"))});
    }
    ++index;
  }
  return out;
}

absl::StatusOr<Event> SegmentParser::ParseLine(std::string_view line, const RequestInfo& info) {
  absl::StatusOr<element> root = ParseJson(line);
  if (!root.ok()) return root.status();
  return Normalize(*root, std::nullopt, Defaults{}, info, limits_);
}

}  // namespace whisperer::api
