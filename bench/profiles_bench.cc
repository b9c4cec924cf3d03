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
// The events are bench/ingest_load's (bench/event_shapes.h) in their stored form, built before
// the timing starts.
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "benchmark/benchmark.h"
#include "common/clock.h"
#include "event_shapes.h"
#include "obs/metrics.h"
#include "state/profiles.h"
#include "storage/keys.h"
#include "storage/store.h"
#include "testing/temp_dir.h"

namespace {

constexpr size_t kGroup = 1139;
constexpr uint64_t kCustomers = 200'000;
constexpr uint64_t kEvents = 2 * kCustomers;

// Event i in its stored form: the shape with customer i mod kCustomers, a messageId of its own
// and the receivedAt the server adds.
std::string MakeEvent(uint64_t i) {
  std::string event = whisperer::bench::EventShape(i);
  const std::string_view mark = whisperer::bench::kCustomerMark;
  for (size_t at = event.find(mark); at != std::string::npos; at = event.find(mark, at + 1)) {
    whisperer::bench::WriteCustomer(event.data() + at, i % kCustomers);
  }
  char id[40];
  std::snprintf(id, sizeof(id), "%036llu", static_cast<unsigned long long>(i));
  event.replace(event.find(whisperer::bench::kMessageIdMark), 36, id);
  event.insert(event.size() - 1, R"(,"receivedAt":"2024-06-01T12:00:02.000Z")");
  return event;
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
