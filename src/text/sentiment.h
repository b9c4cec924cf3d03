// Sentiment of a short text: VADER (Hutto & Gilbert, 2014), a lexicon of rated words, emoticons
// and emoji with rules for negation ("not good"), boosters and dampeners ("very", "kind of"),
// "but" (what follows weighs more), "least", ALL CAPS among lower case, exclamation and question
// marks, and a few idioms. It answers the compound score in [-1, 1] (the normalized sum of the
// word valences) and the shares of positive, neutral and negative words.
//
// A port of the reference implementation (vaderSentiment 3.3, which the lexicons in
// third_party/vader come from), rule for rule, including its quirks, so that scores equal the
// reference's: text is split on whitespace, punctuation is stripped from tokens longer than two
// characters once stripped, and each emoji is replaced by its description first. Written here
// rather than called through Python because it runs inside the server on every message.
//
// Thread-safety: a SentimentAnalyzer is immutable after Create and may be used from any thread.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace whisperer::text {

struct Sentiment {
  double compound = 0;  // -1 (most negative) .. 1 (most positive)
  double positive = 0;  // shares of the text, summing to 1 (all 0 for an empty text)
  double neutral = 0;
  double negative = 0;
};

class SentimentAnalyzer {
 public:
  // Loads the lexicons compiled into the binary (third_party/vader).
  static std::unique_ptr<SentimentAnalyzer> Create();

  Sentiment Score(std::string_view text) const;

  // Lexicon entries and emoji loaded (tests).
  size_t lexicon_size() const { return lexicon_.size(); }
  size_t emoji_size() const { return emoji_.size(); }

 private:
  SentimentAnalyzer() = default;
  double Valence(const std::vector<std::string>& words, const std::vector<std::string>& lower,
                 size_t i, bool cap_diff) const;
  bool InLexicon(const std::string& lower_word) const { return lexicon_.contains(lower_word); }

  absl::flat_hash_map<std::string, double> lexicon_;
  absl::flat_hash_map<char32_t, std::string> emoji_;  // one code point -> its description
};

}  // namespace whisperer::text
