#include "decide/decider.h"

#include <algorithm>
#include <cmath>
#include <map>

namespace whisperer::decide {
namespace {

constexpr size_t kMaxFactors = 5;

bool Holds(const std::optional<expr::Expr>& condition, const expr::Bindings& bindings) {
  return !condition || condition->Eval(bindings);
}

// Whether `channel` has reached its limit for this customer, counting `extra` contacts of the
// decision being made.
bool ChannelFull(const DecideInput& in, std::string_view channel, size_t extra) {
  const auto& limits = in.catalog->settings.channel_limits;
  auto it = limits.find(channel);
  if (it == limits.end()) return false;
  const size_t past =
      in.contacts == nullptr ? 0 : in.contacts->OnChannel(channel, in.now_ms - it->second.per_ms);
  return static_cast<int64_t>(past + extra) >= it->second.max;
}

// The reason catalog action `index` cannot be a candidate now, or "" when it can.
std::string_view FilterReason(size_t index, const DecideInput& in, const Treatment** treatment) {
  const Action& a = in.catalog->actions[index];
  if ((a.valid_from_ms != 0 && in.now_ms < a.valid_from_ms) ||
      (a.valid_until_ms != 0 && in.now_ms >= a.valid_until_ms)) {
    return "not_valid_now";
  }
  if (!Holds(a.eligibility, *in.bindings)) return "not_eligible";
  if (!Holds(a.applicability, *in.bindings)) return "not_applicable";
  if (!Holds(a.suitability, *in.bindings)) return "not_suitable";
  if (!a.consent.empty()) {
    auto it = in.profile->consent.find(a.consent);
    if (it == in.profile->consent.end() || !it->second.granted) return "no_consent";
  }
  if (!in.budget_spent.empty() && in.budget_spent[index]) {
    return "budget_exhausted";
  }
  const ContactHistory* h = in.contacts;
  if (h != nullptr && a.suppress_negatives > 0 &&
      static_cast<int64_t>(h->NegativesOf(a.id, in.now_ms - a.suppress_within_ms)) >=
          a.suppress_negatives) {
    return "suppressed";
  }
  if (h != nullptr && a.contact_max > 0 &&
      static_cast<int64_t>(h->OfAction(a.id, in.now_ms - a.contact_per_ms)) >= a.contact_max) {
    return "contact_limit";
  }
  *treatment = nullptr;
  bool allowed = false;
  for (const Treatment& t : a.treatments) {
    if (!in.channels.empty() &&
        std::find(in.channels.begin(), in.channels.end(), t.channel) == in.channels.end()) {
      continue;
    }
    allowed = true;
    if (ChannelFull(in, t.channel, 0)) continue;
    *treatment = &t;
    break;
  }
  if (*treatment == nullptr) return allowed ? "channel_limit" : "no_channel";
  return {};
}

// The slot's channel and content variant (see decider.h, step 4). `used`: the channels of the
// earlier slots.
void ChooseDelivery(const DecideInput& in, const Action& a,
                    const std::map<std::string_view, size_t>& used, std::mt19937_64& rng,
                    SlotChoice* choice) {
  const Settings& s = in.catalog->settings;
  if (s.channel_choice && a.treatments.size() > 1) {
    std::vector<std::string> usable;
    std::vector<const Treatment*> by_channel;
    for (const Treatment& t : a.treatments) {
      if (!in.channels.empty() &&
          std::find(in.channels.begin(), in.channels.end(), t.channel) == in.channels.end()) {
        continue;
      }
      auto it = used.find(t.channel);
      if (ChannelFull(in, t.channel, it == used.end() ? 0 : it->second)) continue;
      if (std::find(usable.begin(), usable.end(), t.channel) != usable.end()) continue;
      usable.push_back(t.channel);
      by_channel.push_back(&t);
    }
    static const Engagement kNone;
    if (usable.size() > 1) {
      std::optional<ChannelChoice> c =
          ChooseChannel(usable, in.engagement != nullptr ? *in.engagement : kNone,
                        in.workspace_engagement != nullptr ? *in.workspace_engagement : kNone,
                        s.channel_prior_strength, rng);
      if (c) {
        choice->treatment = by_channel[c->index];
        choice->channels = usable.size();
        choice->channel_probability = c->probability;
      }
    }
  }
  if (!a.variants.empty()) {
    static const VariantStats kNoStats;
    const VariantStats& stats = in.variants != nullptr ? *in.variants : kNoStats;
    std::vector<VariantCounts> counts = stats.CountsOf(a.id, a.variant_ids);
    if (std::optional<VariantChoice> v = ChooseVariant(counts, rng)) {
      choice->variant = static_cast<int>(v->index);
      choice->variant_probability = v->probability;
    }
  }
}

struct Scored {
  size_t action;
  const Treatment* treatment;
  std::vector<learn::Feature> features;
  learn::RewardEstimate reward;  // of the propensity
  double weight, scale;          // scale = weight x value x lever
  learn::RewardEstimate priority;
};

}  // namespace

bool InControlGroup(uint64_t customer_hash, double share) {
  return share > 0 && static_cast<double>(customer_hash % 1'000'000) < share * 1'000'000;
}

Decision Decide(const DecideInput& in, const learn::LinearPosterior& posterior,
                std::mt19937_64& rng) {
  Decision d;
  const Catalog& catalog = *in.catalog;
  const Settings& s = catalog.settings;
  d.candidates = in.point->candidates.size();
  d.control = InControlGroup(in.customer_hash, s.control_group);

  std::vector<Scored> scored;
  for (size_t index : in.point->candidates) {
    const Action& a = catalog.actions[index];
    const Treatment* treatment = nullptr;
    std::string_view reason = FilterReason(index, in, &treatment);
    if (!reason.empty()) {
      d.filtered.push_back({index, reason});
      continue;
    }
    Scored c{index, treatment, {}, {}, 1, 1, {}};
    for (const Action::Weight& w : a.weights) {
      if (w.when.Eval(*in.bindings)) c.weight *= w.weight;
    }
    c.scale = c.weight * a.value * a.lever;
    learn::CrossWithAction(in.features, a.hash, s.posterior.bits, &c.features);
    c.reward = posterior.Predict(c.features);
    c.priority = {c.reward.mean * c.scale, c.reward.variance * c.scale * c.scale};
    scored.push_back(std::move(c));
  }

  std::vector<learn::RewardEstimate> priorities;
  for (const Scored& c : scored) priorities.push_back(c.priority);
  std::vector<uint8_t> placed(scored.size(), 0);
  std::uniform_real_distribution<double> unit(0, 1);
  std::map<std::string_view, size_t> used;  // channel -> slots of this decision on it
  for (size_t slot = 0; slot < in.slots; ++slot) {
    std::vector<size_t> left;
    for (size_t i = 0; i < scored.size(); ++i) {
      if (placed[i]) continue;
      // An earlier slot may have used up its channel.
      const std::string& channel = scored[i].treatment->channel;
      if (used.contains(channel) && ChannelFull(in, channel, used[channel])) {
        placed[i] = 1;
        d.filtered.push_back({scored[i].action, "channel_limit"});
        continue;
      }
      left.push_back(i);
    }
    if (left.empty()) break;
    const double n = static_cast<double>(left.size());
    const double epsilon = d.control ? 1.0 : s.exploration;
    // The exploiting choice, with each action's probability of being it.
    size_t best_mean = left[0];
    for (size_t i : left) {
      if (scored[i].priority.mean > scored[best_mean].priority.mean) best_mean = i;
    }
    size_t exploit = best_mean;
    std::vector<double> exploit_p(scored.size(), 0.0);
    switch (s.policy) {
      case Policy::kThompson: {
        double top = -HUGE_VAL;
        for (size_t i : left) {
          const double sd = std::sqrt(scored[i].priority.variance);
          const double draw = scored[i].priority.mean + sd * std::normal_distribution<>()(rng);
          if (draw > top) top = draw, exploit = i;
        }
        break;
      }
      case Policy::kLinUcb: {
        double top = -HUGE_VAL;
        for (size_t i : left) {
          const double ucb =
              scored[i].priority.mean + s.ucb_alpha * std::sqrt(scored[i].priority.variance);
          if (ucb > top) top = ucb, exploit = i;
        }
        exploit_p[exploit] = 1;
        break;
      }
      case Policy::kEpsilonGreedy:
        exploit_p[exploit] = 1;
        break;
      case Policy::kSoftmax: {
        double max = -HUGE_VAL, total = 0;
        for (size_t i : left) max = std::max(max, scored[i].priority.mean);
        for (size_t i : left) {
          exploit_p[i] = std::exp((scored[i].priority.mean - max) / s.temperature);
          total += exploit_p[i];
        }
        for (size_t i : left) exploit_p[i] /= total;
        double u = unit(rng);
        exploit = left.back();
        for (size_t i : left) {
          if ((u -= exploit_p[i]) <= 0) {
            exploit = i;
            break;
          }
        }
        break;
      }
    }
    const bool uniform = unit(rng) < epsilon;
    size_t chosen = exploit;
    if (uniform) {
      chosen = left[std::min(left.size() - 1,
                             static_cast<size_t>(unit(rng) * static_cast<double>(left.size())))];
    }
    // P(best) among the actions left: Thompson sampling's probability of choosing it, and the
    // confidence of every policy.
    const double confidence = learn::ProbabilityOfBest(priorities, chosen, placed);
    const double p_exploit = s.policy == Policy::kThompson ? confidence : exploit_p[chosen];

    SlotChoice choice;
    choice.slot = slot;
    Scored& c = scored[chosen];
    const Action& a = catalog.actions[c.action];
    choice.action = c.action;
    choice.treatment = c.treatment;
    choice.propensity_term = c.reward.mean;
    choice.variance = c.reward.variance;
    choice.weight = c.weight;
    choice.value = a.value;
    choice.lever = a.lever;
    choice.priority = c.priority.mean;
    choice.propensity = (1 - epsilon) * p_exploit + epsilon / n;
    choice.explore = uniform || chosen != best_mean;
    choice.confidence = confidence;
    choice.autonomy = confidence >= s.autonomous   ? "autonomous"
                      : confidence >= s.supervised ? "supervised"
                                                   : "approval";
    // Contributions: the action's bias first, then the customer's features in order.
    const learn::LinearPosterior& model = posterior;
    for (size_t k = 0; k < c.features.size(); ++k) {
      const double contribution = model.MeanOf(c.features[k].index) * c.features[k].value;
      if (contribution == 0) continue;
      std::string name = k == 0                            ? std::string("action")
                         : k - 1 < in.feature_names.size() ? in.feature_names[k - 1]
                                                           : std::string("feature");
      choice.factors.push_back({std::move(name), contribution});
    }
    std::sort(choice.factors.begin(), choice.factors.end(), [](const Factor& x, const Factor& y) {
      return std::fabs(x.contribution) > std::fabs(y.contribution);
    });
    if (choice.factors.size() > kMaxFactors) choice.factors.resize(kMaxFactors);
    choice.features = std::move(c.features);
    ChooseDelivery(in, a, used, rng, &choice);
    choice.open.reserve(left.size());
    for (size_t i : left) choice.open.push_back(scored[i].action);
    ++used[choice.treatment->channel];
    d.slots.push_back(std::move(choice));
    placed[chosen] = 1;
  }
  return d;
}

}  // namespace whisperer::decide
