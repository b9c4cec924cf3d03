// Deterministic mutation of valid inputs, for the fuzz tests beside the code
// (api/segment_parser_fuzz_test.cc, expr/expr_fuzz_test.cc): one to four edits to `s`, drawn
// from `rng` (seeded by the test, so every run tries the same inputs): a byte replaced, the rest
// cut off, one of `inserts` put in, up to 8 bytes deleted, or a run of up to 64 bytes repeated.
#pragma once

#include <algorithm>
#include <random>
#include <span>
#include <string>

namespace whisperer::testing {

inline std::string Mutate(std::string s, std::mt19937_64& rng,
                          std::span<const std::string> inserts) {
  const int edits = 1 + static_cast<int>(rng() % 4);
  for (int e = 0; e < edits && !s.empty(); ++e) {
    const size_t pos = rng() % s.size();
    switch (rng() % 5) {
      case 0:
        s[pos] = static_cast<char>(rng());
        break;
      case 1:
        s.resize(pos);
        break;
      case 2: {
        // An empty insert stands for a NUL byte (a literal "\x00" makes an empty string).
        const std::string& ins = inserts[rng() % inserts.size()];
        s.insert(pos, ins.empty() ? std::string(1, '\0') : ins);
        break;
      }
      case 3:
        s.erase(pos, 1 + rng() % 8);
        break;
      case 4: {
        const size_t len = std::min<size_t>(1 + rng() % 64, s.size() - pos);
        s.insert(pos, s.substr(pos, len));
        break;
      }
    }
  }
  return s;
}

}  // namespace whisperer::testing
