// Engagement learning behind how a chosen action is delivered: on which channel, at what time,
// with which content variant. Each is a small Bayesian model of engagement counts, pure and kept
// apart from the decider (decide/decider.h), which chooses the action itself.
//
//   Channel. Per customer and channel, engaged messages (opened, clicked or replied to) out of
//   messages received. The engagement rate of customer c on channel k has the posterior
//     Beta(s r_k + e_ck, s (1 - r_k) + n_ck - e_ck),  r_k = (E_k + 1) / (N_k + 2)
//   with n, e the customer's counts, N, E the workspace's and s the prior strength: a customer
//   is shrunk towards the workspace's rate on the channel (itself Laplace-smoothed, so a channel
//   with no history anywhere is Beta(s/2, s/2)) and the more they received, the less. The
//   channel is chosen by Thompson sampling among the channels the customer is reachable and
//   consented on: one Beta draw per channel, the highest wins.
//
//   Send time. Per customer, a histogram of engagements over the 168 hours of the week
//   (h = weekday * 24 + hour, Monday 0, in the customer's local time). The workspace's histogram
//   is the sum of its customers' local-time histograms. Hour h scores
//     x_h + m w_h / W   (or x_h + m / 168 when the workspace has no history, W = 0)
//   for x the customer's histogram, w the workspace's and m the smoothing: m pseudo-engagements
//   spread in the workspace's shape. The send time is the start of the best-scoring local hour
//   among the next 168 that start strictly after now + lead (ties: the soonest); with
//   probability `exploration`, instead, a uniformly random one of them.
//
//   Variant. Per action, per content variant (subject lines, copy), engaged out of shown, with
//   posterior Beta(1 + engaged, 1 + shown - engaged), chosen by Thompson sampling.
//
// Each choice reports the probability it had of being made, for the decision log. For Thompson
// sampling that is P(the chosen posterior's draw is the highest), which has no closed form for
// Betas: it is computed with learn::ProbabilityOfBest on a normal approximation of each Beta (its
// mean and variance), close when the counts are not tiny, and so only approximately summing to 1.
//
// Thread-safety: Engagement and VariantStats are value types, not synchronised (the server
// serialises the read-modify-write of one customer or workspace). The free functions are pure but
// for advancing `rng`; LoadLocalZone reads abseil's zone cache, which is thread-safe.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"

namespace whisperer::decide {

inline constexpr int kHoursPerWeek = 168;

// Engagements per hour of the week, local time, indexed by HourOfWeek.
using HourHistogram = std::array<uint64_t, kHoursPerWeek>;

// Messages received on one channel, and those engaged with. Invariant: engaged <= received.
struct ChannelCounts {
  uint64_t received = 0;
  uint64_t engaged = 0;
};

// One customer's engagement history, or a workspace's totals (the sums over its customers).
struct Engagement {
  std::map<std::string, ChannelCounts, std::less<>> channels;
  HourHistogram hours{};

  // A message was delivered on `channel`.
  void RecordDelivery(std::string_view channel);
  // A delivered message was engaged with at `at_ms`, the customer being in `zone`. Call once per
  // message (its first open, click or reply), so that engaged counts messages. An engagement
  // with no delivery recorded (sent before these counts existed) counts as received too, which
  // keeps engaged <= received.
  void RecordEngagement(std::string_view channel, int64_t at_ms, const absl::TimeZone& zone);
  // Adds 1 to the hour-of-week bin of `at_ms` in `zone`.
  void RecordEngagement(int64_t at_ms, const absl::TimeZone& zone);

  uint64_t TotalHourEngagements() const;
  // Adds `other`'s counts (those kept for the same customer under another key: a profile merged
  // into theirs, or the visitor they were before their profile existed).
  void Add(const Engagement& other);

  // Compact JSON, zero hours left out:
  //   {"channels":{"email":[received,engaged],...},"hours":[[hour,count],...]}
  // Decode rejects anything else: malformed JSON, a missing member, counts that are not
  // non-negative integers, engaged > received, an hour outside 0..167, a repeated hour or channel.
  std::string Encode() const;
  static std::optional<Engagement> Decode(std::string_view json);
};

// ---- Channel ----

// The prior strength s when none is configured: the workspace's rate weighs as 10 messages.
inline constexpr double kDefaultPriorStrength = 10;

struct BetaPosterior {
  double alpha = 1;
  double beta = 1;

  double Mean() const { return alpha / (alpha + beta); }
  double Variance() const;
};

// Customer c's posterior on channel k, by the formula above. Precondition: prior_strength > 0
// (smaller values are taken as a tiny positive strength). Counts with engaged > received are read
// as engaged == received.
BetaPosterior ChannelPosterior(std::string_view channel, const Engagement& customer,
                               const Engagement& workspace, double prior_strength);

struct ChannelOption {
  std::string channel;
  double mean = 0;         // posterior mean engagement rate
  double probability = 0;  // of being chosen (normal approximation)
};

struct ChannelChoice {
  size_t index = 0;  // into `options`
  std::string channel;
  double probability = 0;              // of this choice (normal approximation)
  std::vector<ChannelOption> options;  // the reachable channels, in their order, once each
};

// Thompson sampling among `reachable` (repeats count once). nullopt when it is empty.
std::optional<ChannelChoice> ChooseChannel(std::span<const std::string> reachable,
                                           const Engagement& customer, const Engagement& workspace,
                                           double prior_strength, std::mt19937_64& rng);

// ---- Send time ----

// A customer's time zone as used: the IANA zone it names, or UTC.
struct LocalZone {
  absl::TimeZone zone;  // default-constructed: UTC
  std::string name;     // the IANA name loaded, or "UTC"
};

// Loads the IANA zone `name` (tzdata, /usr/share/zoneinfo on Debian). An empty, malformed or
// unknown name gives UTC (name "UTC"). Only names made of letters, digits, '_', '-', '+' and '/'
// separated segments are looked up, so a name can never reach an arbitrary file path.
LocalZone LoadLocalZone(std::string_view name);

// weekday * 24 + hour of `ms` in `zone`, Monday 0: 0..167.
int HourOfWeek(int64_t ms, const absl::TimeZone& zone);

struct SendTimeOptions {
  // Pseudo-engagements spread in the workspace's shape added to the customer's histogram. More
  // follows the workspace longer; fewer trusts a customer's first engagements sooner.
  double smoothing = 5;
  // Probability of a uniformly random hour of the next week instead of the best one: what lets
  // the histograms learn about hours never tried. 0 never explores, 1 always does. Clamped to
  // 0..1.
  double exploration = 0.1;
  // The send time is strictly after now + min_lead_ms (time to render and queue). Negative: 0.
  int64_t min_lead_ms = 0;
  // The local hour (0..23, clamped) sent at when neither the customer nor the workspace has any
  // engagement: its next occurrence.
  int default_hour = 10;
};

struct SendTime {
  int64_t at_ms = 0;     // the start of the chosen local hour
  int hour_of_week = 0;  // of the chosen hour, local time
  // "customer": the customer has engagements; "workspace": only the workspace has; "default":
  // neither, the default hour.
  std::string_view source;
  bool explore = false;    // a uniformly random hour was drawn instead of the best
  double probability = 0;  // of choosing this hour: (1 - exploration) [if best] + exploration/168
  std::string zone;        // LocalZone::name
};

// The next send time for a customer in `zone` (see the header comment). The candidates are the
// next 168 local civil hours after the one holding now + lead, one per hour of the week, so the
// answer is within 7 days. DST: a local hour skipped by a spring-forward transition starts at the
// transition (its 03:00), a repeated one at its first occurrence.
SendTime NextSendTime(int64_t now_ms, const LocalZone& zone, const HourHistogram& customer,
                      const HourHistogram& workspace, const SendTimeOptions& options,
                      std::mt19937_64& rng);

// ---- Content variants ----

struct VariantCounts {
  uint64_t shown = 0;
  uint64_t engaged = 0;  // <= shown
};

struct VariantChoice {
  size_t index = 0;
  double probability = 0;  // of this choice (normal approximation)
  std::vector<double> means;
  std::vector<double> probabilities;  // of each variant being chosen
};

// Thompson sampling among `variants`, each Beta(1 + engaged, 1 + shown - engaged). nullopt when
// empty.
std::optional<VariantChoice> ChooseVariant(std::span<const VariantCounts> variants,
                                           std::mt19937_64& rng);

// A workspace's variant counts: per action id, per variant id. Keyed by ids rather than
// positions so that reordering or adding variants in the catalog keeps what was learned.
struct VariantStats {
  std::map<std::string, std::map<std::string, VariantCounts, std::less<>>, std::less<>> actions;

  void RecordShown(std::string_view action, std::string_view variant);
  // As Engagement::RecordEngagement: once per message, and it counts as shown if it was not.
  void RecordEngaged(std::string_view action, std::string_view variant);
  // The counts of `variant_ids` of `action`, in that order (zeros for those never shown): what
  // ChooseVariant takes.
  std::vector<VariantCounts> CountsOf(std::string_view action,
                                      std::span<const std::string> variant_ids) const;

  // Compact JSON: {"action":{"variant":[shown,engaged],...},...}. Decode rejects anything else,
  // negative or non-integer counts and engaged > shown.
  std::string Encode() const;
  static std::optional<VariantStats> Decode(std::string_view json);
};

}  // namespace whisperer::decide
