#include "common/gate.h"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <optional>
#include <thread>

namespace whisperer {
namespace {

using namespace std::chrono_literals;

TEST(Gate, PassesGoTogetherAndANullGatePassesAtOnce) {
  Gate gate;
  Gate::Pass a = Gate::Enter(&gate);
  Gate::Pass b = Gate::Enter(&gate);
  EXPECT_EQ(gate.passes(), 2u);
  a.Reset();
  EXPECT_EQ(gate.passes(), 1u);
  Gate::Pass moved = std::move(b);
  EXPECT_EQ(gate.passes(), 1u);  // a move is the same pass
  moved = Gate::Pass();
  EXPECT_EQ(gate.passes(), 0u);
  Gate::Pass none = Gate::Enter(nullptr);
  none.Reset();
  Gate::Closed no_gate = Gate::Close(nullptr);
  no_gate.Reset();
}

TEST(Gate, CloseWaitsForThePassesUnderWayEvenOneEndedOnAnotherThread) {
  Gate gate;
  std::optional<Gate::Pass> pass(Gate::Enter(&gate));
  std::atomic<bool> closed{false};
  std::thread closer([&] {
    Gate::Closed c = Gate::Close(&gate);
    closed = true;
  });
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(closed) << "closed while a pass was under way";
  // The pass ends on a thread other than the one that entered, as a group commit ends it.
  std::thread([p = std::move(*pass)]() mutable { p.Reset(); }).join();
  closer.join();
  EXPECT_TRUE(closed);
}

TEST(Gate, NewPassesWaitWhileClosedAndGoOnceOpen) {
  Gate gate;
  Gate::Closed closed = Gate::Close(&gate);
  std::atomic<bool> passed{false};
  std::thread enter([&] {
    Gate::Pass p = Gate::Enter(&gate);
    passed = true;
  });
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(passed) << "passed a closed gate";
  closed.Reset();
  enter.join();
  EXPECT_TRUE(passed);
}

TEST(Gate, ClosingsTakeTurns) {
  Gate gate;
  Gate::Closed first = Gate::Close(&gate);
  std::atomic<bool> second_closed{false};
  std::thread second([&] {
    Gate::Closed c = Gate::Close(&gate);
    second_closed = true;
  });
  std::this_thread::sleep_for(50ms);
  EXPECT_FALSE(second_closed);
  first.Reset();
  second.join();
  EXPECT_TRUE(second_closed);
}

}  // namespace
}  // namespace whisperer
