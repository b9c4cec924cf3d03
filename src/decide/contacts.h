// A customer's contact history, what the contact policy reads (decide/decider.h): the actions
// acted on for them, on which channel and when, and the negative outcomes they gave, per
// action. Kept per customer in the decision log's column family (storage/keys.h ContactKey),
// trimmed to the longest period any limit looks back, and at most kMaxEntries of each.
//
// Thread-safety: a value type; server/decide_service.h serialises the read-decide-write of one
// customer.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace whisperer::decide {

struct ContactHistory {
  static constexpr size_t kMaxEntries = 500;

  // `decision`: the decision the entry came from (0 in rows written before it was kept).
  struct Contact {
    std::string action;
    std::string channel;
    int64_t at_ms = 0;
    uint64_t decision = 0;
    bool operator==(const Contact&) const = default;
  };
  struct Negative {
    std::string action;
    int64_t at_ms = 0;
    uint64_t decision = 0;
    bool operator==(const Negative&) const = default;
  };
  std::vector<Contact> contacts;  // oldest first
  std::vector<Negative> negatives;

  // Counts of entries at or after `since_ms`.
  size_t OnChannel(std::string_view channel, int64_t since_ms) const;
  size_t OfAction(std::string_view action, int64_t since_ms) const;
  size_t NegativesOf(std::string_view action, int64_t since_ms) const;

  // Adds `other`'s entries (the history kept under another key of this customer's: a profile
  // merged into theirs, or another identifier of a first-time visitor), keeping both lists
  // oldest first. An entry of a decision that is already here is the same contact, written
  // under each identifier of a first-time visitor, and counts once (as many times as it is in
  // one of the two: entries are matched one to one).
  void Add(const ContactHistory& other);

  // Drops what is older than `keep_ms` before `now_ms`, and the oldest beyond kMaxEntries.
  void Trim(int64_t now_ms, int64_t keep_ms);

  // JSON: {"contacts": [[action, channel, at_ms, decisionId], ...],
  //        "negatives": [[action, at_ms, decisionId], ...]}, the decision id as
  // decide::DecisionIdString writes it (an entry without one reads as decision 0).
  std::string Encode() const;
  static std::optional<ContactHistory> Decode(std::string_view json);
};

}  // namespace whisperer::decide
