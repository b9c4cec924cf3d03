#include "eval/ope_log.h"

#include <filesystem>
#include <fstream>
#include <random>

#include "common/strings.h"
#include "eval/eval.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "simdjson.h"

namespace whisperer::eval {
namespace {

using ::testing::HasSubstr;

std::string Line(std::string_view action, std::string_view candidates, double propensity,
                 std::string_view reward, std::string_view context = "[]", int position = 1) {
  return StrCat(
      "{\"decisionId\":\"dec_0123456789abcdef\",\"at\":\"2026-11-22T15:00:00.000Z\","
      "\"decisionPoint\":\"home\",\"group\":\"engine\",\"position\":",
      position, ",\"action\":\"", action, "\",\"candidates\":", candidates,
      ",\"propensity\":", propensity, ",\"reward\":", reward, ",\"context\":", context, "}\n");
}

// A log of `n` slots over actions a0..a2 logged uniformly, in which a0 pays with probability
// `best` and the others with 0.1, whatever the context (a feature `segment` of 4 values).
std::string UniformLog(size_t n, double best, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> u(0, 1);
  std::string log;
  for (size_t i = 0; i < n; ++i) {
    const size_t a = rng() % 3;
    const bool paid = u(rng) < (a == 0 ? best : 0.1);
    log += Line(StrCat("a", a), R"(["a0","a1","a2"])", 1.0 / 3, paid ? "1" : "0",
                StrCat("{\"segment\":\"s", i % 4, "\"}"));
  }
  return log;
}

TEST(ParseDecisionLog, ReadsBothContextFormsAndMissingRewards) {
  std::string text = Line("a1", R"(["a1","a2","a3"])", 0.31, "1.0", "[[12345,1.0],[678,0.5]]");
  text += "\n";  // a blank line is skipped, and still counted
  text += Line("a3", R"(["a2","a3"])", 0.5, "null",
               R"({"plan":"pro","age":30,"vip":true,"churned":false,"none":null})", 2);
  text += R"({"position":1,"action":"a2","candidates":["a2"],"propensity":1})"
          "\n";
  absl::StatusOr<DecisionLog> log = ParseDecisionLog(text);
  ASSERT_TRUE(log.ok()) << log.status();
  ASSERT_EQ(log->slots.size(), 3u);
  EXPECT_EQ(log->actions, (std::vector<std::string>{"a1", "a2", "a3"}));
  EXPECT_EQ(log->missing_rewards, 2u);

  const LoggedSlot& first = log->slots[0];
  EXPECT_EQ(first.line, 1u);
  EXPECT_EQ(first.position, 1u);
  EXPECT_EQ(first.action, 0u);
  EXPECT_EQ(first.candidates, (std::vector<uint32_t>{0, 1, 2}));
  EXPECT_DOUBLE_EQ(first.propensity, 0.31);
  EXPECT_EQ(first.reward, 1.0);
  ASSERT_EQ(first.context.size(), 2u);
  EXPECT_EQ(first.context[0].index, 12345u);
  EXPECT_EQ(first.context[0].value, 1.0f);
  EXPECT_EQ(first.context[1].index, 678u);
  EXPECT_EQ(first.context[1].value, 0.5f);

  // The object form is hashed as FeatureBuilder hashes named features: a number is the feature
  // `name` with that value, a string the feature `name=value`, a bool 1 or 0 (0: no feature).
  const LoggedSlot& second = log->slots[1];
  EXPECT_EQ(second.line, 3u);
  EXPECT_EQ(second.position, 2u);
  EXPECT_EQ(second.action, 1u);
  EXPECT_FALSE(second.reward.has_value());
  learn::FeatureBuilder builder(kContextBits);
  builder.Categorical("plan", "pro");
  builder.Numeric("age", 30);
  builder.Numeric("vip", 1);
  ASSERT_EQ(second.context.size(), builder.features().size());
  for (size_t i = 0; i < second.context.size(); ++i) {
    EXPECT_EQ(second.context[i].index, builder.features()[i].index) << i;
    EXPECT_EQ(second.context[i].value, builder.features()[i].value) << i;
  }
  EXPECT_TRUE(log->slots[2].context.empty());  // no context: only the action's own bias
  EXPECT_FALSE(log->slots[2].reward.has_value());
}

// A slot held for approval without a reward was never shown as far as the log knows: it is
// left out and counted apart, not scored 0; one that took a reward (approved) stays.
TEST(ParseDecisionLog, HeldSlotsWithoutARewardAreLeftOut) {
  std::string held = Line("a1", R"(["a1","a2"])", 0.5, "null");
  held.insert(held.find("\"propensity\""), R"("status":"held_for_approval",)");
  std::string approved = Line("a2", R"(["a1","a2"])", 0.5, "1");
  approved.insert(approved.find("\"propensity\""), R"("status":"held_for_approval",)");
  std::string acted = Line("a1", R"(["a1","a2"])", 0.5, "null");
  acted.insert(acted.find("\"propensity\""), R"("status":"act",)");
  absl::StatusOr<DecisionLog> log = ParseDecisionLog(held + approved + acted + held);
  ASSERT_TRUE(log.ok()) << log.status();
  ASSERT_EQ(log->slots.size(), 2u);
  EXPECT_EQ(log->slots[0].reward, 1.0);
  EXPECT_EQ(log->slots[1].line, 3u);
  EXPECT_EQ(log->held_unrewarded, 2u);
  EXPECT_EQ(log->missing_rewards, 1u);
  absl::StatusOr<OpeLogResult> r =
      EvaluateDecisionLog(*log, {.policy = "logged", .train = 0, .bootstrap = 0});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->lines, 2u);
  EXPECT_EQ(r->held_lines, 2u);
  EXPECT_DOUBLE_EQ(r->logged_value, 0.5);  // (1 + 0) / 2, the held slots not scored 0
}

TEST(ParseDecisionLog, ErrorsNameTheLineAndTheField) {
  const std::string good = Line("a1", R"(["a1","a2"])", 0.5, "1");
  const std::pair<std::string, std::string> cases[] = {
      {Line("a1", R"(["a1","a2"])", 0, "1"), "line 3: propensity must be in (0, 1]"},
      {Line("a1", R"(["a1","a2"])", 1.5, "1"), "line 3: propensity must be in (0, 1]"},
      {R"({"position":1,"action":"a1","candidates":["a1"]})", "line 3: propensity is missing"},
      {Line("a1", R"(["a2","a3"])", 0.5, "1"), "line 3: candidates must include the action"},
      {Line("a1", R"(["a1","a1"])", 0.5, "1"), "line 3: candidates: 'a1' appears twice"},
      {Line("a1", R"([])", 0.5, "1"), "line 3: candidates must be a non-empty array"},
      {Line("a1", R"(["a1"])", 1, "\"yes\""), "line 3: reward must be a number or null"},
      {Line("a1", R"(["a1"])", 1, "1", "[[1]]"), "line 3: context[0] must be an [index, value]"},
      {Line("a1", R"(["a1"])", 1, "1", R"({"tags":[1]})"),
       "line 3: context.tags must be a number, a string or a bool"},
      {Line("a1", R"(["a1"])", 1, "1", "7"), "line 3: context must be an array"},
      {Line("a1", R"(["a1"])", 1, "1", "[]", 0), "line 3: position must be a whole number"},
      {R"({"position":1,"candidates":["a1"],"propensity":1})", "line 3: action is missing"},
      {"{\"position\":1,", "line 3: not valid JSON"},
      {"[1,2]", "line 3: not a JSON object"},
  };
  for (const auto& [bad, message] : cases) {
    absl::StatusOr<DecisionLog> log = ParseDecisionLog(good + "\n" + bad + "\n" + good);
    ASSERT_FALSE(log.ok()) << bad;
    EXPECT_EQ(log.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_THAT(std::string(ToStd(log.status().message())), HasSubstr(message)) << bad;
  }
  EXPECT_FALSE(ParseDecisionLog("\n\n").ok());  // no slot at all
  absl::StatusOr<DecisionLog> missing = ReadDecisionLog(testing::TempDir() + "/no_such.ndjson");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
}

TEST(EvaluateDecisionLog, UniformPolicyOnAUniformLogIsTheMeanReward) {
  absl::StatusOr<DecisionLog> log = ParseDecisionLog(UniformLog(3000, 0.5, 1));
  ASSERT_TRUE(log.ok()) << log.status();
  for (const char* policy : {"uniform", "logged"}) {
    absl::StatusOr<OpeLogResult> r =
        EvaluateDecisionLog(*log, {.policy = policy, .train = 0.5, .bootstrap = 50});
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->lines, 3000u);
    EXPECT_EQ(r->train_lines, 1500u);
    EXPECT_EQ(r->evaluated_lines, 1500u);
    EXPECT_EQ(r->model_lines, 1500u);
    EXPECT_NEAR(r->estimates.ipw.value, r->logged_value, 1e-12) << policy;
    EXPECT_NEAR(r->estimates.snipw.value, r->logged_value, 1e-12) << policy;
    EXPECT_LE(r->estimates.ipw.low, r->estimates.ipw.value);
    EXPECT_GE(r->estimates.ipw.high, r->estimates.ipw.value);
  }
  // --train 0: the model learns from every line and every line is evaluated.
  absl::StatusOr<OpeLogResult> all =
      EvaluateDecisionLog(*log, {.policy = "uniform", .train = 0, .bootstrap = 0});
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_EQ(all->evaluated_lines, 3000u);
  EXPECT_EQ(all->model_lines, 3000u);
  EXPECT_NEAR(all->estimates.dr.value, all->logged_value, 0.02);
}

TEST(EvaluateDecisionLog, GreedyAndThompsonFindTheActionThatPays) {
  absl::StatusOr<DecisionLog> log = ParseDecisionLog(UniformLog(6000, 0.6, 2));
  ASSERT_TRUE(log.ok()) << log.status();
  auto value = [&](const char* policy) {
    absl::StatusOr<OpeLogResult> r =
        EvaluateDecisionLog(*log, {.policy = policy, .train = 0.5, .bootstrap = 0});
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? r->estimates : learn::OpeResult{};
  };
  const learn::OpeResult greedy = value("greedy"), thompson = value("thompson"),
                         uniform = value("uniform");
  // Always a0 is worth 0.6; the uniform policy (0.6 + 0.1 + 0.1) / 3.
  EXPECT_NEAR(greedy.snipw.value, 0.6, 0.05);
  EXPECT_NEAR(greedy.ipw.value, 0.6, 0.08);
  EXPECT_NEAR(greedy.dr.value, 0.6, 0.08);
  EXPECT_NEAR(uniform.ipw.value, 0.8 / 3, 0.04);
  EXPECT_GT(thompson.ipw.value, uniform.ipw.value + 0.2);
  EXPECT_GT(thompson.dr.value, uniform.dr.value + 0.2);
  EXPECT_GT(thompson.dm.value, uniform.dm.value + 0.2);
}

TEST(EvaluateDecisionLog, RefusesWhatItCannotEvaluate) {
  absl::StatusOr<DecisionLog> log = ParseDecisionLog(UniformLog(10, 0.5, 3));
  ASSERT_TRUE(log.ok()) << log.status();
  absl::StatusOr<OpeLogResult> r = EvaluateDecisionLog(*log, {.policy = "best"});
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(ToStd(r.status().message())),
              HasSubstr("unknown policy 'best' (expected uniform, logged, greedy, thompson or "
                        "bts)"));
  r = EvaluateDecisionLog(*log, {.policy = "bts"});
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(ToStd(r.status().message())), HasSubstr("--priors"));
  // Actions named a0.. have no index into the priors.
  r = EvaluateDecisionLog(*log, {.policy = "bts", .train = 0.5, .priors = BetaPriors{{1}, {1}}});
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(ToStd(r.status().message())), HasSubstr("line 6: action 'a"));
  EXPECT_FALSE(EvaluateDecisionLog(*log, {.policy = "uniform", .train = 1}).ok());
  log->basis = PositionBasis::kMarginal;
  EXPECT_FALSE(EvaluateDecisionLog(*log, {.policy = "thompson"}).ok());
}

TEST(BtsRankProbabilities, EachPositionSumsToOneAndFavoursTheHigherPrior) {
  const BetaPriors priors{{60, 20, 20, 5}, {1000, 1000, 1000, 1000}};
  const std::vector<uint32_t> items = {0, 1, 2, 3};
  const auto p = BtsRankProbabilities(priors, items, 3, 20000, 7);
  ASSERT_EQ(p.size(), 4u);
  for (size_t r = 0; r < 3; ++r) {
    double sum = 0;
    for (size_t i = 0; i < 4; ++i) sum += p[i][r];
    EXPECT_NEAR(sum, 1, 1e-12) << r;
  }
  EXPECT_GT(p[0][0], 0.9);              // a mean of 0.057 against 0.02
  EXPECT_NEAR(p[1][1], p[2][1], 0.03);  // equal priors, equal chances
  EXPECT_GT(p[1][1], p[3][1]);
  EXPECT_LT(p[3][0], 0.01);
  EXPECT_EQ(p, BtsRankProbabilities(priors, items, 3, 20000, 7));  // seeded
  // A subset: the items' own priors, by index.
  const std::vector<uint32_t> two = {3, 1};
  const auto q = BtsRankProbabilities(priors, two, 1, 20000, 7);
  EXPECT_GT(q[1][0], 0.95);
}

TEST(EvaluateDecisionLog, BtsOnANdjsonLogNamedByIndex) {
  // Item 1 has the far better prior and also pays; logged uniformly over 0..2.
  std::mt19937_64 rng(4);
  std::string text;
  for (int i = 0; i < 3000; ++i) {
    const int a = static_cast<int>(rng() % 3);
    const bool paid = (rng() % 100) < (a == 1 ? 40u : 5u);
    text += Line(StrCat(a), R"(["0","1","2"])", 1.0 / 3, paid ? "1" : "0");
  }
  absl::StatusOr<DecisionLog> log = ParseDecisionLog(text);
  ASSERT_TRUE(log.ok()) << log.status();
  OpeLogOptions options{.policy = "bts",
                        .train = 0,
                        .bootstrap = 0,
                        .priors = BetaPriors{{5, 400, 5}, {995, 600, 995}},
                        .simulations = 2000};
  absl::StatusOr<OpeLogResult> r = EvaluateDecisionLog(*log, options);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_NEAR(r->estimates.ipw.value, 0.4, 0.05);
  EXPECT_NEAR(r->estimates.dm.value, 0.4, 0.05);
}

TEST(ReadBetaPriors, ReadsTheCampaignAndNamesTheOthers) {
  const std::string path = testing::TempDir() + "/priors.yaml";
  std::ofstream(path) << "men:\n  alpha:\n    - 47.0\n    - 8.0\n  beta:\n    - 12198.0\n"
                         "    - 3566.0\nwomen:\n  alpha: [1, 2, 3]\n  beta: [4, 5]\n";
  absl::StatusOr<BetaPriors> men = ReadBetaPriors(path, "men");
  ASSERT_TRUE(men.ok()) << men.status();
  EXPECT_EQ(men->alpha, (std::vector<double>{47, 8}));
  EXPECT_EQ(men->beta, (std::vector<double>{12198, 3566}));
  absl::StatusOr<BetaPriors> r = ReadBetaPriors(path, "all");
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(ToStd(r.status().message())), HasSubstr("(the file has men, women)"));
  EXPECT_FALSE(ReadBetaPriors(path, "women").ok());  // 3 alphas, 2 betas
  EXPECT_FALSE(ReadBetaPriors(path, "").ok());       // two campaigns: name one
  EXPECT_FALSE(ReadBetaPriors(testing::TempDir() + "/none.yaml", "men").ok());
}

// An open_bandit folder in the dataset's layout: 3 items, Random logs with propensity 1/3 in
// which item 2 is clicked most at position 1, and priors that favour item 2.
std::string WriteOpenBanditFolder(const std::string& name) {
  const std::string root = testing::TempDir() + "/" + name;
  std::filesystem::create_directories(root + "/open_bandit");
  std::mt19937_64 rng(9);
  for (const char* policy : {"random", "bts"}) {
    for (const char* campaign : {"men", "women"}) {
      std::ofstream f(StrCat(root, "/open_bandit/", policy, "_", campaign, ".csv"));
      f << ",timestamp,item_id,position,click,propensity_score,user_feature_0,user_feature_1,"
           "user_feature_2,user_feature_3,user-item_affinity_0,user-item_affinity_1,"
           "user-item_affinity_2\n";
      for (int i = 0; i < 600; ++i) {
        const int item = static_cast<int>(rng() % 3), position = 1 + i % 3;
        const bool click = (rng() % 100) < (item == 2 && position == 1 ? 30u : 5u);
        f << i << ",2019-11-24 00:03:13.442536+00:00," << item << "," << position << "," << click
          << "," << (policy == std::string("random") ? "0.3333333333333333" : "0.5") << ",u"
          << i % 5 << ",v,w,x," << (i % 7 == 0 ? "1.0" : "0.0") << ",0.0,0.0\n";
      }
    }
  }
  std::ofstream(root + "/open_bandit/prior_bts.yaml")
      << "men: {alpha: [5, 5, 200], beta: [995, 995, 800]}\n"
         "women: {alpha: [5, 5, 200], beta: [995, 995, 800]}\n";
  return root;
}

TEST(OpenBandit, EvaluatesBtsOnTheRandomLogs) {
  absl::StatusOr<std::string> out = eval::Run("open_bandit", WriteOpenBanditFolder("obd_ok"));
  ASSERT_TRUE(out.ok()) << out.status();
  simdjson::dom::parser parser;
  simdjson::dom::element doc = parser.parse(*out);
  simdjson::dom::array campaigns = doc["campaigns"];
  ASSERT_EQ(campaigns.size(), 2u);
  for (simdjson::dom::element c : campaigns) {
    EXPECT_EQ(uint64_t(c["items"]), 3u);
    EXPECT_EQ(uint64_t(c["random_rows"]), 600u);
    const double ctr = double(c["random_ctr"]);
    // The logging policy's own value by IPW is its click rate.
    EXPECT_NEAR(double(c["uniform_policy_ipw"]), ctr, 1e-12);
    // BTS puts item 2 first almost surely, where it pays 0.3 (the Random log: 0.3 a third of
    // the time there, 0.05 elsewhere).
    const double ipw = double(c["bts_policy"]["ipw"]["value"]);
    EXPECT_GT(ipw, ctr);
    EXPECT_NEAR(double(c["ipw_over_random_ctr"]), ipw / ctr, 1e-12);
    EXPECT_GT(double(c["bts_log_propensities"]["mean_simulated"]), 0);
  }
}

TEST(OpenBandit, BadRowsNameTheirLine) {
  const std::string root = WriteOpenBanditFolder("obd_bad");
  const std::string path = root + "/open_bandit/random_men.csv";
  std::ofstream(path, std::ios::app) << "600,t,1,2,0,0,a,b,c,d,0,0,0\n";
  absl::StatusOr<DecisionLog> log = ReadOpenBanditLog(path);
  ASSERT_FALSE(log.ok());
  EXPECT_THAT(std::string(ToStd(log.status().message())),
              HasSubstr("line 602: propensity_score must be in (0, 1]"));
  EXPECT_FALSE(eval::Run("open_bandit", root).ok());
  EXPECT_FALSE(eval::Run("open_bandit", testing::TempDir() + "/nowhere").ok());
}

}  // namespace
}  // namespace whisperer::eval
