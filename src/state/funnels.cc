#include "state/funnels.h"

#include <algorithm>
#include <bit>
#include <cmath>

#include "common/status.h"
#include "common/varint.h"
#include "storage/keys.h"

namespace whisperer::state {
namespace {

size_t Bucket(int64_t ms) {
  uint64_t v = static_cast<uint64_t>(std::max<int64_t>(0, ms)) + 1;
  size_t b = static_cast<size_t>(std::bit_width(v)) - 1;
  return std::min(b, kFunnelBuckets - 1);
}

}  // namespace

void FunnelCounts::Resize(size_t stages) {
  if (entered.size() >= stages) return;
  entered.resize(stages);
  moved_on.resize(stages);
  time_in_stage.resize(stages, std::array<uint64_t, kFunnelBuckets>{});
}

void FunnelCounts::Add(const FunnelCounts& o) {
  Resize(o.entered.size());
  for (size_t i = 0; i < o.entered.size(); ++i) {
    entered[i] += o.entered[i];
    moved_on[i] += o.moved_on[i];
    for (size_t b = 0; b < kFunnelBuckets; ++b) time_in_stage[i][b] += o.time_in_stage[i][b];
  }
  converted += o.converted;
  exited += o.exited;
}

int64_t FunnelCounts::TimeQuantile(size_t stage, double q) const {
  if (stage >= time_in_stage.size()) return -1;
  uint64_t total = 0;
  for (uint64_t c : time_in_stage[stage]) total += c;
  if (total == 0) return -1;
  auto rank = static_cast<uint64_t>(q * static_cast<double>(total) + 0.999999);
  uint64_t seen = 0;
  for (size_t b = 0; b < kFunnelBuckets; ++b) {
    seen += time_in_stage[stage][b];
    if (seen >= rank) {
      // The geometric middle of [2^b - 1, 2^(b+1) - 1).
      double lo = static_cast<double>(uint64_t{1} << b), hi = lo * 2;
      return static_cast<int64_t>(std::sqrt(lo * hi)) - 1;
    }
  }
  return -1;
}

void CountStep(const JourneyStep& step, size_t stages, FunnelCounts* c) {
  c->Resize(stages);
  // A step taken back subtracts what it added (never below zero: a row that started again
  // after corruption may not hold it).
  auto count = [&](uint64_t& n) {
    if (!step.taken_back) {
      ++n;
    } else if (n > 0) {
      --n;
    }
  };
  if (step.from >= 0 && static_cast<size_t>(step.from) < stages &&
      step.to != JourneyStep::kExited) {
    count(c->moved_on[static_cast<size_t>(step.from)]);
    count(c->time_in_stage[static_cast<size_t>(step.from)][Bucket(step.in_stage_ms)]);
  }
  if (step.to == JourneyStep::kConverted) {
    count(c->converted);
  } else if (step.to == JourneyStep::kExited) {
    count(c->exited);
  } else if (step.to >= 0 && static_cast<size_t>(step.to) < stages) {
    count(c->entered[static_cast<size_t>(step.to)]);
  }
}

std::string FunnelKeyPrefix(uint32_t workspace_id, std::string_view journey, int64_t version,
                            int64_t day) {
  std::string key;
  storage::PutBigEndian32(&key, workspace_id);
  key.push_back(static_cast<char>(static_cast<uint8_t>(journey.size())));
  key.append(journey);
  storage::PutBigEndian32(&key, static_cast<uint32_t>(version));
  storage::PutBigEndian32(&key, static_cast<uint32_t>(day));
  return key;
}

std::string FunnelKey(uint32_t workspace_id, std::string_view journey, int64_t version, int64_t day,
                      FunnelDimension dimension, std::string_view value) {
  std::string key = FunnelKeyPrefix(workspace_id, journey, version, day);
  key.push_back(static_cast<char>(dimension));
  key.append(value);
  return key;
}

std::optional<FunnelKeyParts> DecodeFunnelKeySuffix(std::string_view suffix) {
  if (suffix.size() < 5) return std::nullopt;
  FunnelKeyParts p;
  p.day = static_cast<int32_t>(storage::GetBigEndian32(suffix.data()));  // before 1970: < 0
  uint8_t dim = static_cast<uint8_t>(suffix[4]);
  if (dim > static_cast<uint8_t>(FunnelDimension::kPersona)) return std::nullopt;
  p.dimension = static_cast<FunnelDimension>(dim);
  p.value = std::string(suffix.substr(5));
  return p;
}

std::string EncodeFunnel(const FunnelCounts& c) {
  std::string out;
  PutVarint(&out, c.entered.size());
  for (size_t i = 0; i < c.entered.size(); ++i) {
    PutVarint(&out, c.entered[i]);
    PutVarint(&out, c.moved_on[i]);
    size_t nonzero = 0;
    for (uint64_t n : c.time_in_stage[i]) nonzero += n != 0;
    PutVarint(&out, nonzero);
    for (size_t b = 0; b < kFunnelBuckets; ++b) {
      if (c.time_in_stage[i][b] == 0) continue;
      PutVarint(&out, b);
      PutVarint(&out, c.time_in_stage[i][b]);
    }
  }
  PutVarint(&out, c.converted);
  PutVarint(&out, c.exited);
  return out;
}

absl::StatusOr<FunnelCounts> DecodeFunnel(std::string_view in) {
  FunnelCounts c;
  uint64_t stages = 0;
  bool ok = GetVarint(&in, &stages) && stages <= in.size();
  if (ok) c.Resize(static_cast<size_t>(stages));
  for (size_t i = 0; ok && i < stages; ++i) {
    uint64_t nonzero = 0;
    ok = GetVarint(&in, &c.entered[i]) && GetVarint(&in, &c.moved_on[i]) &&
         GetVarint(&in, &nonzero) && nonzero <= kFunnelBuckets;
    for (uint64_t k = 0; ok && k < nonzero; ++k) {
      uint64_t b = 0, n = 0;
      ok = GetVarint(&in, &b) && GetVarint(&in, &n) && b < kFunnelBuckets;
      if (ok) c.time_in_stage[i][b] = n;
    }
  }
  ok = ok && GetVarint(&in, &c.converted) && GetVarint(&in, &c.exited) && in.empty();
  if (!ok) {
    return MakeError(absl::StatusCode::kDataLoss, "corrupt_funnel", "stored funnel is malformed");
  }
  return c;
}

}  // namespace whisperer::state
