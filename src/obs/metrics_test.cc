#include "obs/metrics.h"

#include <gtest/gtest.h>

#include <thread>

namespace whisperer::obs {
namespace {

TEST(MetricsTest, CountersByLabel) {
  Registry r;
  r.GetCounter("x_total", "Things.", {{"reason", "a"}}).Inc(2);
  r.GetCounter("x_total", "Things.", {{"reason", "b\"q"}}).Inc();
  r.GetCounter("x_total", "Things.", {{"reason", "a"}}).Inc();
  EXPECT_EQ(r.Render(),
            "# HELP x_total Things.\n# TYPE x_total counter\n"
            "x_total{reason=\"a\"} 3\nx_total{reason=\"b\\\"q\"} 1\n");
}

TEST(MetricsTest, HistogramIsCumulative) {
  Registry r;
  Histogram& h = r.GetHistogram("lat_seconds", "Latency.", {{"route", "/v1/t"}}, {0.1, 1});
  h.Observe(0.05);
  h.Observe(0.5);
  h.Observe(5);
  EXPECT_EQ(r.Render(),
            "# HELP lat_seconds Latency.\n# TYPE lat_seconds histogram\n"
            "lat_seconds_bucket{route=\"/v1/t\",le=\"0.1\"} 1\n"
            "lat_seconds_bucket{route=\"/v1/t\",le=\"1\"} 2\n"
            "lat_seconds_bucket{route=\"/v1/t\",le=\"+Inf\"} 3\n"
            "lat_seconds_sum{route=\"/v1/t\"} 5.55\n"
            "lat_seconds_count{route=\"/v1/t\"} 3\n");
}

TEST(MetricsTest, GaugeReadAtRender) {
  Registry r;
  double v = 1;
  r.AddGauge("g_bytes", "Size.", [&] { return v; });
  v = 42;
  EXPECT_EQ(r.Render(), "# HELP g_bytes Size.\n# TYPE g_bytes gauge\ng_bytes 42\n");
}

TEST(MetricsTest, ConcurrentIncrements) {
  Registry r;
  Counter& c = r.GetCounter("c_total", "C.");
  Histogram& h = r.GetHistogram("h", "H.", {}, {1});
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i) {
        c.Inc();
        h.Observe(0.5);
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(c.value(), 40000u);
  EXPECT_EQ(h.count(), 40000u);
  EXPECT_DOUBLE_EQ(h.sum(), 20000);
}

}  // namespace
}  // namespace whisperer::obs
