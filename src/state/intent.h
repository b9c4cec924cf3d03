// Intent signals: what a customer is trying to do, each a number from 0 to 1 with the features
// that drove it, for the whole profile and for the current session.
//
// The evidence is counted as events are folded (state/profile.h: Profile::signals and
// Sessions::current_signals, by ClassifySignals); the signals are computed from it when read, so
// they always reflect the latest event and the time of the read. Each signal is a noisy-or of
// saturating evidence terms:
//
//   signal = 1 - prod_i (1 - w_i * sat(x_i, h_i)),   sat(x, h) = x / (x + h)
//
// so one strong piece of evidence gives up to its weight w_i, each further one adds less, and
// sat reaches half at h_i. The terms, x_i (h_i) weight w_i:
//
//   purchase_intent   product views (2) 0.2; cart adds (1) 0.5; checkouts (1) 0.7;
//                     wishlist adds (1) 0.2
//   urgency           events per minute in the session (4) 0.4; checkouts in the session (1)
//                     0.5; cart adds in the session (1) 0.3; returned within a day of the
//                     previous session (1 when so) 0.3
//   price_sensitivity coupons (1) 0.5; promotions viewed or clicked (1) 0.3; lists sorted or
//                     filtered by price (1) 0.4
//   research_depth    views per session (5) 0.3; comparisons (1) 0.4; reviews and
//                     specifications (1) 0.3; minutes per session (5) 0.2; trust pages (1) 0.2
//
// For a session the counts are the session's; for the profile, all sessions' (urgency is about
// now, so it reads the current session in both). The conversion
// probability is a logistic function of the purchase intent and the history:
//
//   conversion = 1 / (1 + exp(-(-3 + 3 * purchase_intent + 0.8 * returning
//                                + 0.6 * min(orders, 3))))
//
// (The learned propensity models of a later issue replace this formula behind the same field.)
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/json_writer.h"
#include "simdjson.h"
#include "state/profile.h"

namespace whisperer::state {

// The Signal kinds of an event (bit i for kind i), by its type, name and properties (null when
// the event has no properties object).
uint32_t ClassifySignals(api::EventType type, std::string_view name,
                         const simdjson::dom::element* properties);

struct IntentDriver {
  std::string feature;      // e.g. "cart adds"
  double value = 0;         // the feature's value
  double contribution = 0;  // w * sat(value, h): what it adds alone
};

struct IntentSignal {
  double score = 0;
  std::vector<IntentDriver> drivers;  // the terms with a value, strongest first
};

struct Intent {
  IntentSignal purchase_intent, urgency, price_sensitivity, research_depth;
  double conversion_probability = 0;
};

enum class IntentScope { kProfile, kSession };

// Whether ComputeIntent lists each signal's drivers. kScoresOnly leaves them empty, the scores
// equal: what model features and conditions read, on every event, without the drivers'
// allocations (half of ProfileFeatures' time, bench/, November 2026).
enum class IntentDetail { kWithDrivers, kScoresOnly };

// The intent of `profile` over all sessions or the current one, at `now_ms`.
Intent ComputeIntent(const Profile& profile, IntentScope scope, int64_t now_ms,
                     IntentDetail detail = IntentDetail::kWithDrivers);

// {"profile": {...}, "session": {...}}, each {"purchaseIntent": {"score", "drivers": [...]},
// "urgency", "priceSensitivity", "researchDepth", "conversionProbability"}.
void WriteIntent(const Profile& profile, int64_t now_ms, JsonWriter& w);

}  // namespace whisperer::state
