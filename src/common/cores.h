// Default sizes of the two busy thread pools.
//
// HTTP threads parse and validate requests and run the handlers that compute on them
// (decisions, experiences); shard threads fold events into profiles and write them. Measured
// on 2 cores (bench/, November 2026): ingest is as fast with two HTTP threads and one shard
// thread as with one of each, and about 10% slower with two shard threads (the pools hand work
// to each other and extra shard threads only add context switches); /v1/decide, which runs on
// the HTTP thread, serves 20% more decisions per second with two HTTP threads than with one.
// Thread-safety: pure functions.
#pragma once

#include <algorithm>
#include <cstddef>
#include <thread>

namespace whisperer {

// Every core: the HTTP threads' default.
inline size_t AllTheCores() { return std::max<size_t>(1, std::thread::hardware_concurrency()); }

// Half the cores: the shard threads' default.
inline size_t HalfTheCores() { return std::max<size_t>(1, AllTheCores() / 2); }

}  // namespace whisperer
