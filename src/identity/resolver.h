// Identity resolution: which canonical profile an event belongs to, and which profiles it
// proves to be one customer.
//
// An identifier is a (type, value) pair: `userId`, `anonymousId`, `email`, `phone`, or an
// external id named in the workspace's config. The identity graph (state/profiles.h) maps each
// identifier to one profile. For every event, Resolve() decides, from the event's identifiers
// and the profiles they already belong to, a plan that state/profiles.h then carries out:
//
//   1. Identifiers are normalized (emails lower-cased, phones reduced to + and digits, all
//      trimmed) and blocked values dropped (`""`, `null`, `undefined`, `0`, `anonymous`,
//      `test@test.com`, ... configurable), then sorted by the workspace's priority order
//      (default userId > email > phone > external ids > anonymousId).
//   2. The target is the profile of the highest-priority identifier that has one; when none
//      has, a new profile is created.
//   3. Every other profile the event's identifiers belong to is merged into the target, unless
//      a rule forbids it: the merged profile would hold more identifiers of a type than the
//      type's limit (default: one userId, so two different userIds are never merged) or more
//      than max_identifiers in all (default 1,000), the survivor would have absorbed more than
//      max_merges profiles (default 100), either side denied `cross_device` consent, or an
//      unmerge separated the two. A refused profile keeps its identifiers; the
//      event counts for the target only.
//   4. Identifiers that belong to no profile are linked to the target, unless that would break
//      a limit (they are then left unlinked).
//
// This is written here, not taken from a library, because it is the product's core: the rules
// are Segment Unify's (blocked values, limits, priority) plus consent and unmerge.
//
// Thread-safety: pure functions over the arguments.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"

namespace whisperer::identity {

inline constexpr std::string_view kUserId = "userId";
inline constexpr std::string_view kAnonymousId = "anonymousId";
inline constexpr std::string_view kEmail = "email";
inline constexpr std::string_view kPhone = "phone";

struct Identifier {
  std::string type;
  std::string value;

  friend bool operator==(const Identifier&, const Identifier&) = default;
  friend auto operator<=>(const Identifier&, const Identifier&) = default;
};

struct IdentityRules {
  // Values that never identify anyone, compared after normalization and case-insensitively.
  std::vector<std::string> blocked_values = {"",     "null", "undefined",     "0",   "-1",
                                             "none", "nil",  "anonymous",     "n/a", "unknown",
                                             "test", "[]",   "test@test.com", "{}"};
  // Most identifiers of a type one profile may hold; a type not listed has no limit.
  std::map<std::string, size_t, std::less<>> limits = {{"userId", 1}};
  // Most identifiers one profile holds, of all types together (Segment's guardrail, 1,000
  // mappings). Past it an event still belongs to the profile, but its new identifiers are not
  // linked and no profile is merged into it: a profile with thousands (a login shared by a
  // whole office, a test account) would cost every one of its events that much work.
  size_t max_identifiers = 1000;
  // Most profiles merged into one, counting those merged into them (Segment's guardrail, 100
  // merges). A merged profile's timeline stays part of the survivor's, so a profile of
  // thousands (merged, unmerged and merged again) would make every read of its timeline, and
  // each further merge, that much slower.
  size_t max_merges = 100;
  // Identifier types from the strongest to the weakest. Types not listed (external ids not
  // named here) rank after the listed ones, in the order of `external_ids`. A workspace that
  // configures none gets this list with its external ids before anonymousId
  // (server::ProfileSettingsOf).
  std::vector<std::string> priority = {"userId", "email", "phone", "anonymousId"};
  // External id types, read from context.externalIds[].type and from traits of that name.
  std::vector<std::string> external_ids;

  // True when `type` is one of the built-in types or a configured external id.
  bool KnownType(std::string_view type) const;
  // Lower is stronger.
  size_t Rank(std::string_view type) const;
  // Whether `value` is on blocked_values (compared case-insensitively after trimming).
  bool Blocked(std::string_view value) const;
};

// Trims, lower-cases emails, reduces phones to a leading + and digits. Returns "" for values
// that normalize to nothing.
std::string NormalizeIdentifier(std::string_view type, std::string_view value);

// Normalizes `ids`, drops blocked values and duplicates, and sorts them by priority (ties keep
// their order).
std::vector<Identifier> PrepareIdentifiers(std::vector<Identifier> ids, const IdentityRules& rules);

// What Resolve needs to know about an existing profile.
struct ProfileFacts {
  const std::vector<Identifier>* identifiers = nullptr;
  bool cross_device_denied = false;
  // Profiles this one was split from by an unmerge; never merged with again, nor with a profile
  // they were merged into since (whose `absorbed` lists them).
  const std::vector<uint64_t>* separated = nullptr;
  // Profiles merged into this one.
  const std::vector<uint64_t>* absorbed = nullptr;
};

enum class MergeRefusal : uint8_t { kNone, kLimit, kConsent, kSeparated };
std::string_view MergeRefusalName(MergeRefusal reason);

struct ResolvePlan {
  // The profile the event belongs to; 0 means "create a new one".
  uint64_t target = 0;
  // Profiles to merge into the target, in order.
  std::vector<uint64_t> merge;
  struct Refused {
    uint64_t profile;
    MergeRefusal reason;
  };
  std::vector<Refused> refused;
  // Identifiers new to the graph, to link to the target.
  std::vector<Identifier> link;
  // Identifiers new to the graph left unlinked because of a limit.
  std::vector<Identifier> unlinked;
};

// `ids` as PrepareIdentifiers returns them; `owners[i]` is the profile `ids[i]` belongs to, or
// 0. `facts(p)` describes profile p (only called for non-zero owners).
ResolvePlan Resolve(const std::vector<Identifier>& ids, const std::vector<uint64_t>& owners,
                    absl::FunctionRef<ProfileFacts(uint64_t)> facts, const IdentityRules& rules);

}  // namespace whisperer::identity
