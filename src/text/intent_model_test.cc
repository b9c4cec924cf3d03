#include "text/intent_model.h"

#include <cstring>
#include <thread>

#include "common/hash.h"
#include "common/strings.h"
#include "gtest/gtest.h"

namespace whisperer::text {
namespace {

// A few intents with ten phrasings each, written for this test.
std::vector<IntentExample> TrainingSet() {
  std::vector<IntentExample> out;
  auto add = [&out](const char* label, std::initializer_list<const char*> texts) {
    for (const char* t : texts) out.push_back({t, label});
  };
  add("track_order",
      {"where is my order", "has my package shipped yet", "I want to track my parcel",
       "when will my order arrive", "can you tell me the delivery status of my order",
       "my package still hasn't arrived", "tracking number for my shipment please",
       "how long until my order is delivered", "is my parcel on its way",
       "what is the status of my delivery"});
  add("cancel_order", {"I want to cancel my order", "please cancel the order I just placed",
                       "how do I cancel a purchase", "cancel my subscription order",
                       "I changed my mind, cancel it", "stop my order before it ships",
                       "can I still cancel my order", "I need to cancel an order I made yesterday",
                       "cancel order number 12345", "undo my last purchase"});
  add("refund", {"I want my money back", "how do I get a refund", "refund my payment please",
                 "when will I receive my refund", "the item was broken and I want a refund",
                 "can I return this for a full refund", "I was charged twice, please refund me",
                 "has my refund been processed", "give me my money back",
                 "request a refund for my purchase"});
  add("reset_password",
      {"I forgot my password", "how do I reset my password", "I can't log in to my account",
       "password reset link is not working", "change my password please",
       "locked out of my account", "I need a new password", "my login doesn't work",
       "help me recover my account password", "reset password"});
  return out;
}

struct HeldOut {
  const char* text;
  const char* label;
};
const HeldOut kHeldOut[] = {
    {"Where is my parcel right now?", "track_order"},
    {"when does my package arrive", "track_order"},
    {"Please CANCEL my purchase", "cancel_order"},
    {"I'd like to cancel the order", "cancel_order"},
    {"I would like a refund", "refund"},
    {"please give my money back!", "refund"},
    {"I forgot the password to my account", "reset_password"},
    {"can't log into my account", "reset_password"},
};

// Small enough to train and serialize quickly (a few MB rather than the default's 80).
IntentOptions SmallOptions() {
  IntentOptions o;
  o.dim = 32;
  o.bucket = 20000;
  return o;
}

std::unique_ptr<IntentModel> TrainOrDie(const IntentOptions& options = SmallOptions()) {
  auto examples = TrainingSet();
  auto model = IntentModel::Train(examples, options);
  EXPECT_TRUE(model.ok()) << model.status();
  return model.ok() ? std::move(*model) : nullptr;
}

TEST(NormalizeIntentTextTest, LowercasesSplitsPunctuationCollapsesWhitespace) {
  EXPECT_EQ(NormalizeIntentText("  Where's my CARD?!\t\n now "), "where ' s my card ? ! now");
  EXPECT_EQ(NormalizeIntentText("don\xE2\x80\x99t"), "don ' t");  // typographic apostrophe
  EXPECT_EQ(NormalizeIntentText("a\xC2\xA0"
                                "b"),
            "a b");                                                              // no-break space
  EXPECT_EQ(NormalizeIntentText("Caf\xC3\xA9 au lait"), "caf\xC3\xA9 au lait");  // UTF-8 kept
  EXPECT_EQ(NormalizeIntentText("order #12345,thanks"), "order # 12345 , thanks");
  // Nothing can become a fastText label or its end-of-line token.
  EXPECT_EQ(NormalizeIntentText("__label__x </s>"), "_ _ label _ _ x < / s >");
  EXPECT_EQ(NormalizeIntentText(" \t\r\n"), "");
}

TEST(IntentModelTest, PredictsHeldOutPhrasings) {
  for (const IntentOptions& options : {SmallOptions(), IntentOptions{}}) {
    auto model = TrainOrDie(options);
    ASSERT_NE(model, nullptr);
    EXPECT_EQ(model->labels(), (std::vector<std::string>{"cancel_order", "refund", "reset_password",
                                                         "track_order"}));
    EXPECT_EQ(model->training_examples(), 40);
    for (const HeldOut& h : kHeldOut) {
      auto top = model->Predict(h.text, 1);
      ASSERT_EQ(top.size(), 1u) << h.text;
      EXPECT_EQ(top[0].label, h.label) << h.text << " (dim " << options.dim << ")";
    }
  }
}

TEST(IntentModelTest, ProbabilitiesAreSortedAndSumToAtMostOne) {
  auto model = TrainOrDie();
  ASSERT_NE(model, nullptr);
  for (const HeldOut& h : kHeldOut) {
    for (int k : {1, 2, 3, 4}) {
      auto scores = model->Predict(h.text, k);
      ASSERT_EQ(scores.size(), static_cast<size_t>(k));
      double sum = 0;
      for (size_t i = 0; i < scores.size(); ++i) {
        EXPECT_GE(scores[i].probability, 0);
        if (i > 0) {
          EXPECT_LE(scores[i].probability, scores[i - 1].probability);
        }
        sum += scores[i].probability;
      }
      EXPECT_LE(sum, 1 + 1e-9) << h.text;
      if (k == 4) {
        EXPECT_NEAR(sum, 1, 1e-9) << h.text;  // all labels
      }
    }
    EXPECT_GT(model->Predict(h.text, 1)[0].probability, 0.5) << h.text;
  }
  EXPECT_EQ(model->Predict("where is my order", 10).size(), 4u);  // capped at the label count
  EXPECT_TRUE(model->Predict("where is my order", 0).empty());
  EXPECT_TRUE(model->Predict(" \n ", 3).empty());
  // Words never seen still get an answer (from "</s>" and character n-grams).
  EXPECT_EQ(model->Predict("zzqx", 3).size(), 3u);
}

TEST(IntentModelTest, SerializeRoundTripGivesIdenticalPredictions) {
  IntentOptions options = SmallOptions();
  options.seed = 7;
  options.epoch = 40;
  auto model = TrainOrDie(options);
  ASSERT_NE(model, nullptr);
  std::string bytes = model->Serialize();
  auto restored = IntentModel::Deserialize(bytes);
  ASSERT_TRUE(restored.ok()) << restored.status();
  const IntentModel& copy = **restored;
  EXPECT_EQ(copy.labels(), model->labels());
  EXPECT_EQ(copy.training_examples(), 40);
  EXPECT_EQ(copy.options().seed, 7);
  EXPECT_EQ(copy.options().epoch, 40);
  EXPECT_EQ(copy.options().lr, options.lr);
  EXPECT_EQ(copy.options().dim, options.dim);
  EXPECT_EQ(copy.options().bucket, options.bucket);
  EXPECT_EQ(copy.Serialize(), bytes);
  for (const HeldOut& h : kHeldOut) {
    auto a = model->Predict(h.text, 4);
    auto b = copy.Predict(h.text, 4);
    ASSERT_EQ(a.size(), b.size());
    for (size_t i = 0; i < a.size(); ++i) {
      EXPECT_EQ(a[i].label, b[i].label);
      EXPECT_EQ(a[i].probability, b[i].probability);
    }
  }
}

// Offsets in Serialize()'s envelope (intent_model.cc): magic 8, version 4, examples 8,
// epoch 4, lr 8, eight int32 options, payload size 8, then the payload's Hash64.
constexpr size_t kHashOffset = 8 + 4 + 8 + 4 + 8 + 8 * 4 + 8;
constexpr size_t kPayloadOffset = kHashOffset + 8;

// Rewrites the envelope's size and checksum to match a modified payload, so only the check of
// the fastText structure itself stands between the bytes and fastText.
std::string Reseal(std::string bytes) {
  std::string_view payload = std::string_view(bytes).substr(kPayloadOffset);
  uint64_t size = payload.size(), hash = Hash64(payload);
  std::memcpy(bytes.data() + kHashOffset - 8, &size, 8);
  std::memcpy(bytes.data() + kHashOffset, &hash, 8);
  return bytes;
}

TEST(IntentModelTest, DeserializeRejectsGarbage) {
  auto model = TrainOrDie();
  ASSERT_NE(model, nullptr);
  const std::string good = model->Serialize();
  ASSERT_TRUE(IntentModel::Deserialize(good).ok());

  std::vector<std::pair<std::string, std::string>> cases = {
      {"empty", ""},
      {"text", "this is not a model at all, just some text that is long enough to parse"},
      {"magic only", "WHINTENT"},
      {"header only", good.substr(0, kPayloadOffset)},
      {"fastText bytes without the envelope", good.substr(kPayloadOffset)},
  };
  for (size_t cut :
       {size_t{9}, kHashOffset, kPayloadOffset + 3, good.size() / 2, good.size() - 1}) {
    cases.push_back({StrCat("truncated to ", cut), good.substr(0, cut)});
  }
  std::string flipped = good;
  flipped[kPayloadOffset + 100] ^= 0x40;
  cases.push_back({"a flipped payload byte", flipped});
  std::string extra = good + "x";
  cases.push_back({"a trailing byte", extra});
  // Checksummed but structurally wrong: fastText would loop or read out of range on these.
  std::string huge_dictionary = good;
  const int32_t huge = 0x7fffffff;
  std::memcpy(huge_dictionary.data() + kPayloadOffset + 64, &huge, 4);  // after magic+args
  cases.push_back({"a resealed huge dictionary size", Reseal(huge_dictionary)});
  cases.push_back({"a resealed truncated payload", Reseal(good.substr(0, good.size() - 100))});
  std::string wrong_loss = good;
  const int32_t ns = 2;                                                 // loss_name::ns
  std::memcpy(wrong_loss.data() + kPayloadOffset + 8 + 6 * 4, &ns, 4);  // Args.loss
  cases.push_back({"a resealed other loss", Reseal(wrong_loss)});

  for (const auto& [name, bytes] : cases) {
    auto restored = IntentModel::Deserialize(bytes);
    EXPECT_EQ(restored.status().code(), absl::StatusCode::kInvalidArgument) << name;
    EXPECT_TRUE(ToStd(restored.status().message()).starts_with("not a serialized intent model"))
        << name << ": " << restored.status();
  }
}

TEST(IntentModelTest, TrainRejectsBadInputNamingTheProblem) {
  auto expect_invalid = [](std::vector<IntentExample> examples, std::string_view fragment,
                           const IntentOptions& options = SmallOptions()) {
    auto model = IntentModel::Train(examples, options);
    ASSERT_EQ(model.status().code(), absl::StatusCode::kInvalidArgument) << fragment;
    EXPECT_NE(ToStd(model.status().message()).find(fragment), std::string_view::npos)
        << model.status();
  };
  expect_invalid({}, "no training examples");
  expect_invalid({{"hello", "greet"}, {"hi there", "greet"}}, "at least 2 distinct labels");
  expect_invalid({{"hello", "greet"}, {" \t ", "bye"}},
                 "example 1: the text (label 'bye') is empty once normalized");
  expect_invalid({{"hello", "greet"}, {"bye", ""}}, "example 1: empty label");
  expect_invalid({{"hello", "greet"}, {"bye", std::string(kMaxIntentLabelBytes + 1, 'x')}},
                 "example 1: label 'xxxx");
  expect_invalid({{"hello", "greet"}, {"bye", std::string(kMaxIntentLabelBytes + 1, 'x')}},
                 "is over 256 bytes");
  expect_invalid({{"hello", "greet"}, {"bye", "good bye"}}, "label 'good bye' contains whitespace");
  expect_invalid({{"hello", "greet"}, {"bye", "bye\n"}}, "contains whitespace");
  IntentOptions bad = SmallOptions();
  bad.epoch = 0;
  expect_invalid(TrainingSet(), "IntentOptions.epoch", bad);
  bad = SmallOptions();
  bad.minn = 6;
  bad.maxn = 3;
  expect_invalid(TrainingSet(), "IntentOptions.minn", bad);
  bad = SmallOptions();
  bad.bucket = 0;
  expect_invalid(TrainingSet(), "IntentOptions.bucket", bad);
}

TEST(IntentModelTest, SameSeedOnOneThreadGivesTheSameModel) {
  auto a = TrainOrDie();
  auto b = TrainOrDie();
  ASSERT_NE(a, nullptr);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(a->Serialize(), b->Serialize());
  for (const HeldOut& h : kHeldOut) {
    auto pa = a->Predict(h.text, 4);
    auto pb = b->Predict(h.text, 4);
    ASSERT_EQ(pa.size(), pb.size());
    for (size_t i = 0; i < pa.size(); ++i) {
      EXPECT_EQ(pa[i].label, pb[i].label);
      EXPECT_EQ(pa[i].probability, pb[i].probability);
    }
  }
  IntentOptions other = SmallOptions();
  other.seed = SmallOptions().seed + 1;
  auto c = TrainOrDie(other);
  ASSERT_NE(c, nullptr);
  EXPECT_NE(a->Serialize(), c->Serialize());
}

TEST(IntentModelTest, ConcurrentPredictionsAgree) {
  auto model = TrainOrDie();
  ASSERT_NE(model, nullptr);
  std::vector<std::vector<IntentScore>> expected;
  for (const HeldOut& h : kHeldOut) expected.push_back(model->Predict(h.text, 3));
  std::vector<int> mismatches(4, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 50; ++round) {
        for (size_t i = 0; i < std::size(kHeldOut); ++i) {
          auto got = model->Predict(kHeldOut[i].text, 3);
          bool same = got.size() == expected[i].size();
          for (size_t j = 0; same && j < got.size(); ++j) {
            same = got[j].label == expected[i][j].label &&
                   got[j].probability == expected[i][j].probability;
          }
          mismatches[t] += !same;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  for (int t = 0; t < 4; ++t) EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

}  // namespace
}  // namespace whisperer::text
