#include "server/collect_service.h"

#include <gtest/gtest.h>

#include <future>

#include "common/strings.h"
#include "simdjson.h"
#include "testing/temp_dir.h"

namespace whisperer::server {
namespace {

namespace http = net::http;

// The string at JSON `pointer` in `doc`, or "<missing>". Error-code lookups only: chaining
// .value() on simdjson temporaries dangles.
std::string Str(simdjson::dom::element doc, std::string_view pointer) {
  std::string_view v;
  if (doc.at_pointer(pointer).get_string().get(v)) return "<missing>";
  return std::string(v);
}

size_t Count(simdjson::dom::element doc, std::string_view pointer) {
  simdjson::dom::array a;
  if (doc.at_pointer(pointer).get_array().get(a)) return 0;
  return a.size();
}

class CollectServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    storage::Store::Options o;
    o.path = dir_.str();
    o.clock = &clock_;
    store_ = *storage::Store::Open(o);
    ASSERT_TRUE(keys_.Add("wk", {1, "default", api::Role::kWrite}).ok());
    ASSERT_TRUE(keys_.Add("ak", {1, "default", api::Role::kAdmin}).ok());
    shards_ = std::make_unique<shard::ShardSet>(store_.get(), &clock_, &metrics_,
                                                shard::ShardSet::Options{.num_shards = 2});
    ASSERT_TRUE(shards_->Start().ok());
    service_ = std::make_unique<CollectService>(&keys_, shards_.get(), store_.get(), api::Limits{},
                                                &clock_, &metrics_);
    service_->Register(&router_);
  }

  net::Response Call(http::verb verb, std::string target, std::string body,
                     std::string authorization = "Basic " + Base64Encode("wk:")) {
    net::Request req{verb, target, 11};
    if (!authorization.empty()) req.set(http::field::authorization, authorization);
    req.set(http::field::user_agent, "test-agent");
    req.body() = std::move(body);
    net::RequestContext ctx{req, "192.0.2.1"};
    auto match = router_.Find(verb, target.substr(0, target.find('?')));
    EXPECT_NE(match.handler, nullptr) << target;
    std::promise<net::Response> promise;
    (*match.handler)(ctx, [&](net::Response res) { promise.set_value(std::move(res)); });
    return promise.get_future().get();
  }

  testing::TempDir dir_;
  ManualClock clock_{1'717'243'200'000};
  obs::Registry metrics_;
  std::unique_ptr<storage::Store> store_;
  api::KeyRing keys_;
  std::unique_ptr<shard::ShardSet> shards_;
  std::unique_ptr<CollectService> service_;
  net::Router router_;
};

TEST_F(CollectServiceTest, SingleEventStoredAndReadBack) {
  net::Response res =
      Call(http::verb::post, "/v1/track", R"({"userId":"u1","event":"Bought","messageId":"m1"})");
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(res.body(), R"({"success":true})");
  res = Call(http::verb::get, "/v1/events", "", "Bearer ak");
  ASSERT_EQ(res.result_int(), 200u);
  simdjson::dom::parser p;
  simdjson::dom::element doc;
  ASSERT_FALSE(p.parse(res.body()).get(doc));
  ASSERT_EQ(Count(doc, "/events"), 1u);
  EXPECT_EQ(Str(doc, "/events/0/event"), "Bought");
  EXPECT_EQ(Str(doc, "/events/0/context/ip"), "192.0.2.1");
  EXPECT_EQ(Str(doc, "/events/0/context/userAgent"), "test-agent");
  EXPECT_EQ(Str(doc, "/nextCursor"), "1");
  simdjson::dom::element more;
  ASSERT_FALSE(doc.at_pointer("/hasMore").get(more));
  EXPECT_FALSE(bool(more));
}

TEST_F(CollectServiceTest, WriteKeyInBodyAndAuthFailures) {
  EXPECT_EQ(
      Call(http::verb::post, "/v1/identify", R"({"userId":"u","writeKey":"wk"})", "").result_int(),
      200u);
  EXPECT_EQ(Call(http::verb::post, "/v1/identify", R"({"userId":"u"})", "").result_int(), 401u);
  EXPECT_EQ(Call(http::verb::post, "/v1/identify", R"({"userId":"u","writeKey":"nope"})", "")
                .result_int(),
            401u);
  EXPECT_EQ(
      Call(http::verb::post, "/v1/identify", R"({"userId":"u"})", "Basic " + Base64Encode("bad:"))
          .result_int(),
      401u);
  EXPECT_EQ(Call(http::verb::get, "/v1/events", "", "Bearer wk").result_int(), 403u);
  EXPECT_EQ(Call(http::verb::get, "/v1/events", "", "").result_int(), 401u);
}

TEST_F(CollectServiceTest, BatchReportsRejectionsAndDuplicates) {
  std::string body = R"({"batch":[
      {"type":"track","userId":"u","event":"a","messageId":"b1"},
      {"type":"track","userId":"u"},
      {"type":"page","anonymousId":"x","messageId":"b2"}]})";
  net::Response res = Call(http::verb::post, "/v1/batch", body);
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_EQ(
      res.body(),
      R"({"success":true,"accepted":2,"duplicates":0,"rejected":[{"index":1,"code":"missing_field","message":"track needs an event name","field":"batch[1].event"}]})");
  res = Call(http::verb::post, "/v1/import", body);
  EXPECT_EQ(res.result_int(), 200u);
  EXPECT_NE(res.body().find(R"("accepted":2,"duplicates":2)"), std::string::npos) << res.body();
  EXPECT_NE(metrics_.Render().find(R"(whisperer_events_rejected_total{reason="missing_field"} 2)"),
            std::string::npos);
  EXPECT_NE(metrics_.Render().find("whisperer_events_ingested_total 2"), std::string::npos);
}

TEST_F(CollectServiceTest, BatchWithNothingValidIs400WithTheList) {
  net::Response res = Call(http::verb::post, "/v1/batch", R"({"batch":[{"type":"track"},{}]})");
  EXPECT_EQ(res.result_int(), 400u);
  simdjson::dom::parser p;
  simdjson::dom::element doc;
  ASSERT_FALSE(p.parse(res.body()).get(doc));
  EXPECT_EQ(Str(doc, "/error/code"), "no_valid_events");
  EXPECT_EQ(Count(doc, "/rejected"), 2u);
}

TEST_F(CollectServiceTest, BadInputIsAClearError) {
  net::Response res =
      Call(http::verb::post, "/v1/track", R"({"userId":"u","event":"e","timestamp":"soon"})");
  EXPECT_EQ(res.result_int(), 400u);
  EXPECT_EQ(
      res.body(),
      R"({"error":{"code":"invalid_timestamp","message":"timestamp 'soon' is not an ISO-8601 timestamp such as 2024-05-01T12:00:00.000Z","field":"timestamp"}})");
  res = Call(http::verb::post, "/v1/track",
             R"({"userId":"u","event":")" + std::string(33 * 1024, 'x') + R"("})");
  EXPECT_EQ(res.result_int(), 413u);
  EXPECT_NE(res.body().find("event_too_large"), std::string::npos) << res.body();
  // Blanks do not count: 33 KiB of them around a small event is within the limit.
  res = Call(http::verb::post, "/v1/track",
             std::string(33 * 1024, ' ') + R"({"userId":"u","event":"e"})");
  EXPECT_EQ(res.result_int(), 200u) << res.body();
}

TEST_F(CollectServiceTest, ListEventsPaginates) {
  for (int i = 0; i < 5; ++i) {
    ASSERT_EQ(Call(http::verb::post, "/v1/track",
                   R"({"userId":"u","event":"e)" + std::to_string(i) + "\"}")
                  .result_int(),
              200u);
  }
  std::vector<std::string> names;
  std::string cursor;
  for (int page = 0; page < 10; ++page) {
    net::Response res =
        Call(http::verb::get, "/v1/events?limit=2&cursor=" + cursor, "", "Bearer ak");
    ASSERT_EQ(res.result_int(), 200u) << res.body();
    simdjson::dom::parser p;
    simdjson::dom::element doc;
    ASSERT_FALSE(p.parse(res.body()).get(doc));
    for (size_t i = 0; i < Count(doc, "/events"); ++i) {
      names.push_back(Str(doc, "/events/" + std::to_string(i) + "/event"));
    }
    cursor = Str(doc, "/nextCursor");
    bool has_more = true;
    ASSERT_FALSE(doc.at_pointer("/hasMore").get(has_more));
    if (!has_more) break;
  }
  EXPECT_EQ(names, (std::vector<std::string>{"e0", "e1", "e2", "e3", "e4"}));
  // Polling from the last cursor returns nothing until a new event arrives, then just it.
  net::Response empty = Call(http::verb::get, "/v1/events?cursor=" + cursor, "", "Bearer ak");
  EXPECT_NE(empty.body().find(R"("events":[],"nextCursor":")" + cursor + "\""), std::string::npos)
      << empty.body();
  ASSERT_EQ(Call(http::verb::post, "/v1/track", R"({"userId":"u","event":"late"})").result_int(),
            200u);
  net::Response late = Call(http::verb::get, "/v1/events?cursor=" + cursor, "", "Bearer ak");
  EXPECT_NE(late.body().find(R"("event":"late")"), std::string::npos);
  EXPECT_EQ(late.body().find(R"("event":"e4")"), std::string::npos);
  net::Response bad = Call(http::verb::get, "/v1/events?limit=5000", "", "Bearer ak");
  EXPECT_EQ(bad.result_int(), 400u);
  EXPECT_NE(bad.body().find(R"("field":"limit")"), std::string::npos);
}

TEST_F(CollectServiceTest, StoppedShardsAnswer503) {
  shards_->Stop();
  net::Response res = Call(http::verb::post, "/v1/track", R"({"userId":"u","event":"e"})");
  EXPECT_EQ(res.result_int(), 503u);
  EXPECT_EQ(res[http::field::retry_after], "1");
}

}  // namespace
}  // namespace whisperer::server
