// Deterministic mutation fuzzing of the condition compiler, run as a normal test (and under
// ASan/UBSan in `make test`). Conditions come from config files and from admin requests
// (PUT /v1/actions), so a malformed one must be an error, never a crash. Valid seeds using every
// part of the grammar are mutated with a fixed seed, and every result must keep the contract:
//   - no crash, no sanitizer report, no hang;
//   - an error is invalid_condition and names a column;
//   - a condition that compiles evaluates, against bindings with values and without.
#include <gtest/gtest.h>

#include <random>

#include "common/status.h"
#include "expr/expr.h"
#include "testing/mutate.h"

namespace whisperer::expr {
namespace {

constexpr const char* kSeeds[] = {
    "event.name == 'Order Completed' and event.properties.revenue > 1e2 or not profile.returning",
    "event.properties['Plan Type'] in ['free', \"trial\"] and "
    "exists(event.properties.items[0].sku)",
    "profile.sessions.count >= 2 and (event.properties.category starts_with 'Sho' or "
    "event.properties.tags contains 'sale') and profile.since_landing < 3s",
    "event.properties.products[1]['price'] <= -0.5 and event.properties['gr\u00f6\u00dfe'] != "
    "'x\\'y'",
};

const std::string kInserts[] = {"[",
                                "]",
                                "'",
                                "\"",
                                "(",
                                ")",
                                "not ",
                                " and ",
                                " or ",
                                " in ",
                                "1e",
                                "[0]",
                                "['a']",
                                ".",
                                "\\",
                                "\xff",
                                "\xc3",
                                "==",
                                "exists(",
                                ",",
                                "-",
                                "7d",
                                "99999999999999999999",
                                "event.properties",
                                " contains ",
                                std::string(1, '\0')};

std::string Mutate(std::string s, std::mt19937_64& rng) {
  return testing::Mutate(std::move(s), rng, kInserts);
}

// Answers every path with a value of the kind `kind` picks, or with nothing.
struct AnyValue : Bindings {
  int kind = 0;
  Value Pick() const {
    switch (kind) {
      case 1:
        return Value::Number(3);
      case 2:
        return Value::String("Sho");
      case 3:
        return Value::Bool(true);
      case 4:
        return Value::Other();
      default:
        return Value::Missing();
    }
  }
  Value Field(int) const override { return Pick(); }
  Value Below(int, const std::vector<std::string>&) const override { return Pick(); }
};

TEST(ExprFuzz, MutatedConditionsCompileOrFailCleanly) {
  Schema schema;
  schema.AddField("event.name", Type::kString);
  schema.AddField("profile.sessions.count", Type::kNumber);
  schema.AddField("profile.returning", Type::kBool);
  schema.AddField("profile.since_landing", Type::kNumber);
  schema.AddPrefix("event.properties");
  for (const char* seed : kSeeds) {
    ASSERT_TRUE(Expr::Compile(seed, schema).ok())
        << seed << ": " << Expr::Compile(seed, schema).status();
  }
  std::mt19937_64 rng(20261125);
  size_t compiled = 0;
  for (int i = 0; i < 100'000; ++i) {
    const std::string source = Mutate(kSeeds[i % std::size(kSeeds)], rng);
    absl::StatusOr<Expr> e = Expr::Compile(source, schema);
    if (!e.ok()) {
      ASSERT_EQ(ErrorCodeOf(e.status()), "invalid_condition") << source;
      ASSERT_NE(e.status().message().find("column "), std::string::npos)
          << source << ": " << e.status();
      continue;
    }
    ++compiled;
    AnyValue values;
    for (values.kind = 0; values.kind < 5; ++values.kind) (void)e->Eval(values);
  }
  // The mutations keep some conditions valid, so evaluation is exercised too.
  EXPECT_GT(compiled, 1000u);
}

}  // namespace
}  // namespace whisperer::expr
