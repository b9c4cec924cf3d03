// `whisperer eval sentiment`: the VADER port (text/sentiment.h) against the reference
// implementation's published examples, the four human-rated corpora of Hutto & Gilbert (2014)
// and the UCI labelled sentences (Kotzias et al. 2015).
//
// The model is a lexicon with rules and is not trained, so nothing is split off: every text of
// every file is scored once. (The labelled sentences' README offers fixed 10-fold assignments for
// cross-validation; with no training, the folds' pooled accuracy is the accuracy over all
// sentences, which is what is reported.)
#include <charconv>
#include <chrono>
#include <cmath>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/csv.h"
#include "common/json_writer.h"
#include "common/strings.h"
#include "eval/eval.h"
#include "eval/metrics.h"
#include "text/sentiment.h"

namespace whisperer::eval {
namespace {

// VADER's convention: a text is positive when its compound score is at least 0.05.
constexpr double kPositiveThreshold = 0.05;

// The corpora of Hutto & Gilbert (2014), with the Pearson r of the 2014 code against the mean
// human rating (their Table 4, VADER row).
struct GroundTruthCorpus {
  std::string_view name;
  std::string_view file;
  double published_r;
};
constexpr GroundTruthCorpus kGroundTruth[] = {
    {"tweets", "tweets_GroundTruth.txt", 0.881},
    {"movie_reviews", "movieReviewSnippets_GroundTruth.txt", 0.451},
    {"amazon_reviews", "amazonReviewSnippets_GroundTruth.txt", 0.565},
    {"nyt_editorials", "nytEditorialSnippets_GroundTruth.txt", 0.492},
};

constexpr std::string_view kLabelledSources[] = {"amazon_cells", "imdb", "yelp"};

// Times every call to the analyzer, for the mean cost per text.
class TimedAnalyzer {
 public:
  TimedAnalyzer() : analyzer_(text::SentimentAnalyzer::Create()) {}

  text::Sentiment Score(std::string_view text) {
    auto start = std::chrono::steady_clock::now();
    text::Sentiment s = analyzer_->Score(text);
    elapsed_ += std::chrono::steady_clock::now() - start;
    ++texts_;
    return s;
  }

  size_t texts() const { return texts_; }
  double MicrosPerText() const {
    if (texts_ == 0) return 0;
    return std::chrono::duration<double, std::micro>(elapsed_).count() /
           static_cast<double>(texts_);
  }

 private:
  std::unique_ptr<text::SentimentAnalyzer> analyzer_;
  std::chrono::steady_clock::duration elapsed_{};
  size_t texts_ = 0;
};

// The lines of `text`, split on '\n' only (the labelled sentences hold U+0085, which some readers
// take for a line break), without a trailing '\r'. An empty final line is not returned.
std::vector<std::string_view> Lines(std::string_view text) {
  std::vector<std::string_view> lines;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(pos, end - pos);
    if (line.ends_with('\r')) line.remove_suffix(1);
    lines.push_back(line);
    pos = end + 1;
  }
  return lines;
}

// A decimal number; the README writes negative figures with U+2212 MINUS SIGN.
bool ParseNumber(std::string_view s, double* out) {
  s = StripWhitespace(s);
  std::string ascii;
  if (s.starts_with("\xE2\x88\x92")) {
    ascii = StrCat("-", s.substr(3));
    s = ascii;
  }
  if (s.empty()) return false;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), *out);
  return ec == std::errc() && end == s.data() + s.size() && std::isfinite(*out);
}

// The cells of a Markdown table row ("| a | b |"), trimmed, with "\|" unescaped; false for a
// line that is not a table row.
bool TableCells(std::string_view line, std::vector<std::string>* cells) {
  cells->clear();
  line = StripWhitespace(line);
  if (!line.starts_with('|')) return false;
  std::string cell;
  for (size_t i = 1; i < line.size(); ++i) {
    if (line[i] == '\\' && i + 1 < line.size() && line[i + 1] == '|') {
      cell.push_back('|');
      ++i;
    } else if (line[i] == '|') {
      cells->emplace_back(StripWhitespace(cell));
      cell.clear();
    } else {
      cell.push_back(line[i]);
    }
  }
  if (!StripWhitespace(cell).empty()) cells->emplace_back(StripWhitespace(cell));
  return true;
}

struct Example {
  std::string sentence;
  double compound;
  bool has_shares = false;  // when the table also has the columns neg, neu and pos
  double shares[3] = {0, 0, 0};
};

// The reference implementation's example outputs listed in vader/README.md: the rows of the
// Markdown table whose header has the columns `sentence` and `compound`.
absl::StatusOr<std::vector<Example>> ReadExamples(const std::string& path) {
  auto text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  std::vector<std::string_view> lines = Lines(*text);
  std::vector<std::string> cells;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (!TableCells(lines[i], &cells)) continue;
    constexpr size_t none = std::string_view::npos;
    size_t sentence_col = none, compound_col = none, share_col[3] = {none, none, none};
    for (size_t c = 0; c < cells.size(); ++c) {
      if (EqualsIgnoreCase(cells[c], "sentence")) sentence_col = c;
      if (EqualsIgnoreCase(cells[c], "compound")) compound_col = c;
      if (EqualsIgnoreCase(cells[c], "neg")) share_col[0] = c;
      if (EqualsIgnoreCase(cells[c], "neu")) share_col[1] = c;
      if (EqualsIgnoreCase(cells[c], "pos")) share_col[2] = c;
    }
    if (sentence_col == none || compound_col == none) continue;
    std::vector<Example> examples;
    // The header, then the delimiter row (|---|), then the examples until the table ends.
    for (size_t j = i + 2; j < lines.size() && TableCells(lines[j], &cells); ++j) {
      Example e;
      if (sentence_col >= cells.size() || compound_col >= cells.size() ||
          !ParseNumber(cells[compound_col], &e.compound)) {
        return absl::InvalidArgumentError(ToAbsl(
            StrCat(path, ":", j + 1, ": expected an example row with a sentence and a compound")));
      }
      e.sentence = cells[sentence_col];
      e.has_shares = true;
      for (int k = 0; k < 3; ++k) {
        e.has_shares = e.has_shares && share_col[k] < cells.size() &&
                       ParseNumber(cells[share_col[k]], &e.shares[k]);
      }
      examples.push_back(std::move(e));
    }
    if (!examples.empty()) return examples;
  }
  return absl::InvalidArgumentError(
      ToAbsl(StrCat(path, ": no example table with columns 'sentence' and 'compound' was found")));
}

struct Rated {
  std::vector<std::string> texts;
  std::vector<double> ratings;
};

// A ground-truth file: lines `id<TAB>mean rating<TAB>text`, the text being the rest of the line.
absl::StatusOr<Rated> ReadGroundTruth(const std::string& path) {
  auto text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  Rated out;
  std::vector<std::string_view> lines = Lines(*text);
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    if (StripWhitespace(line).empty()) continue;
    size_t tab1 = line.find('\t');
    size_t tab2 = tab1 == std::string_view::npos ? tab1 : line.find('\t', tab1 + 1);
    double rating;
    if (tab2 == std::string_view::npos ||
        !ParseNumber(line.substr(tab1 + 1, tab2 - tab1 - 1), &rating)) {
      return absl::InvalidArgumentError(
          ToAbsl(StrCat(path, ":", i + 1, ": expected id<TAB>mean rating<TAB>text")));
    }
    out.texts.emplace_back(line.substr(tab2 + 1));
    out.ratings.push_back(rating);
  }
  return out;
}

struct Labelled {
  std::vector<std::string> sentences;
  std::vector<std::string> labels;  // "1" positive, "0" negative
};

// A labelled-sentences file: lines `sentence<TAB>label`, the label after the last tab.
absl::StatusOr<Labelled> ReadLabelled(const std::string& path) {
  auto text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  Labelled out;
  std::vector<std::string_view> lines = Lines(*text);
  for (size_t i = 0; i < lines.size(); ++i) {
    std::string_view line = lines[i];
    if (StripWhitespace(line).empty()) continue;
    size_t tab = line.rfind('\t');
    std::string_view label =
        tab == std::string_view::npos ? std::string_view() : StripWhitespace(line.substr(tab + 1));
    if (label != "0" && label != "1") {
      return absl::InvalidArgumentError(
          ToAbsl(StrCat(path, ":", i + 1, ": expected sentence<TAB>label with label 0 or 1")));
    }
    out.sentences.emplace_back(line.substr(0, tab));
    out.labels.emplace_back(label);
  }
  return out;
}

// Equal when rounded to `decimals` places, as the README prints them (0.431 is 0.4310).
bool SameRounded(double a, double b, int decimals) {
  double scale = std::pow(10.0, decimals);
  return std::llround(a * scale) == std::llround(b * scale);
}

}  // namespace

absl::StatusOr<std::string> RunSentiment(const std::string& data_dir) {
  const std::string vader_dir = StrCat(data_dir, "/vader/");
  const std::string labelled_dir = StrCat(data_dir, "/sentiment_labelled_sentences/");

  // Read everything first, so that a missing file fails before any work.
  auto examples = ReadExamples(vader_dir + "README.md");
  if (!examples.ok()) return examples.status();
  std::vector<Rated> corpora;
  for (const GroundTruthCorpus& c : kGroundTruth) {
    auto rated = ReadGroundTruth(StrCat(vader_dir, c.file));
    if (!rated.ok()) return rated.status();
    corpora.push_back(*std::move(rated));
  }
  std::vector<Labelled> labelled;
  for (std::string_view source : kLabelledSources) {
    auto l = ReadLabelled(StrCat(labelled_dir, source, "_labelled.txt"));
    if (!l.ok()) return l.status();
    labelled.push_back(*std::move(l));
  }

  TimedAnalyzer analyzer;
  std::string out;
  JsonWriter w(&out);
  w.StartObject();
  w.Key("task");
  w.String("sentiment");
  w.Key("model");
  w.String("VADER (text::SentimentAnalyzer), lexicon model, no training");

  // The reference implementation's published examples, compound to 4 decimals.
  w.Key("readme_examples");
  w.StartObject();
  w.Key("source");
  w.String("vader/README.md");
  size_t matched = 0, with_shares = 0, shares_matched = 0;
  w.Key("examples");
  w.StartArray();
  for (const Example& e : *examples) {
    text::Sentiment s = analyzer.Score(e.sentence);
    double ours = s.compound;
    bool match = SameRounded(ours, e.compound, 4);
    matched += match;
    w.StartObject();
    w.Key("sentence");
    w.String(e.sentence);
    w.Key("expected");
    w.Double(e.compound);
    w.Key("ours");
    w.Double(static_cast<double>(std::llround(ours * 1e4)) / 1e4);
    w.Key("match");
    w.Bool(match);
    if (e.has_shares) {
      // The neg, neu and pos shares the README also lists, to its 3 decimals.
      bool shares_match = SameRounded(s.negative, e.shares[0], 3) &&
                          SameRounded(s.neutral, e.shares[1], 3) &&
                          SameRounded(s.positive, e.shares[2], 3);
      ++with_shares;
      shares_matched += shares_match;
      w.Key("shares_match");
      w.Bool(shares_match);
    }
    w.EndObject();
  }
  w.EndArray();
  w.Key("count");
  w.Uint(examples->size());
  w.Key("matched");
  w.Uint(matched);
  if (with_shares > 0) {
    w.Key("shares_matched");
    w.Uint(shares_matched);
  }
  w.EndObject();

  // Pearson r between our compound score and the mean human rating.
  w.Key("ground_truth");
  w.StartArray();
  for (size_t c = 0; c < corpora.size(); ++c) {
    std::vector<double> compound;
    compound.reserve(corpora[c].texts.size());
    for (const std::string& t : corpora[c].texts) compound.push_back(analyzer.Score(t).compound);
    w.StartObject();
    w.Key("corpus");
    w.String(kGroundTruth[c].name);
    w.Key("file");
    w.String(StrCat("vader/", kGroundTruth[c].file));
    w.Key("texts");
    w.Uint(compound.size());
    w.Key("pearson_r");
    w.Double(Pearson(compound, corpora[c].ratings));
    w.Key("published_r");
    w.Double(kGroundTruth[c].published_r);
    w.EndObject();
  }
  w.EndArray();

  // Accuracy on the labelled sentences.
  w.Key("labelled_sentences");
  w.StartObject();
  w.Key("rule");
  w.String("positive when compound >= 0.05 (the VADER convention), else negative");
  w.Key("protocol");
  w.String(
      "every sentence scored once: the model is not trained, so the README's 10 folds are not "
      "needed (their pooled accuracy is this one)");
  std::vector<std::string> all_predicted, all_truth;
  w.Key("sources");
  w.StartArray();
  for (size_t s = 0; s < labelled.size(); ++s) {
    std::vector<std::string> predicted;
    predicted.reserve(labelled[s].sentences.size());
    for (const std::string& sentence : labelled[s].sentences) {
      predicted.emplace_back(analyzer.Score(sentence).compound >= kPositiveThreshold ? "1" : "0");
    }
    w.StartObject();
    w.Key("source");
    w.String(kLabelledSources[s]);
    w.Key("sentences");
    w.Uint(predicted.size());
    w.Key("accuracy");
    w.Double(Accuracy(predicted, labelled[s].labels));
    w.EndObject();
    all_predicted.insert(all_predicted.end(), predicted.begin(), predicted.end());
    all_truth.insert(all_truth.end(), labelled[s].labels.begin(), labelled[s].labels.end());
  }
  w.EndArray();
  w.Key("overall");
  w.StartObject();
  w.Key("sentences");
  w.Uint(all_predicted.size());
  w.Key("accuracy");
  w.Double(Accuracy(all_predicted, all_truth));
  w.EndObject();
  w.EndObject();

  w.Key("texts_scored");
  w.Uint(analyzer.texts());
  w.Key("microseconds_per_text");
  w.Double(analyzer.MicrosPerText());
  w.EndObject();
  return out;
}

}  // namespace whisperer::eval
