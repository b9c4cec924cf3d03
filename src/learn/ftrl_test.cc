#include "learn/ftrl.h"

#include <cmath>
#include <random>

#include "gtest/gtest.h"

namespace whisperer::learn {
namespace {

// A synthetic stream: y ~ Bernoulli(sigmoid(2*[plan=pro] - 1.5*[device=mobile] + x - 0.5)).
struct Example {
  std::string plan;
  std::string device;
  double x;
  int label;
};

std::vector<Example> Stream(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> unit(0, 1);
  std::vector<Example> out;
  for (size_t i = 0; i < n; ++i) {
    Example e;
    e.plan = unit(rng) < 0.4 ? "pro" : "free";
    e.device = unit(rng) < 0.5 ? "mobile" : "desktop";
    e.x = unit(rng);
    double logit = 2.0 * (e.plan == "pro") - 1.5 * (e.device == "mobile") + e.x - 0.5;
    e.label = unit(rng) < Sigmoid(logit) ? 1 : 0;
    out.push_back(e);
  }
  return out;
}

void Build(const Example& e, FeatureBuilder* b) {
  b->Clear();
  b->Categorical("plan", e.plan);
  b->Categorical("device", e.device);
  b->Numeric("x", e.x);
}

TEST(FeatureBuilderTest, BiasFirstHashStableAndNamesKept) {
  FeatureBuilder a(18, /*keep_names=*/true), b(18);
  a.Categorical("plan", "pro");
  a.Numeric("age", 0.5);
  a.Numeric("zero", 0);  // zero values are not features
  a.Cross("plan", "pro", "device", "ios");
  b.Categorical("plan", "pro");
  ASSERT_EQ(a.features().size(), 4u);
  EXPECT_EQ(a.features()[0].index, 0u);
  EXPECT_EQ(a.features()[1].index, b.features()[1].index);
  EXPECT_EQ(a.names()[1], "plan=pro");
  EXPECT_EQ(a.names()[2], "age");
  EXPECT_EQ(a.names()[3], "plan=pro & device=ios");
  EXPECT_TRUE(b.names().empty());
  FeatureBuilder c(18);
  c.Categorical("plan", "prox");
  EXPECT_NE(c.features()[1].index, b.features()[1].index);
}

TEST(FtrlModelTest, LearnsTheGeneratingWeightsAndCalibrates) {
  FtrlModel model({.bits = 16, .alpha = 0.2, .beta = 1, .l1 = 0.1, .l2 = 0.1});
  FeatureBuilder b(16);
  for (const Example& e : Stream(40000, 1)) {
    Build(e, &b);
    model.Learn(b.features(), e.label);
  }
  EXPECT_EQ(model.examples(), 40000u);
  // On fresh data: predictions track the true probabilities, and are calibrated.
  double abs_error = 0, sum_p = 0, sum_y = 0;
  auto test = Stream(5000, 2);
  for (const Example& e : test) {
    Build(e, &b);
    double p = model.Predict(b.features());
    double truth = Sigmoid(2.0 * (e.plan == "pro") - 1.5 * (e.device == "mobile") + e.x - 0.5);
    abs_error += std::abs(p - truth);
    sum_p += p;
    sum_y += e.label;
  }
  EXPECT_LT(abs_error / test.size(), 0.05);
  EXPECT_NEAR(sum_p / test.size(), sum_y / test.size(), 0.02);
  EXPECT_GT(model.calibrator().a(), 0.5);
  EXPECT_LT(model.progressive_log_loss(), 0.62);

  // Explanations: plan=pro pushes up, device=mobile pushes down.
  FeatureBuilder named(16, true);
  Build({"pro", "mobile", 0.1, 0}, &named);
  auto top = model.TopContributions(named.features(), 2);
  ASSERT_EQ(top.size(), 2u);
  for (const Contribution& c : top) {
    const std::string& name = named.names()[c.feature];
    if (name == "plan=pro")
      EXPECT_GT(c.logit, 0.5);
    else if (name == "device=mobile")
      EXPECT_LT(c.logit, -0.5);
    else
      ADD_FAILURE() << "unexpected top feature " << name;
  }
}

TEST(FtrlModelTest, L1MakesIrrelevantFeaturesZero) {
  FtrlModel sparse({.bits = 16, .alpha = 0.1, .beta = 1, .l1 = 5, .l2 = 1});
  FeatureBuilder b(16);
  std::mt19937 rng(3);
  for (const Example& e : Stream(20000, 3)) {
    Build(e, &b);
    b.Categorical("noise", std::to_string(rng() % 2000));  // 2000 values seen ~10 times each
    sparse.Learn(b.features(), e.label);
  }
  // Each noise value is too rare to overcome l1 = 5, so the table stays small.
  EXPECT_LT(sparse.nonzero_weights(), 50u);
  EXPECT_GE(sparse.nonzero_weights(), 3u);
}

TEST(FtrlModelTest, SerializeRoundTripsAndRejectsCorruptImages) {
  FtrlModel model({.bits = 12});
  FeatureBuilder b(12);
  for (const Example& e : Stream(3000, 4)) {
    Build(e, &b);
    model.Learn(b.features(), e.label);
  }
  std::string image = model.Serialize();
  auto copy = FtrlModel::Deserialize(image);
  ASSERT_TRUE(copy.ok()) << copy.status();
  EXPECT_EQ(copy->examples(), model.examples());
  EXPECT_EQ(copy->positives(), model.positives());
  for (const Example& e : Stream(50, 5)) {
    Build(e, &b);
    EXPECT_DOUBLE_EQ(copy->Predict(b.features()), model.Predict(b.features()));
  }
  EXPECT_EQ(FtrlModel::Deserialize(image.substr(0, image.size() - 3)).status().code(),
            absl::StatusCode::kDataLoss);
  EXPECT_FALSE(FtrlModel::Deserialize("garbage").ok());
  EXPECT_FALSE(FtrlModel::Deserialize(image + "x").ok());
}

TEST(PlattCalibratorTest, StaysCalibratedWhenTheRawScoreIsFarFromTheLabelRate) {
  // Raw logits piled up far from where the labels put them (an early model sure of the wrong
  // thing): an undamped Newton step from the current fit overshot into a = 100, b = 50, every
  // probability 1 (seen on live churn models). The fit must land near the truth instead.
  std::mt19937 rng(3);
  std::normal_distribution<double> around(0, 0.3);
  std::uniform_real_distribution<double> unit(0, 1);
  for (double centre : {-6.0, 6.0}) {
    for (double rate : {0.1, 0.3, 0.9}) {
      PlattCalibrator calibrator(256, 4096);
      for (int i = 0; i < 2048; ++i) calibrator.Add(centre + around(rng), unit(rng) < rate);
      EXPECT_NEAR(calibrator.Apply(centre), rate, 0.05) << centre << " " << rate;
      EXPECT_LT(calibrator.a(), 100) << centre << " " << rate;
    }
  }
}

TEST(PlattCalibratorTest, FitsAnUnderconfidentScoreAndFollowsChange) {
  // True probability sigmoid(2 * logit - 1): the raw logit is underconfident and biased.
  PlattCalibrator calibrator(256, 1 << 30);
  std::mt19937 rng(6);
  std::normal_distribution<double> normal(0, 1.5);
  std::uniform_real_distribution<double> unit(0, 1);
  for (int i = 0; i < 50000; ++i) {
    double x = normal(rng);
    calibrator.Add(x, unit(rng) < Sigmoid(2 * x - 1) ? 1 : 0);
  }
  EXPECT_NEAR(calibrator.a(), 2, 0.1);
  EXPECT_NEAR(calibrator.b(), -1, 0.1);
  EXPECT_NEAR(calibrator.Apply(0.5), 0.5, 0.03);

  // With a finite window it forgets: after the relation changes to sigmoid(x), it follows.
  PlattCalibrator windowed(256, 4096);
  for (int phase = 0; phase < 2; ++phase) {
    for (int i = 0; i < 30000; ++i) {
      double x = normal(rng);
      double truth = phase == 0 ? Sigmoid(2 * x - 1) : Sigmoid(x);
      windowed.Add(x, unit(rng) < truth ? 1 : 0);
    }
  }
  EXPECT_NEAR(windowed.a(), 1, 0.15);
  EXPECT_NEAR(windowed.b(), 0, 0.15);
  std::string image;
  windowed.AppendTo(&image);
  PlattCalibrator copy(1, 1);
  std::string_view in = image;
  ASSERT_TRUE(copy.ReadFrom(&in));
  EXPECT_TRUE(in.empty());
  EXPECT_EQ(copy.a(), windowed.a());
}

}  // namespace
}  // namespace whisperer::learn
