// Metrics in the Prometheus text exposition format (version 0.0.4), served at /metrics.
//
// A Registry owns metric families by name; each family holds one series per label set.
// Counters and histograms are lock-free to update: hot paths look a series up once and keep
// the reference (references stay valid for the registry's lifetime). Gauges are read from a
// callback at scrape time.
//
// Metric names and labels are documented where they are registered (server/server.cc,
// shard/shard_set.cc, net/http_server.cc) and listed in README.md ("Operations").
//
// Thread-safety: every method may be called from any thread.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace whisperer::obs {

using Labels = std::vector<std::pair<std::string, std::string>>;

class Counter {
 public:
  void Inc(uint64_t n = 1) { value_.fetch_add(n, std::memory_order_relaxed); }
  uint64_t value() const { return value_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> value_{0};
};

class Histogram {
 public:
  // `bounds` are the upper bounds of the buckets, increasing; +Inf is implied.
  explicit Histogram(std::vector<double> bounds);
  void Observe(double value);
  uint64_t count() const { return count_.load(std::memory_order_relaxed); }
  double sum() const { return sum_.load(std::memory_order_relaxed); }
  const std::vector<double>& bounds() const { return bounds_; }
  // Cumulative count of observations <= bounds()[i].
  uint64_t CumulativeCount(size_t i) const;

 private:
  std::vector<double> bounds_;
  std::unique_ptr<std::atomic<uint64_t>[]> buckets_;  // non-cumulative, one per bound
  std::atomic<uint64_t> count_{0};
  std::atomic<double> sum_{0};
};

// Latency buckets in seconds, 50 µs to 10 s.
const std::vector<double>& LatencyBuckets();

class Registry {
 public:
  Counter& GetCounter(std::string_view name, std::string_view help, const Labels& labels = {});
  Histogram& GetHistogram(std::string_view name, std::string_view help, const Labels& labels,
                          const std::vector<double>& bounds);
  void AddGauge(std::string_view name, std::string_view help, std::function<double()> read);

  std::string Render() const;

 private:
  enum class Kind { kCounter, kHistogram, kGauge };
  struct Family {
    Kind kind;
    std::string help;
    std::map<std::string, std::unique_ptr<Counter>> counters;      // by rendered label set
    std::map<std::string, std::unique_ptr<Histogram>> histograms;  // by rendered label set
    std::function<double()> gauge;
  };
  Family& FamilyFor(std::string_view name, std::string_view help, Kind kind);

  mutable std::mutex mu_;
  std::map<std::string, Family, std::less<>> families_;
};

}  // namespace whisperer::obs
