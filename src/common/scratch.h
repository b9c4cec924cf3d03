// ScratchArray: a per-call array of n trivially constructible values, on the stack up to N of
// them and on the heap beyond, left uninitialized like a plain array. Hot loops (the decider's
// explanations, learn::ProbabilityOfBest) need a few dozen values per call without an
// allocation; absl::InlinedVector would do, but it zeroes every element it is sized with, which
// these callers overwrite anyway.
//
// Thread-safety: none needed; one per call.
#pragma once

#include <cstddef>
#include <memory>
#include <type_traits>

namespace whisperer {

template <typename T, size_t N>
class ScratchArray {
  static_assert(std::is_trivially_default_constructible_v<T>);

 public:
  explicit ScratchArray(size_t n)
      : heap_(n > N ? std::make_unique_for_overwrite<T[]>(n) : nullptr) {}
  ScratchArray(const ScratchArray&) = delete;
  ScratchArray& operator=(const ScratchArray&) = delete;

  T* data() { return heap_ ? heap_.get() : stack_; }

 private:
  T stack_[N];
  std::unique_ptr<T[]> heap_;
};

}  // namespace whisperer
