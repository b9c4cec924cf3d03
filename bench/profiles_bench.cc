// Google Benchmark of the profile work per event, in process, run by bench/run.sh (make bench)
// into BENCHMARKS.md: what the shard thread spends per event beyond storing it, measured
// without HTTP, the load generator or a second core's noise.
//
//   BM_ResolveAndFold  ProfileEngine::Apply for every event of a group and Finish (the shard
//                      thread's share), groups of 1,139 events (the size bench/ingest_load's
//                      batches arrive in), 2 events per customer as in the bench's profile run
//   BM_ResolveFoldAndWrite  the same plus Store::Write of the group's batch with its events
//                      (the writer thread's share added)
//
// The events have the shapes bench/ingest_load sends (product views, pages, identifies with an
// anonymousId, a userId and an email), stored form, built before the timing starts.
#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "common/clock.h"
#include "obs/metrics.h"
#include "state/profiles.h"
#include "storage/keys.h"
#include "storage/store.h"
#include "testing/temp_dir.h"

namespace {

constexpr size_t kGroup = 1139;
constexpr uint64_t kCustomers = 200'000;
constexpr uint64_t kEvents = 2 * kCustomers;

std::string MakeEvent(uint64_t i) {
  const uint64_t customer = i % kCustomers;
  const int sku = static_cast<int>(i * 104729 % 20'000);
  char buf[1024];
  int n = 0;
  switch (i % 4) {
    case 0:
    case 1:
      n = std::snprintf(
          buf, sizeof(buf),
          R"({"type":"track","event":"Product Viewed","messageId":"m%llu",)"
          R"("anonymousId":"anon-%07llu","userId":"user-%07llu","properties":{"product_id":"sku-%05d",)"
          R"("category":"Shoes","name":"Trail Runner","price":89.99,"currency":"USD"},)"
          R"("context":{"library":{"name":"analytics.js","version":"5.2.0"},)"
          R"("page":{"path":"/p/sku-%05d","referrer":"https://www.google.com/"},"locale":"en-US"},)"
          R"("timestamp":"2024-06-01T12:00:00.123Z","receivedAt":"2024-06-01T12:00:00.200Z"})",
          static_cast<unsigned long long>(i), static_cast<unsigned long long>(customer),
          static_cast<unsigned long long>(customer), sku, sku);
      break;
    case 2:
      n = std::snprintf(
          buf, sizeof(buf),
          R"({"type":"page","name":"Product","messageId":"m%llu","anonymousId":"anon-%07llu",)"
          R"("properties":{"path":"/p/sku-%05d","title":"Trail Runner",)"
          R"("url":"https://shop.example.com/p/sku-%05d","referrer":"https://www.google.com/"},)"
          R"("context":{"library":{"name":"analytics.js","version":"5.2.0"},"locale":"en-US",)"
          R"("campaign":{"source":"google","medium":"cpc"}},)"
          R"("timestamp":"2024-06-01T12:00:00.456Z","receivedAt":"2024-06-01T12:00:00.500Z"})",
          static_cast<unsigned long long>(i), static_cast<unsigned long long>(customer), sku, sku);
      break;
    default:
      n = std::snprintf(
          buf, sizeof(buf),
          R"({"type":"identify","messageId":"m%llu","userId":"user-%07llu",)"
          R"("anonymousId":"anon-%07llu","traits":{"email":"user%07llu@example.com","plan":"pro",)"
          R"("firstName":"Ada","lastName":"Lovelace","createdAt":"2023-11-05T09:30:00.000Z",)"
          R"("company":{"name":"Example Inc","employees":250}},"context":{"library":)"
          R"({"name":"analytics-node","version":"3.1.0"}},)"
          R"("timestamp":"2024-06-01T12:00:01.000Z","receivedAt":"2024-06-01T12:00:01.100Z"})",
          static_cast<unsigned long long>(i), static_cast<unsigned long long>(customer),
          static_cast<unsigned long long>(customer), static_cast<unsigned long long>(customer));
      break;
  }
  return std::string(buf, static_cast<size_t>(n));
}

const std::vector<std::string>& Events() {
  static const std::vector<std::string> events = [] {
    std::vector<std::string> out;
    out.reserve(kEvents);
    for (uint64_t i = 0; i < kEvents; ++i) out.push_back(MakeEvent(i));
    return out;
  }();
  return events;
}

void Run(benchmark::State& state, bool write) {
  const std::vector<std::string>& events = Events();
  whisperer::testing::TempDir dir;
  whisperer::storage::Store::Options options;
  options.path = dir.str();
  std::unique_ptr<whisperer::storage::Store> store = *whisperer::storage::Store::Open(options);
  whisperer::obs::Registry metrics;
  whisperer::state::ProfileEngine engine(store.get(), &whisperer::SystemClock::Get(), &metrics);
  if (!engine.Start().ok()) {
    state.SkipWithError("engine did not start");
    return;
  }
  uint64_t next = 0;
  size_t applied = 0;
  for (auto _ : state) {
    rocksdb::WriteBatch batch;
    for (size_t k = 0; k < kGroup; ++k, ++next) {
      const std::string& json = events[next % kEvents];
      const uint64_t sequence = next + 1;
      if (write) {
        (void)batch.Put(store->events(), whisperer::storage::EventKey(1, sequence), json);
      }
      if (!engine.Apply(1, sequence, json, &batch).ok()) {
        state.SkipWithError("an event was not applied");
        return;
      }
    }
    if (!engine.Finish(&batch).ok() || (write && !store->Write(&batch).ok())) {
      state.SkipWithError("the group was not finished");
      return;
    }
    applied += kGroup;
  }
  state.SetItemsProcessed(static_cast<int64_t>(applied));
}

// Each runs the first 2 x 200,000 events once (every customer created, then seen again).
void BM_ResolveAndFold(benchmark::State& state) { Run(state, /*write=*/false); }
void BM_ResolveFoldAndWrite(benchmark::State& state) { Run(state, /*write=*/true); }
BENCHMARK(BM_ResolveAndFold)->Iterations(kEvents / kGroup)->Unit(benchmark::kMillisecond);
BENCHMARK(BM_ResolveFoldAndWrite)->Iterations(kEvents / kGroup)->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
