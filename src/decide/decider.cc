#include "decide/decider.h"

#include <algorithm>
#include <cmath>

#include "common/scratch.h"

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

// Whether the customer denied the marketing purpose of `channel` (ChannelPurpose).
bool ChannelDenied(const DecideInput& in, std::string_view channel) {
  const std::string_view purpose = ChannelPurpose(channel);
  return !purpose.empty() && in.profile->Denied(purpose);
}

bool RequestAllows(const DecideInput& in, std::string_view channel) {
  return in.channels.empty() ||
         std::find(in.channels.begin(), in.channels.end(), channel) != in.channels.end();
}

// The first of `a`'s treatments on a channel the request allows, the customer has not denied,
// and that is not at its limit counting `earlier(channel)` slots of the decision being made;
// null when there is none.
template <typename Earlier>
const Treatment* FirstUsableTreatment(const DecideInput& in, const Action& a, Earlier&& earlier) {
  for (const Treatment& t : a.treatments) {
    if (RequestAllows(in, t.channel) && !ChannelDenied(in, t.channel) &&
        !ChannelFull(in, t.channel, earlier(t.channel))) {
      return &t;
    }
  }
  return nullptr;
}

}  // namespace

std::optional<ContactBreach> ContactPolicyBreach(
    const Catalog& catalog, std::span<const std::pair<std::string_view, std::string_view>> slots,
    const ContactHistory& history, int64_t now_ms) {
  for (size_t i = 0; i < slots.size(); ++i) {
    const auto& [action_id, channel] = slots[i];
    auto earlier = [&](auto&& same) {
      size_t n = 0;
      for (size_t j = 0; j < i; ++j) n += same(slots[j]);
      return n;
    };
    if (const Action* a = catalog.FindAction(action_id)) {
      if (a->suppress_negatives > 0 &&
          static_cast<int64_t>(history.NegativesOf(a->id, now_ms - a->suppress_within_ms)) >=
              a->suppress_negatives) {
        return ContactBreach{i, "suppressed"};
      }
      const size_t mine = earlier([&](const auto& s) { return s.first == action_id; });
      if (a->contact_max > 0 &&
          static_cast<int64_t>(history.OfAction(a->id, now_ms - a->contact_per_ms) + mine) >=
              a->contact_max) {
        return ContactBreach{i, "contact_limit"};
      }
    }
    auto limit = catalog.settings.channel_limits.find(channel);
    if (limit != catalog.settings.channel_limits.end()) {
      const size_t same = earlier([&](const auto& s) { return s.second == channel; });
      if (static_cast<int64_t>(history.OnChannel(channel, now_ms - limit->second.per_ms) + same) >=
          limit->second.max) {
        return ContactBreach{i, "channel_limit"};
      }
    }
  }
  return std::nullopt;
}

std::string_view ChannelPurpose(std::string_view channel) {
  if (channel == "email") return "marketing_email";
  if (channel == "sms") return "marketing_sms";
  if (channel == "push") return "marketing_push";
  return {};
}

std::string_view FilterReason(size_t index, const DecideInput& in, const Treatment** treatment) {
  const Action& a = in.catalog->actions[index];
  if ((a.valid_from_ms != 0 && in.now_ms < a.valid_from_ms) ||
      (a.valid_until_ms != 0 && in.now_ms >= a.valid_until_ms)) {
    return "not_valid_now";
  }
  if (!Holds(a.eligibility, *in.bindings)) return "not_eligible";
  if (!Holds(a.applicability, *in.bindings)) return "not_applicable";
  if (!Holds(a.suitability, *in.bindings)) return "not_suitable";
  if (!MissingConsent(a, *in.profile).empty()) return "no_consent";
  // The treatments the request allows, by the channels' consent: a customer who said no to
  // every one is told apart from one the contact policy or a budget holds back.
  bool allowed = false, consented = false;
  for (const Treatment& t : a.treatments) {
    if (!RequestAllows(in, t.channel)) continue;
    allowed = true;
    consented = consented || !ChannelDenied(in, t.channel);
  }
  if (!allowed) return "no_channel";
  if (!consented) return "no_consent";
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
  *treatment = FirstUsableTreatment(in, a, [](std::string_view) { return size_t{0}; });
  return *treatment == nullptr ? "channel_limit" : "";
}

namespace {

// The channels of a decision's earlier slots, with how many slots each: a handful at most, so a
// vector searched linearly beats a map.
class UsedChannels {
 public:
  size_t Of(std::string_view channel) const {
    for (const auto& [c, n] : used_) {
      if (c == channel) return n;
    }
    return 0;
  }
  void Add(std::string_view channel) {
    for (auto& [c, n] : used_) {
      if (c == channel) {
        ++n;
        return;
      }
    }
    used_.emplace_back(channel, 1);
  }

 private:
  std::vector<std::pair<std::string_view, size_t>> used_;
};

// The slot's channel and content variant (see decider.h, step 4). `used`: the channels of the
// earlier slots.
void ChooseDelivery(const DecideInput& in, const Action& a, const UsedChannels& used,
                    std::mt19937_64& rng, SlotChoice* choice) {
  const Settings& s = in.catalog->settings;
  if (s.channel_choice && a.treatments.size() > 1) {
    std::vector<std::string> usable;
    std::vector<const Treatment*> by_channel;
    for (const Treatment& t : a.treatments) {
      if (!RequestAllows(in, t.channel) || ChannelDenied(in, t.channel)) continue;
      if (ChannelFull(in, t.channel, used.Of(t.channel))) continue;
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
  learn::RewardEstimate reward;  // of the propensity
  double weight, scale;          // scale = weight x value x lever
};

// The explanation of a prediction: the features' contributions (mean x value) largest in
// magnitude first, up to kMaxFactors, named after the customer's features (the action's bias
// first). Only the few kept are named: building every feature's name cost more than the rest
// of the explanation.
std::vector<Factor> FactorsOf(std::span<const learn::Feature> crossed,
                              std::span<const std::string> names,
                              const learn::LinearPosterior& model) {
  struct Contribution {
    double value;
    size_t feature;
  };
  ScratchArray<Contribution, 128> scratch(crossed.size());
  Contribution* all = scratch.data();
  size_t n = 0;
  for (size_t k = 0; k < crossed.size(); ++k) {
    const double contribution = model.MeanOf(crossed[k].index) * crossed[k].value;
    if (contribution != 0) all[n++] = {contribution, k};
  }
  // Sorted as the factors themselves used to be (so that ties, as between features always
  // present together, come out in the same order), but without their names.
  std::sort(all, all + n, [](const Contribution& x, const Contribution& y) {
    return std::fabs(x.value) > std::fabs(y.value);
  });
  const size_t kept = std::min(n, kMaxFactors);
  std::vector<Factor> factors;
  factors.reserve(kept);
  for (size_t f = 0; f < kept; ++f) {
    const size_t k = all[f].feature;
    factors.push_back({k == 0                 ? std::string("action")
                       : k - 1 < names.size() ? names[k - 1]
                                              : std::string("feature"),
                       all[f].value});
  }
  return factors;
}

}  // namespace

std::string_view MissingConsent(const Action& a, const state::Profile& profile) {
  if (a.consent.empty()) return {};
  auto it = profile.consent.find(a.consent);
  return it != profile.consent.end() && it->second.granted ? std::string_view() : a.consent;
}

bool InControlGroup(uint64_t customer_hash, double share) {
  return share > 0 && customer_hash != 0 &&
         static_cast<double>(customer_hash % 1'000'000) < share * 1'000'000;
}

Decision Decide(const DecideInput& in, const learn::LinearPosterior& posterior,
                std::mt19937_64& rng) {
  Decision d;
  const Catalog& catalog = *in.catalog;
  const Settings& s = catalog.settings;
  d.candidates = in.point->candidates.size();
  d.control = InControlGroup(in.control_bucket != 0 ? in.control_bucket : in.customer_hash,
                             s.control_group);

  d.filtered.reserve(in.point->candidates.size());
  d.eligible.reserve(in.point->candidates.size());
  d.slots.reserve(in.slots);
  std::vector<Scored> scored;
  scored.reserve(in.point->candidates.size());
  std::vector<learn::RewardEstimate> priorities;  // parallel to scored
  priorities.reserve(in.point->candidates.size());
  std::vector<double> sds;  // of the priorities: drawn from in every slot
  sds.reserve(in.point->candidates.size());
  const learn::CrossableFeatures features(in.features);
  for (size_t index : in.point->candidates) {
    const Action& a = catalog.actions[index];
    const Treatment* treatment = nullptr;
    std::string_view reason = FilterReason(index, in, &treatment);
    if (!reason.empty()) {
      d.filtered.push_back({index, reason});
      continue;
    }
    Scored c{index, treatment, {}, 1, 1};
    for (const Action::Weight& w : a.weights) {
      if (w.when.Eval(*in.bindings)) c.weight *= w.weight;
    }
    c.scale = c.weight * a.value * a.lever;
    // Only the chosen actions' crossed features are kept (below).
    c.reward = posterior.PredictCrossed(features, a.hash, s.posterior.bits);
    priorities.push_back({c.reward.mean * c.scale, c.reward.variance * c.scale * c.scale});
    const double variance = priorities.back().variance;
    sds.push_back(variance > 0 ? std::sqrt(variance) : 0);
    scored.push_back(c);
    d.eligible.push_back(index);
  }

  std::vector<uint8_t> placed(scored.size(), 0);
  std::uniform_real_distribution<double> unit(0, 1);
  UsedChannels used;  // channel -> slots of this decision on it
  const bool limits = !s.channel_limits.empty();
  std::vector<size_t> left;
  left.reserve(scored.size());
  std::vector<double> exploit_p(s.policy == Policy::kThompson ? 0 : scored.size());
  for (size_t slot = 0; slot < in.slots; ++slot) {
    left.clear();
    for (size_t i = 0; i < scored.size(); ++i) {
      if (placed[i]) continue;
      // An earlier slot may have used up its channel (only if channels have limits at all):
      // then it takes its first treatment on a channel with room, if any.
      const std::string& channel = scored[i].treatment->channel;
      const size_t on_channel = limits ? used.Of(channel) : 0;
      if (on_channel > 0 && ChannelFull(in, channel, on_channel)) {
        const Treatment* other = FirstUsableTreatment(
            in, catalog.actions[scored[i].action], [&](std::string_view c) { return used.Of(c); });
        if (other == nullptr) {
          placed[i] = 1;
          d.filtered.push_back({scored[i].action, "channel_limit", slot + 1});
          continue;
        }
        scored[i].treatment = other;
      }
      left.push_back(i);
    }
    if (left.empty()) break;
    const double n = static_cast<double>(left.size());
    const double epsilon = d.control ? 1.0 : s.exploration;
    // The exploiting choice, with each action's probability of being it.
    size_t best_mean = left[0];
    for (size_t i : left) {
      if (priorities[i].mean > priorities[best_mean].mean) best_mean = i;
    }
    size_t exploit = best_mean;
    std::fill(exploit_p.begin(), exploit_p.end(), 0.0);
    switch (s.policy) {
      case Policy::kThompson: {
        // Equal draws (of actions known exactly: variance 0) are a tie broken uniformly, the
        // way ProbabilityOfBest counts it.
        double top = -HUGE_VAL;
        uint64_t ties = 0;
        for (size_t i : left) {
          const double draw = priorities[i].mean + sds[i] * learn::StandardNormal(rng);
          if (draw > top) {
            top = draw, exploit = i, ties = 1;
          } else if (draw == top && rng() % ++ties == 0) {
            exploit = i;
          }
        }
        break;
      }
      case Policy::kLinUcb: {
        double top = -HUGE_VAL;
        for (size_t i : left) {
          const double ucb = priorities[i].mean + s.ucb_alpha * sds[i];
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
        for (size_t i : left) max = std::max(max, priorities[i].mean);
        for (size_t i : left) {
          exploit_p[i] = std::exp((priorities[i].mean - max) / s.temperature);
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
    const double confidence = learn::ProbabilityOfBest(priorities, sds, chosen, placed);
    const double p_exploit = s.policy == Policy::kThompson ? confidence : exploit_p[chosen];

    SlotChoice choice;
    choice.slot = slot;
    const Scored& c = scored[chosen];
    const Action& a = catalog.actions[c.action];
    choice.action = c.action;
    choice.treatment = c.treatment;
    choice.propensity_term = c.reward.mean;
    choice.variance = c.reward.variance;
    choice.weight = c.weight;
    choice.value = a.value;
    choice.lever = a.lever;
    choice.priority = priorities[chosen].mean;
    choice.propensity = (1 - epsilon) * p_exploit + epsilon / n;
    // An action tied with the best mean is as good a choice as it.
    choice.explore = uniform || priorities[chosen].mean < priorities[best_mean].mean;
    choice.confidence = confidence;
    choice.autonomy = confidence >= s.autonomous   ? "autonomous"
                      : confidence >= s.supervised ? "supervised"
                                                   : "approval";
    learn::CrossWithAction(in.features, a.hash, s.posterior.bits, &choice.features);
    choice.factors = FactorsOf(choice.features, in.feature_names, posterior);
    ChooseDelivery(in, a, used, rng, &choice);
    used.Add(choice.treatment->channel);
    d.slots.push_back(std::move(choice));
    placed[chosen] = 1;
  }
  return d;
}

}  // namespace whisperer::decide
