#include "text/sentiment.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <cstdlib>

#include "absl/container/flat_hash_set.h"

namespace whisperer {
extern const std::string_view kVaderLexicon;
extern const std::string_view kVaderEmoji;
}  // namespace whisperer

namespace whisperer::text {
namespace {

// The reference implementation's constants (vaderSentiment.py).
constexpr double kBoostIncrease = 0.293;
constexpr double kBoostDecrease = -0.293;
constexpr double kCapsIncrease = 0.733;
constexpr double kNegationScalar = -0.74;
constexpr double kNormalizeAlpha = 15;

const absl::flat_hash_set<std::string_view>& Negations() {
  static const auto* set = new absl::flat_hash_set<std::string_view>{
      "aint",   "arent",    "cannot",  "cant",     "couldnt",  "darent",   "didnt",   "doesnt",
      "ain't",  "aren't",   "can't",   "couldn't", "daren't",  "didn't",   "doesn't", "dont",
      "hadnt",  "hasnt",    "havent",  "isnt",     "mightnt",  "mustnt",   "neither", "don't",
      "hadn't", "hasn't",   "haven't", "isn't",    "mightn't", "mustn't",  "neednt",  "needn't",
      "never",  "none",     "nope",    "nor",      "not",      "nothing",  "nowhere", "oughtnt",
      "shant",  "shouldnt", "uhuh",    "wasnt",    "werent",   "oughtn't", "shan't",  "shouldn't",
      "uh-uh",  "wasn't",   "weren't", "without",  "wont",     "wouldnt",  "won't",   "wouldn't",
      "rarely", "seldom",   "despite"};
  return *set;
}

const absl::flat_hash_map<std::string_view, double>& Boosters() {
  static const auto* map = [] {
    auto* m = new absl::flat_hash_map<std::string_view, double>;
    for (std::string_view w :
         {"absolutely",   "amazingly",  "awfully",      "completely",    "considerable",
          "considerably", "decidedly",  "deeply",       "effing",        "enormous",
          "enormously",   "entirely",   "especially",   "exceptional",   "exceptionally",
          "extreme",      "extremely",  "fabulously",   "flipping",      "flippin",
          "frackin",      "fracking",   "fricking",     "frickin",       "frigging",
          "friggin",      "fully",      "fuckin",       "fucking",       "fuggin",
          "fugging",      "greatly",    "hella",        "highly",        "hugely",
          "incredible",   "incredibly", "intensely",    "major",         "majorly",
          "more",         "most",       "particularly", "purely",        "quite",
          "really",       "remarkably", "so",           "substantially", "thoroughly",
          "total",        "totally",    "tremendous",   "tremendously",  "uber",
          "unbelievably", "unusually",  "utter",        "utterly",       "very"}) {
      (*m)[w] = kBoostIncrease;
    }
    for (std::string_view w :
         {"almost",     "barely",       "hardly",  "just enough", "kind of",  "kinda",
          "kindof",     "kind-of",      "less",    "little",      "marginal", "marginally",
          "occasional", "occasionally", "partly",  "scarce",      "scarcely", "slight",
          "slightly",   "somewhat",     "sort of", "sorta",       "sortof",   "sort-of"}) {
      (*m)[w] = kBoostDecrease;
    }
    return m;
  }();
  return *map;
}

const absl::flat_hash_map<std::string_view, double>& SpecialCases() {
  static const auto* map = new absl::flat_hash_map<std::string_view, double>{
      {"the shit", 3},        {"the bomb", 3},       {"bad ass", 1.5},        {"badass", 1.5},
      {"bus stop", 0.0},      {"yeah right", -2},    {"kiss of death", -1.5}, {"to die for", 3},
      {"beating heart", 3.1}, {"broken heart", -2.9}};
  return *map;
}

bool IsAsciiSpace(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

bool IsAsciiPunct(char c) {
  return (c >= '!' && c <= '/') || (c >= ':' && c <= '@') || (c >= '[' && c <= '`') ||
         (c >= '{' && c <= '~');
}

// Python's str.isupper() for the ASCII letters: at least one cased letter, none lower case.
bool IsUpper(std::string_view s) {
  bool upper = false;
  for (char c : s) {
    if (c >= 'a' && c <= 'z') return false;
    upper = upper || (c >= 'A' && c <= 'Z');
  }
  return upper;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return out;
}

size_t CodePoints(std::string_view s) {
  return static_cast<size_t>(
      std::count_if(s.begin(), s.end(), [](char c) { return (c & 0xC0) != 0x80; }));
}

// Punctuation stripped from both ends, unless that leaves two characters or fewer (":)", "a!").
std::string_view StripPunctuationIfWord(std::string_view token) {
  size_t b = 0, e = token.size();
  while (b < e && IsAsciiPunct(token[b])) ++b;
  while (e > b && IsAsciiPunct(token[e - 1])) --e;
  std::string_view stripped = token.substr(b, e - b);
  return CodePoints(stripped) <= 2 ? token : stripped;
}

bool Negated(std::string_view lower_word) {
  return Negations().contains(lower_word) || lower_word.find("n't") != std::string_view::npos;
}

double ScalarIncDec(const std::string& word, const std::string& lower, double valence,
                    bool cap_diff) {
  auto it = Boosters().find(lower);
  if (it == Boosters().end()) return 0;
  double scalar = it->second;
  if (valence < 0) scalar *= -1;
  if (IsUpper(word) && cap_diff) scalar += valence > 0 ? kCapsIncrease : -kCapsIncrease;
  return scalar;
}

double NegationCheck(double valence, const std::vector<std::string>& w, int start_i, size_t i) {
  if (start_i == 0) {
    if (Negated(w[i - 1])) valence *= kNegationScalar;
  } else if (start_i == 1) {
    if (w[i - 2] == "never" && (w[i - 1] == "so" || w[i - 1] == "this")) {
      valence *= 1.25;
    } else if (w[i - 2] == "without" && w[i - 1] == "doubt") {
      // unchanged
    } else if (Negated(w[i - 2])) {
      valence *= kNegationScalar;
    }
  } else {
    if ((w[i - 3] == "never" && (w[i - 2] == "so" || w[i - 2] == "this")) ||
        (w[i - 1] == "so" || w[i - 1] == "this")) {
      valence *= 1.25;
    } else if (w[i - 3] == "without" && (w[i - 2] == "doubt" || w[i - 1] == "doubt")) {
      // unchanged
    } else if (Negated(w[i - 3])) {
      valence *= kNegationScalar;
    }
  }
  return valence;
}

double SpecialIdiomsCheck(double valence, const std::vector<std::string>& w, size_t i) {
  const std::string onezero = w[i - 1] + " " + w[i];
  const std::string twoonezero = w[i - 2] + " " + w[i - 1] + " " + w[i];
  const std::string twoone = w[i - 2] + " " + w[i - 1];
  const std::string threetwoone = w[i - 3] + " " + w[i - 2] + " " + w[i - 1];
  const std::string threetwo = w[i - 3] + " " + w[i - 2];
  for (const std::string* seq : {&onezero, &twoonezero, &twoone, &threetwoone, &threetwo}) {
    auto it = SpecialCases().find(*seq);
    if (it != SpecialCases().end()) {
      valence = it->second;
      break;
    }
  }
  if (w.size() - 1 > i) {
    auto it = SpecialCases().find(w[i] + " " + w[i + 1]);
    if (it != SpecialCases().end()) valence = it->second;
  }
  if (w.size() - 1 > i + 1) {
    auto it = SpecialCases().find(w[i] + " " + w[i + 1] + " " + w[i + 2]);
    if (it != SpecialCases().end()) valence = it->second;
  }
  for (const std::string* gram : {&threetwoone, &threetwo, &twoone}) {
    auto it = Boosters().find(*gram);
    if (it != Boosters().end()) valence += it->second;
  }
  return valence;
}

// Decodes the code point at s[*pos] and advances; a malformed byte is taken as itself.
char32_t NextCodePoint(std::string_view s, size_t* pos) {
  unsigned char c = static_cast<unsigned char>(s[*pos]);
  int extra = c >= 0xF0 ? 3 : c >= 0xE0 ? 2 : c >= 0xC0 ? 1 : 0;
  if (*pos + static_cast<size_t>(extra) >= s.size()) extra = 0;  // truncated: the byte alone
  char32_t cp = extra == 0 ? c : (c & (0x3F >> extra));
  for (int k = 1; k <= extra; ++k)
    cp = (cp << 6) | (static_cast<unsigned char>(s[*pos + k]) & 0x3F);
  *pos += static_cast<size_t>(extra) + 1;
  return cp;
}

// Calls `fn(line)` for each line of `text`, without its end of line.
template <typename Fn>
void ForEachLine(std::string_view text, Fn&& fn) {
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    fn(line);
  }
}

}  // namespace

std::unique_ptr<SentimentAnalyzer> SentimentAnalyzer::Create() {
  std::unique_ptr<SentimentAnalyzer> a(new SentimentAnalyzer());
  // token \t mean \t sd \t ratings; a later line of the same token wins, as in the reference.
  ForEachLine(kVaderLexicon, [&](std::string_view line) {
    size_t t1 = line.find('\t');
    if (t1 == std::string_view::npos) return;
    size_t t2 = line.find('\t', t1 + 1);
    std::string_view value = line.substr(t1 + 1, t2 == std::string_view::npos ? t2 : t2 - t1 - 1);
    double v = 0;
    auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
    if (ec != std::errc()) return;
    a->lexicon_.insert_or_assign(std::string(line.substr(0, t1)), v);
  });
  // emoji \t description; only single code points can match, as in the reference.
  ForEachLine(kVaderEmoji, [&](std::string_view line) {
    size_t tab = line.find('\t');
    if (tab == std::string_view::npos || tab == 0) return;
    std::string_view emoji = line.substr(0, tab);
    size_t pos = 0;
    char32_t cp = NextCodePoint(emoji, &pos);
    if (pos != emoji.size()) return;
    a->emoji_.insert_or_assign(cp, std::string(line.substr(tab + 1)));
  });
  return a;
}

double SentimentAnalyzer::Valence(const std::vector<std::string>& words,
                                  const std::vector<std::string>& lower, size_t i,
                                  bool cap_diff) const {
  auto it = lexicon_.find(lower[i]);
  if (it == lexicon_.end()) return 0;
  const size_t n = words.size();
  double valence = it->second;
  // "no" right before a lexicon word negates it rather than counting itself.
  if (lower[i] == "no" && i != n - 1 && InLexicon(lower[i + 1])) valence = 0;
  if ((i > 0 && lower[i - 1] == "no") || (i > 1 && lower[i - 2] == "no") ||
      (i > 2 && lower[i - 3] == "no" && (lower[i - 1] == "or" || lower[i - 1] == "nor"))) {
    valence = it->second * kNegationScalar;
  }
  if (IsUpper(words[i]) && cap_diff) valence += valence > 0 ? kCapsIncrease : -kCapsIncrease;
  for (int start_i = 0; start_i < 3; ++start_i) {
    size_t back = static_cast<size_t>(start_i) + 1;
    if (i <= static_cast<size_t>(start_i) || InLexicon(lower[i - back])) continue;
    double s = ScalarIncDec(words[i - back], lower[i - back], valence, cap_diff);
    if (start_i == 1 && s != 0) s *= 0.95;
    if (start_i == 2 && s != 0) s *= 0.9;
    valence += s;
    valence = NegationCheck(valence, lower, start_i, i);
    if (start_i == 2) valence = SpecialIdiomsCheck(valence, lower, i);
  }
  // "least": "at least" and "very least" keep the valence, "least" before a word negates it.
  if (i > 1 && !InLexicon(lower[i - 1]) && lower[i - 1] == "least") {
    if (lower[i - 2] != "at" && lower[i - 2] != "very") valence *= kNegationScalar;
  } else if (i > 0 && !InLexicon(lower[i - 1]) && lower[i - 1] == "least") {
    valence *= kNegationScalar;
  }
  return valence;
}

Sentiment SentimentAnalyzer::Score(std::string_view input) const {
  // Emoji become their descriptions.
  std::string text;
  text.reserve(input.size());
  bool prev_space = true;
  for (size_t pos = 0; pos < input.size();) {
    size_t start = pos;
    char32_t cp = NextCodePoint(input, &pos);
    auto it = emoji_.find(cp);
    if (it != emoji_.end()) {
      if (!prev_space) text.push_back(' ');
      text.append(it->second);
      prev_space = false;
    } else {
      text.append(input.substr(start, pos - start));
      prev_space = cp == ' ';
    }
  }
  std::vector<std::string> words, lower;
  for (size_t i = 0; i < text.size();) {
    while (i < text.size() && IsAsciiSpace(text[i])) ++i;
    size_t j = i;
    while (j < text.size() && !IsAsciiSpace(text[j])) ++j;
    if (j > i) {
      words.emplace_back(StripPunctuationIfWord(std::string_view(text).substr(i, j - i)));
      lower.push_back(Lower(words.back()));
    }
    i = j;
  }
  const size_t n = words.size();
  size_t caps = 0;
  for (const std::string& w : words) caps += IsUpper(w);
  const bool cap_diff = caps > 0 && caps < n;

  std::vector<double> sentiments;
  sentiments.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    if (Boosters().contains(lower[i]) ||
        (i < n - 1 && lower[i] == "kind" && lower[i + 1] == "of")) {
      sentiments.push_back(0);
      continue;
    }
    sentiments.push_back(Valence(words, lower, i, cap_diff));
  }
  // "but": what comes before it counts half, what comes after one and a half times. The
  // reference finds each value's position with list.index (its first occurrence); so does this.
  auto but = std::find(lower.begin(), lower.end(), "but");
  if (but != lower.end()) {
    const size_t bi = static_cast<size_t>(but - lower.begin());
    for (size_t k = 0; k < sentiments.size(); ++k) {
      const double s = sentiments[k];
      const size_t si = static_cast<size_t>(std::find(sentiments.begin(), sentiments.end(), s) -
                                            sentiments.begin());
      if (si < bi) {
        sentiments[si] = s * 0.5;
      } else if (si > bi) {
        sentiments[si] = s * 1.5;
      }
    }
  }

  Sentiment out;
  if (sentiments.empty()) return out;
  double sum = 0;
  for (double s : sentiments) sum += s;
  // Emphasis from punctuation: up to four '!' (0.292 each); two or three '?' 0.18 each, more 0.96.
  const double bangs =
      std::min<double>(4, static_cast<double>(std::count(text.begin(), text.end(), '!')));
  const size_t questions = static_cast<size_t>(std::count(text.begin(), text.end(), '?'));
  const double emphasis =
      bangs * 0.292 + (questions > 1 ? (questions <= 3 ? questions * 0.18 : 0.96) : 0);
  if (sum > 0) {
    sum += emphasis;
  } else if (sum < 0) {
    sum -= emphasis;
  }
  out.compound = std::clamp(sum / std::sqrt(sum * sum + kNormalizeAlpha), -1.0, 1.0);
  double pos = 0, neg = 0, neu = 0;
  for (double s : sentiments) {
    if (s > 0) pos += s + 1;  // +1: neutral words count 1 each
    if (s < 0) neg += s - 1;
    if (s == 0) neu += 1;
  }
  if (pos > std::fabs(neg)) {
    pos += emphasis;
  } else if (pos < std::fabs(neg)) {
    neg -= emphasis;
  }
  const double total = pos + std::fabs(neg) + neu;
  out.positive = std::fabs(pos / total);
  out.negative = std::fabs(neg / total);
  out.neutral = std::fabs(neu / total);
  return out;
}

}  // namespace whisperer::text
