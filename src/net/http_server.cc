#include "net/http_server.h"

#include <pthread.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <list>
#include <mutex>
#include <optional>

#include "api/http_status.h"
#include "api/query.h"
#include "boost/asio/dispatch.hpp"
#include "boost/asio/post.hpp"
#include "boost/beast/core.hpp"
#include "common/cores.h"
#include "common/status.h"
#include "common/strings.h"
#include "net/gzip.h"
#include "obs/log.h"

namespace whisperer::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

namespace {
std::string_view SV(beast::string_view s) { return {s.data(), s.size()}; }
}  // namespace

Response JsonResponse(unsigned status, std::string body) {
  Response res{static_cast<http::status>(status), 11};
  res.set(http::field::server, "whisperer");
  res.set(http::field::content_type, "application/json");
  res.body() = std::move(body);
  return res;
}

Response ErrorResponse(const absl::Status& status) {
  Response res = JsonResponse(api::HttpStatusFor(status.code()), api::ErrorBody(status));
  if (status.code() == absl::StatusCode::kUnavailable ||
      status.code() == absl::StatusCode::kResourceExhausted) {
    res.set(http::field::retry_after, "1");
  }
  return res;
}

std::string LocalUrl(std::string_view host, uint16_t port) {
  std::string name(host == "0.0.0.0" ? "127.0.0.1" : host == "::" ? "::1" : host);
  if (name.find(':') != std::string::npos) name = StrCat("[", name, "]");
  return StrCat("http://", name, ":", port);
}

std::optional<std::string> ForwardedForAddress(std::string_view header) {
  std::string_view entry = StripWhitespace(header.substr(0, header.find(',')));
  if (entry.starts_with('[')) {  // [IPv6] or [IPv6]:port
    const size_t close = entry.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    entry = entry.substr(1, close - 1);
  } else if (std::count(entry.begin(), entry.end(), ':') == 1) {  // IPv4:port
    entry = entry.substr(0, entry.find(':'));
  }
  boost::system::error_code ec;
  const asio::ip::address address = asio::ip::make_address(std::string(entry), ec);
  if (ec) return std::nullopt;
  return address.to_string();
}

namespace {

// Whether a request's Transfer-Encoding, when it has one, is the one this server reads: chunked
// alone. RFC 9112 6.3 and 7 want chunked last and once; any other (xchunked, chunked twice)
// leaves the length unknown, and a proxy in front may read it differently from this server,
// which would take the body for a request of its own (request smuggling). Another coding before
// chunked (gzip, chunked) it does not decode (Content-Encoding: gzip is the way to compress).
template <typename Fields>
bool TransferEncodingFrames(const Fields& fields) {
  std::vector<std::string_view> codings;
  auto [first, last] = fields.equal_range(http::field::transfer_encoding);
  for (auto it = first; it != last; ++it) {
    std::string_view line = SV(it->value());
    while (!line.empty()) {
      const size_t comma = line.find(',');
      std::string_view coding = line.substr(0, comma);
      coding = StripWhitespace(coding.substr(0, coding.find(';')));
      if (!coding.empty()) codings.push_back(coding);
      line = comma == std::string_view::npos ? std::string_view() : line.substr(comma + 1);
    }
  }
  if (first == last) return true;  // no Transfer-Encoding: Content-Length, or no body
  return codings.size() == 1 && EqualsIgnoreCase(codings[0], "chunked");
}

std::vector<std::string> Segments(std::string_view path) {
  std::vector<std::string> out;
  size_t start = 1;  // paths start with '/'
  while (start <= path.size()) {
    size_t slash = path.find('/', start);
    if (slash == std::string_view::npos) slash = path.size();
    out.emplace_back(path.substr(start, slash - start));
    start = slash + 1;
  }
  return out;
}

bool IsParam(std::string_view segment) {
  return segment.size() > 2 && segment.front() == '{' && segment.back() == '}';
}

}  // namespace

void Router::Add(http::verb method, std::string path, Handler handler, QueryParams query) {
  Method m{method, std::move(handler), std::move(query)};
  if (path.find('{') == std::string::npos) {
    Entry& entry = routes_[path];
    entry.path = path;
    entry.methods.push_back(std::move(m));
    return;
  }
  for (Entry& e : patterns_) {
    if (e.path == path) {
      e.methods.push_back(std::move(m));
      return;
    }
  }
  Entry& entry = patterns_.emplace_back();
  entry.path = path;
  entry.segments = Segments(path);
  entry.methods.push_back(std::move(m));
}

Router::Entry* Router::EntryOf(const std::string& path) {
  auto it = routes_.find(path);
  if (it != routes_.end()) return &it->second;
  for (Entry& e : patterns_) {
    if (e.path == path) return &e;
  }
  return nullptr;
}

void Router::AllowBrowsers(const std::string& path) {
  if (Entry* e = EntryOf(path)) e->browsers = true;
}

void Router::Guard(const std::string& path, RouteGuard guard) {
  if (Entry* e = EntryOf(path)) e->guard = std::move(guard);
}

void Router::GuardTheRest(const RouteGuard& guard, std::initializer_list<std::string_view> open) {
  auto set = [&](Entry& e) {
    if (!e.guard && std::find(open.begin(), open.end(), e.path) == open.end()) e.guard = guard;
  };
  for (auto& [path, e] : routes_) set(e);
  for (Entry& e : patterns_) set(e);
}

std::optional<std::string> OriginForm(std::string_view target) {
  size_t rest;
  if (StartsWithIgnoreCase(target, "http://")) {
    rest = 7;
  } else if (StartsWithIgnoreCase(target, "https://")) {
    rest = 8;
  } else {
    return std::nullopt;
  }
  const size_t path = target.find_first_of("/?", rest);
  std::string origin = path == std::string_view::npos ? "/" : std::string(target.substr(path));
  if (origin.front() == '?') origin.insert(0, "/");
  return origin;
}

std::string PathOf(std::string_view target) {
  std::optional<std::string> origin = OriginForm(target);
  std::string_view t = origin ? std::string_view(*origin) : target;
  return std::string(t.substr(0, t.find('?')));
}

Router::Match Router::Find(http::verb method, std::string_view path) const {
  Match m;
  const Entry* found = nullptr;
  auto it = routes_.find(std::string(path));
  if (it != routes_.end()) {
    found = &it->second;
  } else if (!patterns_.empty() && !path.empty() && path.front() == '/') {
    std::vector<std::string> segments = Segments(path);
    for (const Entry& e : patterns_) {
      if (e.segments.size() != segments.size()) continue;
      bool ok = true;
      std::vector<std::string> params;
      for (size_t i = 0; ok && i < segments.size(); ++i) {
        if (IsParam(e.segments[i])) {
          ok = !segments[i].empty();
          params.push_back(segments[i]);
        } else {
          ok = e.segments[i] == segments[i];
        }
      }
      if (ok) {
        found = &e;
        m.params = std::move(params);
        break;
      }
    }
  }
  if (found == nullptr) return m;
  m.path_known = true;
  m.route = &found->path;
  m.browsers = found->browsers;
  if (found->guard) m.guard = &*found->guard;
  const Method* get = nullptr;
  const Method* chosen = nullptr;
  for (const Method& candidate : found->methods) {
    if (candidate.verb == method) chosen = &candidate;
    if (candidate.verb == http::verb::get) get = &candidate;
  }
  // HEAD is GET without the body (Session::Send drops it), as load balancers' health checks
  // and `curl -I` expect.
  if (chosen == nullptr && method == http::verb::head) chosen = get;
  if (chosen != nullptr) {
    m.handler = &chosen->handler;
    m.query = &chosen->query;
  } else {  // only a 405 needs the list
    for (const Method& candidate : found->methods) {
      if (!m.allow.empty()) m.allow += ", ";
      m.allow += SV(http::to_string(candidate.verb));
    }
    if (get != nullptr) m.allow += ", HEAD";
  }
  return m;
}

class Session;

struct HttpServer::Shared {
  ServerOptions options;
  // The Keep-Alive header of a persistent connection's answers: how long it may sit idle.
  // Clients that read it (Node's http agent) stop reusing the connection a second before, so
  // a request does not meet the close.
  std::string keep_alive;
  Router router;
  obs::Registry* metrics;
  std::atomic<bool> draining{false};

  std::mutex mu;
  std::condition_variable cv;
  std::list<std::weak_ptr<Session>> sessions;  // GUARDED_BY(mu)
  size_t live_sessions = 0;                    // GUARDED_BY(mu)

  struct RouteMetrics {
    obs::Histogram* latency;
    std::mutex mu;
    std::unordered_map<unsigned, obs::Counter*> by_code;  // GUARDED_BY(mu)
  };
  std::mutex metrics_mu;
  std::unordered_map<std::string, std::unique_ptr<RouteMetrics>> route_metrics;  // GUARDED_BY

  RouteMetrics& MetricsFor(const std::string& route) {
    std::lock_guard lock(metrics_mu);
    auto& slot = route_metrics[route];
    if (!slot) {
      slot = std::make_unique<RouteMetrics>();
      slot->latency = &metrics->GetHistogram(
          "whisperer_http_request_duration_seconds",
          "Time from a request fully read to its response handed to the socket.",
          {{"route", route}}, obs::LatencyBuckets());
    }
    return *slot;
  }

  void Record(RouteMetrics& rm, const std::string& route, unsigned code, double seconds) {
    rm.latency->Observe(seconds);
    obs::Counter* counter;
    {
      std::lock_guard lock(rm.mu);
      auto& c = rm.by_code[code];
      if (!c) {
        c = &metrics->GetCounter("whisperer_http_requests_total", "HTTP requests answered.",
                                 {{"route", route}, {"code", std::to_string(code)}});
      }
      counter = c;
    }
    counter->Inc();
  }
};

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(tcp::socket socket, std::shared_ptr<HttpServer::Shared> shared)
      : stream_(std::move(socket)), shared_(std::move(shared)) {
    beast::error_code ec;
    auto endpoint = stream_.socket().remote_endpoint(ec);
    if (!ec) remote_ip_ = endpoint.address().to_string();
  }

  ~Session() {
    std::lock_guard lock(shared_->mu);
    if (registered_) shared_->sessions.erase(self_it_);
    --shared_->live_sessions;
    shared_->cv.notify_all();
  }

  void Start() {
    {
      std::lock_guard lock(shared_->mu);
      ++shared_->live_sessions;
      self_it_ = shared_->sessions.insert(shared_->sessions.end(), weak_from_this());
      registered_ = true;
    }
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] { self->Read(); });
  }

  // Called during shutdown: closes the connection if it is waiting for a request. A request
  // whose first bytes have arrived is read to its end and answered (with Connection: close).
  void CloseIfIdle() {
    asio::post(stream_.get_executor(), [self = shared_from_this()] {
      // A request counts from its first byte, read or still in the socket: a client that sent
      // one on a connection idle until then is answered (with Connection: close), not cut off.
      beast::error_code unread;
      bool reading_a_request = self->buffer_.size() > 0 ||
                               (self->parser_ && self->parser_->got_some()) ||
                               self->stream_.socket().available(unread) > 0;
      if (!self->busy_ && !reading_a_request) {
        beast::error_code ec;
        self->stream_.socket().shutdown(tcp::socket::shutdown_both, ec);
        self->stream_.close();
      }
    });
  }

 private:
  void Read() {
    if (shared_->draining) return Close();
    // Beast reads at most the buffer's free capacity (and at least 512 bytes). Consumed bytes
    // free capacity again, so a buffer left to grow on demand stays near 512 bytes and a
    // 500 KB batch costs a thousand recv() calls, each with a timer reset and an epoll wait;
    // reserved, it takes a few dozen.
    if (buffer_.capacity() < kReadBufferBytes) buffer_.reserve(kReadBufferBytes);
    parser_.emplace();
    parser_->body_limit(shared_->options.body_limit);
    parser_->header_limit(16 * 1024);
    // Idle, the connection waits at most read_timeout for a request; the request then has a
    // read_timeout of its own from its first byte (time spent idle before it does not count).
    stream_.expires_after(shared_->options.read_timeout);
    if (buffer_.size() > 0) return ReadHeader();  // the next request has begun already
    stream_.async_read_some(buffer_.prepare(kReadBufferBytes),
                            [self = shared_from_this()](beast::error_code ec, size_t n) {
                              if (ec) return self->OnRead(ec);  // idle too long, or closed
                              self->buffer_.commit(n);
                              self->ReadHeader();
                            });
  }

  void ReadHeader() {
    stream_.expires_after(shared_->options.read_timeout);
    // The header first: a client that sent `Expect: 100-continue` waits for the interim answer
    // before it sends the body (RFC 9110, 10.1.1); without one, each of its requests would wait
    // out the client's timeout (a second for curl). .NET's and PHP's HTTP clients send it.
    http::async_read_header(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnHeader(ec); });
  }

  void OnHeader(beast::error_code ec) {
    std::string_view refused;
    if (!ec && !TransferEncodingFrames(parser_->get())) {
      refused = "the only Transfer-Encoding read is chunked";
    } else if (!ec && parser_->get().version() >= 11 &&
               parser_->get().count(http::field::host) != 1) {
      refused = "an HTTP/1.1 request needs one Host header (RFC 9112 3.2)";
    }
    if (!refused.empty()) {  // its body is not read
      return SendUnreadable(
          InvalidInput("malformed_http", StrCat("malformed HTTP request: ", refused)));
    }
    if (ec || parser_->is_done()) return OnRead(ec);  // an error, or a request without a body
    if (EqualsIgnoreCase(SV(parser_->get()[http::field::expect]), "100-continue")) {
      // A refused key is answered now: the client then never sends the body.
      HeaderVerdict v = GuardHeader();
      if (!v.refusal.ok()) return Refuse(v.refusal, v);
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      return asio::async_write(stream_, asio::buffer(kContinue.data(), kContinue.size()),
                               [self = shared_from_this()](beast::error_code ec, size_t) {
                                 if (ec) return self->Close();
                                 self->ReadBody();
                               });
    }
    ReadBody();
  }

  void ReadBody() {
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, size_t) { self->OnRead(ec); });
  }

  void OnRead(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
        ec == asio::error::eof) {
      return Close();
    }
    if (ec == http::error::body_limit) {
      // The header was read whole: the route's guard speaks first (a bad key is 401, not 413).
      HeaderVerdict v = GuardHeader();
      if (v.refusal.ok()) {
        v.refusal = MakeError(absl::StatusCode::kOutOfRange, "request_too_large",
                              StrCat("the request body is over the limit of ",
                                     shared_->options.body_limit, " bytes"));
      }
      return Refuse(v.refusal, v);
    }
    if (ec == http::error::header_limit) {
      return SendUnreadable(
          InvalidInput("headers_too_large", "the request headers are over 16384 bytes"));
    }
    if (ec) {
      return SendUnreadable(
          InvalidInput("malformed_http", StrCat("malformed HTTP request: ", ec.message())));
    }
    busy_ = true;
    start_ = std::chrono::steady_clock::now();
    cors_ = false;
    request_ = parser_->release();
    close_after_ = !request_.keep_alive();
    ToOriginForm();
    Dispatch();
  }

  // Answers `error` to a request that cannot be read (on no route); the connection closes after,
  // since where the next request starts is unknown.
  void SendUnreadable(const absl::Status& error) {
    busy_ = true;
    start_ = std::chrono::steady_clock::now();
    close_after_ = true;
    cors_ = false;
    Send(ErrorResponse(error), "other");
  }

  // The route of the request whose header `parser_` holds, and its verdict on the header: 405
  // for a method the path does not take (as Dispatch answers it, whatever the key or the body),
  // else its guard's (OK without a guard).
  struct HeaderVerdict {
    const std::string* route;  // "other" when no route has the path
    const RouteGuard* guard;
    bool browsers;  // the path allows calls from web pages
    absl::Status refusal;
    std::string allow;  // with a 405: the path's methods
  };
  HeaderVerdict GuardHeader() const {
    static const std::string kOther = "other";
    const Request& header = parser_->get();
    Router::Match match = shared_->router.Find(header.method(), PathOf(SV(header.target())));
    HeaderVerdict v{match.route ? match.route : &kOther, match.guard, match.browsers,
                    absl::OkStatus(), ""};
    if (match.path_known && match.handler == nullptr) {
      v.refusal = MethodNotAllowed(SV(header.method_string()), *v.route, match.allow);
      v.allow = match.allow;
    } else if (v.guard != nullptr && v.guard->check) {
      v.refusal = v.guard->check(header);
    }
    return v;
  }

  static absl::Status MethodNotAllowed(std::string_view method, const std::string& route,
                                       const std::string& allow) {
    return MakeError(absl::StatusCode::kUnimplemented, "method_not_allowed",
                     StrCat(method, " is not allowed on ", route, " (", allow, ")"));
  }

  // Answers `error` to the request whose header `parser_` holds, without reading its body
  // (the connection closes after), and tells the route's guard.
  void Refuse(const absl::Status& error, const HeaderVerdict& v) {
    busy_ = true;
    start_ = std::chrono::steady_clock::now();
    close_after_ = true;  // the body was not read (whole): the stream position is unknown
    // A page may read the error too.
    cors_ = v.browsers && !parser_->get()[http::field::origin].empty();
    if (!v.allow.empty()) {  // 405: no request of the route's
      Response res = ErrorResponse(error);
      res.set(http::field::allow, v.allow);
      return Send(std::move(res), *v.route);
    }
    if (v.guard != nullptr && v.guard->refused) v.guard->refused(error);
    Send(ErrorResponse(error), *v.route);
  }

  void ToOriginForm() {
    if (std::optional<std::string> origin = OriginForm(SV(request_.target()))) {
      request_.target(*origin);
    }
  }

  void Dispatch() {
    std::string_view target = SV(request_.target());
    Router::Match match =
        shared_->router.Find(request_.method(), target.substr(0, target.find('?')));
    static const std::string kOther = "other";
    const std::string& route = match.route ? *match.route : kOther;
    if (!match.path_known) {
      return Send(ErrorResponse(MakeError(absl::StatusCode::kNotFound, "not_found",
                                          StrCat("no endpoint at ", target.substr(0, 200)))),
                  route);
    }
    cors_ = match.browsers && !request_[http::field::origin].empty();
    if (match.handler == nullptr && match.browsers && request_.method() == http::verb::options) {
      return Send(Preflight(match.allow), route);
    }
    if (match.handler == nullptr) {
      Response res =
          ErrorResponse(MethodNotAllowed(SV(request_.method_string()), route, match.allow));
      res.set(http::field::allow, match.allow);
      return Send(std::move(res), route);
    }
    if (absl::Status query =
            api::CheckQuery(target, match.query->any ? nullptr : &match.query->names, route);
        !query.ok()) {
      // The key in the header speaks first, as for a body over the limit: a bad key is 401.
      absl::Status refusal = GuardVerdict(match);
      return RefuseRequest(match, refusal.ok() ? query : refusal, route);
    }
    // Several Content-Encoding lines are one list (RFC 9110 5.3), which is refused below as any
    // list is: only the first line was read once, so a body labelled `identity` then `gzip` was
    // taken as plain.
    std::string encodings;
    for (auto [it, end] = request_.equal_range(http::field::content_encoding); it != end; ++it) {
      StrAppend(&encodings, encodings.empty() ? "" : ", ", SV(it->value()));
    }
    std::string_view encoding = encodings;
    if (!encoding.empty() && !EqualsIgnoreCase(encoding, "identity")) {
      // The key in the header speaks first, as for a body over the limit: a bad key is 401,
      // whatever its body's encoding.
      if (absl::Status refusal = GuardVerdict(match); !refusal.ok()) {
        return RefuseRequest(match, refusal, route);
      }
      // x-gzip is gzip's old name, which recipients are to take as gzip (RFC 9110 8.4.1.3).
      absl::StatusOr<std::string> body =
          EqualsIgnoreCase(encoding, "gzip") || EqualsIgnoreCase(encoding, "x-gzip")
              ? Gunzip(request_.body(), shared_->options.body_limit)
              : InvalidInput("unsupported_encoding",
                             StrCat("Content-Encoding ", encoding.substr(0, 64),
                                    " is not supported; use gzip or none"));
      if (!body.ok()) return RefuseRequest(match, body.status(), route);
      request_.body() = *std::move(body);
      request_.erase(http::field::content_encoding);
    }
    std::string_view ip = remote_ip_;
    if (shared_->options.trust_forwarded_for) {
      // What is no address (a proxy's placeholder such as "unknown") names no client: the
      // connection's address stands.
      if (std::optional<std::string> forwarded =
              ForwardedForAddress(SV(request_["X-Forwarded-For"]))) {
        forwarded_ip_ = *std::move(forwarded);
        ip = forwarded_ip_;
      }
    }
    RequestContext ctx{request_, ip, std::move(match.params)};
    const std::string* route_ptr = &route;
    // An answer given on the connection's own thread (a handler that answers before it
    // returns, or a commit the handler ran itself: shard/shard_set.h) is written at once; from
    // another thread (a shard thread) it is posted to the connection's io_context.
    (*match.handler)(ctx, [self = shared_from_this(), route_ptr](Response res) {
      asio::dispatch(self->stream_.get_executor(),
                     [self, route_ptr, res = std::move(res)]() mutable {
                       self->Send(std::move(res), *route_ptr);
                     });
    });
  }

  // The guard of the request's route on its header: OK without a guard.
  absl::Status GuardVerdict(const Router::Match& match) const {
    if (match.guard == nullptr || !match.guard->check) return absl::OkStatus();
    return match.guard->check(request_);
  }

  // Answers `error` to the request read whole, before its handler sees it, and tells the
  // route's guard. Callers ask the guard first (GuardVerdict) where a bad key must be what is
  // answered.
  void RefuseRequest(const Router::Match& match, const absl::Status& error,
                     const std::string& route) {
    if (match.guard != nullptr && match.guard->refused) match.guard->refused(error);
    Send(ErrorResponse(error), route);
  }

  // The answer to a CORS preflight: the path's `methods`, the headers the page asked to send
  // (Authorization for a key in the header, Content-Encoding for gzip), for a day.
  Response Preflight(const std::string& methods) const {
    Response res{http::status::no_content, 11};
    res.set(http::field::allow, methods);
    res.set(http::field::access_control_allow_methods, methods);
    // The header names asked for, when they are header names (tokens, commas and spaces): a
    // value is echoed only when it is one. Any other, or none, gets the ones a page needs.
    const std::string_view asked = SV(request_[http::field::access_control_request_headers]);
    const bool names = !asked.empty() && asked.size() <= 1024 &&
                       std::all_of(asked.begin(), asked.end(), [](char c) {
                         return std::isalnum(static_cast<unsigned char>(c)) || c == '-' ||
                                c == '_' || c == ',' || c == ' ';
                       });
    if (names) {
      res.set(http::field::access_control_allow_headers, std::string(asked));
    } else {
      res.set(http::field::access_control_allow_headers,
              "Authorization, Content-Type, Content-Encoding");
    }
    res.set(http::field::access_control_max_age, "86400");
    return res;
  }

  void Send(Response res, const std::string& route) {
    if (cors_) res.set(http::field::access_control_allow_origin, "*");
    auto& rm = shared_->MetricsFor(route);
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    shared_->Record(rm, route, res.result_int(), seconds);
    if (shared_->draining) close_after_ = true;
    res.version(11);
    res.keep_alive(!close_after_);
    // An HTTP/1.1 answer persists by default, but an HTTP/1.0 client keeps the connection only
    // when the answer says so (RFC 9112 9.3); without it the client waits for a close.
    if (request_.version() == 10 && !close_after_) res.set(http::field::connection, "keep-alive");
    if (!close_after_) res.set(http::field::keep_alive, shared_->keep_alive);
    res.prepare_payload();
    // A 204 has no body and no Content-Length (RFC 9110 8.6).
    if (res.result() == http::status::no_content) res.erase(http::field::content_length);
    if (request_.method() == http::verb::head) res.body().clear();  // Content-Length stays
    response_ = std::move(res);
    stream_.expires_after(shared_->options.read_timeout);
    http::async_write(stream_, response_,
                      [self = shared_from_this()](beast::error_code ec, size_t) {
                        self->busy_ = false;
                        if (ec || self->close_after_) return self->Close();
                        self->request_ = {};
                        self->Read();
                      });
  }

  void Close() {
    beast::error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.close();
  }

  beast::tcp_stream stream_;
  static constexpr size_t kReadBufferBytes = 32 * 1024;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Request request_;
  Response response_;
  std::shared_ptr<HttpServer::Shared> shared_;
  std::string remote_ip_;
  std::string forwarded_ip_;
  std::chrono::steady_clock::time_point start_;
  std::list<std::weak_ptr<Session>>::iterator self_it_;  // in shared_->sessions
  bool registered_ = false;
  bool busy_ = false;         // a request is being handled or answered
  bool close_after_ = false;  // close once the response is written
  bool cors_ = false;         // the answer carries Access-Control-Allow-Origin
};

namespace {
ServerOptions Resolved(ServerOptions options) {
  if (options.threads == 0) options.threads = AllTheCores();
  return options;
}

std::vector<std::unique_ptr<asio::io_context>> Contexts(size_t n) {
  std::vector<std::unique_ptr<asio::io_context>> out;
  // Concurrency hint 1: one thread runs each, so asio queues what that thread posts to itself
  // without locking or waking anyone; other threads (shards) may still post to it.
  for (size_t i = 0; i < n; ++i) out.push_back(std::make_unique<asio::io_context>(1));
  return out;
}
}  // namespace

HttpServer::HttpServer(ServerOptions options, Router router, obs::Registry* metrics)
    : options_(Resolved(options)),
      shared_(std::make_shared<Shared>()),
      iocs_(Contexts(options_.threads)),
      acceptor_(*iocs_[0]),
      accept_retry_(*iocs_[0]) {
  shared_->options = options_;
  shared_->keep_alive = StrCat(
      "timeout=",
      std::max<int64_t>(
          1, std::chrono::duration_cast<std::chrono::seconds>(options_.read_timeout).count()));
  shared_->router = std::move(router);
  shared_->metrics = metrics;
}

HttpServer::~HttpServer() { Stop(); }

absl::Status HttpServer::Start() {
  beast::error_code ec;
  auto address = asio::ip::make_address(options_.host, ec);
  if (ec) {
    return InvalidInput("invalid_value",
                        StrCat("server.host '", options_.host, "' is not an IP address"),
                        "server.host");
  }
  tcp::endpoint endpoint(address, options_.port);
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec) acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) {
    return MakeError(
        absl::StatusCode::kFailedPrecondition, "listen_failed",
        StrCat("cannot listen on ", options_.host, ":", options_.port, ": ", ec.message()));
  }
  port_ = acceptor_.local_endpoint().port();
  for (auto& ioc : iocs_) work_.push_back(asio::make_work_guard(*ioc));
  Accept();
  for (size_t i = 0; i < iocs_.size(); ++i) {
    threads_.emplace_back([this, i] {
      pthread_setname_np(pthread_self(), StrCat("http-", i).c_str());
      iocs_[i]->run();
    });
  }
  started_ = true;
  return absl::OkStatus();
}

void HttpServer::Accept() {
  asio::io_context& ioc = *iocs_[next_ioc_++ % iocs_.size()];
  acceptor_.async_accept(ioc, [this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
      // Retried at once, a lasting failure (out of file descriptors) would spin a core and
      // flood the log: wait 50 ms, and log once a second.
      if (uint64_t failures = 0; accept_log_.Due(&failures)) {
        obs::LogEvent(spdlog::level::warn, "accept failed",
                      {{"error", ec.message()}, {"failures", std::to_string(failures)}});
      }
      accept_retry_.expires_after(std::chrono::milliseconds(50));
      accept_retry_.async_wait([this](beast::error_code wait_ec) {
        if (!wait_ec && acceptor_.is_open()) Accept();
      });
      return;
    } else {
      socket.set_option(tcp::no_delay(true), ec);
      std::make_shared<Session>(std::move(socket), shared_)->Start();
    }
    Accept();
  });
}

void HttpServer::Stop() {
  if (!started_) return;
  started_ = false;
  shared_->draining = true;
  asio::post(acceptor_.get_executor(), [this] {
    beast::error_code ec;
    acceptor_.close(ec);
    accept_retry_.cancel();
  });
  std::vector<std::shared_ptr<Session>> open;
  {
    std::lock_guard lock(shared_->mu);
    for (auto& weak : shared_->sessions) {
      if (auto s = weak.lock()) open.push_back(std::move(s));
    }
  }
  // Outside the lock: dropping the last reference runs ~Session, which takes it.
  for (auto& s : open) s->CloseIfIdle();
  open.clear();
  size_t cut = 0;
  {
    std::unique_lock lock(shared_->mu);
    shared_->cv.wait_for(lock, options_.shutdown_timeout,
                         [&] { return shared_->live_sessions == 0; });
    cut = shared_->live_sessions;
  }
  if (cut > 0) {
    // Their requests end unanswered: the operator should know, and which limit did it.
    obs::LogEvent(spdlog::level::warn, "connections_cut",
                  {{"connections", StrCat(cut)},
                   {"reason", "server.shutdown_timeout passed with requests still in flight"}});
  }
  work_.clear();
  for (auto& ioc : iocs_) ioc->stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

}  // namespace whisperer::net
