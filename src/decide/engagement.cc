#include "decide/engagement.h"

#include <algorithm>
#include <cmath>

#include "absl/time/civil_time.h"
#include "common/json_writer.h"
#include "common/strings.h"
#include "learn/bandit.h"
#include "simdjson.h"

namespace whisperer::decide {
namespace {

// Below this, a Beta parameter is taken as this: std::gamma_distribution needs alpha > 0.
constexpr double kMinBetaParameter = 1e-6;
// IANA names are at most about 30 characters ("America/Argentina/ComodRivadavia").
constexpr size_t kMaxZoneName = 64;

double SampleBeta(const BetaPosterior& p, std::mt19937_64& rng) {
  std::gamma_distribution<double> ga(p.alpha, 1.0), gb(p.beta, 1.0);
  const double x = ga(rng), y = gb(rng);
  // Both underflow to 0 only for tiny parameters: the mean is then the sensible draw.
  return x + y > 0 ? x / (x + y) : p.Mean();
}

struct Thompson {
  size_t index = 0;
  std::vector<double> means;
  std::vector<double> probabilities;
};

// One draw per posterior, the highest wins (the first of equal draws); with each one's mean and
// normal-approximation probability of winning. `posteriors` is not empty.
Thompson SampleBest(std::span<const BetaPosterior> posteriors, std::mt19937_64& rng) {
  Thompson t;
  double best = -1;
  std::vector<learn::RewardEstimate> estimates;
  estimates.reserve(posteriors.size());
  for (size_t i = 0; i < posteriors.size(); ++i) {
    const double draw = SampleBeta(posteriors[i], rng);
    if (draw > best) {
      best = draw;
      t.index = i;
    }
    t.means.push_back(posteriors[i].Mean());
    estimates.push_back({posteriors[i].Mean(), posteriors[i].Variance()});
  }
  for (size_t i = 0; i < posteriors.size(); ++i) {
    t.probabilities.push_back(learn::ProbabilityOfBest(estimates, i));
  }
  return t;
}

ChannelCounts CountsOn(const Engagement& e, std::string_view channel) {
  auto it = e.channels.find(channel);
  if (it == e.channels.end()) return {};
  return {it->second.received, std::min(it->second.engaged, it->second.received)};
}

bool ValidZoneName(std::string_view name) {
  if (name.empty() || name.size() > kMaxZoneName || name.front() == '/' || name.back() == '/') {
    return false;
  }
  if (name.find("..") != std::string_view::npos || name.find("//") != std::string_view::npos) {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '+' || c == '/';
  });
}

// The start of local civil hour `hour` in `zone`: a skipped hour starts at the transition, a
// repeated one at its first occurrence.
int64_t StartOf(absl::CivilHour hour, const absl::TimeZone& zone) {
  const absl::TimeZone::TimeInfo info = zone.At(absl::CivilSecond(hour));
  return absl::ToUnixMillis(info.kind == absl::TimeZone::TimeInfo::SKIPPED ? info.trans : info.pre);
}

int HourOfWeek(absl::CivilHour hour) {
  return static_cast<int>(absl::GetWeekday(hour)) * 24 + hour.hour();
}

// Reads [a, b] of two non-negative integers with b <= a.
bool ReadPair(simdjson::dom::element e, uint64_t* a, uint64_t* b) {
  simdjson::dom::array pair;
  if (e.get(pair) != simdjson::SUCCESS || pair.size() != 2) return false;
  return pair.at(0).get(*a) == simdjson::SUCCESS && pair.at(1).get(*b) == simdjson::SUCCESS &&
         *b <= *a;
}

}  // namespace

void Engagement::RecordDelivery(std::string_view channel) {
  auto it = channels.find(channel);
  if (it == channels.end()) it = channels.emplace(std::string(channel), ChannelCounts{}).first;
  ++it->second.received;
}

void Engagement::RecordEngagement(std::string_view channel, int64_t at_ms,
                                  const absl::TimeZone& zone) {
  auto it = channels.find(channel);
  if (it == channels.end()) it = channels.emplace(std::string(channel), ChannelCounts{}).first;
  ++it->second.engaged;
  it->second.received = std::max(it->second.received, it->second.engaged);
  RecordEngagement(at_ms, zone);
}

void Engagement::RecordEngagement(int64_t at_ms, const absl::TimeZone& zone) {
  ++hours[HourOfWeek(at_ms, zone)];
}

uint64_t Engagement::TotalHourEngagements() const {
  uint64_t total = 0;
  for (uint64_t n : hours) total += n;
  return total;
}

void Engagement::Add(const Engagement& other) {
  for (const auto& [channel, counts] : other.channels) {
    ChannelCounts& mine = channels[channel];
    mine.received += counts.received;
    mine.engaged += counts.engaged;
  }
  for (size_t h = 0; h < hours.size(); ++h) hours[h] += other.hours[h];
}

std::string Engagement::Encode() const {
  std::string out;
  JsonWriter w(&out);
  w.StartObject();
  w.Key("channels");
  w.StartObject();
  for (const auto& [channel, counts] : channels) {
    w.Key(channel);
    w.StartArray();
    w.Uint(counts.received);
    w.Uint(counts.engaged);
    w.EndArray();
  }
  w.EndObject();
  w.Key("hours");
  w.StartArray();
  for (int h = 0; h < kHoursPerWeek; ++h) {
    if (hours[h] == 0) continue;
    w.StartArray();
    w.Int(h);
    w.Uint(hours[h]);
    w.EndArray();
  }
  w.EndArray();
  w.EndObject();
  return out;
}

std::optional<Engagement> Engagement::Decode(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(json.data(), json.size()).get(doc) != simdjson::SUCCESS) return std::nullopt;
  simdjson::dom::object channels;
  simdjson::dom::array hours;
  if (doc["channels"].get(channels) != simdjson::SUCCESS ||
      doc["hours"].get(hours) != simdjson::SUCCESS) {
    return std::nullopt;
  }
  Engagement e;
  for (auto [key, value] : channels) {
    ChannelCounts c;
    if (!ReadPair(value, &c.received, &c.engaged)) return std::nullopt;
    if (!e.channels.emplace(std::string(key), c).second) return std::nullopt;  // repeated
  }
  std::array<bool, kHoursPerWeek> seen{};
  for (simdjson::dom::element entry : hours) {
    simdjson::dom::array pair;
    int64_t hour = 0;
    uint64_t count = 0;
    if (entry.get(pair) != simdjson::SUCCESS || pair.size() != 2 ||
        pair.at(0).get(hour) != simdjson::SUCCESS || pair.at(1).get(count) != simdjson::SUCCESS ||
        hour < 0 || hour >= kHoursPerWeek || seen[hour]) {
      return std::nullopt;
    }
    seen[hour] = true;
    e.hours[hour] = count;
  }
  return e;
}

double BetaPosterior::Variance() const {
  const double n = alpha + beta;
  return alpha * beta / (n * n * (n + 1));
}

BetaPosterior ChannelPosterior(std::string_view channel, const Engagement& customer,
                               const Engagement& workspace, double prior_strength) {
  const ChannelCounts all = CountsOn(workspace, channel);
  const ChannelCounts own = CountsOn(customer, channel);
  const double s = std::max(prior_strength, kMinBetaParameter);
  const double rate =
      (static_cast<double>(all.engaged) + 1) / (static_cast<double>(all.received) + 2);
  return {std::max(s * rate + static_cast<double>(own.engaged), kMinBetaParameter),
          std::max(s * (1 - rate) + static_cast<double>(own.received - own.engaged),
                   kMinBetaParameter)};
}

std::optional<ChannelChoice> ChooseChannel(std::span<const std::string> reachable,
                                           const Engagement& customer, const Engagement& workspace,
                                           double prior_strength, std::mt19937_64& rng) {
  ChannelChoice choice;
  std::vector<BetaPosterior> posteriors;
  for (const std::string& channel : reachable) {
    const bool repeated = std::any_of(choice.options.begin(), choice.options.end(),
                                      [&](const ChannelOption& o) { return o.channel == channel; });
    if (repeated) continue;
    choice.options.push_back({channel, 0, 0});
    posteriors.push_back(ChannelPosterior(channel, customer, workspace, prior_strength));
  }
  if (posteriors.empty()) return std::nullopt;
  Thompson t = SampleBest(posteriors, rng);
  for (size_t i = 0; i < choice.options.size(); ++i) {
    choice.options[i].mean = t.means[i];
    choice.options[i].probability = t.probabilities[i];
  }
  choice.index = t.index;
  choice.channel = choice.options[t.index].channel;
  choice.probability = t.probabilities[t.index];
  return choice;
}

LocalZone LoadLocalZone(std::string_view name) {
  LocalZone z;
  z.name = "UTC";
  // "localtime" would be the machine's zone: never a customer's.
  if (!ValidZoneName(name) || name == "localtime") return z;
  absl::TimeZone tz;
  if (absl::LoadTimeZone(std::string(name), &tz)) {
    z.zone = tz;
    z.name = std::string(name);
  }
  return z;
}

int HourOfWeek(int64_t ms, const absl::TimeZone& zone) {
  return HourOfWeek(absl::ToCivilHour(absl::FromUnixMillis(ms), zone));
}

SendTime NextSendTime(int64_t now_ms, const LocalZone& zone, const HourHistogram& customer,
                      const HourHistogram& workspace, const SendTimeOptions& options,
                      std::mt19937_64& rng) {
  const int64_t after_ms = now_ms + std::max<int64_t>(options.min_lead_ms, 0);
  const double exploration = std::clamp(options.exploration, 0.0, 1.0);
  const int default_hour = std::clamp(options.default_hour, 0, 23);
  uint64_t customer_total = 0, workspace_total = 0;
  for (int h = 0; h < kHoursPerWeek; ++h) {
    customer_total += customer[h];
    workspace_total += workspace[h];
  }

  // Candidate i (1..168) is the local civil hour i after the one holding after_ms: each hour of
  // the week once, in time order. Each starts after after_ms, even across DST transitions (the
  // hour after the one holding an instant starts after it, and a skipped hour's transition is
  // the end of the hour before).
  const absl::CivilHour current = absl::ToCivilHour(absl::FromUnixMillis(after_ms), zone.zone);
  SendTime out;
  out.zone = zone.name;
  int best = 0;  // candidate offset - 1
  if (customer_total == 0 && workspace_total == 0) {
    out.source = "default";
    for (int i = 0; i < kHoursPerWeek; ++i) {
      if ((current + i + 1).hour() == default_hour) {
        best = i;
        break;
      }
    }
  } else {
    out.source = customer_total > 0 ? "customer" : "workspace";
    const double smoothing = std::max(options.smoothing, 0.0);
    double best_score = -1;
    for (int i = 0; i < kHoursPerWeek; ++i) {
      const int h = HourOfWeek(current + i + 1);
      const double shape = workspace_total > 0 ? static_cast<double>(workspace[h]) /
                                                     static_cast<double>(workspace_total)
                                               : 1.0 / kHoursPerWeek;
      const double score = static_cast<double>(customer[h]) + smoothing * shape;
      if (score > best_score) {  // strictly: ties keep the soonest
        best_score = score;
        best = i;
      }
    }
  }

  int chosen = best;
  if (exploration > 0 && std::uniform_real_distribution<double>(0, 1)(rng) < exploration) {
    out.explore = true;
    chosen = std::uniform_int_distribution<int>(0, kHoursPerWeek - 1)(rng);
  }
  out.probability = exploration / kHoursPerWeek + (chosen == best ? 1 - exploration : 0);
  const absl::CivilHour hour = current + chosen + 1;
  out.hour_of_week = HourOfWeek(hour);
  out.at_ms = StartOf(hour, zone.zone);
  return out;
}

std::optional<VariantChoice> ChooseVariant(std::span<const VariantCounts> variants,
                                           std::mt19937_64& rng) {
  if (variants.empty()) return std::nullopt;
  std::vector<BetaPosterior> posteriors;
  posteriors.reserve(variants.size());
  for (const VariantCounts& v : variants) {
    const uint64_t engaged = std::min(v.engaged, v.shown);
    posteriors.push_back(
        {1 + static_cast<double>(engaged), 1 + static_cast<double>(v.shown - engaged)});
  }
  Thompson t = SampleBest(posteriors, rng);
  VariantChoice choice;
  choice.index = t.index;
  choice.probability = t.probabilities[t.index];
  choice.means = std::move(t.means);
  choice.probabilities = std::move(t.probabilities);
  return choice;
}

namespace {

VariantCounts& CountsFor(VariantStats& stats, std::string_view action, std::string_view variant) {
  auto a = stats.actions.find(action);
  if (a == stats.actions.end()) a = stats.actions.try_emplace(std::string(action)).first;
  auto v = a->second.find(variant);
  if (v == a->second.end()) v = a->second.emplace(std::string(variant), VariantCounts{}).first;
  return v->second;
}

}  // namespace

void VariantStats::RecordShown(std::string_view action, std::string_view variant) {
  ++CountsFor(*this, action, variant).shown;
}

void VariantStats::RecordEngaged(std::string_view action, std::string_view variant) {
  VariantCounts& c = CountsFor(*this, action, variant);
  ++c.engaged;
  c.shown = std::max(c.shown, c.engaged);
}

std::vector<VariantCounts> VariantStats::CountsOf(std::string_view action,
                                                  std::span<const std::string> variant_ids) const {
  std::vector<VariantCounts> out(variant_ids.size());
  auto a = actions.find(action);
  if (a == actions.end()) return out;
  for (size_t i = 0; i < variant_ids.size(); ++i) {
    auto v = a->second.find(variant_ids[i]);
    if (v != a->second.end()) out[i] = v->second;
  }
  return out;
}

std::string VariantStats::Encode() const {
  std::string out;
  JsonWriter w(&out);
  w.StartObject();
  for (const auto& [action, variants] : actions) {
    w.Key(action);
    w.StartObject();
    for (const auto& [variant, counts] : variants) {
      w.Key(variant);
      w.StartArray();
      w.Uint(counts.shown);
      w.Uint(counts.engaged);
      w.EndArray();
    }
    w.EndObject();
  }
  w.EndObject();
  return out;
}

std::optional<VariantStats> VariantStats::Decode(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  simdjson::dom::object actions;
  if (parser.parse(json.data(), json.size()).get(doc) != simdjson::SUCCESS ||
      doc.get(actions) != simdjson::SUCCESS) {
    return std::nullopt;
  }
  VariantStats stats;
  for (auto [action, value] : actions) {
    simdjson::dom::object variants;
    if (value.get(variants) != simdjson::SUCCESS) return std::nullopt;
    auto [a, inserted] = stats.actions.try_emplace(std::string(action));
    if (!inserted) return std::nullopt;
    for (auto [variant, counts] : variants) {
      VariantCounts c;
      if (!ReadPair(counts, &c.shown, &c.engaged)) return std::nullopt;
      if (!a->second.emplace(std::string(variant), c).second) return std::nullopt;
    }
  }
  return stats;
}

}  // namespace whisperer::decide
