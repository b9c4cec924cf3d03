// HttpServer: HTTP/1.1 with keep-alive on Boost.Beast/Asio.
//
// Each of the `threads` threads (default: every core, see common/cores.h) runs its own
// io_context, and accepted connections are dealt to them in turn: a connection lives on one
// thread, so its handlers never run concurrently and an answer given on that thread is written
// at once. One io_context shared by the threads (with a strand per connection) passed requests
// and answers between the threads through its shared queue. On 2 cores (bench/, November 2026)
// one per thread served 56,000 /healthz requests/s where the shared one served 38,000, and at
// 5,000 /v1/track requests/s 0.13-0.16% of them took over 1 ms inside the server, against
// 0.18-0.57% with the shared one. A client with a single busy connection is served by one
// thread.
//
// Each request is read with a body limit and a read timeout (which also bounds idle keep-alive
// connections), gzip bodies are inflated with the same limit, and the route's handler is called
// with a Responder it must call exactly once, from any thread (a shard thread, typically). The
// next request on a connection is read after the response is written.
//
// Browsers (Router::AllowBrowsers): web pages on any origin may call the paths marked so; the
// server answers their CORS preflight (OPTIONS) itself and marks every answer to a request
// with an Origin header, errors included, `Access-Control-Allow-Origin: *` (write keys are
// public in a page anyway, and no cookie is read).
//
// Errors the server answers itself, with the JSON error body of api/http_status.h: 404
// unknown path (not_found), 405 wrong method (method_not_allowed), 413 over the body limit,
// also after gzip inflation (request_too_large), 400 malformed HTTP (malformed_http), headers
// over 16 KiB (headers_too_large), corrupt gzip (invalid_gzip) or another Content-Encoding
// (unsupported_encoding), and 400 invalid_value for a query parameter given twice or that the
// route does not take (QueryParams).
//
// Metrics: whisperer_http_requests_total{route,code} and
// whisperer_http_request_duration_seconds{route} (from the request fully read to the response
// handed to the socket); unknown paths are counted as route="other".
//
// Graceful stop: Stop() closes the listening socket, closes idle connections, lets requests in
// flight finish, including ones still being received (their responses say `Connection:
// close`), waits up to `shutdown_timeout` and joins the threads. Thread-safety: Start/Stop from one
// owning thread.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "boost/asio/executor_work_guard.hpp"
#include "boost/asio/io_context.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/beast/http.hpp"
#include "obs/log.h"
#include "obs/metrics.h"

namespace whisperer::net {

namespace http = boost::beast::http;
using Request = http::request<http::string_body>;
using Response = http::response<http::string_body>;

struct RequestContext {
  Request& request;  // body already inflated when it was gzip
  std::string_view remote_ip;
  // Values of the `{name}` segments of a pattern route, in order (see Router::Add).
  std::vector<std::string> path_params = {};
};

using Responder = std::function<void(Response)>;
using Handler = std::function<void(RequestContext&, Responder)>;

// What a route asks of the server before its handler runs (Router::Guard).
struct RouteGuard {
  // Refuses a request from its header alone (a key that is not valid); OK lets it through. A
  // refused request is answered with this error instead of `100 Continue` to a client that
  // asked for one (its body is then never sent or read, and the connection closes), and instead
  // of 413 when its body is over the limit. Otherwise the handler sees the request as usual.
  std::function<absl::Status(const Request& header)> check;
  // Told of each request to the route that the server answered with an error before the
  // handler ran (the body over the limit, an unsupported or corrupt Content-Encoding, a query
  // parameter given twice or not taken, or `check`'s refusal), with that error.
  std::function<void(const absl::Status&)> refused;
};

// The query parameters a route's handler reads (Router::Add). The server refuses a request with
// any other, 400 invalid_value naming it, as handlers refuse an unknown body key: a misspelt one
// ("?limt=5") would otherwise be ignored and its default taken; so does one given twice. Any()
// lets any query through, a name given twice too, for routes that read none and whose callers
// may add one: the Segment collection endpoints (a client built for Segment's API may add a
// cache-buster or a proxy its tag, and events must not be refused for it) and the operations
// routes (a probe's or a scraper's parameters).
struct QueryParams {
  QueryParams(std::initializer_list<std::string> names = {}) : names(names) {}
  static QueryParams Any() {
    QueryParams any;
    any.any = true;
    return any;
  }
  std::vector<std::string> names;
  bool any = false;
};

// The value of header `field` ("" when absent).
inline std::string_view Header(const Request& req, http::field field) {
  auto v = req[field];
  return {v.data(), v.size()};
}

// The value of the first `{name}` segment of the route ("" when the route has none). A view of
// the context's own string, valid while the context lives.
inline std::string_view PathParam(const RequestContext& ctx) {
  return ctx.path_params.empty() ? std::string_view() : std::string_view(ctx.path_params.front());
}

// The request target: the path with its query string.
inline std::string_view Target(const Request& req) {
  return {req.target().data(), req.target().size()};
}

// An absolute-form request target (`GET http://host/path?q`, RFC 9112 3.2.2: what a client
// sends to a proxy, and servers must accept) in origin form (`/path?q`); nullopt for a target
// already in origin form.
std::optional<std::string> OriginForm(std::string_view target);
// The path of a request target in either form, without the query.
std::string PathOf(std::string_view target);

// Builds a response with a JSON body and the right headers.
Response JsonResponse(unsigned status, std::string body);
// Builds the JSON error response for `status` (its HTTP code from api/http_status.h).
Response ErrorResponse(const absl::Status& status);

// The URL of a server listening on `host`:`port` that one can paste into curl: the wildcard
// addresses (0.0.0.0, ::) name the loopback, and an IPv6 address is bracketed.
std::string LocalUrl(std::string_view host, uint16_t port);

// The client address named by the first entry of an X-Forwarded-For header value, as the
// address alone ("203.0.113.7:4711" and "[2001:db8::1]:80", as some proxies write it, give
// "203.0.113.7" and "2001:db8::1"); nullopt when the entry is no IP address.
std::optional<std::string> ForwardedForAddress(std::string_view header);

class Router {
 public:
  // A path is exact ("/v1/track") or a pattern whose `{name}` segments match one non-empty
  // segment each ("/v1/profiles/{id}/events"). Exact paths win over patterns; patterns are
  // tried in the order added. A path registered for one method answers 405 to the others,
  // with an Allow header; a path with a GET handler answers HEAD with it, without the body.
  // The route label in metrics is the path as registered, so ids never become labels.
  // `query`: the query parameters the handler reads (none by default); HEAD takes GET's.
  void Add(http::verb method, std::string path, Handler handler, QueryParams query = {});
  // Lets web pages on any origin call `path` (added before): its answers to a request with an
  // Origin header carry `Access-Control-Allow-Origin: *`, and an OPTIONS preflight is answered
  // 204 with the path's methods and the request headers asked for. For the endpoints a browser
  // SDK calls with a write key (collection, decisions, experience); never for admin ones.
  void AllowBrowsers(const std::string& path);
  // Sets the guard of `path` (added before), for every method.
  void Guard(const std::string& path, RouteGuard guard);
  // Sets `guard` on every path added before that has none, except those in `open`.
  void GuardTheRest(const RouteGuard& guard, std::initializer_list<std::string_view> open);

  struct Match {
    const Handler* handler = nullptr;    // null: not found or method not allowed
    const QueryParams* query = nullptr;  // with a handler: the query parameters it reads
    bool path_known = false;
    const std::string* route = nullptr;
    std::vector<std::string> params;
    std::string allow;      // without a handler: the path's methods, for a 405's Allow header
    bool browsers = false;  // AllowBrowsers
    const RouteGuard* guard = nullptr;
  };
  Match Find(http::verb method, std::string_view path) const;

 private:
  struct Method {
    http::verb verb;
    Handler handler;
    QueryParams query;
  };
  struct Entry {
    std::string path;
    std::vector<Method> methods;
    std::vector<std::string> segments;  // patterns only
    bool browsers = false;
    std::optional<RouteGuard> guard;
  };
  // The route added for `path` (exact or pattern, as written); null when none was.
  Entry* EntryOf(const std::string& path);
  std::unordered_map<std::string, Entry> routes_;
  std::vector<Entry> patterns_;
};

struct ServerOptions {
  std::string host = "0.0.0.0";
  uint16_t port = 8080;  // 0: any free port (see HttpServer::port())
  size_t threads = 0;    // 0: every core
  std::chrono::milliseconds read_timeout{30'000};
  std::chrono::milliseconds shutdown_timeout{10'000};
  size_t body_limit = 500 * 1024;  // after gzip inflation too
  // Take the client address from the first X-Forwarded-For entry (behind a trusted proxy).
  bool trust_forwarded_for = false;
};

class HttpServer {
 public:
  HttpServer(ServerOptions options, Router router, obs::Registry* metrics);
  ~HttpServer();

  // Binds and starts serving. Fails when the address is in use or invalid.
  absl::Status Start();
  uint16_t port() const { return port_; }
  void Stop();

  // Implementation details shared with the connection class in http_server.cc.
  struct Shared;

 private:
  void Accept();

  ServerOptions options_;
  std::shared_ptr<Shared> shared_;
  // One per thread; the acceptor runs on the first.
  std::vector<std::unique_ptr<boost::asio::io_context>> iocs_;
  // Keep the threads running while a request waits on a shard with no socket operation
  // pending, until Stop() has seen every connection close.
  std::vector<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
  boost::asio::ip::tcp::acceptor acceptor_;
  // After a failed accept (out of file descriptors: EMFILE), the next waits a moment, and the
  // failure is logged at most once a second, with how many there were since.
  boost::asio::steady_timer accept_retry_;
  obs::LogLimiter accept_log_{std::chrono::seconds(1)};
  size_t next_ioc_ = 0;  // the io_context of the next accepted connection (acceptor's thread)
  std::vector<std::thread> threads_;
  uint16_t port_ = 0;
  bool started_ = false;
};

}  // namespace whisperer::net
