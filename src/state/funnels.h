// Funnels: per journey, counts kept as customers move, so a funnel query reads a few small rows
// and never scans the event log.
//
// Rows (the `funnels` column family) are keyed by workspace, journey, journey version, cohort day
// (the UTC day the customer entered the journey, this round), a dimension and its value:
//   all     one row per day;
//   device  the device type of the event that entered the journey (mobile, desktop, ...);
//   source  its UTM source ("(none)" without one);
//   persona the customer's persona then (state/personas.h; "(none)" without one).
// Each row counts, per stage: customers who entered it, who moved on from it to a later stage or
// converted, and a histogram of how long they spent in it before moving on (powers-of-two
// buckets of milliseconds, so the median and p90 reported are within a factor of about 1.4);
// and the customers who converted or exited.
//
// Thread-safety: plain values and pure functions.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "state/journeys.h"

namespace whisperer::state {

enum class FunnelDimension : uint8_t { kAll = 0, kDevice = 1, kSource = 2, kPersona = 3 };

inline constexpr size_t kFunnelBuckets = 42;  // bucket b: [2^b - 1, 2^(b+1) - 1) ms

struct FunnelCounts {
  std::vector<uint64_t> entered;  // per stage
  std::vector<uint64_t> moved_on;
  std::vector<std::array<uint64_t, kFunnelBuckets>> time_in_stage;
  uint64_t converted = 0;
  uint64_t exited = 0;

  void Resize(size_t stages);
  void Add(const FunnelCounts& other);
  // Approximate quantile q (0..1] of the time spent in `stage` before moving on; -1 when none.
  int64_t TimeQuantile(size_t stage, double q) const;
};

// Counts one step (state/journeys.h) into `counts`, sized for `stages` stages; a step
// taken_back is counted out.
void CountStep(const JourneyStep& step, size_t stages, FunnelCounts* counts);

std::string FunnelKey(uint32_t workspace_id, std::string_view journey, int64_t version, int64_t day,
                      FunnelDimension dimension, std::string_view value);
// The range of a journey version's rows for cohort days [from_day, to_day].
std::string FunnelKeyPrefix(uint32_t workspace_id, std::string_view journey, int64_t version,
                            int64_t day);

struct FunnelKeyParts {
  int64_t day = 0;
  FunnelDimension dimension = FunnelDimension::kAll;
  std::string value;
};
// Parses the part of a key after FunnelKeyPrefix(..., 0)'s journey and version.
std::optional<FunnelKeyParts> DecodeFunnelKeySuffix(std::string_view suffix);

std::string EncodeFunnel(const FunnelCounts& counts);
absl::StatusOr<FunnelCounts> DecodeFunnel(std::string_view bytes);

}  // namespace whisperer::state
