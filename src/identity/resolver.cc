#include "identity/resolver.h"

#include <algorithm>
#include <cctype>
#include <span>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "common/strings.h"

namespace whisperer::identity {
namespace {

bool Contains(const std::vector<uint64_t>* list, uint64_t id) {
  return list != nullptr && std::find(list->begin(), list->end(), id) != list->end();
}

// Whether `a` was split by an unmerge from profile `b_id` (`b`) or from one merged into it since.
bool SeparatedFrom(const ProfileFacts& a, uint64_t b_id, const ProfileFacts& b) {
  if (a.separated == nullptr) return false;
  return std::any_of(a.separated->begin(), a.separated->end(),
                     [&](uint64_t s) { return s == b_id || Contains(b.absorbed, s); });
}

// How many identifiers, by type, the profile being built up holds, to check limits against.
// Only counts are needed: an identifier has one owner in the graph, so a profile's identifiers
// are none of another's nor any of the event's new ones, and the event's are distinct
// (PrepareIdentifiers). Counting costs one pass over each profile's identifiers, with no
// allocation for the few types there are: a profile may hold hundreds of anonymousIds (a
// shared login used on many browsers), where any per-event work above linear stalls its shard.
class Held {
 public:
  void Add(const Identifier& id) { ++Count(id.type); }
  void AddAll(const std::vector<Identifier>* ids) {
    if (ids != nullptr) {
      for (const Identifier& id : *ids) Add(id);
    }
  }
  size_t total() const { return total_; }
  // Whether holding `extra` too (identifiers none of which is held) keeps every type of it
  // within its limit.
  bool Fits(std::span<const Identifier> extra, const IdentityRules& rules) const {
    Held added;
    added.AddAll(extra);
    for (const auto& [type, n] : added.counts_) {
      auto limit = rules.limits.find(type);
      if (limit != rules.limits.end() && CountOf(type) + n > limit->second) return false;
    }
    return true;
  }

 private:
  void AddAll(std::span<const Identifier> ids) {
    for (const Identifier& id : ids) Add(id);
  }
  size_t& Count(std::string_view type) {
    ++total_;
    for (auto& [t, n] : counts_) {
      if (t == type) return n;
    }
    return counts_.emplace_back(type, 0).second;
  }
  size_t CountOf(std::string_view type) const {
    for (const auto& [t, n] : counts_) {
      if (t == type) return n;
    }
    return 0;
  }

  absl::InlinedVector<std::pair<std::string_view, size_t>, 4> counts_;
  size_t total_ = 0;
};

}  // namespace

bool IdentityRules::KnownType(std::string_view type) const {
  if (type == kUserId || type == kAnonymousId || type == kEmail || type == kPhone) return true;
  return std::find(external_ids.begin(), external_ids.end(), type) != external_ids.end();
}

size_t IdentityRules::Rank(std::string_view type) const {
  auto it = std::find(priority.begin(), priority.end(), type);
  if (it != priority.end()) return static_cast<size_t>(it - priority.begin());
  auto ext = std::find(external_ids.begin(), external_ids.end(), type);
  size_t base = priority.size();
  if (ext != external_ids.end()) return base + static_cast<size_t>(ext - external_ids.begin());
  return base + external_ids.size();
}

bool IdentityRules::Blocked(std::string_view value) const {
  value = StripWhitespace(value);
  for (const std::string& b : blocked_values) {
    if (EqualsIgnoreCase(b, value)) return true;
  }
  return false;
}

std::string NormalizeIdentifier(std::string_view type, std::string_view value) {
  value = StripWhitespace(value);
  std::string out;
  if (type == kEmail) {
    out = ToLower(value);
  } else if (type == kPhone) {
    for (char c : value) {
      const unsigned char u = static_cast<unsigned char>(c);
      if (std::isdigit(u) || (c == '+' && out.empty())) {
        out.push_back(c);
      } else if ((std::isalpha(u) || c == '#' || c == ';' || c == ',') &&
                 out.find_first_of("0123456789") != std::string::npos) {
        break;  // an extension ("ext. 12", "x12", "#12", ";ext=12") is not the number
      }
    }
    // Only zeros ("0", "+(000)") name no one, whatever the blocked values say.
    if (out.find_first_not_of("+0") == std::string::npos) out.clear();
  } else {
    out.assign(value);
  }
  return out;
}

std::vector<Identifier> PrepareIdentifiers(std::vector<Identifier> ids,
                                           const IdentityRules& rules) {
  std::vector<Identifier> out;
  out.reserve(ids.size());
  for (Identifier& id : ids) {
    // Blocked as sent, or once normalized: a phone "-1" is blocked, not the number "1".
    if (rules.Blocked(id.value)) continue;
    id.value = NormalizeIdentifier(id.type, id.value);
    // Nothing left ("   ", a phone of zeros) names no one, whatever the blocked values say.
    if (id.value.empty() || rules.Blocked(id.value)) continue;
    if (std::find(out.begin(), out.end(), id) != out.end()) continue;
    out.push_back(std::move(id));
  }
  std::stable_sort(out.begin(), out.end(), [&](const Identifier& a, const Identifier& b) {
    return rules.Rank(a.type) < rules.Rank(b.type);
  });
  return out;
}

std::string_view MergeRefusalName(MergeRefusal reason) {
  switch (reason) {
    case MergeRefusal::kNone:
      return "none";
    case MergeRefusal::kLimit:
      return "identifier_limit";
    case MergeRefusal::kConsent:
      return "cross_device_consent";
    case MergeRefusal::kSeparated:
      return "unmerged";
  }
  return "unknown";
}

ResolvePlan Resolve(const std::vector<Identifier>& ids, const std::vector<uint64_t>& owners,
                    absl::FunctionRef<ProfileFacts(uint64_t)> facts, const IdentityRules& rules) {
  ResolvePlan plan;
  Held held;
  ProfileFacts target_facts;
  std::vector<uint64_t> seen;  // profiles already merged, adopted or refused
  size_t absorbed = 0;         // profiles the target holds merged, with those of this plan
  auto absorbed_by = [](const ProfileFacts& f) { return f.absorbed ? f.absorbed->size() : 0; };
  for (size_t i = 0; i < ids.size(); ++i) {
    const Identifier& id = ids[i];
    uint64_t owner = owners[i];
    if (owner == 0) {
      if (held.Fits(std::span<const Identifier>(&id, 1), rules) &&
          held.total() < rules.max_identifiers) {
        held.Add(id);
        plan.link.push_back(id);
      } else {
        plan.unlinked.push_back(id);
      }
      continue;
    }
    if (owner == plan.target || Contains(&seen, owner)) continue;
    seen.push_back(owner);
    ProfileFacts other = facts(owner);
    bool fits = other.identifiers == nullptr || held.Fits(*other.identifiers, rules);
    if (plan.target == 0) {
      // Nothing existing yet: the identifiers gathered so far join this profile, when they may.
      if (fits) {
        plan.target = owner;
        target_facts = other;
        held.AddAll(other.identifiers);
        absorbed = absorbed_by(other);
        continue;
      }
      plan.refused.push_back({owner, MergeRefusal::kLimit});
      continue;
    }
    MergeRefusal refusal = MergeRefusal::kNone;
    const size_t other_count = other.identifiers == nullptr ? 0 : other.identifiers->size();
    if (SeparatedFrom(target_facts, owner, other) ||
        SeparatedFrom(other, plan.target, target_facts)) {
      refusal = MergeRefusal::kSeparated;
    } else if (target_facts.cross_device_denied || other.cross_device_denied) {
      refusal = MergeRefusal::kConsent;
    } else if (!fits || held.total() + other_count > rules.max_identifiers ||
               absorbed + 1 + absorbed_by(other) > rules.max_merges) {
      refusal = MergeRefusal::kLimit;
    }
    if (refusal != MergeRefusal::kNone) {
      plan.refused.push_back({owner, refusal});
      continue;
    }
    held.AddAll(other.identifiers);
    absorbed += 1 + absorbed_by(other);
    plan.merge.push_back(owner);
  }
  // The event's new identifiers were linked before the profile they join was known: those past
  // max_identifiers once it is stay unlinked (the event still belongs to it).
  // They are in priority order: the weakest go.
  if (held.total() > rules.max_identifiers) {
    const size_t excess = std::min(held.total() - rules.max_identifiers, plan.link.size());
    const auto first = plan.link.end() - static_cast<std::ptrdiff_t>(excess);
    plan.unlinked.insert(plan.unlinked.end(), std::make_move_iterator(first),
                         std::make_move_iterator(plan.link.end()));
    plan.link.erase(first, plan.link.end());
  }
  return plan;
}

}  // namespace whisperer::identity
