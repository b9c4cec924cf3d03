#include "learn/ope.h"

#include <algorithm>
#include <random>

namespace whisperer::learn {
namespace {

struct Point {
  double dm = 0, ipw = 0, snipw = 0, dr = 0;
};

// The four estimates over the rounds `pick` selects (indexes, repeats allowed).
Point Estimate(std::span<const LoggedRound> rounds, const std::vector<size_t>& pick) {
  double dm = 0, ipw = 0, wr = 0, w_sum = 0, dr = 0;
  for (size_t i : pick) {
    const LoggedRound& r = rounds[i];
    const double w = r.target[r.action] / r.propensity;
    double direct = 0;
    if (!r.predicted.empty()) {
      for (size_t a = 0; a < r.target.size(); ++a) direct += r.target[a] * r.predicted[a];
    }
    dm += direct;
    ipw += w * r.reward;
    wr += w * r.reward;
    w_sum += w;
    dr += direct + w * (r.reward - (r.predicted.empty() ? 0 : r.predicted[r.action]));
  }
  const double n = static_cast<double>(pick.size());
  return {dm / n, ipw / n, w_sum > 0 ? wr / w_sum : 0, dr / n};
}

}  // namespace

OpeResult EstimatePolicyValue(std::span<const LoggedRound> rounds, int bootstrap, uint64_t seed) {
  OpeResult out;
  out.rounds = rounds.size();
  if (rounds.empty()) return out;
  std::vector<size_t> all(rounds.size());
  for (size_t i = 0; i < all.size(); ++i) all[i] = i;
  const Point p = Estimate(rounds, all);
  out.dm = {p.dm, p.dm, p.dm};
  out.ipw = {p.ipw, p.ipw, p.ipw};
  out.snipw = {p.snipw, p.snipw, p.snipw};
  out.dr = {p.dr, p.dr, p.dr};
  if (bootstrap <= 0) return out;
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<size_t> draw(0, rounds.size() - 1);
  std::vector<double> dm, ipw, snipw, dr;
  std::vector<size_t> pick(rounds.size());
  for (int b = 0; b < bootstrap; ++b) {
    for (size_t& i : pick) i = draw(rng);
    const Point q = Estimate(rounds, pick);
    dm.push_back(q.dm);
    ipw.push_back(q.ipw);
    snipw.push_back(q.snipw);
    dr.push_back(q.dr);
  }
  auto interval = [&](std::vector<double>& v, OpeEstimate* e) {
    std::sort(v.begin(), v.end());
    e->low = v[static_cast<size_t>(0.025 * static_cast<double>(v.size() - 1))];
    e->high = v[static_cast<size_t>(0.975 * static_cast<double>(v.size() - 1))];
  };
  interval(dm, &out.dm);
  interval(ipw, &out.ipw);
  interval(snipw, &out.snipw);
  interval(dr, &out.dr);
  return out;
}

}  // namespace whisperer::learn
