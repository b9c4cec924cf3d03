#include "common/strings.h"

#include <algorithm>
#include <cctype>
#include <cstdio>

namespace whisperer {

std::string_view StripWhitespace(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) !=
        std::tolower(static_cast<unsigned char>(b[i]))) {
      return false;
    }
  }
  return true;
}

bool StartsWithIgnoreCase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && EqualsIgnoreCase(s.substr(0, prefix.size()), prefix);
}

std::string Hex16(uint64_t v) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (int shift = 60; shift >= 0; shift -= 4) s.push_back(kHex[(v >> shift) & 0xf]);
  return s;
}

std::optional<uint64_t> ParseHex16(std::string_view s) {
  if (s.size() != 16) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    int digit = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (digit < 0) return std::nullopt;
    v = v << 4 | static_cast<uint64_t>(digit);
  }
  return v;
}

std::string ToLower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

namespace {
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int DecodeChar(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}
}  // namespace

std::string Base64Encode(std::string_view data) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < data.size(); i += 3) {
    uint32_t v = (uint8_t(data[i]) << 16) | (uint8_t(data[i + 1]) << 8) | uint8_t(data[i + 2]);
    for (int k = 3; k >= 0; --k) out.push_back(kAlphabet[(v >> (6 * k)) & 63]);
  }
  if (i < data.size()) {
    uint32_t v = uint8_t(data[i]) << 16;
    if (i + 1 < data.size()) v |= uint8_t(data[i + 1]) << 8;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(i + 1 < data.size() ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

bool Base64Decode(std::string_view text, std::string* out) {
  while (!text.empty() && text.back() == '=') text.remove_suffix(1);
  if (text.size() % 4 == 1) return false;
  out->clear();
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v = DecodeChar(c);
    if (v < 0) return false;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out->push_back(static_cast<char>((acc >> bits) & 0xff));
    }
  }
  return true;
}

std::string_view StripUtf8Bom(std::string_view text) {
  if (text.starts_with("\xEF\xBB\xBF")) text.remove_prefix(3);
  return text;
}

namespace {

std::optional<uint32_t> HexQuad(std::string_view s) {
  if (s.size() < 4) return std::nullopt;
  uint32_t v = 0;
  for (char c : s.substr(0, 4)) {
    const int d = c >= '0' && c <= '9'   ? c - '0'
                  : c >= 'a' && c <= 'f' ? c - 'a' + 10
                  : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                         : -1;
    if (d < 0) return std::nullopt;
    v = v * 16 + static_cast<uint32_t>(d);
  }
  return v;
}

bool HighSurrogate(uint32_t u) { return u >= 0xD800 && u <= 0xDBFF; }
bool LowSurrogate(uint32_t u) { return u >= 0xDC00 && u <= 0xDFFF; }

}  // namespace

bool RewriteSurrogateEscapes(std::string_view json, bool pairs_as_yaml, std::string* out) {
  out->clear();
  out->reserve(json.size());
  bool changed = false;
  size_t i = 0;
  while (i < json.size()) {
    if (json[i] != '\\' || i + 1 >= json.size()) {  // a backslash only ever starts an escape
      out->push_back(json[i++]);
      continue;
    }
    if (json[i + 1] != 'u') {  // \\, \" and the others, whole: \\u is no escape of u
      out->append(json.substr(i, 2));
      i += 2;
      continue;
    }
    const std::optional<uint32_t> unit = HexQuad(json.substr(i + 2));
    if (unit && HighSurrogate(*unit) && json.substr(i + 6, 2) == "\\u") {
      if (std::optional<uint32_t> next = HexQuad(json.substr(i + 8)); next && LowSurrogate(*next)) {
        if (pairs_as_yaml) {
          char escape[11];
          std::snprintf(escape, sizeof escape, "\\U%08X",
                        0x10000 + ((*unit - 0xD800) << 10) + (*next - 0xDC00));
          out->append(escape);
          changed = true;
        } else {
          out->append(json.substr(i, 12));  // a pair
        }
        i += 12;
        continue;
      }
    }
    if (unit && (HighSurrogate(*unit) || LowSurrogate(*unit))) {
      out->append("\\uFFFD");
      changed = true;
    } else {
      out->append(json.substr(i, std::min<size_t>(6, json.size() - i)));
    }
    i += std::min<size_t>(6, json.size() - i);
  }
  return changed;
}

}  // namespace whisperer
