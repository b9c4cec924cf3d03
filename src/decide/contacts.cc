#include "decide/contacts.h"

#include <algorithm>

#include "absl/container/flat_hash_map.h"
#include "common/json_writer.h"
#include "decide/log.h"
#include "simdjson.h"

namespace whisperer::decide {

namespace {

// Appends to `to` the entries of `from` that are not already in `to`, one to one: an entry of
// a known decision equal to one of `to` not matched yet is a copy of it.
template <typename Entry>
void AddOnce(std::vector<Entry>& to, const std::vector<Entry>& from) {
  absl::flat_hash_map<uint64_t, std::vector<size_t>> unmatched;  // by decision: indexes in `to`
  for (size_t i = 0; i < to.size(); ++i) {
    if (to[i].decision != 0) unmatched[to[i].decision].push_back(i);
  }
  const size_t own = to.size();
  for (const Entry& e : from) {
    auto it = e.decision == 0 ? unmatched.end() : unmatched.find(e.decision);
    if (it != unmatched.end()) {
      auto copy = std::find_if(it->second.begin(), it->second.end(),
                               [&](size_t i) { return i < own && to[i] == e; });
      if (copy != it->second.end()) {
        it->second.erase(copy);
        continue;
      }
    }
    to.push_back(e);
  }
}

// The decision id at `index` of an entry; 0 when it has none (written before they were kept).
uint64_t DecisionOf(simdjson::dom::element entry, size_t index) {
  std::string_view id;
  if (entry.at(index).get(id) != simdjson::SUCCESS) return 0;
  return ParseDecisionId(id).value_or(0);
}

}  // namespace

size_t ContactHistory::OnChannel(std::string_view channel, int64_t since_ms) const {
  return std::count_if(contacts.begin(), contacts.end(), [&](const Contact& c) {
    return c.channel == channel && c.at_ms >= since_ms;
  });
}

size_t ContactHistory::OfAction(std::string_view action, int64_t since_ms) const {
  return std::count_if(contacts.begin(), contacts.end(),
                       [&](const Contact& c) { return c.action == action && c.at_ms >= since_ms; });
}

size_t ContactHistory::NegativesOf(std::string_view action, int64_t since_ms) const {
  return std::count_if(negatives.begin(), negatives.end(), [&](const Negative& n) {
    return n.action == action && n.at_ms >= since_ms;
  });
}

void ContactHistory::Add(const ContactHistory& other) {
  AddOnce(contacts, other.contacts);
  AddOnce(negatives, other.negatives);
  std::stable_sort(contacts.begin(), contacts.end(),
                   [](const Contact& a, const Contact& b) { return a.at_ms < b.at_ms; });
  std::stable_sort(negatives.begin(), negatives.end(),
                   [](const Negative& a, const Negative& b) { return a.at_ms < b.at_ms; });
}

void ContactHistory::Trim(int64_t now_ms, int64_t keep_ms) {
  const int64_t since = now_ms - keep_ms;
  std::erase_if(contacts, [&](const Contact& c) { return c.at_ms < since; });
  std::erase_if(negatives, [&](const Negative& n) { return n.at_ms < since; });
  if (contacts.size() > kMaxEntries) {
    contacts.erase(contacts.begin(), contacts.end() - kMaxEntries);
  }
  if (negatives.size() > kMaxEntries) {
    negatives.erase(negatives.begin(), negatives.end() - kMaxEntries);
  }
}

std::string ContactHistory::Encode() const {
  std::string out;
  JsonWriter w(&out);
  w.StartObject();
  w.Key("contacts");
  w.StartArray();
  for (const Contact& c : contacts) {
    w.StartArray();
    w.String(c.action);
    w.String(c.channel);
    w.Int(c.at_ms);
    if (c.decision != 0) w.String(DecisionIdString(c.decision));
    w.EndArray();
  }
  w.EndArray();
  w.Key("negatives");
  w.StartArray();
  for (const Negative& n : negatives) {
    w.StartArray();
    w.String(n.action);
    w.Int(n.at_ms);
    if (n.decision != 0) w.String(DecisionIdString(n.decision));
    w.EndArray();
  }
  w.EndArray();
  w.EndObject();
  return out;
}

std::optional<ContactHistory> ContactHistory::Decode(std::string_view json) {
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.parse(json.data(), json.size()).get(doc) != simdjson::SUCCESS) return std::nullopt;
  ContactHistory h;
  simdjson::dom::array contacts, negatives;
  if (doc["contacts"].get(contacts) != simdjson::SUCCESS ||
      doc["negatives"].get(negatives) != simdjson::SUCCESS) {
    return std::nullopt;
  }
  for (simdjson::dom::element e : contacts) {
    std::string_view action, channel;
    int64_t at = 0;
    if (e.at(0).get(action) != simdjson::SUCCESS || e.at(1).get(channel) != simdjson::SUCCESS ||
        e.at(2).get(at) != simdjson::SUCCESS) {
      return std::nullopt;
    }
    h.contacts.push_back({std::string(action), std::string(channel), at, DecisionOf(e, 3)});
  }
  for (simdjson::dom::element e : negatives) {
    std::string_view action;
    int64_t at = 0;
    if (e.at(0).get(action) != simdjson::SUCCESS || e.at(1).get(at) != simdjson::SUCCESS) {
      return std::nullopt;
    }
    h.negatives.push_back({std::string(action), at, DecisionOf(e, 2)});
  }
  return h;
}

}  // namespace whisperer::decide
