// SegmentParser: turns request bodies of the Segment tracking API into validated, normalized
// Events. This is the edge of the data path: everything after it may assume valid input.
//
// Validation (each failure names the JSON path of the field):
//   - body: valid UTF-8 (`invalid_utf8`), well-formed JSON (`malformed_json`), an object;
//   - `userId` or `anonymousId` (`missing_field`); ids are strings (integers are accepted and
//     written as strings, as Segment does);
//   - per type: track needs `event`, group needs `groupId`, alias needs `userId` and
//     `previousId`; `properties`, `traits`, `context`, `integrations` are objects;
//   - `timestamp`, `originalTimestamp`, `sentAt` are ISO-8601 (`invalid_timestamp`);
//   - sizes: a single-event body over max_event_bytes, a request over max_request_bytes, a batch
//     over max_batch_events are refused whole (OutOfRange -> 413); a batch item whose normalized
//     form is over max_event_bytes is rejected alone (`event_too_large`).
// A `null` in a field the spec defines means the field is absent.
//
// Normalization (what is stored and exported), in this order:
//   type, messageId (assigned when missing), userId, anonymousId, the event's other fields in
//   their original order, context (the batch's `context` keys fill in keys the event lacks; the
//   request's IP and User-Agent fill in `context.ip` / `context.userAgent` when absent),
//   integrations (merged the same way), originalTimestamp, sentAt, receivedAt, timestamp.
//   Clock skew is corrected as Segment does: when both the client's timestamp and sentAt are
//   known, timestamp = receivedAt - (sentAt - originalTimestamp); with no sentAt the client's
//   timestamp is kept; with neither, timestamp = receivedAt. A client-sent receivedAt or
//   writeKey is not stored.
//
// Thread-safety: a SegmentParser reuses its parse buffers and must be used by one thread at a
// time; keep one per thread.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "api/event.h"
#include "simdjson.h"

namespace whisperer::api {

// A field the spec defines as an object: `value` is null (absent; `out` is left alone) or an
// object (set in `out`); anything else is 400 wrong_type naming `field`. Shared with the
// request-time APIs (server/request_context.h), whose bodies take Segment's `context` and
// `properties`.
absl::Status ReadObject(simdjson::dom::element value, std::string_view field,
                        std::optional<simdjson::dom::object>* out);
// An identifier (userId, anonymousId, groupId, previousId): a string, or an integer read as its
// digits, as Segment takes them; null is empty. Anything else is 400 wrong_type naming `field`.
// Shared with the request-time APIs' userId and anonymousId.
absl::Status ReadId(simdjson::dom::element value, std::string_view field, std::string* out);
// `writeKey` of a body object into `out` ("" when absent or null); wrong_type naming `writeKey`
// when it is there but not a string (a key that cannot be one is an error, not "no key").
absl::Status ReadWriteKey(simdjson::dom::element body, std::string_view* out);

// The Segment tracking API's limits (its documented 32 KB per event, 500 KB per request and
// 2,500 events per batch), configurable under `ingest:` in the config file.
struct Limits {
  size_t max_event_bytes = 32 * 1024;
  size_t max_request_bytes = 500 * 1024;
  size_t max_batch_events = 2500;
};

// What the server knows about the request, recorded on every event in it.
struct RequestInfo {
  int64_t received_at_ms = 0;
  std::string_view ip;
  std::string_view user_agent;
  // Lines of an archive being loaded (`whisperer import`, `whisperer replay`): a line that
  // carries `receivedAt` is an event as a server stored it (this server's export, Segment's
  // archives), whose `timestamp` was corrected for clock skew when it arrived: it is kept as it
  // is, and so are `originalTimestamp` and `sentAt` (correcting it again against `sentAt` would
  // date the event at the load). Over HTTP a client's `receivedAt` is ignored.
  bool archive = false;
};

struct Rejection {
  size_t index = 0;  // position in the request's `batch` array (or line number for imports)
  absl::Status error;
};

struct ParsedRequest {
  std::vector<Event> events;
  std::vector<Rejection> rejected;
  std::string write_key;  // `writeKey` from the body, the Segment alternative to Basic auth
};

class SegmentParser {
 public:
  explicit SegmentParser(Limits limits = {}) : limits_(limits) {}

  const Limits& limits() const { return limits_; }

  // The body of /v1/identify, /v1/track, ...: one event of `type` (a `type` in the body is
  // ignored, as Segment does). Any invalid part refuses the request.
  absl::StatusOr<ParsedRequest> ParseSingle(EventType type, std::string_view body,
                                            const RequestInfo& info);

  // The body of /v1/batch and /v1/import: `{"batch": [...], "sentAt"?, "context"?,
  // "integrations"?, "writeKey"?}`. Valid items are returned in `events`, invalid ones in
  // `rejected`; only a malformed envelope refuses the request.
  absl::StatusOr<ParsedRequest> ParseBatch(std::string_view body, const RequestInfo& info);

  // One line of an NDJSON import file: an event with its own `type`.
  absl::StatusOr<Event> ParseLine(std::string_view line, const RequestInfo& info);

 private:
  absl::StatusOr<simdjson::dom::element> ParseJson(std::string_view body);

  Limits limits_;
  simdjson::dom::parser parser_;
};

}  // namespace whisperer::api
