#include "text/intent_model.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>
#include <istream>
#include <random>
#include <set>
#include <sstream>
#include <streambuf>
#include <type_traits>

#include "common/hash.h"
#include "common/strings.h"
#include "common/temp_files.h"
#include "fasttext/fasttext.h"

namespace whisperer::text {

// fasttext::FastText writes and reads its model only through a file path (saveModel) or after
// checking the header itself (loadModel(path)); its stream-level pieces are protected. This
// subclass exposes them so a model goes to and from memory without a temporary file. The
// format is exactly saveModel's.
class IntentModel::FastTextModel : public fasttext::FastText {
 public:
  // FastText::saveModel(path), to a stream. Reads the model only (signModel and Args::save are
  // not const in fastText but write nothing to the object).
  void Save(std::ostream& out) {
    signModel(out);
    args_->save(out);
    dict_->save(out);
    out.write(reinterpret_cast<const char*>(&quant_), sizeof(bool));
    input_->save(out);
    out.write(reinterpret_cast<const char*>(&args_->qout), sizeof(bool));
    output_->save(out);
  }

  // FastText::loadModel(path), from a stream: checkModel reads the magic and sets the version
  // that loadModel(std::istream&) consults (left uninitialized otherwise). The caller has
  // validated the bytes (ValidateFastTextModel); fastText does not.
  bool Load(std::istream& in) {
    if (!checkModel(in)) return false;
    loadModel(in);
    return true;
  }
};

namespace {

// fastText 0.9.2's model file header (fasttext.cc) and label prefix (Args::label).
constexpr int32_t kFastTextMagic = 793712314;
constexpr int32_t kFastTextVersion = 12;
constexpr std::string_view kLabelPrefix = "__label__";
// fastText's predictions are log(p + 1e-5) (loss.cc, std_log); Predict undoes it.
constexpr double kFastTextLogEpsilon = 1e-5;

// Serialize()'s envelope around fastText's model: magic, format version, the training
// metadata fastText does not keep (seed, lr, epoch, thread, example count), the payload's size
// and a checksum of it. Fixed-width fields in the host's byte order (little-endian on every
// platform the server builds for), as fastText writes its own fields.
constexpr std::string_view kMagic = "WHINTENT";
constexpr uint32_t kFormatVersion = 1;

bool IsSeparator(unsigned char c) { return c <= 0x20 || c == 0x7f; }
bool IsAsciiPunct(unsigned char c) {
  return (c >= 0x21 && c <= 0x2f) || (c >= 0x3a && c <= 0x40) || (c >= 0x5b && c <= 0x60) ||
         (c >= 0x7b && c <= 0x7e);
}

template <typename T>
void AppendFixed(std::string* out, T value) {
  static_assert(std::is_trivially_copyable_v<T>);
  char buf[sizeof(T)];
  std::memcpy(buf, &value, sizeof(T));
  out->append(buf, sizeof(T));
}

// Reads fixed-width fields from bytes, failing (instead of reading past the end) when too few
// remain.
class ByteReader {
 public:
  explicit ByteReader(std::string_view bytes) : bytes_(bytes) {}

  template <typename T>
  bool Read(T* value) {
    static_assert(std::is_trivially_copyable_v<T>);
    if (remaining() < sizeof(T)) return false;
    std::memcpy(value, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }
  // A NUL-terminated string, as fastText writes dictionary words.
  bool ReadCString(std::string_view* value) {
    size_t end = bytes_.find('\0', pos_);
    if (end == std::string_view::npos) return false;
    *value = bytes_.substr(pos_, end - pos_);
    pos_ = end + 1;
    return true;
  }
  bool Skip(size_t n) {
    if (remaining() < n) return false;
    pos_ += n;
    return true;
  }
  size_t remaining() const { return bytes_.size() - pos_; }
  size_t pos() const { return pos_; }

 private:
  std::string_view bytes_;
  size_t pos_ = 0;
};

// An istream source over bytes that outlive it, so a model is loaded without copying them.
class ViewStreamBuf : public std::streambuf {
 public:
  explicit ViewStreamBuf(std::string_view bytes) {
    char* begin = const_cast<char*>(bytes.data());  // only read: no put area is set
    setg(begin, begin, begin + bytes.size());
  }
};

absl::Status Invalid(std::string_view what) {
  return absl::InvalidArgumentError(ToAbsl(StrCat("not a serialized intent model: ", what)));
}

absl::Status ValidateOptions(const IntentOptions& o) {
  auto bad = [](std::string_view name, std::string_view rule) {
    return absl::InvalidArgumentError(ToAbsl(StrCat("IntentOptions.", name, " must be ", rule)));
  };
  if (o.epoch < 1 || o.epoch > 10000) return bad("epoch", "in [1, 10000]");
  if (!(o.lr > 0 && o.lr <= 10)) return bad("lr", "in (0, 10]");
  if (o.dim < 1 || o.dim > 10000) return bad("dim", "in [1, 10000]");
  if (o.word_ngrams < 1 || o.word_ngrams > 10) return bad("word_ngrams", "in [1, 10]");
  if (o.min_count < 1) return bad("min_count", "at least 1");
  if (o.maxn < 0 || o.maxn > 32) return bad("maxn", "in [0, 32]");
  if (o.maxn > 0 && (o.minn < 1 || o.minn > o.maxn)) {
    return bad("minn", "in [1, maxn] when maxn > 0");
  }
  if (o.bucket < 0 || o.bucket > 10000000) return bad("bucket", "in [0, 10000000]");
  if (o.bucket == 0 && (o.maxn > 0 || o.word_ngrams > 1)) {
    return bad("bucket", "positive when word_ngrams > 1 or maxn > 0");
  }
  if (o.thread < 1 || o.thread > 256) return bad("thread", "in [1, 256]");
  return absl::OkStatus();
}

// Walks a fastText model (FastText::saveModel's format, version 12) checking every count and
// size against the bytes present, and that it is what Train produces: a supervised softmax
// model, unquantized and unpruned, whose matrices have the shapes its dictionary implies.
// fastText's loader trusts these (a truncated dictionary makes it loop forever), so nothing
// reaches it unchecked.
absl::Status ValidateFastTextModel(std::string_view bytes, const IntentOptions& options) {
  ByteReader r(bytes);
  int32_t magic = 0, version = 0;
  if (!r.Read(&magic) || !r.Read(&version)) return Invalid("fastText header truncated");
  if (magic != kFastTextMagic) return Invalid("fastText magic number missing");
  if (version != kFastTextVersion) {
    return Invalid(StrCat("fastText format version ", version, ", expected ", kFastTextVersion));
  }
  // Args::save: 12 ints then a double.
  int32_t dim, ws, epoch, min_count, neg, word_ngrams, loss, model, bucket, minn, maxn,
      lr_update_rate;
  double t;
  if (!r.Read(&dim) || !r.Read(&ws) || !r.Read(&epoch) || !r.Read(&min_count) || !r.Read(&neg) ||
      !r.Read(&word_ngrams) || !r.Read(&loss) || !r.Read(&model) || !r.Read(&bucket) ||
      !r.Read(&minn) || !r.Read(&maxn) || !r.Read(&lr_update_rate) || !r.Read(&t)) {
    return Invalid("fastText arguments truncated");
  }
  if (model != static_cast<int32_t>(fasttext::model_name::sup) ||
      loss != static_cast<int32_t>(fasttext::loss_name::softmax)) {
    return Invalid("not a supervised softmax fastText model");
  }
  if (dim != options.dim || word_ngrams != options.word_ngrams || bucket != options.bucket ||
      maxn != options.maxn || (maxn > 0 && minn != options.minn)) {
    return Invalid("fastText arguments differ from the recorded options");
  }
  // Dictionary::save.
  int32_t size, nwords, nlabels;
  int64_t ntokens, pruneidx_size;
  if (!r.Read(&size) || !r.Read(&nwords) || !r.Read(&nlabels) || !r.Read(&ntokens) ||
      !r.Read(&pruneidx_size)) {
    return Invalid("fastText dictionary truncated");
  }
  if (nwords < 0 || nlabels < 1 || size != int64_t{nwords} + nlabels || pruneidx_size != -1) {
    return Invalid("fastText dictionary sizes inconsistent");
  }
  // Each entry is at least 10 bytes; reject a size the bytes cannot hold before looping.
  if (static_cast<size_t>(size) > r.remaining() / 10)
    return Invalid("fastText dictionary truncated");
  for (int32_t i = 0; i < size; ++i) {
    std::string_view word;
    int64_t count;
    int8_t type;
    if (!r.ReadCString(&word) || !r.Read(&count) || !r.Read(&type)) {
      return Invalid("fastText dictionary truncated");
    }
    const bool is_label = i >= nwords;
    if (type != (is_label ? 1 : 0) || word.empty() ||
        (is_label && (!word.starts_with(kLabelPrefix) || word.size() == kLabelPrefix.size()))) {
      return Invalid(StrCat("fastText dictionary entry ", i, " malformed"));
    }
  }
  // Matrices: a quantization flag, then DenseMatrix::save (rows, columns, floats).
  auto read_matrix = [&r](int64_t want_rows, int64_t want_cols) -> bool {
    bool quantized = true;
    int64_t rows, cols;
    if (!r.Read(&quantized) || quantized || !r.Read(&rows) || !r.Read(&cols)) return false;
    if (rows != want_rows || cols != want_cols) return false;
    const size_t floats = static_cast<size_t>(rows) * static_cast<size_t>(cols);
    if (floats > r.remaining() / sizeof(float)) return false;
    return r.Skip(floats * sizeof(float));
  };
  if (!read_matrix(int64_t{nwords} + bucket, dim))
    return Invalid("fastText input matrix malformed");
  if (!read_matrix(nlabels, dim)) return Invalid("fastText output matrix malformed");
  if (r.remaining() != 0) return Invalid("trailing bytes after the fastText model");
  return absl::OkStatus();
}

// A temporary file only this process can read, removed when the object goes.
class TempFile {
 public:
  ~TempFile() {
    if (!path_.empty()) ::unlink(path_.c_str());
  }

  absl::Status Create(std::string_view contents) {
    const std::filesystem::path dir = TempDirectory();
    std::string path = (dir / "whisperer-intent-XXXXXX").string();
    int fd = ::mkstemp(path.data());  // mode 0600
    if (fd < 0) {
      return absl::InternalError(ToAbsl(
          StrCat("cannot create a training file in ", dir.string(), ": ", std::strerror(errno))));
    }
    path_ = path;
    while (!contents.empty()) {
      ssize_t n = ::write(fd, contents.data(), contents.size());
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        std::string why = std::strerror(errno);
        ::close(fd);
        return absl::InternalError(ToAbsl(StrCat("cannot write ", path_, ": ", why)));
      }
      contents.remove_prefix(static_cast<size_t>(n));
    }
    if (::close(fd) != 0) {
      return absl::InternalError(
          ToAbsl(StrCat("cannot write ", path_, ": ", std::strerror(errno))));
    }
    return absl::OkStatus();
  }

  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

}  // namespace

std::string NormalizeIntentText(std::string_view text) {
  std::string out;
  out.reserve(text.size() + text.size() / 4);
  bool in_word = false;
  auto start_token = [&out] {
    if (!out.empty()) out.push_back(' ');
  };
  for (size_t i = 0; i < text.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(text[i]);
    std::string_view rest = text.substr(i);
    // Typographic single quotes (U+2018, U+2019, as phones type "don’t") are apostrophes, and a
    // no-break space (U+00A0) is a space.
    if (rest.starts_with("\xE2\x80\x98") || rest.starts_with("\xE2\x80\x99")) {
      start_token();
      out.push_back('\'');
      in_word = false;
      i += 2;
    } else if (rest.starts_with("\xC2\xA0")) {
      in_word = false;
      i += 1;
    } else if (IsSeparator(c)) {
      in_word = false;
    } else if (IsAsciiPunct(c)) {
      start_token();
      out.push_back(static_cast<char>(c));
      in_word = false;
    } else {
      if (!in_word) start_token();
      in_word = true;
      out.push_back(c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : static_cast<char>(c));
    }
  }
  return out;
}

IntentModel::IntentModel(std::unique_ptr<FastTextModel> model, const IntentOptions& options,
                         int64_t training_examples)
    : model_(std::move(model)), options_(options), training_examples_(training_examples) {
  auto dict = model_->getDictionary();
  labels_by_id_.reserve(dict->nlabels());
  for (int32_t i = 0; i < dict->nlabels(); ++i) {
    std::string label = dict->getLabel(i);
    if (label.starts_with(kLabelPrefix)) label.erase(0, kLabelPrefix.size());
    labels_by_id_.push_back(std::move(label));
  }
  sorted_labels_ = labels_by_id_;
  std::sort(sorted_labels_.begin(), sorted_labels_.end());
}

IntentModel::~IntentModel() = default;

absl::Status IntentModel::CheckExample(const IntentExample& e) {
  if (e.label.empty()) return absl::InvalidArgumentError("empty label");
  if (e.label.size() > kMaxIntentLabelBytes) {
    return absl::InvalidArgumentError(ToAbsl(
        StrCat("label '", e.label.substr(0, 32), "...' is over ", kMaxIntentLabelBytes, " bytes")));
  }
  for (char c : e.label) {
    if (IsSeparator(static_cast<unsigned char>(c))) {
      return absl::InvalidArgumentError(
          ToAbsl(StrCat("label '", e.label, "' contains whitespace or a control character")));
    }
  }
  if (NormalizeIntentText(e.text).empty()) {
    return absl::InvalidArgumentError(
        ToAbsl(StrCat("the text (label '", e.label, "') is empty once normalized")));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<IntentModel>> IntentModel::Train(
    std::span<const IntentExample> examples, const IntentOptions& options) {
  if (absl::Status s = ValidateOptions(options); !s.ok()) return s;
  if (examples.empty()) return absl::InvalidArgumentError("no training examples");
  std::vector<std::string> lines;
  lines.reserve(examples.size());
  std::set<std::string_view> labels;
  for (size_t i = 0; i < examples.size(); ++i) {
    const IntentExample& e = examples[i];
    if (absl::Status s = CheckExample(e); !s.ok()) {
      return absl::InvalidArgumentError(ToAbsl(StrCat("example ", i, ": ", ToStd(s.message()))));
    }
    labels.insert(e.label);
    lines.push_back(StrCat(kLabelPrefix, e.label, " ", NormalizeIntentText(e.text), "\n"));
  }
  if (labels.size() < 2) {
    return absl::InvalidArgumentError(ToAbsl(StrCat(
        "at least 2 distinct labels are needed, the examples have only '", *labels.begin(), "'")));
  }

  // fastText reads the file in order, epoch after epoch, and does not shuffle: examples grouped
  // by label (as datasets usually are) would make SGD forget early labels. Fisher-Yates with
  // the seed, written out here so the order is the same with every standard library.
  std::mt19937_64 rng(static_cast<uint64_t>(options.seed));
  for (size_t i = lines.size() - 1; i > 0; --i) {
    std::swap(lines[i], lines[rng() % (i + 1)]);
  }
  std::string file;
  for (const std::string& line : lines) file += line;
  TempFile input;
  if (absl::Status s = input.Create(file); !s.ok()) return s;

  fasttext::Args args;
  args.input = input.path();
  args.model = fasttext::model_name::sup;
  args.loss = fasttext::loss_name::softmax;
  args.epoch = options.epoch;
  args.lr = options.lr;
  args.dim = options.dim;
  args.wordNgrams = options.word_ngrams;
  args.minCount = options.min_count;
  args.minCountLabel = 1;
  args.minn = options.maxn > 0 ? options.minn : 0;
  args.maxn = options.maxn;
  args.bucket = options.bucket;
  args.thread = options.thread;
  args.seed = options.seed;
  args.verbose = 0;  // fastText would otherwise print progress to stderr
  auto model = std::make_unique<FastTextModel>();
  try {
    model->train(args);
  } catch (const std::exception& e) {
    return absl::InternalError(ToAbsl(StrCat("fastText training failed: ", e.what())));
  }
  return std::unique_ptr<IntentModel>(
      new IntentModel(std::move(model), options, static_cast<int64_t>(examples.size())));
}

std::vector<IntentScore> IntentModel::Predict(std::string_view text, int k) const {
  std::vector<IntentScore> out;
  if (k <= 0) return out;
  std::string line = NormalizeIntentText(text);
  if (line.empty()) return out;
  // Every training line ended with a newline, which fastText reads as the token "</s>"; end
  // this one the same way so the features match.
  line.push_back('\n');
  std::istringstream in(std::move(line));
  std::vector<int32_t> words, labels_in_text;
  model_->getDictionary()->getLine(in, words, labels_in_text);
  if (words.empty()) return out;
  const int32_t nlabels = static_cast<int32_t>(labels_by_id_.size());
  fasttext::Predictions all;  // (log(p + 1e-5), label id), most probable first
  try {
    model_->predict(nlabels, words, all, 0.0);
  } catch (const std::exception&) {
    return out;  // not reached: the model is supervised and k >= 1
  }
  // Undo fastText's log(p + 1e-5) and renormalize over all labels, which removes the 1e-5 and
  // float rounding: the probabilities are the softmax's and sum to 1.
  std::vector<double> p(all.size());
  double sum = 0;
  for (size_t i = 0; i < all.size(); ++i) {
    p[i] = std::max(std::exp(static_cast<double>(all[i].first)) - kFastTextLogEpsilon, 0.0);
    sum += p[i];
  }
  const size_t n = std::min(all.size(), static_cast<size_t>(k));
  out.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    out.push_back({labels_by_id_[all[i].second], sum > 0 ? p[i] / sum : 0.0});
  }
  return out;
}

std::string IntentModel::Serialize() const {
  std::ostringstream fasttext_bytes;
  model_->Save(fasttext_bytes);
  std::string payload = std::move(fasttext_bytes).str();

  std::string out(kMagic);
  AppendFixed<uint32_t>(&out, kFormatVersion);
  AppendFixed<int64_t>(&out, training_examples_);
  AppendFixed<int32_t>(&out, options_.epoch);
  AppendFixed<double>(&out, options_.lr);
  AppendFixed<int32_t>(&out, options_.dim);
  AppendFixed<int32_t>(&out, options_.word_ngrams);
  AppendFixed<int32_t>(&out, options_.min_count);
  AppendFixed<int32_t>(&out, options_.minn);
  AppendFixed<int32_t>(&out, options_.maxn);
  AppendFixed<int32_t>(&out, options_.bucket);
  AppendFixed<int32_t>(&out, options_.thread);
  AppendFixed<int32_t>(&out, options_.seed);
  AppendFixed<uint64_t>(&out, payload.size());
  AppendFixed<uint64_t>(&out, Hash64(payload));
  out += payload;
  return out;
}

absl::StatusOr<std::unique_ptr<IntentModel>> IntentModel::Deserialize(std::string_view bytes) {
  ByteReader r(bytes);
  if (r.remaining() < kMagic.size() || bytes.substr(0, kMagic.size()) != kMagic) {
    return Invalid("magic number missing");
  }
  r.Skip(kMagic.size());
  uint32_t version = 0;
  int64_t examples = 0;
  IntentOptions o;
  uint64_t payload_size = 0, payload_hash = 0;
  if (!r.Read(&version)) return Invalid("header truncated");
  if (version != kFormatVersion) {
    return Invalid(StrCat("format version ", version, ", this build reads ", kFormatVersion));
  }
  if (!r.Read(&examples) || !r.Read(&o.epoch) || !r.Read(&o.lr) || !r.Read(&o.dim) ||
      !r.Read(&o.word_ngrams) || !r.Read(&o.min_count) || !r.Read(&o.minn) || !r.Read(&o.maxn) ||
      !r.Read(&o.bucket) || !r.Read(&o.thread) || !r.Read(&o.seed) || !r.Read(&payload_size) ||
      !r.Read(&payload_hash)) {
    return Invalid("header truncated");
  }
  if (examples < 0 || !ValidateOptions(o).ok()) return Invalid("header fields out of range");
  if (payload_size != r.remaining()) {
    return Invalid(
        StrCat("fastText model of ", r.remaining(), " bytes, the header says ", payload_size));
  }
  std::string_view payload = bytes.substr(r.pos());
  if (Hash64(payload) != payload_hash) return Invalid("checksum mismatch (corrupted bytes)");
  if (absl::Status s = ValidateFastTextModel(payload, o); !s.ok()) return s;

  auto model = std::make_unique<FastTextModel>();
  ViewStreamBuf buf(payload);
  std::istream in(&buf);
  try {
    if (!model->Load(in)) return Invalid("fastText header rejected");
  } catch (const std::exception& e) {
    return Invalid(StrCat("fastText could not load it: ", e.what()));
  }
  if (!in) return Invalid("fastText model truncated");
  return std::unique_ptr<IntentModel>(new IntentModel(std::move(model), o, examples));
}

}  // namespace whisperer::text
