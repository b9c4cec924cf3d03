// Gate: many operations pass through at once; one at a time may close it, which waits until
// every pass under way has ended and holds new ones back until it opens again.
//
// The server closes it around a profile's erasure, and every write of the decision log about a
// customer (a decision, a verdict, an activation, a reward) holds a pass from its first read to
// its write: otherwise a decision read before the erasure and written after it is left behind,
// under a profile that is gone. A shared mutex would serve, but a decision's write is group
// committed on another thread (server/decide_service.cc), and a std::shared_mutex must be
// unlocked on the thread that locked it: a pass may end on any thread.
//
// Thread-safety: every member may be called from any thread. Close waits while another closing
// is under way; nothing that holds a pass may call Close (it would wait for itself).
#pragma once

#include <condition_variable>
#include <cstdint>
#include <mutex>

namespace whisperer {

class Gate {
  void Leave() {
    std::lock_guard lock(mu_);
    if (--passes_ == 0 && closed_) changed_.notify_all();
  }
  void Open() {
    std::lock_guard lock(mu_);
    closed_ = false;
    changed_.notify_all();
  }

  // A hold on the gate that calls `End` on it when destroyed or reset, on any thread.
  template <void (Gate::*End)()>
  class Hold {
   public:
    Hold() = default;
    explicit Hold(Gate* gate) : gate_(gate) {}
    Hold(Hold&& other) noexcept : gate_(other.gate_) { other.gate_ = nullptr; }
    Hold& operator=(Hold&& other) noexcept {
      if (this != &other) {
        Reset();
        gate_ = other.gate_;
        other.gate_ = nullptr;
      }
      return *this;
    }
    Hold(const Hold&) = delete;
    Hold& operator=(const Hold&) = delete;
    ~Hold() { Reset(); }

    void Reset() {
      if (gate_ != nullptr) (gate_->*End)();
      gate_ = nullptr;
    }

   private:
    Gate* gate_ = nullptr;
  };

 public:
  // A pass through the gate, ended when destroyed or reset.
  using Pass = Hold<&Gate::Leave>;
  // The gate closed, opened again when destroyed or reset.
  using Closed = Hold<&Gate::Open>;

  // Waits while `gate` is closed, then passes. A null gate is no gate: nothing to wait for.
  static Pass Enter(Gate* gate) {
    if (gate == nullptr) return Pass();
    std::unique_lock lock(gate->mu_);
    gate->changed_.wait(lock, [gate] { return !gate->closed_; });
    ++gate->passes_;
    return Pass(gate);
  }

  // Closes `gate`, once no other closing holds it, and waits until every pass has ended. A null
  // gate is no gate: nothing to close.
  [[nodiscard]] static Closed Close(Gate* gate) {
    if (gate == nullptr) return Closed();
    std::unique_lock lock(gate->mu_);
    gate->changed_.wait(lock, [gate] { return !gate->closed_; });
    gate->closed_ = true;
    gate->changed_.wait(lock, [gate] { return gate->passes_ == 0; });
    return Closed(gate);
  }

  // Passes under way (for tests).
  uint64_t passes() const {
    std::lock_guard lock(mu_);
    return passes_;
  }

 private:
  mutable std::mutex mu_;
  std::condition_variable changed_;
  uint64_t passes_ = 0;
  bool closed_ = false;
};

}  // namespace whisperer
