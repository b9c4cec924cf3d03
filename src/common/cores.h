// HalfTheCores: the default size of each of the two busy thread pools (HTTP threads and shard
// threads), so that together they use every core once. Measured on 2 cores: one HTTP thread
// and one shard thread ingest about 10% faster than two of each (bench/, November 2026),
// because the pools hand work to each other and extra threads only add context switches.
// Thread-safety: pure function.
#pragma once

#include <algorithm>
#include <cstddef>
#include <thread>

namespace whisperer {

inline size_t HalfTheCores() {
  return std::max<size_t>(1, std::thread::hardware_concurrency() / 2);
}

}  // namespace whisperer
