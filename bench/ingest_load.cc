// ingest_load: drives POST /v1/batch with realistic Segment events and reports throughput.
//
// Each sender thread owns one keep-alive connection and one batch body built once from a
// template of analytics.js-style events (~400 bytes each, batches just under the request
// limit). Before every send it writes a fresh 16-hex-digit counter into each messageId in
// place (a random-looking UUID, as the SDKs send), so every event is new to the server's
// dedupe while the client spends almost no CPU (this machine has 2 cores, shared with the
// server under test).
//
// With --customers N it also rewrites the customer number in each event's anonymousId, userId
// and email (the same seven digits), event k of the run going to customer k mod N: N distinct
// customers, each seen on one device and identified by track and identify events. Without it
// the batch's own ~1,100 customers repeat in every batch.
//
// Usage: ingest_load --port P --write-key K [--host 127.0.0.1] [--events N] [--senders S]
//                    [--batch-bytes B] [--customers N]
// Prints one JSON object: events, seconds, events_per_second, mb_per_second, avg_event_bytes,
// batches, non_200 (any non-200 answer is also reported on stderr and makes the exit code 1).
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "boost/asio/connect.hpp"
#include "boost/asio/ip/tcp.hpp"
#include "boost/beast/core.hpp"
#include "boost/beast/http.hpp"
#include "common/strings.h"
#include "event_shapes.h"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

struct Options {
  std::string host = "127.0.0.1";
  std::string port;
  std::string write_key;
  uint64_t events = 2'000'000;
  int senders = 4;
  size_t batch_bytes = 490 * 1024;
  uint64_t customers = 0;  // 0: the template's customers
};

using whisperer::bench::kCustomerMark;
using whisperer::bench::WriteCustomer;

// One event of the rotating set (bench/event_shapes.h). `id_pos` receives the offset of its
// placeholder messageId within the returned string, `customer_pos` those of its customer number.
std::string MakeEvent(uint64_t i, size_t* id_pos, std::vector<size_t>* customer_pos) {
  std::string event = whisperer::bench::EventShape(i);
  *id_pos = event.find(whisperer::bench::kMessageIdMark);
  // The template's own customer, until --customers rewrites it.
  uint64_t customer = i * 7919 % 50'000;
  for (size_t at = event.find(kCustomerMark); at != std::string::npos;
       at = event.find(kCustomerMark, at + 1)) {
    customer_pos->push_back(at);
    WriteCustomer(event.data() + at, customer);
  }
  return event;
}

struct Batch {
  std::string body;
  std::vector<size_t> id_offsets;  // where each event's 36-character messageId is
  std::vector<std::vector<size_t>> customer_offsets;  // where each event's customer number is
  size_t event_bytes = 0;  // sum of the events' sizes, without the envelope
};

Batch MakeBatch(size_t max_bytes) {
  Batch b;
  b.body = R"({"sentAt":"2024-06-01T12:00:02.000Z","batch":[)";
  for (uint64_t i = 0;; ++i) {
    size_t pos;
    std::vector<size_t> customer_pos;
    std::string e = MakeEvent(i, &pos, &customer_pos);
    if (b.body.size() + e.size() + 3 > max_bytes) break;
    if (i) b.body += ',';
    b.id_offsets.push_back(b.body.size() + pos);
    for (size_t& p : customer_pos) p += b.body.size();
    b.customer_offsets.push_back(std::move(customer_pos));
    b.event_bytes += e.size();
    b.body += e;
  }
  b.body += "]}";
  return b;
}

uint64_t SplitMix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// Writes a random-looking version-4 UUID derived from `n` (unique per n), the form the
// official SDKs use for messageId, so the server's dedupe index sees random keys as in real
// traffic rather than sorted ones.
void WriteMessageId(char* at, uint64_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  uint64_t hi = SplitMix64(n), lo = SplitMix64(n ^ 0x5851f42d4c957f2dULL);
  int digit = 0;
  for (int pos = 0; pos < 36; ++pos) {
    if (pos == 8 || pos == 13 || pos == 18 || pos == 23 || pos == 14 || pos == 19) continue;
    uint64_t word = digit < 16 ? hi : lo;
    at[pos] = kHex[(word >> (4 * (digit % 16))) & 15];
    ++digit;
  }
}

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--host")
      o.host = v;
    else if (k == "--port")
      o.port = v;
    else if (k == "--write-key")
      o.write_key = v;
    else if (k == "--events")
      o.events = std::stoull(v);
    else if (k == "--senders")
      o.senders = std::stoi(v);
    else if (k == "--batch-bytes")
      o.batch_bytes = std::stoul(v);
    else if (k == "--customers")
      o.customers = std::stoull(v);
    else {
      std::cerr << "unknown option " << k << "\n";
      return 2;
    }
  }
  if (o.customers >= 10'000'000) {
    std::cerr << "--customers must be below 10000000\n";
    return 2;
  }
  if (o.port.empty() || o.write_key.empty()) {
    std::cerr << "usage: ingest_load --port P --write-key K [--events N] [--senders S]\n";
    return 2;
  }
  const Batch templ = MakeBatch(o.batch_bytes);
  const size_t per_batch = templ.id_offsets.size();
  const uint64_t total_batches = (o.events + per_batch - 1) / per_batch;
  const std::string auth = "Basic " + whisperer::Base64Encode(o.write_key + ":");

  std::atomic<uint64_t> next_batch{0};
  std::atomic<uint64_t> non_200{0};
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int s = 0; s < o.senders; ++s) {
    threads.emplace_back([&] {
      try {
        asio::io_context ioc;
        tcp::resolver resolver(ioc);
        beast::tcp_stream stream(ioc);
        stream.connect(resolver.resolve(o.host, o.port));
        beast::flat_buffer buffer;
        http::request<http::string_body> req{http::verb::post, "/v1/batch", 11};
        req.set(http::field::host, o.host);
        req.set(http::field::content_type, "application/json");
        req.set(http::field::authorization, auth);
        req.keep_alive(true);
        req.body() = templ.body;
        for (;;) {
          uint64_t b = next_batch.fetch_add(1);
          if (b >= total_batches) break;
          for (size_t e = 0; e < per_batch; ++e) {
            uint64_t k = b * per_batch + e;
            WriteMessageId(req.body().data() + templ.id_offsets[e], k);
            if (o.customers == 0) continue;
            for (size_t at : templ.customer_offsets[e]) {
              WriteCustomer(req.body().data() + at, k % o.customers);
            }
          }
          req.prepare_payload();
          http::write(stream, req);
          http::response<http::string_body> res;
          http::read(stream, buffer, res);
          if (res.result_int() != 200) {
            if (non_200.fetch_add(1) < 5) {
              std::cerr << "HTTP " << res.result_int() << ": " << res.body().substr(0, 300) << "\n";
            }
          }
        }
      } catch (const std::exception& e) {
        std::cerr << "sender failed: " << e.what() << "\n";
        non_200.fetch_add(1);
      }
    });
  }
  for (auto& t : threads) t.join();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  uint64_t events = total_batches * per_batch;
  double avg = double(templ.event_bytes) / per_batch;
  std::printf(
      "{\"events\":%llu,\"seconds\":%.3f,\"events_per_second\":%.0f,\"mb_per_second\":%.1f,"
      "\"avg_event_bytes\":%.0f,\"events_per_batch\":%zu,\"batch_bytes\":%zu,\"batches\":%llu,"
      "\"senders\":%d,\"customers\":%llu,\"non_200\":%llu}\n",
      static_cast<unsigned long long>(events), seconds, events / seconds,
      events * avg / seconds / 1e6, avg, per_batch, templ.body.size(),
      static_cast<unsigned long long>(total_batches), o.senders,
      static_cast<unsigned long long>(o.customers),
      static_cast<unsigned long long>(non_200.load()));
  return non_200.load() == 0 ? 0 : 1;
}
