#include "state/intent.h"

#include <algorithm>
#include <cmath>

namespace whisperer::state {
namespace {

constexpr uint32_t Bit(Signal s) { return 1u << static_cast<uint32_t>(s); }

// One evidence term: its feature's name, value, half-saturation point and weight.
struct Term {
  const char* feature;
  double value;
  double half;
  double weight;
};

IntentSignal NoisyOr(IntentDetail detail, std::initializer_list<Term> terms) {
  IntentSignal s;
  double none = 1;
  for (const Term& t : terms) {
    if (t.value <= 0) continue;
    double c = t.weight * t.value / (t.value + t.half);
    none *= 1 - c;
    if (detail == IntentDetail::kWithDrivers) s.drivers.push_back({t.feature, t.value, c});
  }
  s.score = 1 - none;
  std::stable_sort(
      s.drivers.begin(), s.drivers.end(),
      [](const IntentDriver& a, const IntentDriver& b) { return a.contribution > b.contribution; });
  return s;
}

bool SortsByPrice(simdjson::dom::element properties) {
  auto mentions_price = [](std::string_view v) {
    std::string lower(v);
    for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return lower.find("price") != std::string::npos;
  };
  simdjson::dom::array sorts;
  if (properties["sorts"].get(sorts) == simdjson::SUCCESS) {
    for (simdjson::dom::element s : sorts) {
      std::string_view type;
      if (s["type"].get(type) == simdjson::SUCCESS && mentions_price(type)) return true;
    }
  }
  simdjson::dom::array filters;
  if (properties["filters"].get(filters) == simdjson::SUCCESS) {
    for (simdjson::dom::element f : filters) {
      std::string_view type;
      if (f["type"].get(type) == simdjson::SUCCESS && mentions_price(type)) return true;
    }
  }
  for (const char* key : {"sort", "sort_by", "sortBy"}) {
    std::string_view v;
    if (properties[key].get(v) == simdjson::SUCCESS && mentions_price(v)) return true;
  }
  return false;
}

}  // namespace

uint32_t ClassifySignals(api::EventType type, std::string_view name,
                         const simdjson::dom::element* properties) {
  if (type != api::EventType::kTrack) return 0;
  uint32_t bits = 0;
  if (name == "Product Viewed") bits |= Bit(Signal::kProductView);
  if (name == "Product List Viewed" || name == "Product List Filtered" ||
      name == "Products Searched") {
    bits |= Bit(Signal::kListView);
  }
  if (name == "Product Added") bits |= Bit(Signal::kCartAdd);
  if (name == "Checkout Started" || name == "Checkout Step Viewed" ||
      name == "Checkout Step Completed" || name == "Payment Info Entered") {
    bits |= Bit(Signal::kCheckout);
  }
  if (name == "Order Completed") bits |= Bit(Signal::kOrder);
  if (name == "Product Added to Wishlist") bits |= Bit(Signal::kWishlist);
  if (name == "Coupon Entered" || name == "Coupon Applied") bits |= Bit(Signal::kCoupon);
  if (name == "Promotion Viewed" || name == "Promotion Clicked") bits |= Bit(Signal::kPromotion);
  if ((name == "Product List Filtered" || name == "Product List Sorted" ||
       name == "Products Sorted" || name == "Product List Viewed") &&
      properties != nullptr && properties->is_object() && SortsByPrice(*properties)) {
    bits |= Bit(Signal::kPriceSort);
  }
  if (name == "Products Compared" || name == "Product Compared" || name == "Comparison Viewed") {
    bits |= Bit(Signal::kComparison);
  }
  if (name == "Product Reviewed" || name == "Reviews Viewed" || name == "Specifications Viewed") {
    bits |= Bit(Signal::kReview);
  }
  if (name == "Returns Policy Viewed" || name == "Guarantee Viewed" ||
      name == "Shipping Info Viewed") {
    bits |= Bit(Signal::kTrust);
  }
  return bits;
}

Intent ComputeIntent(const Profile& p, IntentScope scope, int64_t now_ms, IntentDetail detail) {
  const Sessions& s = p.sessions;
  const bool session = scope == IntentScope::kSession;
  const SignalCounts& n = session ? s.current_signals : p.signals;
  auto count = [&](Signal k) { return static_cast<double>(n[static_cast<size_t>(k)]); };
  const double sessions = session ? (s.count > 0 ? 1.0 : 0.0) : static_cast<double>(s.count);
  const double views =
      session ? static_cast<double>(s.current_views) : static_cast<double>(s.views);
  const double session_ms = session ? static_cast<double>(s.current_last_ms - s.current_start_ms)
                                    : static_cast<double>(s.total_ms);
  const double views_per_session = sessions > 0 ? views / sessions : 0;
  const double minutes_per_session = sessions > 0 ? session_ms / sessions / 60'000.0 : 0;
  // The current session's pace, to now (a session of one event counts one minute).
  const double session_minutes =
      std::max(1.0, static_cast<double>(std::max(now_ms, s.current_last_ms) - s.current_start_ms) /
                        60'000.0);
  const double per_minute =
      s.count > 0 ? static_cast<double>(s.current_events) / session_minutes : 0;
  const bool returned_within_day = s.count > 1 && s.previous_last_ms > 0 &&
                                   s.current_start_ms - s.previous_last_ms <= 86'400'000;

  Intent out;
  out.purchase_intent = NoisyOr(detail, {{"product views", count(Signal::kProductView), 2, 0.2},
                                         {"cart adds", count(Signal::kCartAdd), 1, 0.5},
                                         {"checkouts", count(Signal::kCheckout), 1, 0.7},
                                         {"wishlist adds", count(Signal::kWishlist), 1, 0.2}});
  const SignalCounts& now = s.current_signals;
  out.urgency = NoisyOr(
      detail,
      {{"events per minute in the session", per_minute, 4, 0.4},
       {"checkouts in the session", static_cast<double>(now[size_t(Signal::kCheckout)]), 1, 0.5},
       {"cart adds in the session", static_cast<double>(now[size_t(Signal::kCartAdd)]), 1, 0.3},
       {"returned within a day", returned_within_day ? 1.0 : 0.0, 1, 0.3}});
  out.price_sensitivity =
      NoisyOr(detail, {{"coupons", count(Signal::kCoupon), 1, 0.5},
                       {"promotions", count(Signal::kPromotion), 1, 0.3},
                       {"price sorts and filters", count(Signal::kPriceSort), 1, 0.4}});
  out.research_depth =
      NoisyOr(detail, {{"views per session", views_per_session, 5, 0.3},
                       {"comparisons", count(Signal::kComparison), 1, 0.4},
                       {"reviews and specifications", count(Signal::kReview), 1, 0.3},
                       {"minutes per session", minutes_per_session, 5, 0.2},
                       {"trust pages", count(Signal::kTrust), 1, 0.2}});
  const double x = -3 + 3 * out.purchase_intent.score + 0.8 * (s.count > 1 ? 1 : 0) +
                   0.6 * static_cast<double>(std::min<uint64_t>(p.orders, 3));
  out.conversion_probability = 1 / (1 + std::exp(-x));
  return out;
}

namespace {

void WriteSignal(JsonWriter& w, std::string_view key, const IntentSignal& s) {
  w.Key(key);
  w.StartObject();
  w.Key("score");
  w.Double(s.score);
  w.Key("drivers");
  w.StartArray();
  for (const IntentDriver& d : s.drivers) {
    w.StartObject();
    w.Key("feature");
    w.String(d.feature);
    w.Key("value");
    w.Double(d.value);
    w.Key("contribution");
    w.Double(d.contribution);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
}

}  // namespace

void WriteIntent(const Profile& profile, int64_t now_ms, JsonWriter& w) {
  w.StartObject();
  for (IntentScope scope : {IntentScope::kProfile, IntentScope::kSession}) {
    Intent i = ComputeIntent(profile, scope, now_ms);
    w.Key(scope == IntentScope::kProfile ? "profile" : "session");
    w.StartObject();
    WriteSignal(w, "purchaseIntent", i.purchase_intent);
    WriteSignal(w, "urgency", i.urgency);
    WriteSignal(w, "priceSensitivity", i.price_sensitivity);
    WriteSignal(w, "researchDepth", i.research_depth);
    w.Key("conversionProbability");
    w.Double(i.conversion_probability);
    w.EndObject();
  }
  w.EndObject();
}

}  // namespace whisperer::state
