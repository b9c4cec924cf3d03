// IntentModel: what a customer's message asks for ("card_arrival", "cancel_order"), as the top
// labels with their probabilities, from a supervised fastText classifier trained on labelled
// example messages.
//
// Why fastText (Joulin, Grave, Bojanowski, Mikolov 2016, "Bag of Tricks for Efficient Text
// Classification"): a linear model over averaged embeddings of words, word n-grams and
// character n-grams, trained by SGD with a softmax output. On BANKING77 it scores 0.905 test
// accuracy, above TF-IDF + logistic regression (0.895) though below fine-tuned BERT (0.937); it
// trains on ten thousand messages in well under a minute on one core, predicts in tens of
// microseconds, needs no pretrained vectors, and is packaged by Debian (libfasttext-dev), so
// nothing is vendored. Character n-grams (minn/maxn) make it robust to the typos and run-on
// words customers type.
//
// Text normalization (NormalizeIntentText) is the same for training and prediction: ASCII
// letters are lower-cased, every ASCII punctuation character becomes a token of its own ("card?"
// -> "card ?", "don't" -> "don ' t"), ASCII whitespace and control characters separate tokens,
// and tokens are joined by single spaces. Typographic single quotes (U+2018, U+2019) count as
// apostrophes and a no-break space (U+00A0) as a space; other bytes >= 0x80 (UTF-8) are kept as
// they are, inside words. Because '_' and '<' are punctuation, no normalized token can be mistaken
// for a fastText label ("__label__x") or for its end-of-line token ("</s>").
//
// Thread-safety: an IntentModel is immutable after Train or Deserialize; Predict, Serialize and
// the accessors may be called from any number of threads at once. fastText's prediction path
// (Dictionary::getLine and FastText::predict, both const) keeps its working vectors in a
// Model::State built on each call, and reads the shared matrices only, so concurrent calls
// need no lock (IntentModelTest.ConcurrentPredictionsAgree exercises it). Train blocks until
// fastText's `thread` training threads finish (with thread = 1 it trains on the caller's).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace whisperer::text {

// One labelled training message.
struct IntentExample {
  std::string text;   // the message; must not be empty once normalized
  std::string label;  // the intent; 1 to kMaxIntentLabelBytes, no whitespace or control characters
};

// The longest intent label (what a profile keeps of one, state::kMaxTextRefBytes).
inline constexpr size_t kMaxIntentLabelBytes = 256;

// Training options. The defaults were chosen on the BANKING77 dev split (every tenth training
// example of each intent; see src/eval/intent.cc for the runs) and suit short customer queries
// of a few to a few dozen words with tens of intents.
struct IntentOptions {
  // Passes over the training examples. Short texts give few updates per pass, so far more than
  // fastText's default of 5 are needed (BANKING77 dev: 0.885 at 25, 0.887 at 50, no better at
  // 100 with half the rate).
  int epoch = 50;
  // Initial SGD learning rate, decayed linearly to 0 over training. 0.5 and 1.0 did equally
  // well; much higher can diverge (training then fails with Internal "Encountered NaN").
  double lr = 0.5;
  // Embedding size. Training and prediction time and the model's size grow linearly with it
  // (dev: 0.882 at 50, 0.887 at 100, 0.883 at 200).
  int dim = 100;
  // Longest word n-gram used as a feature (1 = words only, 2 adds bigrams such as "not
  // arrived"). Bigrams help on intents told apart by word order (dev: +1 point); 3 hurt.
  int word_ngrams = 2;
  // Words seen fewer times in training are dropped from the vocabulary (their character
  // n-grams still count when minn/maxn are on).
  int min_count = 1;
  // Character n-gram lengths, on each word with '<' and '>' added at its ends; maxn = 0 turns
  // them off. They share `bucket` rows with word n-grams. They carry typos and word forms
  // ("refunded" ~ "refund"): dev 0.867 without, 0.884 with 3-5, 0.889 with 4-5 (3 seeds).
  int minn = 4;
  int maxn = 5;
  // Hash buckets for word and character n-grams. Fewer buckets mean more collisions but a
  // smaller model: the input matrix holds (vocabulary + bucket) x dim floats, which dominates
  // Serialize()'s size (21 MB on BANKING77; 80 MB with 200,000 buckets, for the same dev
  // accuracy within 0.2 points; 20,000 lost half a point).
  int bucket = 50000;
  // fastText training threads. With 1 (the default) training is deterministic: the same
  // examples, options and seed give the same model byte for byte. With more, threads race on
  // the shared weights (Hogwild!) and results vary a little from run to run.
  int thread = 1;
  // Seeds the random initial weights and the shuffle of the examples before training.
  int seed = 42;
};

// One predicted label and its probability under the model's softmax.
struct IntentScore {
  std::string label;
  double probability = 0;
};

// The normalized form of `text` that the model trains and predicts on (see the file comment).
std::string NormalizeIntentText(std::string_view text);

class IntentModel {
 public:
  // Whether `example` can be trained on: InvalidArgument, saying why, for a text empty once
  // normalized, an empty label, one over kMaxIntentLabelBytes, or one with whitespace or
  // control characters.
  static absl::Status CheckExample(const IntentExample& example);

  // Trains a model on `examples`. InvalidArgument, naming the example or option, for: no
  // examples, one CheckExample refuses, fewer than 2 distinct labels, an option out of range.
  // Internal if fastText fails (or the temporary training file cannot be written). The
  // examples are written, shuffled with `options.seed`, to a private temporary file that is
  // removed before returning, because fastText only trains from a file.
  static absl::StatusOr<std::unique_ptr<IntentModel>> Train(std::span<const IntentExample> examples,
                                                            const IntentOptions& options = {});

  // Restores a model written by Serialize(). InvalidArgument for anything else (wrong magic,
  // truncated, corrupted, a fastText model of another kind): the bytes are checksummed and
  // their fastText part is walked and bounds-checked before fastText reads it, since fastText
  // itself trusts its input (it loops forever or reads out of range on a truncated file).
  static absl::StatusOr<std::unique_ptr<IntentModel>> Deserialize(std::string_view bytes);

  ~IntentModel();
  IntentModel(const IntentModel&) = delete;
  IntentModel& operator=(const IntentModel&) = delete;

  // The `k` most probable labels for `text`, most probable first, with probabilities from the
  // softmax over all labels (so they sum to at most 1 over any k; to 1 over all labels, up to
  // rounding). k is capped at the number of labels; k <= 0 gives nothing. An empty result also
  // means that `text` is empty once normalized.
  std::vector<IntentScore> Predict(std::string_view text, int k = 3) const;

  // The model as bytes, for storing in the database; Deserialize() reads them back. The size is
  // about (vocabulary + bucket + labels) x dim x 4 bytes.
  std::string Serialize() const;

  // The labels the model knows, sorted.
  const std::vector<std::string>& labels() const { return sorted_labels_; }
  // How many examples it was trained on.
  int64_t training_examples() const { return training_examples_; }
  // The options it was trained with.
  const IntentOptions& options() const { return options_; }

 private:
  class FastTextModel;  // fasttext::FastText with access to its stream (de)serialization

  IntentModel(std::unique_ptr<FastTextModel> model, const IntentOptions& options,
              int64_t training_examples);

  std::unique_ptr<FastTextModel> model_;
  IntentOptions options_;
  int64_t training_examples_ = 0;
  std::vector<std::string> labels_by_id_;  // fastText's label id -> label, "__label__" removed
  std::vector<std::string> sorted_labels_;
};

}  // namespace whisperer::text
