// Deciding: for one customer at one decision point, which actions to take, in which slots.
//
//   1. Filters. Each candidate of the decision point is dropped, with the reason code of the
//      first of these that holds, when it is outside its validity window (not_valid_now), its
//      eligibility, applicability or suitability condition does not hold (not_eligible,
//      not_applicable, not_suitable), the customer has not granted its consent purpose
//      (no_consent), none of its treatments is on a channel the request allows (no_channel),
//      the customer denied the marketing purpose of every allowed one (no_consent), its budget
//      is spent (budget_exhausted: today's count, or the total spend), the customer gave it
//      `suppress_after.negatives` negative outcomes within its period (suppressed), it was acted
//      on `contact.max` times for the customer within its period (contact_limit), or every
//      allowed, consented one is on a channel at its limit (channel_limit; the slots of this
//      decision count towards it too).
//   2. Scores. Each remaining action's reward is predicted by the decision point's bandit
//      (learn/bandit.h) from the customer's features crossed with the action. Its priority is
//      that propensity x context weight (the product of its weights whose condition holds) x
//      value x business lever: in priority units the prediction is N(m c, v c^2) for c the
//      product of the last three.
//   3. Arbitration, slot by slot among the actions not yet placed, by the policy:
//        thompson        the highest priority drawn from each action's posterior;
//        linucb          the highest m c + alpha sqrt(v) c;
//        epsilon_greedy  the highest m c;
//        softmax         drawn with probability proportional to exp(m c / temperature);
//      and with probability `exploration`, instead, uniformly among them. A customer in the
//      control group (a stable `control_group` share of customers) gets uniform draws in every
//      slot: the lift of the engine is measured against them. Every choice logs the probability
//      with which it was made (the propensity offline evaluation divides by): for a slot, the
//      probability of that action there given the actions of the earlier slots.
//   4. Delivery. With channel choice, the slot's treatment is drawn among the action's usable
//      ones (a channel the request allows and not at its limit) by Thompson sampling on the
//      customer's engagement per channel (decide/engagement.h); else it is the first usable one.
//      An action with content variants gets one by its own Thompson-sampling bandit.
//   5. Autonomy. The confidence of a slot's action is the posterior probability that it has the
//      highest priority among the actions left for the slot (learn::ProbabilityOfBest). From
//      `autonomous` the engine acts alone; from `supervised` it acts and flags the decision for
//      review; below, the slot is held for a person's approval.
//
// Thread-safety: Decide is a pure function of its arguments (the posterior is only read).
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <random>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "decide/catalog.h"
#include "decide/contacts.h"
#include "expr/expr.h"
#include "learn/bandit.h"
#include "state/profile.h"

namespace whisperer::decide {

struct DecideInput {
  const Catalog* catalog = nullptr;
  const DecisionPoint* point = nullptr;
  size_t slots = 1;
  std::vector<std::string> channels;  // allowed channels; empty: every channel
  const expr::Bindings* bindings = nullptr;
  const state::Profile* profile = nullptr;
  int64_t now_ms = 0;
  // The customer's and the context's hashed features, with their names (FeatureBuilder with
  // keep_names), crossed with each action before scoring.
  std::span<const learn::Feature> features;
  std::span<const std::string> feature_names;
  uint64_t customer_hash = 0;  // the customer's (their profile's, or a first-time visitor's)
  // The hash the customer's control group is drawn by: the customer_hash of their first
  // decision, kept (server/decide_service.h), so that the group stays when a visitor gets a
  // profile or profiles merge; 0: customer_hash.
  uint64_t control_bucket = 0;
  const ContactHistory* contacts = nullptr;  // for the contact policy; null: none yet
  // Per catalog action, 1 when its budget is spent (server/decide_service.h keeps the counts);
  // empty: no budgets.
  std::span<const uint8_t> budget_spent;
  // With Settings::channel_choice: the customer's and the workspace's engagement counts
  // (decide/engagement.h); null: none yet. With variants: the workspace's counts per variant.
  const Engagement* engagement = nullptr;
  const Engagement* workspace_engagement = nullptr;
  const VariantStats* variants = nullptr;
};

struct Filtered {
  size_t action = 0;
  std::string_view reason;
  size_t slot = 0;  // channel_limit: the slot (1-based) at which its channel was full; else 0
};

struct Factor {
  std::string feature;
  double contribution = 0;  // to the predicted reward, signed
};

struct SlotChoice {
  size_t slot = 0;  // 0-based
  size_t action = 0;
  const Treatment* treatment = nullptr;
  double propensity_term = 0;  // the posterior mean reward m
  double variance = 0;
  double weight = 1;
  double value = 1;
  double lever = 1;
  double priority = 0;                   // m x weight x value x lever
  double propensity = 0;                 // the probability this action was chosen for this slot
  bool explore = false;                  // drawn uniformly, or sampled away from the best mean
  double confidence = 0;                 // P(best) under the posterior among the actions left
  std::string_view autonomy;             // autonomous, supervised or approval
  std::vector<learn::Feature> features;  // crossed: what a reward teaches
  // The treatment's channel was drawn among this many usable ones (channel choice), with this
  // probability; 1 and 1 when there was no choice.
  size_t channels = 1;
  double channel_probability = 1;
  // The content variant (index into the action's variants; -1: it has none) and its probability.
  int variant = -1;
  double variant_probability = 1;
  std::vector<Factor> factors;  // the largest contributions, up to 5
};

struct Decision {
  std::vector<SlotChoice> slots;
  std::vector<Filtered> filtered;
  // The actions scored, in catalog order: the first slot's candidates. Each later slot is
  // chosen among those not chosen before it and not filtered as channel_limit at or before it
  // (SlotCandidates).
  std::vector<size_t> eligible;
  size_t candidates = 0;  // of the decision point
  bool control = false;
};

// The actions the slot at `position` (1-based) was chosen among, from what a decision keeps
// once for all its slots: `eligible` without `chosen_before` (the actions of the slots before
// it) and without those filtered as channel_limit at or before it (action, slot). T is an
// action's index or its id.
template <typename T>
std::vector<T> SlotCandidates(const std::vector<T>& eligible, const std::vector<T>& chosen_before,
                              const std::vector<std::pair<T, size_t>>& channel_limited,
                              size_t position) {
  std::vector<T> out;
  for (const T& a : eligible) {
    bool open = std::find(chosen_before.begin(), chosen_before.end(), a) == chosen_before.end();
    for (const auto& [b, at] : channel_limited) open = open && !(b == a && at <= position);
    if (open) out.push_back(a);
  }
  return out;
}

// Why catalog action `index` cannot be a candidate for the customer of `in` now (a reason code
// of Filtered), or "" when it can; then `*treatment` is the treatment it would be given. What
// `in` leaves out is not checked: no budgets, no contact history, every channel.
std::string_view FilterReason(size_t index, const DecideInput& in, const Treatment** treatment);

// What acting now on `slots` (action id, channel; in slot order) would break of the catalog's
// contact policy for a customer with `history`: the first slot that would, and why
// ("suppressed", "contact_limit" or "channel_limit", as decide filters), each slot counting
// against the ones after it. Nullopt when none would. Approving held slots checks it again:
// contacts made since the decision was held count.
struct ContactBreach {
  size_t slot = 0;  // index into `slots`
  std::string_view reason;
};
std::optional<ContactBreach> ContactPolicyBreach(
    const Catalog& catalog, std::span<const std::pair<std::string_view, std::string_view>> slots,
    const ContactHistory& history, int64_t now_ms);

// The marketing consent purpose of a channel: marketing_email, marketing_sms and marketing_push
// for email, sms and push, none for the others. A customer who denied it gets no treatment on
// that channel, whatever the action (an action's own `consent` must be granted on top); an
// action left without a treatment that way is filtered as no_consent.
std::string_view ChannelPurpose(std::string_view channel);

// The consent purpose action `a` needs that `profile` has not granted, or "" when it needs none
// or has it. Decide filters such an action as no_consent; approving a held slot and an expired
// approval's fallback check it again, since consent may have been withdrawn meanwhile.
std::string_view MissingConsent(const Action& a, const state::Profile& profile);

// Whether the customer with this hash is in the control group of `share`. Hash 0 names no one (a
// request whose identifiers are all blocked values): never in it, or all such traffic would be.
bool InControlGroup(uint64_t customer_hash, double share);

Decision Decide(const DecideInput& input, const learn::LinearPosterior& posterior,
                std::mt19937_64& rng);

}  // namespace whisperer::decide
