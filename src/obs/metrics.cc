#include "obs/metrics.h"

#include <cassert>
#include <charconv>

#include "common/strings.h"

namespace whisperer::obs {
namespace {

std::string EscapeLabelValue(std::string_view v) {
  std::string out;
  for (char c : v) {
    if (c == '\\')
      out += "\\\\";
    else if (c == '"')
      out += "\\\"";
    else if (c == '\n')
      out += "\\n";
    else
      out += c;
  }
  return out;
}

// `{a="x",b="y"}` or "" for no labels; `extra` is appended (used for `le`).
std::string RenderLabels(const Labels& labels, std::string_view extra = {}) {
  if (labels.empty() && extra.empty()) return "";
  std::string out = "{";
  for (size_t i = 0; i < labels.size(); ++i) {
    if (i) out += ',';
    StrAppend(&out, labels[i].first, "=\"", EscapeLabelValue(labels[i].second), "\"");
  }
  if (!extra.empty()) {
    if (!labels.empty()) out += ',';
    out += extra;
  }
  out += '}';
  return out;
}

std::string FormatDouble(double v) {
  if (v == std::numeric_limits<double>::infinity()) return "+Inf";
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), v);
  return std::string(buf, end);
}

// Inserts `le` into an already rendered label set.
std::string WithLe(const std::string& rendered, std::string_view le) {
  std::string extra = StrCat("le=\"", le, "\"");
  if (rendered.empty()) return StrCat("{", extra, "}");
  return StrCat(rendered.substr(0, rendered.size() - 1), ",", extra, "}");
}

}  // namespace

Histogram::Histogram(std::vector<double> bounds)
    : bounds_(std::move(bounds)), buckets_(new std::atomic<uint64_t>[bounds_.size()]) {
  for (size_t i = 0; i < bounds_.size(); ++i) buckets_[i].store(0);
}

void Histogram::Observe(double value) {
  for (size_t i = 0; i < bounds_.size(); ++i) {
    if (value <= bounds_[i]) {
      buckets_[i].fetch_add(1, std::memory_order_relaxed);
      break;
    }
  }
  count_.fetch_add(1, std::memory_order_relaxed);
  double old = sum_.load(std::memory_order_relaxed);
  while (!sum_.compare_exchange_weak(old, old + value, std::memory_order_relaxed)) {
  }
}

uint64_t Histogram::CumulativeCount(size_t i) const {
  uint64_t total = 0;
  for (size_t j = 0; j <= i; ++j) total += buckets_[j].load(std::memory_order_relaxed);
  return total;
}

const std::vector<double>& LatencyBuckets() {
  static const std::vector<double> kBuckets = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                                               0.005,   0.01,   0.025,   0.05,   0.1,   0.25,
                                               0.5,     1,      2.5,     5,      10};
  return kBuckets;
}

Registry::Family& Registry::FamilyFor(std::string_view name, std::string_view help, Kind kind) {
  auto it = families_.find(name);
  if (it == families_.end()) {
    it = families_.emplace(std::string(name), Family{kind, std::string(help), {}, {}, {}}).first;
  }
  assert(it->second.kind == kind && "one metric name, one type");
  return it->second;
}

Counter& Registry::GetCounter(std::string_view name, std::string_view help, const Labels& labels) {
  std::lock_guard lock(mu_);
  auto& slot = FamilyFor(name, help, Kind::kCounter).counters[RenderLabels(labels)];
  if (!slot) slot = std::make_unique<Counter>();
  return *slot;
}

Histogram& Registry::GetHistogram(std::string_view name, std::string_view help,
                                  const Labels& labels, const std::vector<double>& bounds) {
  std::lock_guard lock(mu_);
  auto& slot = FamilyFor(name, help, Kind::kHistogram).histograms[RenderLabels(labels)];
  if (!slot) slot = std::make_unique<Histogram>(bounds);
  return *slot;
}

void Registry::AddGauge(std::string_view name, std::string_view help,
                        std::function<double()> read) {
  std::lock_guard lock(mu_);
  FamilyFor(name, help, Kind::kGauge).gauge = std::move(read);
}

std::string Registry::Render() const {
  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& [name, family] : families_) {
    static constexpr std::string_view kTypes[] = {"counter", "histogram", "gauge"};
    StrAppend(&out, "# HELP ", name, " ", family.help, "\n# TYPE ", name, " ",
              kTypes[static_cast<int>(family.kind)], "\n");
    switch (family.kind) {
      case Kind::kCounter:
        for (const auto& [labels, c] : family.counters) {
          StrAppend(&out, name, labels, " ", c->value(), "\n");
        }
        break;
      case Kind::kHistogram:
        for (const auto& [labels, h] : family.histograms) {
          for (size_t i = 0; i < h->bounds().size(); ++i) {
            StrAppend(&out, name, "_bucket", WithLe(labels, FormatDouble(h->bounds()[i])), " ",
                      h->CumulativeCount(i), "\n");
          }
          uint64_t count = h->count();
          StrAppend(&out, name, "_bucket", WithLe(labels, "+Inf"), " ", count, "\n");
          StrAppend(&out, name, "_sum", labels, " ", FormatDouble(h->sum()), "\n");
          StrAppend(&out, name, "_count", labels, " ", count, "\n");
        }
        break;
      case Kind::kGauge:
        StrAppend(&out, name, " ", FormatDouble(family.gauge ? family.gauge() : 0), "\n");
        break;
    }
  }
  return out;
}

}  // namespace whisperer::obs
