#include "common/json_writer.h"

#include <cassert>
#include <charconv>
#include <cmath>
#include <cstring>

namespace whisperer {
namespace {

// For each byte, the character after the backslash that escapes it, 'u' for \u00XX, or 0 when
// the byte is written as is.
constexpr auto kEscape = [] {
  std::array<char, 256> table{};
  for (int c = 0; c < 0x20; ++c) table[c] = 'u';
  table['"'] = '"';
  table['\\'] = '\\';
  table['\b'] = 'b';
  table['\f'] = 'f';
  table['\n'] = 'n';
  table['\r'] = 'r';
  table['\t'] = 't';
  return table;
}();

// True when one of the 8 bytes of `w` is a control character, a quote or a backslash (the
// bytes that need escaping) or not ASCII (checked one by one); "has zero byte" tricks from
// Hacker's Delight.
inline bool NeedsLook8(uint64_t w) {
  constexpr uint64_t kOnes = 0x0101010101010101ULL, kHigh = 0x8080808080808080ULL;
  uint64_t quote = w ^ (kOnes * '"'), backslash = w ^ (kOnes * '\\');
  uint64_t has_quote = (quote - kOnes) & ~quote & kHigh;
  uint64_t has_backslash = (backslash - kOnes) & ~backslash & kHigh;
  uint64_t has_control = (w - kOnes * 0x20) & ~w & kHigh;
  return (has_quote | has_backslash | has_control | (w & kHigh)) != 0;
}

// The length of the well-formed UTF-8 sequence at s[i] (a byte of 0x80 or more), or 0 when there
// is none: a stray continuation byte, a truncated or overlong sequence, a surrogate or a code
// point past U+10FFFF.
size_t Utf8SequenceAt(std::string_view s, size_t i) {
  const unsigned char c = static_cast<unsigned char>(s[i]);
  size_t n;
  uint32_t cp, min;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2, cp = c & 0x1F, min = 0x80;
  } else if ((c & 0xF0) == 0xE0) {
    n = 3, cp = c & 0x0F, min = 0x800;
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4, cp = c & 0x07, min = 0x10000;
  } else {
    return 0;
  }
  if (s.size() - i < n) return 0;
  for (size_t k = 1; k < n; ++k) {
    const unsigned char cc = static_cast<unsigned char>(s[i + k]);
    if ((cc & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (cc & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

}  // namespace

void AppendJsonString(std::string* out, std::string_view s) {
  out->push_back('"');
  size_t run_start = 0;
  size_t i = 0;
  while (i < s.size()) {
    // Most bytes need no look: skip 8 clean ASCII bytes at a time, also after a byte that did
    // (a text in another script is mostly multi-byte sequences between runs of ASCII).
    while (i + 8 <= s.size()) {
      uint64_t w;
      std::memcpy(&w, s.data() + i, 8);
      if (NeedsLook8(w)) break;
      i += 8;
    }
    if (i == s.size()) break;
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x80) {
      if (const size_t n = Utf8SequenceAt(s, i); n > 0) {
        i += n;
        continue;
      }
      // Not UTF-8: U+FFFD in its place, so that the output stays JSON.
      out->append(s.data() + run_start, i - run_start);
      out->append("\xEF\xBF\xBD");
      run_start = ++i;
      continue;
    }
    const char esc = kEscape[c];
    if (esc != 0) {
      out->append(s.data() + run_start, i - run_start);
      out->push_back('\\');
      out->push_back(esc);
      if (esc == 'u') {
        static constexpr char kHex[] = "0123456789abcdef";
        out->append("00");
        out->push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 0xf]);
      }
      run_start = i + 1;
    }
    ++i;
  }
  out->append(s.data() + run_start, s.size() - run_start);
  out->push_back('"');
}

void JsonWriter::BeforeValue() {
  if (after_key_) {
    after_key_ = false;
    return;
  }
  if (!has_member_.empty()) {
    if (has_member_.back()) out_->push_back(',');
    has_member_.back() = true;
  }
}

void JsonWriter::StartObject() {
  BeforeValue();
  out_->push_back('{');
  has_member_.push_back(false);
}

void JsonWriter::EndObject() {
  assert(!has_member_.empty() && !after_key_);
  has_member_.pop_back();
  out_->push_back('}');
}

void JsonWriter::StartArray() {
  BeforeValue();
  out_->push_back('[');
  has_member_.push_back(false);
}

void JsonWriter::EndArray() {
  assert(!has_member_.empty());
  has_member_.pop_back();
  out_->push_back(']');
}

void JsonWriter::Key(std::string_view key) {
  assert(!has_member_.empty() && !after_key_);
  if (has_member_.back()) out_->push_back(',');
  has_member_.back() = true;
  AppendJsonString(out_, key);
  out_->push_back(':');
  after_key_ = true;
}

void JsonWriter::String(std::string_view value) {
  BeforeValue();
  AppendJsonString(out_, value);
}

void JsonWriter::StringOrNull(std::string_view value) {
  if (value.empty()) {
    Null();
  } else {
    String(value);
  }
}

void JsonWriter::Int(int64_t value) {
  BeforeValue();
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  out_->append(buf, end);
}

void JsonWriter::Uint(uint64_t value) {
  BeforeValue();
  char buf[24];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  out_->append(buf, end);
}

void JsonWriter::Double(double value) {
  BeforeValue();
  if (!std::isfinite(value)) {  // JSON has no NaN or infinity.
    out_->append("null");
    return;
  }
  // Shortest representation that reads back as the same double.
  char buf[32];
  auto [end, ec] = std::to_chars(buf, buf + sizeof(buf), value);
  out_->append(buf, end);
}

void JsonWriter::Bool(bool value) {
  BeforeValue();
  out_->append(value ? "true" : "false");
}

void JsonWriter::Null() {
  BeforeValue();
  out_->append("null");
}

void JsonWriter::RawValue(std::string_view json) {
  BeforeValue();
  out_->append(json);
}

void JsonWriter::Element(simdjson::dom::element value) {
  using simdjson::dom::element_type;
  switch (value.type()) {
    case element_type::OBJECT:
      StartObject();
      for (auto field : simdjson::dom::object(value)) {
        Key(field.key);
        Element(field.value);
      }
      EndObject();
      break;
    case element_type::ARRAY:
      StartArray();
      for (auto item : simdjson::dom::array(value)) Element(item);
      EndArray();
      break;
    case element_type::STRING:
      String(std::string_view(value));
      break;
    case element_type::INT64:
      Int(int64_t(value));
      break;
    case element_type::UINT64:
      Uint(uint64_t(value));
      break;
    case element_type::DOUBLE:
      Double(double(value));
      break;
    case element_type::BOOL:
      Bool(bool(value));
      break;
    case element_type::NULL_VALUE:
      Null();
      break;
  }
}

}  // namespace whisperer
