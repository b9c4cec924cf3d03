#include "net/http_server.h"

#include <gtest/gtest.h>

#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "boost/asio/connect.hpp"
#include "boost/asio/read.hpp"
#include "boost/asio/write.hpp"
#include "boost/beast/core.hpp"
#include "common/status.h"
#include "net/gzip.h"

namespace whisperer::net {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

// Everything the server sends on `s` until it closes the connection.
std::string ReadUntilClosed(tcp::socket& s) {
  std::string reply;
  beast::error_code ec;
  char buf[4096];
  for (;;) {
    size_t n = s.read_some(asio::buffer(buf), ec);
    if (ec) return reply;
    reply.append(buf, n);
  }
}

// Sends the header of `method` /guarded with `X-Key: key` and `Expect: 100-continue`, no body,
// and returns all the server answers before it closes the connection.
std::string AskToContinue(uint16_t port, std::string_view method, std::string_view key) {
  asio::io_context ioc;
  tcp::socket s(ioc);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
  asio::write(s, asio::buffer(std::string(method) +
                              " /guarded HTTP/1.1\r\nHost: x\r\nX-Key: " + std::string(key) +
                              "\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n"));
  return ReadUntilClosed(s);
}

class HttpServerTest : public ::testing::Test {
 protected:
  void StartServer(ServerOptions options = {}) {
    Router router;
    router.Add(http::verb::post, "/echo", [](RequestContext& ctx, Responder respond) {
      respond(JsonResponse(200, ctx.request.body()));
    });
    router.Add(http::verb::post, "/page", [](RequestContext& ctx, Responder respond) {
      respond(JsonResponse(200, ctx.request.body()));
    });
    router.AllowBrowsers("/page");
    // Refuses a request without `X-Key: good` from its header; records what it is told of.
    router.Add(http::verb::post, "/guarded", [](RequestContext& ctx, Responder respond) {
      respond(JsonResponse(200, ctx.request.body()));
    });
    router.Guard("/guarded", {[](const Request& header) {
                                return header["X-Key"] == "good"
                                           ? absl::OkStatus()
                                           : MakeError(absl::StatusCode::kUnauthenticated,
                                                       "unauthenticated", "the key is not valid");
                              },
                              [this](const absl::Status& error) {
                                std::lock_guard lock(refused_mu_);
                                refused_.push_back(ErrorCodeOf(error));
                              }});
    router.Add(http::verb::get, "/ip",
               [](RequestContext& ctx, Responder respond) {
                 respond(JsonResponse(200, std::string(ctx.remote_ip)));
               },
               {"limit", "cursor", "x"});
    // Answers from another thread after a delay, as shards do.
    router.Add(http::verb::post, "/slow", [this](RequestContext&, Responder respond) {
      slow_started_.set_value();
      std::thread([respond = std::move(respond)] {
        std::this_thread::sleep_for(std::chrono::milliseconds(300));
        respond(JsonResponse(200, "{\"slow\":true}"));
      }).detach();
    });
    // Holds its thread for 300 ms: the thread's other connections wait.
    router.Add(http::verb::post, "/block", [this](RequestContext&, Responder respond) {
      block_started_.set_value();
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
      respond(JsonResponse(200, "{}"));
    });
    // Names the thread that ran the handler (0, 1, ... in order of first appearance).
    router.Add(http::verb::get, "/thread", [this](RequestContext&, Responder respond) {
      std::lock_guard lock(threads_mu_);
      auto [it, added] = threads_.try_emplace(std::this_thread::get_id(), threads_.size());
      respond(JsonResponse(200, std::to_string(it->second)));
    });
    options.host = "127.0.0.1";
    options.port = 0;
    options.threads = 2;
    server_ = std::make_unique<HttpServer>(options, std::move(router), &metrics_);
    ASSERT_TRUE(server_->Start().ok());
  }
  void TearDown() override {
    if (server_) server_->Stop();
  }

  // One client connection.
  struct Client {
    asio::io_context ioc;
    beast::tcp_stream stream{ioc};
    beast::flat_buffer buffer;
    explicit Client(uint16_t port) {
      stream.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), port));
    }
    Response Send(http::verb verb, std::string target, std::string body = "",
                  std::vector<std::pair<std::string, std::string>> headers = {}) {
      Request req{verb, target, 11};
      req.set(http::field::host, "localhost");
      for (auto& [k, v] : headers) req.set(k, v);
      req.body() = std::move(body);
      req.prepare_payload();
      http::write(stream, req);
      Response res;
      http::read(stream, buffer, res);
      return res;
    }
  };

  obs::Registry metrics_;
  std::unique_ptr<HttpServer> server_;
  std::promise<void> slow_started_;
  std::promise<void> block_started_;
  std::mutex threads_mu_;
  std::mutex refused_mu_;
  std::vector<std::string> refused_;           // what /guarded's guard was told of
  std::map<std::thread::id, size_t> threads_;  // GUARDED_BY(threads_mu_)
};

TEST(ForwardedForTest, TakesTheFirstEntrysAddressWithoutAPort) {
  EXPECT_EQ(ForwardedForAddress("203.0.113.7"), "203.0.113.7");
  EXPECT_EQ(ForwardedForAddress(" 203.0.113.7 , 10.0.0.1"), "203.0.113.7");
  EXPECT_EQ(ForwardedForAddress("203.0.113.7:4711, 10.0.0.1"), "203.0.113.7");
  EXPECT_EQ(ForwardedForAddress("2001:db8::1"), "2001:db8::1");
  EXPECT_EQ(ForwardedForAddress("[2001:DB8::1]:80"), "2001:db8::1");
  EXPECT_EQ(ForwardedForAddress("unknown, 203.0.113.7"), std::nullopt);
  EXPECT_EQ(ForwardedForAddress("garbage"), std::nullopt);
  EXPECT_EQ(ForwardedForAddress("[2001:db8::1"), std::nullopt);
  EXPECT_EQ(ForwardedForAddress(""), std::nullopt);
}

TEST(LocalUrlTest, NamesTheLoopbackForWildcardsAndBracketsIpv6) {
  EXPECT_EQ(LocalUrl("127.0.0.1", 8080), "http://127.0.0.1:8080");
  EXPECT_EQ(LocalUrl("0.0.0.0", 8080), "http://127.0.0.1:8080");
  EXPECT_EQ(LocalUrl("::", 8080), "http://[::1]:8080");
  EXPECT_EQ(LocalUrl("::1", 36125), "http://[::1]:36125");
  EXPECT_EQ(LocalUrl("fe80::1", 1), "http://[fe80::1]:1");
  EXPECT_EQ(LocalUrl("localhost", 80), "http://localhost:80");
}

TEST_F(HttpServerTest, ConnectionsAreDealtToTheThreadsAndStayOnTheirs) {
  StartServer();
  std::vector<std::unique_ptr<Client>> clients;
  for (int i = 0; i < 4; ++i) clients.push_back(std::make_unique<Client>(server_->port()));
  std::vector<std::string> first;
  for (auto& c : clients) first.push_back(c->Send(http::verb::get, "/thread").body());
  // Both threads serve, connections alternating between them.
  EXPECT_NE(first[0], first[1]);
  EXPECT_EQ(first[0], first[2]);
  EXPECT_EQ(first[1], first[3]);
  for (int round = 0; round < 5; ++round) {
    for (size_t i = 0; i < clients.size(); ++i) {
      EXPECT_EQ(clients[i]->Send(http::verb::get, "/thread").body(), first[i]);
    }
  }
}

TEST_F(HttpServerTest, KeepAliveServesSeveralRequestsOnOneConnection) {
  StartServer();
  Client c(server_->port());
  for (int i = 0; i < 3; ++i) {
    Response res = c.Send(http::verb::post, "/echo", "{\"i\":" + std::to_string(i) + "}");
    EXPECT_EQ(res.result_int(), 200u);
    EXPECT_EQ(res.body(), "{\"i\":" + std::to_string(i) + "}");
    EXPECT_TRUE(res.keep_alive());
    EXPECT_EQ(res[http::field::content_type], "application/json");
    // How long the connection may idle, for clients that stop reusing it before then.
    EXPECT_EQ(res[http::field::keep_alive], "timeout=30");
  }
  // An answer that closes the connection says nothing of keeping it.
  Response last = c.Send(http::verb::get, "/ip", "", {{"Connection", "close"}});
  EXPECT_EQ(last.body(), "127.0.0.1");
  EXPECT_FALSE(last.keep_alive());
  EXPECT_EQ(last.count(http::field::keep_alive), 0u);
  EXPECT_NE(metrics_.Render().find("whisperer_http_requests_total{route=\"/echo\",code=\"200\"} 3"),
            std::string::npos);
}

// An HTTP/1.0 client keeps its connection only when the answer says `Connection: keep-alive`
// (RFC 9112 9.3, RFC 2068 19.7.1); without asking for it, the connection closes after the answer.
TEST_F(HttpServerTest, Http10KeepAliveIsAnsweredInKind) {
  StartServer();
  asio::io_context ioc;
  tcp::socket s(ioc);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->port()));
  beast::flat_buffer buffer;
  for (int i = 0; i < 2; ++i) {
    asio::write(s, asio::buffer(std::string("GET /ip HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")));
    Response res;
    http::read(s, buffer, res);
    EXPECT_EQ(res.result_int(), 200u);
    EXPECT_EQ(res.body(), "127.0.0.1");
    EXPECT_TRUE(beast::iequals(res[http::field::connection], "keep-alive")) << res;
  }
  asio::write(s, asio::buffer(std::string("GET /ip HTTP/1.0\r\n\r\n")));
  std::string reply = ReadUntilClosed(s);  // returns once the server closes
  EXPECT_NE(reply.find("127.0.0.1"), std::string::npos) << reply;
  EXPECT_EQ(reply.find("keep-alive"), std::string::npos) << reply;
}

TEST_F(HttpServerTest, NotFoundAndMethodNotAllowed) {
  StartServer();
  Client c(server_->port());
  Response res = c.Send(http::verb::get, "/nope?x=1");
  EXPECT_EQ(res.result_int(), 404u);
  EXPECT_EQ(res.body(), R"({"error":{"code":"not_found","message":"no endpoint at /nope?x=1"}})");
  res = c.Send(http::verb::get, "/echo");
  EXPECT_EQ(res.result_int(), 405u);
  EXPECT_NE(res.body().find("method_not_allowed"), std::string::npos);
  EXPECT_EQ(res[http::field::allow], "POST");
  res = c.Send(http::verb::delete_, "/ip");
  EXPECT_EQ(res.result_int(), 405u);
  EXPECT_EQ(res[http::field::allow], "GET, HEAD");
  EXPECT_NE(res.body().find("DELETE is not allowed on /ip (GET, HEAD)"), std::string::npos);
}

TEST_F(HttpServerTest, PathsThatAllowBrowsersAnswerPagesOfAnyOrigin) {
  ServerOptions o;
  o.body_limit = 1000;
  StartServer(o);
  Client c(server_->port());
  const std::pair<std::string, std::string> origin{"Origin", "https://shop.example"};
  Response res = c.Send(http::verb::post, "/page", "{}", {origin});
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res[http::field::access_control_allow_origin], "*");
  // Not from a page, or not a path for pages: no CORS header.
  res = c.Send(http::verb::post, "/page", "{}");
  EXPECT_EQ(res.count(http::field::access_control_allow_origin), 0u);
  res = c.Send(http::verb::post, "/echo", "{}", {origin});
  EXPECT_EQ(res.count(http::field::access_control_allow_origin), 0u);
  // The preflight of a request with a key in its Authorization header.
  res = c.Send(http::verb::options, "/page", "",
               {origin,
                {"Access-Control-Request-Method", "POST"},
                {"Access-Control-Request-Headers", "authorization,content-type"}});
  EXPECT_EQ(res.result_int(), 204u);
  EXPECT_EQ(res[http::field::access_control_allow_origin], "*");
  EXPECT_EQ(res[http::field::access_control_allow_methods], "POST");
  EXPECT_EQ(res[http::field::access_control_allow_headers], "authorization,content-type");
  EXPECT_EQ(res[http::field::access_control_max_age], "86400");
  EXPECT_EQ(res[http::field::allow], "POST");
  EXPECT_EQ(res.count(http::field::content_length), 0u);  // none on a 204
  // Only header names are echoed.
  res = c.Send(http::verb::options, "/page", "",
               {origin, {"Access-Control-Request-Headers", "x-a\"<script>"}});
  EXPECT_EQ(res[http::field::access_control_allow_headers],
            "Authorization, Content-Type, Content-Encoding");
  res = c.Send(http::verb::options, "/echo", "", {origin});
  EXPECT_EQ(res.result_int(), 405u);
  // A page reads the errors too, the server's own included.
  res = c.Send(http::verb::get, "/page", "", {origin});
  EXPECT_EQ(res.result_int(), 405u);
  EXPECT_EQ(res[http::field::access_control_allow_origin], "*");
  res = c.Send(http::verb::post, "/page", std::string(1001, 'x'), {origin});
  EXPECT_EQ(res.result_int(), 413u);
  EXPECT_EQ(res[http::field::access_control_allow_origin], "*");
}

TEST_F(HttpServerTest, HeadIsGetWithoutTheBody) {
  StartServer();
  Client c(server_->port());
  Request req{http::verb::head, "/ip", 11};
  req.set(http::field::host, "localhost");
  http::write(c.stream, req);
  http::response_parser<http::string_body> parser;
  parser.skip(true);  // a response to HEAD has no body, whatever its Content-Length says
  http::read(c.stream, c.buffer, parser);
  EXPECT_EQ(parser.get().result_int(), 200u);
  EXPECT_EQ(parser.get()[http::field::content_length], "9");  // "127.0.0.1", as GET sends it
  EXPECT_EQ(parser.get().body(), "");
  // The connection stays in step: nothing of a body was sent to be misread as the next answer.
  Response res = c.Send(http::verb::get, "/ip");
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res.body(), "127.0.0.1");
  // HEAD of a path without GET is still 405.
  req.target("/echo");
  http::write(c.stream, req);
  http::response_parser<http::string_body> refused;
  refused.skip(true);
  http::read(c.stream, c.buffer, refused);
  EXPECT_EQ(refused.get().result_int(), 405u);
  // HEAD takes the query parameters GET takes, and no other.
  for (auto [target, status] : {std::pair{"/ip?limit=5", 200u}, std::pair{"/ip?limt=5", 400u}}) {
    req.target(target);
    http::write(c.stream, req);
    http::response_parser<http::string_body> answer;
    answer.skip(true);
    http::read(c.stream, c.buffer, answer);
    EXPECT_EQ(answer.get().result_int(), status) << target;
  }
}

TEST_F(HttpServerTest, BodyOverLimitIs413) {
  ServerOptions o;
  o.body_limit = 1000;
  StartServer(o);
  Client c(server_->port());
  Response res = c.Send(http::verb::post, "/echo", std::string(1001, 'x'));
  EXPECT_EQ(res.result_int(), 413u);
  EXPECT_NE(res.body().find("request_too_large"), std::string::npos);
  EXPECT_FALSE(res.keep_alive());
}

TEST_F(HttpServerTest, AGuardRefusesABadKeyBeforeTheBodyAndHearsOfEveryRefusal) {
  ServerOptions o;
  o.body_limit = 1000;
  StartServer(o);
  // A client that waits for `100 Continue` gets the refusal instead, and never sends its body.
  std::string reply = AskToContinue(server_->port(), "POST", "bad");
  EXPECT_EQ(reply.rfind("HTTP/1.1 401", 0), 0u) << reply;
  EXPECT_EQ(reply.find("100 Continue"), std::string::npos) << reply;
  EXPECT_NE(reply.find("unauthenticated"), std::string::npos) << reply;
  // A good key goes through.
  Client good(server_->port());
  Response res = good.Send(http::verb::post, "/guarded", "{}", {{"X-Key", "good"}});
  EXPECT_EQ(res.result_int(), 200u);
  // A body over the limit: a bad key is 401, not 413; with a good key 413, under the route.
  Client bad_big(server_->port());
  res = bad_big.Send(http::verb::post, "/guarded", std::string(1001, 'x'), {{"X-Key", "bad"}});
  EXPECT_EQ(res.result_int(), 401u);
  EXPECT_FALSE(res.keep_alive());
  Client good_big(server_->port());
  res = good_big.Send(http::verb::post, "/guarded", std::string(1001, 'x'), {{"X-Key", "good"}});
  EXPECT_EQ(res.result_int(), 413u);
  EXPECT_NE(
      metrics_.Render().find("whisperer_http_requests_total{route=\"/guarded\",code=\"413\"} 1"),
      std::string::npos)
      << metrics_.Render();
  // Encodings refused before the handler runs.
  Client zipped(server_->port());
  res = zipped.Send(http::verb::post, "/guarded", "garbage",
                    {{"X-Key", "good"}, {"Content-Encoding", "gzip"}});
  EXPECT_EQ(res.result_int(), 400u);
  res = zipped.Send(http::verb::post, "/guarded", "x",
                    {{"X-Key", "good"}, {"Content-Encoding", "br"}});
  EXPECT_EQ(res.result_int(), 400u);
  // A method the path does not take is 405 whatever the key, the body or Expect.
  for (const char* key : {"bad", "good"}) {
    Client wrong(server_->port());
    res = wrong.Send(http::verb::put, "/guarded", std::string(1001, 'x'), {{"X-Key", key}});
    EXPECT_EQ(res.result_int(), 405u) << key;
    EXPECT_EQ(res[http::field::allow], "POST");
  }
  reply = AskToContinue(server_->port(), "PUT", "bad");
  EXPECT_EQ(reply.rfind("HTTP/1.1 405", 0), 0u) << reply;
  EXPECT_EQ(reply.find("100 Continue"), std::string::npos) << reply;
  res = zipped.Send(http::verb::get, "/guarded", "", {{"X-Key", "bad"}});
  EXPECT_EQ(res.result_int(), 405u);
  // A query parameter given twice: the key speaks first again.
  res = zipped.Send(http::verb::post, "/guarded?a=1&a=2", "{}", {{"X-Key", "bad"}});
  EXPECT_EQ(res.result_int(), 401u);
  res = zipped.Send(http::verb::post, "/guarded?a=1&a=2", "{}", {{"X-Key", "good"}});
  EXPECT_EQ(res.result_int(), 400u);
  EXPECT_NE(res.body().find(R"("field":"a")"), std::string::npos) << res.body();
  // A bad key without Expect and within the limit reaches the handler: the guard is no filter.
  res = zipped.Send(http::verb::post, "/guarded", "{}", {{"X-Key", "bad"}});
  EXPECT_EQ(res.result_int(), 200u);
  std::lock_guard lock(refused_mu_);
  EXPECT_EQ(refused_, (std::vector<std::string>{
                          "unauthenticated", "unauthenticated", "request_too_large", "invalid_gzip",
                          "unsupported_encoding", "unauthenticated", "invalid_value"}));
}

TEST_F(HttpServerTest, AQueryParameterGivenTwiceOrThatTheRouteDoesNotReadIsRefused) {
  StartServer();
  Client c(server_->port());
  Response res = c.Send(http::verb::get, "/ip?limit=5&cursor=x&limit=9");
  EXPECT_EQ(res.result_int(), 400u);
  EXPECT_NE(res.body().find(R"("code":"invalid_value")"), std::string::npos) << res.body();
  EXPECT_NE(res.body().find(R"("field":"limit")"), std::string::npos) << res.body();
  EXPECT_NE(res.body().find("'limit' is given more than once"), std::string::npos) << res.body();
  EXPECT_TRUE(res.keep_alive());  // the request was read whole
  res = c.Send(http::verb::get, "/ip?limit=5&cursor=x");
  EXPECT_EQ(res.result_int(), 200u);
  // A name the route does not read, misspelt or %-escaped, is refused rather than ignored.
  for (const char* target : {"/ip?limt=5", "/ip?limit=5&li%6dit=6"}) {
    res = c.Send(http::verb::get, target);
    EXPECT_EQ(res.result_int(), 400u) << target;
    EXPECT_NE(res.body().find("unknown query parameter"), std::string::npos) << res.body();
    EXPECT_NE(res.body().find("expected limit, cursor, x"), std::string::npos) << res.body();
    EXPECT_TRUE(res.keep_alive());
  }
  // On a route that reads none, any is unknown; its guard speaks first.
  res = c.Send(http::verb::post, "/guarded?verbose=1", "{}", {{"X-Key", "bad"}});
  EXPECT_EQ(res.result_int(), 401u);
  res = c.Send(http::verb::post, "/guarded?verbose=1", "{}", {{"X-Key", "good"}});
  EXPECT_EQ(res.result_int(), 400u);
  EXPECT_NE(res.body().find("'verbose': /guarded takes none"), std::string::npos) << res.body();
}

// read_timeout bounds the idle wait for a request and, apart, each request from its first byte.
TEST_F(HttpServerTest, ReadTimeoutCountsFromTheRequestsFirstByteAndClosesIdleConnections) {
  ServerOptions o;
  o.read_timeout = std::chrono::milliseconds(600);
  StartServer(o);
  const auto connect = [&](tcp::socket& s) {
    s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->port()));
  };
  const auto wait = [](int ms) { std::this_thread::sleep_for(std::chrono::milliseconds(ms)); };
  asio::io_context ioc;
  {
    // Idle 400 ms, then a request sent over 400 ms: 800 ms after connecting, but each within.
    tcp::socket s(ioc);
    connect(s);
    wait(400);
    asio::write(s, asio::buffer(std::string("GET /ip HTTP/1.1\r\n")));
    wait(400);
    asio::write(s, asio::buffer(std::string("Host: x\r\nConnection: close\r\n\r\n")));
    std::string reply = ReadUntilClosed(s);
    EXPECT_EQ(reply.rfind("HTTP/1.1 200", 0), 0u) << reply;
  }
  {
    // Idle past the timeout: closed without an answer.
    tcp::socket s(ioc);
    connect(s);
    wait(900);
    EXPECT_EQ(ReadUntilClosed(s), "");
  }
  {
    // A request still arriving read_timeout after its first byte: cut, without an answer.
    tcp::socket s(ioc);
    connect(s);
    asio::write(s, asio::buffer(std::string("GET /ip HTTP/1.1\r\n")));
    wait(900);
    beast::error_code ec;
    asio::write(s, asio::buffer(std::string("Host: x\r\n\r\n")), ec);
    EXPECT_EQ(ReadUntilClosed(s), "");
  }
}

TEST_F(HttpServerTest, GzipBodiesAreInflatedWithinTheLimit) {
  ServerOptions o;
  o.body_limit = 1000;
  StartServer(o);
  Client c(server_->port());
  Response res =
      c.Send(http::verb::post, "/echo", Gzip("{\"zipped\":1}"), {{"Content-Encoding", "gzip"}});
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res.body(), "{\"zipped\":1}");
  res = c.Send(http::verb::post, "/echo", Gzip("{\"old\":1}"), {{"Content-Encoding", "X-Gzip"}});
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res.body(), "{\"old\":1}");
  res = c.Send(http::verb::post, "/echo", Gzip(std::string(5000, ' ')),
               {{"Content-Encoding", "gzip"}});
  EXPECT_EQ(res.result_int(), 413u);
  Client c2(server_->port());
  res = c2.Send(http::verb::post, "/echo", "garbage", {{"Content-Encoding", "gzip"}});
  EXPECT_EQ(res.result_int(), 400u);
  EXPECT_NE(res.body().find("invalid_gzip"), std::string::npos);
  res = c2.Send(http::verb::post, "/echo", "x", {{"Content-Encoding", "br"}});
  EXPECT_EQ(res.result_int(), 400u);
  EXPECT_NE(res.body().find("unsupported_encoding"), std::string::npos);
}

TEST_F(HttpServerTest, MalformedHttpIs400) {
  StartServer();
  asio::io_context ioc;
  tcp::socket s(ioc);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->port()));
  asio::write(s, asio::buffer(std::string("BLAH\x01 / HTTP/9\r\n\r\n")));
  std::string reply = ReadUntilClosed(s);
  EXPECT_EQ(reply.rfind("HTTP/1.1 400", 0), 0u) << reply;
  EXPECT_NE(reply.find("malformed_http"), std::string::npos);
}

TEST_F(HttpServerTest, StopFinishesRequestsInFlight) {
  StartServer();
  Client c(server_->port());
  auto reply = std::async(std::launch::async, [&] { return c.Send(http::verb::post, "/slow"); });
  slow_started_.get_future().wait();
  Client idle(server_->port());  // an idle keep-alive connection must not hold up the stop
  auto t0 = std::chrono::steady_clock::now();
  server_->Stop();
  EXPECT_LT(std::chrono::steady_clock::now() - t0, std::chrono::seconds(5));
  Response res = reply.get();
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res.body(), "{\"slow\":true}");
  EXPECT_FALSE(res.keep_alive());  // told to go away
  // Nothing listens any more.
  asio::io_context ioc;
  tcp::socket s(ioc);
  beast::error_code ec;
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->port()), ec);
  EXPECT_TRUE(ec);
}

TEST_F(HttpServerTest, StopFinishesARequestStillBeingReceived) {
  StartServer();
  asio::io_context ioc;
  tcp::socket s(ioc);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->port()));
  std::string body = "{\"late\":true}";
  std::string head =
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\n\r\n";
  asio::write(s, asio::buffer(head + body.substr(0, 4)));
  std::this_thread::sleep_for(std::chrono::milliseconds(100));  // the server has the first bytes
  std::thread stopper([&] { server_->Stop(); });
  std::this_thread::sleep_for(std::chrono::milliseconds(100));
  asio::write(s, asio::buffer(body.substr(4)));
  std::string reply = ReadUntilClosed(s);
  stopper.join();
  EXPECT_EQ(reply.rfind("HTTP/1.1 200", 0), 0u) << reply;
  EXPECT_NE(reply.find("Connection: close"), std::string::npos);
  EXPECT_NE(reply.find(body), std::string::npos);
}

// A request that reached an idle keep-alive connection's socket before the stop, but that its
// thread had not read yet, is answered: the connection was not idle any more.
TEST_F(HttpServerTest, StopAnswersARequestWaitingInAnIdleConnectionsSocket) {
  StartServer();
  // Connections alternate between the 2 threads: `idle` and `busy` share one.
  Client idle(server_->port());
  ASSERT_EQ(idle.Send(http::verb::post, "/echo", "{\"first\":1}").result_int(), 200u);
  Client other(server_->port());
  Client busy(server_->port());
  auto blocked =
      std::async(std::launch::async, [&] { return busy.Send(http::verb::post, "/block"); });
  block_started_.get_future().wait();
  // The thread is held: this request waits in the socket, unread, while the stop begins.
  std::string body = "{\"second\":2}";
  std::string request =
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: " + std::to_string(body.size()) +
      "\r\n\r\n" + body;
  asio::write(idle.stream.socket(), asio::buffer(request));
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  std::thread stopper([&] { server_->Stop(); });
  std::string reply = ReadUntilClosed(idle.stream.socket());
  stopper.join();
  EXPECT_EQ(blocked.get().result_int(), 200u);
  EXPECT_EQ(reply.rfind("HTTP/1.1 200", 0), 0u) << reply;
  EXPECT_NE(reply.find("Connection: close"), std::string::npos) << reply;
  EXPECT_NE(reply.find(body), std::string::npos) << reply;
}

// A target in absolute form, as sent to a proxy, is its path and query.
TEST_F(HttpServerTest, AbsoluteFormTargetsAreTheirPath) {
  StartServer();
  asio::io_context ioc;
  tcp::socket s(ioc);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->port()));
  asio::write(s, asio::buffer(std::string("GET HTTP://localhost:8080/ip?x=1 HTTP/1.1\r\n"
                                          "Host: localhost\r\nConnection: close\r\n\r\n")));
  std::string reply = ReadUntilClosed(s);
  EXPECT_EQ(reply.rfind("HTTP/1.1 200", 0), 0u) << reply;
  EXPECT_NE(reply.find("127.0.0.1"), std::string::npos) << reply;
}

// A client that sends `Expect: 100-continue` holds its body back until the interim answer.
TEST_F(HttpServerTest, ExpectContinueGetsTheInterimAnswerBeforeTheBody) {
  StartServer();
  asio::io_context ioc;
  tcp::socket s(ioc);
  s.connect(tcp::endpoint(asio::ip::make_address("127.0.0.1"), server_->port()));
  const std::string body = "{\"held\":true}";
  asio::write(s, asio::buffer("POST /echo HTTP/1.1\r\nHost: x\r\nExpect: 100-Continue\r\n"
                              "Content-Length: " +
                              std::to_string(body.size()) + "\r\n\r\n"));
  std::string interim;
  while (interim.find("\r\n\r\n") == std::string::npos) {
    char buf[256];
    interim.append(buf, s.read_some(asio::buffer(buf)));
  }
  EXPECT_EQ(interim, "HTTP/1.1 100 Continue\r\n\r\n");
  asio::write(s, asio::buffer(body));
  beast::flat_buffer buffer;
  Response res;
  http::read(s, buffer, res);
  EXPECT_EQ(res.result_int(), 200);
  EXPECT_EQ(res.body(), body);
  // The connection stays in step: a request without Expect on it gets no interim answer.
  Request plain{http::verb::post, "/echo", 11};
  plain.set(http::field::host, "x");
  plain.body() = "{\"plain\":true}";
  plain.prepare_payload();
  http::write(s, plain);
  Response second;
  http::read(s, buffer, second);
  EXPECT_EQ(second.result_int(), 200);
  EXPECT_EQ(second.body(), plain.body());
}

TEST_F(HttpServerTest, ErrorResponseCarriesRetryAfterWhenOverloaded) {
  Response res = ErrorResponse(MakeError(absl::StatusCode::kUnavailable, "overloaded", "later"));
  EXPECT_EQ(res.result_int(), 503u);
  EXPECT_EQ(res[http::field::retry_after], "1");
  EXPECT_EQ(res.body(), R"({"error":{"code":"overloaded","message":"later"}})");
}

TEST_F(HttpServerTest, AddressInUseIsAClearError) {
  StartServer();
  ServerOptions o;
  o.host = "127.0.0.1";
  o.port = server_->port();
  HttpServer second(o, Router(), &metrics_);
  absl::Status s = second.Start();
  EXPECT_EQ(ErrorCodeOf(s), "listen_failed");
}

}  // namespace
}  // namespace whisperer::net

namespace whisperer::net {
namespace {

TEST(Router, PatternsCaptureSegmentsAndExactPathsWin) {
  Router router;
  int hit = 0;
  auto handler = [&hit](int n) { return [&hit, n](RequestContext&, Responder) { hit = n; }; };
  router.Add(http::verb::get, "/v1/profiles/lookup", handler(1));
  router.Add(http::verb::get, "/v1/profiles/{id}", handler(2));
  router.Add(http::verb::delete_, "/v1/profiles/{id}", handler(3));
  router.Add(http::verb::get, "/v1/profiles/{id}/events", handler(4));

  Router::Match m = router.Find(http::verb::get, "/v1/profiles/lookup");
  ASSERT_NE(m.handler, nullptr);
  EXPECT_EQ(*m.route, "/v1/profiles/lookup");
  EXPECT_TRUE(m.params.empty());

  m = router.Find(http::verb::get, "/v1/profiles/prf_1f/events");
  ASSERT_NE(m.handler, nullptr);
  EXPECT_EQ(*m.route, "/v1/profiles/{id}/events");
  EXPECT_EQ(m.params, std::vector<std::string>{"prf_1f"});

  m = router.Find(http::verb::delete_, "/v1/profiles/prf_2");
  ASSERT_NE(m.handler, nullptr);
  EXPECT_EQ(m.params, std::vector<std::string>{"prf_2"});

  m = router.Find(http::verb::post, "/v1/profiles/prf_2");
  EXPECT_TRUE(m.path_known);
  EXPECT_EQ(m.handler, nullptr);  // 405

  EXPECT_FALSE(router.Find(http::verb::get, "/v1/profiles/").path_known);  // empty segment
  EXPECT_FALSE(router.Find(http::verb::get, "/v1/profiles/a/b").path_known);
  EXPECT_FALSE(router.Find(http::verb::get, "/v1/profiles/a/events/x").path_known);
  EXPECT_FALSE(router.Find(http::verb::get, "").path_known);
}

TEST(Router, EachMethodHasItsQueryParametersAndHeadTakesGets) {
  Router router;
  auto nothing = [](RequestContext&, Responder) {};
  router.Add(http::verb::get, "/v1/items/{id}", nothing, {"fields"});
  router.Add(http::verb::delete_, "/v1/items/{id}", nothing, {"suppress"});
  router.Add(http::verb::put, "/v1/items/{id}", nothing);
  router.Add(http::verb::post, "/v1/track", nothing, QueryParams::Any());

  auto names = [&](http::verb verb, std::string_view path) {
    Router::Match m = router.Find(verb, path);
    EXPECT_NE(m.query, nullptr) << path;
    return m.query ? m.query->names : std::vector<std::string>{"(no match)"};
  };
  EXPECT_EQ(names(http::verb::get, "/v1/items/1"), std::vector<std::string>{"fields"});
  EXPECT_EQ(names(http::verb::head, "/v1/items/1"), std::vector<std::string>{"fields"});
  EXPECT_EQ(names(http::verb::delete_, "/v1/items/1"), std::vector<std::string>{"suppress"});
  EXPECT_TRUE(names(http::verb::put, "/v1/items/1").empty());
  EXPECT_FALSE(router.Find(http::verb::put, "/v1/items/1").query->any);
  EXPECT_TRUE(router.Find(http::verb::post, "/v1/track").query->any);
  EXPECT_EQ(router.Find(http::verb::post, "/v1/items/1").query, nullptr);  // 405: no handler
}

TEST(Router, GuardTheRestSkipsGuardedAndOpenPaths) {
  Router router;
  auto nothing = [](RequestContext&, Responder) {};
  router.Add(http::verb::get, "/healthz", nothing);
  router.Add(http::verb::get, "/v1/items/{id}", nothing);
  router.Add(http::verb::post, "/v1/track", nothing);
  router.Add(http::verb::get, "/v1/events", nothing);
  auto refusing = [](std::string_view code) {
    return RouteGuard{[code](const Request&) { return InvalidInput(code, "no"); }, nullptr};
  };
  router.Guard("/v1/track", refusing("write"));
  router.GuardTheRest(refusing("admin"), {"/healthz"});
  auto guard_of = [&](http::verb method, std::string_view path) -> std::string {
    Router::Match m = router.Find(method, path);
    return m.guard ? ErrorCodeOf(m.guard->check(Request{})) : "none";
  };
  EXPECT_EQ(guard_of(http::verb::get, "/healthz"), "none");
  EXPECT_EQ(guard_of(http::verb::get, "/v1/items/a"), "admin");
  EXPECT_EQ(guard_of(http::verb::post, "/v1/track"), "write");
  EXPECT_EQ(guard_of(http::verb::get, "/v1/events"), "admin");
}

}  // namespace
}  // namespace whisperer::net
