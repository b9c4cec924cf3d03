#include "decide/contacts.h"

#include <algorithm>

#include "common/json_writer.h"
#include "simdjson.h"

namespace whisperer::decide {

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
  contacts.insert(contacts.end(), other.contacts.begin(), other.contacts.end());
  negatives.insert(negatives.end(), other.negatives.begin(), other.negatives.end());
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
    w.EndArray();
  }
  w.EndArray();
  w.Key("negatives");
  w.StartArray();
  for (const Negative& n : negatives) {
    w.StartArray();
    w.String(n.action);
    w.Int(n.at_ms);
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
    h.contacts.push_back({std::string(action), std::string(channel), at});
  }
  for (simdjson::dom::element e : negatives) {
    std::string_view action;
    int64_t at = 0;
    if (e.at(0).get(action) != simdjson::SUCCESS || e.at(1).get(at) != simdjson::SUCCESS) {
      return std::nullopt;
    }
    h.negatives.push_back({std::string(action), at});
  }
  return h;
}

}  // namespace whisperer::decide
