// Google Benchmark of the decision path, run by bench/run.sh (make bench) into BENCHMARKS.md.
//
//   BM_BanditUpdate/50  one reward learned by a decision point's bandit with 50 active features
//                       (the target: <= 2 us; Vowpal Wabbit publishes ~1.3 us per
//                       contextual-bandit learn with few features)
//   BM_Decide/50/3      one decision in process (decide::Decide: filters, scores, arbitration,
//                       probabilities, confidence) among 50 candidate actions for 3 slots, for a
//                       realistic profile, with a bandit that has learned (target: >= 50,000
//                       decisions/s per core); p50_us and p99_us are counters
//   BM_Decide/50/3 on a fresh bandit is BM_DecideUntrained: every candidate is equally unknown,
//                       the hardest case for the probabilities
#include <algorithm>
#include <chrono>
#include <random>
#include <string>
#include <vector>

#include "benchmark/benchmark.h"
#include "common/strings.h"
#include "config/config.h"
#include "decide/catalog.h"
#include "decide/decider.h"
#include "learn/bandit.h"
#include "state/conditions.h"
#include "state/models.h"

namespace {

using whisperer::learn::Feature;

std::vector<Feature> RandomFeatures(std::mt19937& rng, int active, int bits) {
  std::vector<Feature> f;
  for (int k = 0; k < active; ++k) {
    f.push_back({static_cast<uint32_t>(rng() % (1u << bits)), k % 3 == 0 ? 0.37f : 1.0f});
  }
  return f;
}

void BM_BanditUpdate(benchmark::State& state) {
  whisperer::learn::LinearPosterior posterior({});
  std::mt19937 rng(42);
  std::vector<std::vector<Feature>> examples;
  for (int i = 0; i < 4096; ++i) {
    examples.push_back(RandomFeatures(rng, static_cast<int>(state.range(0)), 16));
  }
  size_t i = 0;
  for (auto _ : state) {
    posterior.Update(examples[i], (i % 7 == 0) ? 1.0 : 0.0);
    i = (i + 1) & 4095;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK(BM_BanditUpdate)->Arg(50);

// A catalog of `actions` actions, one decision point over all of them; half have an
// eligibility condition, a third a consent purpose, every one two treatments.
std::shared_ptr<const whisperer::decide::Catalog> MakeCatalog(int actions) {
  std::string yaml = "workspaces:\n  - name: bench\n    decisions:\n      actions:\n";
  for (int a = 0; a < actions; ++a) {
    yaml += whisperer::StrCat(
        "        - id: action_", a, "\n          issue: issue_", a % 5, "\n          group: g_",
        a % 10, "\n          value: ", 1 + a % 7, "\n",
        a % 2 == 0 ? "          eligibility: \"profile.events > 1\"\n" : "",
        a % 3 == 0 ? "          consent: marketing_email\n" : "",
        "          weights: [{when: \"profile.sessions.count > 3\", weight: 1.2}]\n",
        "          treatments: [{id: t_", a, "_web, channel: web}, {id: t_", a,
        "_mail, channel: email}]\n");
  }
  yaml +=
      "      decision_points:\n        - id: home\n          issues: [issue_0, issue_1, "
      "issue_2, issue_3, issue_4]\n";
  absl::StatusOr<whisperer::config::Config> c = whisperer::config::ParseConfig(yaml, "bench");
  if (!c.ok()) std::abort();
  auto catalog = whisperer::decide::CompileCatalog(c->workspaces[0].decisions);
  if (!catalog.ok()) std::abort();
  return *catalog;
}

whisperer::state::Profile MakeProfile(size_t i, int64_t now) {
  whisperer::state::Profile p;
  p.id = i + 1;
  p.seen = {now - 86'400'000LL * 30, now, 40};
  p.sessions.count = 6;
  p.sessions.views = 30;
  p.sessions.current_events = 3;
  p.orders = i % 3;
  p.revenue = 40.0 * static_cast<double>(p.orders);
  p.persona.id = i % 2 ? "bargain_hunter" : "researcher";
  const char* names[] = {"Page Viewed", "Product Viewed", "Product Added", "Checkout Started",
                         "Order Completed"};
  for (int k = 0; k < 5; ++k) p.event_counts[names[k]] = 1 + (i + k) % 7;
  p.consent["marketing_email"] = {i % 2 == 0, now, "api"};
  return p;
}

void RunDecide(benchmark::State& state, bool trained) {
  const int actions = static_cast<int>(state.range(0));
  const size_t slots = static_cast<size_t>(state.range(1));
  auto catalog = MakeCatalog(actions);
  const whisperer::decide::DecisionPoint* point = catalog->Point("home");
  whisperer::learn::LinearPosterior posterior(catalog->settings.posterior);
  const int64_t now = 1'700'000'000'000;
  whisperer::state::ModelSettings feature_settings;
  std::vector<whisperer::state::Profile> profiles;
  for (size_t i = 0; i < 200; ++i) profiles.push_back(MakeProfile(i, now));
  std::mt19937_64 rng(7);
  if (trained) {  // 20,000 rewards, each action paying its own rate
    whisperer::learn::FeatureBuilder b(catalog->settings.posterior.bits);
    std::vector<Feature> crossed;
    for (int n = 0; n < 20'000; ++n) {
      whisperer::state::ProfileFeatures(profiles[n % profiles.size()], now, feature_settings, &b);
      const auto& a = catalog->actions[static_cast<size_t>(n) % catalog->actions.size()];
      whisperer::learn::CrossWithAction(b.features(), a.hash, catalog->settings.posterior.bits,
                                        &crossed);
      posterior.Update(crossed, (rng() % 100) < (5 + a.hash % 30) ? 1.0 : 0.0);
    }
  }
  simdjson::dom::parser parser;
  simdjson::dom::element body = parser.parse(std::string_view("{}"));
  whisperer::state::EventFacts facts;
  facts.type = whisperer::api::EventType::kPage;
  std::vector<double> micros;
  micros.reserve(1 << 20);
  size_t i = 0;
  for (auto _ : state) {
    const whisperer::state::Profile& profile = profiles[i % profiles.size()];
    auto start = std::chrono::steady_clock::now();
    whisperer::learn::FeatureBuilder features(catalog->settings.posterior.bits, true);
    whisperer::state::ProfileFeatures(profile, now, feature_settings, &features);
    whisperer::state::EventBindings bindings(facts, body, profile, nullptr, now);
    whisperer::decide::DecideInput in;
    in.catalog = catalog.get();
    in.point = point;
    in.slots = slots;
    in.bindings = &bindings;
    in.profile = &profile;
    in.now_ms = now;
    in.features = features.features();
    in.feature_names = features.names();
    in.customer_hash = 999'999'999;  // not in the control group
    whisperer::decide::Decision d = whisperer::decide::Decide(in, posterior, rng);
    benchmark::DoNotOptimize(d);
    auto elapsed = std::chrono::steady_clock::now() - start;
    double us = std::chrono::duration<double, std::micro>(elapsed).count();
    state.SetIterationTime(us / 1e6);
    if (micros.size() < micros.capacity()) micros.push_back(us);
    ++i;
  }
  std::sort(micros.begin(), micros.end());
  if (!micros.empty()) {
    state.counters["p50_us"] = micros[micros.size() / 2];
    state.counters["p99_us"] = micros[micros.size() * 99 / 100];
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_Decide(benchmark::State& state) { RunDecide(state, true); }
BENCHMARK(BM_Decide)->Args({50, 3})->UseManualTime();

void BM_DecideUntrained(benchmark::State& state) { RunDecide(state, false); }
BENCHMARK(BM_DecideUntrained)->Args({50, 3})->UseManualTime();

}  // namespace

BENCHMARK_MAIN();
