// Conditions about one event and its customer: the names the condition language (expr/expr.h)
// may use in journeys, personas and rules, and the Bindings that answer them from an event's
// facts, its parsed JSON and the customer's profile.
//
//   event.type, event.name                    strings (event.name: a track's event, else "")
//   event.properties.<path>                   any: a property of the event, nested with dots
//   event.device.type|os|browser              strings from the user agent (state/device.h)
//   context.campaign.source|medium|name       strings (UTM)
//   context.referrer.host                     string: the host of context.page.referrer
//   profile.events                            number of events counted so far
//   profile.sessions.count                    number
//   profile.sessions.current.events|views     numbers in the current session
//   profile.orders.count, profile.orders.revenue   numbers
//   profile.returning                         bool: more than one session so far
//   profile.since_first_seen                  number: milliseconds since the first event
//   profile.traits.<name>                     any: the trait's latest value
//   profile.consent.<purpose>                 bool when stated, missing otherwise
//   profile.counts.<event>                    number: events of that name so far (0 if none),
//                                             the name in lower case with every other
//                                             character an underscore (product_viewed)
//   profile.journeys.<id>                     string: the customer's stage in that journey, or
//                                             converted / exited; missing when never entered
//   profile.shares.<event>                    number: those events' share of all events, 0..1
//   profile.persona                           string: the current persona (state/personas.h),
//                                             missing when none; personas see the one before
//                                             this event
//   profile.orders.average                    number: revenue per order (missing: no orders)
//   profile.sessions.average_views            number: page and screen views per session
//   profile.intent.<signal>, session.intent.<signal>   numbers 0..1 (state/intent.h), signal one
//                                             of purchase_intent, urgency, price_sensitivity,
//                                             research_depth, conversion_probability
//   profile.scores.conversion, profile.scores.churn   numbers 0..1: the models' probabilities
//                                             (state/models.h) at this event; missing when
//                                             models are off
//   profile.scores.lead_score                 number 0..100: the conversion probability x 100
//   event.sentiment                           number -1..1: the VADER compound of this event's
//                                             first scored text property (models.text.
//                                             properties, state/text_signals.h); missing when
//                                             it has none
//   profile.sentiment.latest                  number -1..1: the compound of the customer's
//                                             latest scored text; missing when none
//   profile.sentiment.average                 number -1..1: the mean compound of all of them;
//                                             missing when none
//   profile.sentiment.count                   number: texts scored so far (0 if none)
//   profile.text_intent                       string: the top intent of the latest text the
//                                             workspace's intent model read; missing when none
//   profile.text_intent_probability           number 0..1: that intent's probability; missing
//                                             when none
//
// Values are those after the event was folded into the profile (so the first event of a new
// visitor sees profile.events == 1). Strings, numbers and bools of the JSON are values; objects,
// arrays and null are missing.
//
// Thread-safety: ConditionSchema() is immutable. An EventBindings is used by one thread for one
// event.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "expr/expr.h"
#include "simdjson.h"
#include "state/intent.h"
#include "state/profile.h"

namespace whisperer::state {

const expr::Schema& ConditionSchema();

// An event name as profile.counts.<name> spells it: lower case, every character other than an
// ASCII letter or digit one underscore ("Product Viewed" -> product_viewed, "Café" -> caf_).
std::string CountName(std::string_view name);

// What a workspace's conditions may name that the schema cannot know: its journeys with their
// stages, its personas and its consent purposes. A condition that names another journey or
// persona, compares profile.journeys.<id> with a stage that journey does not have (or
// `converted` / `exited`), or names an unknown purpose never holds: a typo, refused.
struct ConditionNames {
  std::map<std::string, std::vector<std::string>, std::less<>> journeys;  // id -> stage ids
  std::set<std::string, std::less<>> personas;
  std::optional<ConsentPurposes> consent;  // none: purposes are not checked
};

// Compiles a condition written at `where` (a config location) against ConditionSchema(), and,
// with `names`, checks the names it uses against them; errors are invalid_config and read
// "<where>: column N: <reason>".
absl::StatusOr<expr::Expr> CompileCondition(std::string_view source, std::string_view where,
                                            const ConditionNames* names = nullptr);

class EventBindings final : public expr::Bindings {
 public:
  // `event` is the stored event's parsed JSON; `device` may be null. All must outlive the
  // bindings.
  EventBindings(const EventFacts& facts, simdjson::dom::element event, const Profile& profile,
                const DeviceFacts* device, int64_t now_ms);

  expr::Value Field(int slot) const override;
  expr::Value Below(int slot, const std::vector<std::string>& rest) const override;

 private:
  const EventFacts& facts_;
  simdjson::dom::element event_;
  const Profile& profile_;
  const DeviceFacts* device_;
  int64_t now_ms_;
  // Decoded trait strings, kept while the bindings live (values point into them).
  mutable std::deque<std::string> scratch_;
  // Parses a trait that is an object when a condition names a path below it.
  mutable simdjson::dom::parser trait_parser_;
  // Computed on first use.
  mutable std::optional<Intent> profile_intent_, session_intent_;
};

}  // namespace whisperer::state
