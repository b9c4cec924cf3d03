#include "expr/expr.h"

#include <gtest/gtest.h>

#include <atomic>
#include <map>
#include <thread>

#include "common/status.h"

namespace whisperer::expr {
namespace {

class ExprTest : public ::testing::Test {
 protected:
  ExprTest() {
    name_ = schema_.AddField("event.name", Type::kString);
    device_ = schema_.AddField("profile.device.type", Type::kString);
    sessions_ = schema_.AddField("profile.sessions.count", Type::kNumber);
    returning_ = schema_.AddField("profile.returning", Type::kBool);
    since_ = schema_.AddField("profile.since_landing", Type::kNumber);
    props_ = schema_.AddPrefix("event.properties");
  }

  // Bindings over maps the test fills in.
  struct Map : Bindings {
    std::map<int, Value> fields;
    std::map<std::string, Value> below;  // "a.b" below the prefix
    Value Field(int slot) const override {
      auto it = fields.find(slot);
      return it == fields.end() ? Value::Missing() : it->second;
    }
    Value Below(int, const std::vector<std::string>& rest) const override {
      std::string key;
      for (const auto& part : rest) key += (key.empty() ? "" : ".") + part;
      auto it = below.find(key);
      return it == below.end() ? Value::Missing() : it->second;
    }
  };

  bool Eval(std::string_view source, const Map& values) {
    absl::StatusOr<Expr> e = Expr::Compile(source, schema_);
    EXPECT_TRUE(e.ok()) << source << ": " << e.status();
    return e.ok() && e->Eval(values);
  }

  std::string CompileError(std::string_view source) {
    absl::StatusOr<Expr> e = Expr::Compile(source, schema_);
    if (e.ok()) return "compiled";
    EXPECT_EQ(ErrorCodeOf(e.status()), "invalid_condition");
    return std::string(e.status().message());
  }

  Schema schema_;
  int name_, device_, sessions_, returning_, since_, props_;
};

TEST_F(ExprTest, EvaluatesComparisonsLogicAndLists) {
  Map m;
  m.fields[name_] = Value::String("Product Viewed");
  m.fields[device_] = Value::String("mobile");
  m.fields[sessions_] = Value::Number(3);
  m.fields[returning_] = Value::Bool(true);
  m.fields[since_] = Value::Number(2500);
  m.below["price"] = Value::Number(120);
  m.below["category"] = Value::String("Shoes/Trail");

  EXPECT_TRUE(Eval("event.name == 'Product Viewed'", m));
  EXPECT_TRUE(Eval("event.name != \"Order Completed\"", m));
  EXPECT_TRUE(Eval("profile.device.type in ['mobile', 'tablet']", m));
  EXPECT_FALSE(Eval("profile.device.type in ['desktop']", m));
  EXPECT_TRUE(Eval("profile.sessions.count >= 2 and profile.returning", m));
  EXPECT_FALSE(Eval("not profile.returning", m));
  EXPECT_TRUE(Eval("profile.since_landing < 3s", m));  // durations are milliseconds
  EXPECT_FALSE(Eval("profile.since_landing >= 3s", m));
  EXPECT_TRUE(
      Eval("event.properties.price > 100 and event.properties.category starts_with 'Shoe'", m));
  EXPECT_TRUE(Eval("event.properties.category contains 'Trail'", m));
  EXPECT_TRUE(Eval("event.name == 'x' or (profile.sessions.count == 3 and not (1 > 2))", m));
  // `and` binds tighter than `or`.
  EXPECT_TRUE(Eval("true or false and false", m));
  EXPECT_FALSE(Eval("(true or false) and false", m));
  EXPECT_TRUE(Eval("-1 < 0 and 1.5 == 1.5", m));
  // An `any` path stands as a condition: it holds for the value true only.
  m.below["onSale"] = Value::Bool(true);
  EXPECT_TRUE(Eval("event.properties.onSale and not event.properties.missing == 1", m));
  EXPECT_FALSE(Eval("event.properties.price", m));
}

TEST_F(ExprTest, SubscriptsNameWhatADottedNameCannotAndArrayElements) {
  Map m;
  m.below["Plan Type"] = Value::String("pro");
  m.below["gr\u00f6\u00dfe"] = Value::Number(42);
  m.below["products.0.price"] = Value::Number(30);
  m.below["products.1.sku"] = Value::String("B-2");
  m.below["utm.source"] = Value::String("mail");  // a key with a dot in it
  EXPECT_TRUE(Eval("event.properties['Plan Type'] == 'pro'", m));
  EXPECT_TRUE(Eval("event.properties[\"gr\u00f6\u00dfe\"] > 40", m));
  EXPECT_TRUE(Eval("event.properties.products[0].price == 30", m));
  EXPECT_TRUE(Eval("event.properties.products.0.price == 30", m));  // the same path
  EXPECT_TRUE(Eval("event.properties['products'][1]['sku'] == 'B-2'", m));
  EXPECT_TRUE(Eval("event.properties ['utm.source'] == 'mail'", m));
  EXPECT_TRUE(Eval("exists(event.properties.products[1].sku)", m));
  EXPECT_FALSE(Eval("exists(event.properties.products[2].sku)", m));
  // A bracketed name that a dotted one could spell is that name.
  EXPECT_TRUE(Eval("event['name'] == 'x' or event.properties['products'][0]['price'] < 31", m));
  // Exponents, as JSON writes numbers.
  EXPECT_TRUE(Eval("event.properties.products[0].price < 1e2 and 3e1 == 30", m));
  EXPECT_TRUE(Eval("2.5E-1 == 0.25 and 1e+1 == 10", m));

  absl::StatusOr<Expr> e = Expr::Compile(
      "event.properties['Plan Type'] == 'pro' and event.properties.items[0]['sku'] == 'a' and "
      "event['name'] == 'b'",
      schema_);
  ASSERT_TRUE(e.ok()) << e.status();
  ASSERT_EQ(e->references().size(), 3u);
  EXPECT_EQ(e->references()[0].path, "event.properties['Plan Type']");
  EXPECT_EQ(e->references()[0].names,
            (std::vector<std::string>{"event", "properties", "Plan Type"}));
  EXPECT_EQ(e->references()[1].path, "event.properties.items[0].sku");
  EXPECT_EQ(e->references()[2].path, "event.name");

  for (auto [source, error] : std::initializer_list<std::pair<const char*, const char*>>{
           {"event.properties[''] == 1", "column 18: a subscript is a non-empty 'name'"},
           {"event.properties[-1] == 1", "an index from 0, got a number"},
           {"event.properties[1.5] == 1", "an index from 0"},
           {"event.properties[3s] == 1", "an index from 0"},
           {"event.properties[a] == 1", "got `a`"},
           {"event.properties['a' == 1", "column 22: expected `]`"},
           {"event.properties[0]. == 1", "expected a name after `.`"},
           {"event['nmae'] == 'x'", "column 1: unknown name `event.nmae`"},
           {"event['properties'] == 1", "unknown name `event.properties`"},
           {"profile.returning['x']", "unknown name `profile.returning.x`"},
           {"1e == 1", "unknown duration unit `e`"},
       }) {
    EXPECT_NE(CompileError(source).find(error), std::string::npos)
        << source << " -> " << CompileError(source);
  }
}

TEST_F(ExprTest, MissingValuesMakeConditionsFalse) {
  Map empty;
  EXPECT_FALSE(Eval("event.name == 'a'", empty));
  EXPECT_FALSE(Eval("event.name != 'a'", empty));
  EXPECT_FALSE(Eval("profile.returning", empty));
  EXPECT_FALSE(Eval("not profile.returning", empty));
  // A value not there is unknown: `not`, `and` and `or` keep it so unless the other side
  // decides, and an unknown condition does not hold.
  EXPECT_FALSE(Eval("not not profile.returning", empty));
  EXPECT_FALSE(Eval("not (profile.returning and true)", empty));
  EXPECT_FALSE(Eval("not (profile.returning or false)", empty));
  EXPECT_TRUE(Eval("not (profile.returning and false)", empty));
  EXPECT_TRUE(Eval("profile.returning or true", empty));
  EXPECT_FALSE(Eval("profile.returning and true", empty));
  EXPECT_TRUE(Eval("not (profile.returning == true)", empty));  // a comparison is false
  EXPECT_FALSE(Eval("exists(event.properties.coupon)", empty));
  EXPECT_TRUE(Eval("not exists(event.properties.coupon)", empty));
  // An `any` value of the wrong type for its operator is false too.
  Map m;
  m.below["price"] = Value::String("cheap");
  EXPECT_FALSE(Eval("event.properties.price > 10", m));
  EXPECT_TRUE(Eval("exists(event.properties.price)", m));
}

TEST_F(ExprTest, TypeAndSyntaxErrorsNameTheColumn) {
  struct Case {
    const char* source;
    const char* error;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"event.name > 3", "column 12: `>` needs numbers, got string and number"},
           {"profile.sessions.count == 'three'", "column 24: `==` compares a number with a string"},
           {"profile.device.type in ['mobile', 3]", "`in` compares a string with a number"},
           {"event.name", "the condition is a string, not a bool"},
           {"event.name and true", "column 1: `and` needs conditions, got a string"},
           // The operand at fault, wherever it stands.
           {"true and profile.sessions.count", "column 10: `and` needs conditions, got a number"},
           {"true and true or (profile.sessions.count)",
            "column 18: `or` needs conditions, got a number"},
           // Columns count characters, not bytes.
           {"event.name == '\u00e9' or profile.sessions.count",
            "column 22: `or` needs conditions, got a number"},
           {"not profile.sessions.count", "column 1: `not` needs conditions, got a number"},
           {"event.nmae == 'x'", "column 1: unknown name `event.nmae`"},
           {"event.properties == 1", "unknown name `event.properties`"},
           {"event.name = 'x'", "column 12: use `==` to compare"},
           {"event.name == 'x", "column 15: the string is not closed"},
           {"(event.name == 'x'", "column 19: expected `)`, got the end"},
           {"profile.since_landing < 3w", "unknown duration unit `w`"},
           {"event.name == 'x' profile.returning", "expected the end"},
           {"profile.device.type in 'mobile'", "`in` needs a list"},
           {"exists event.name", "`exists` needs a path in parentheses"},
           {"event..name == 'x'", "is not a path"},
           {"", "expected a number, string, true or false, got the end"},
           {"and", "expected a value, got `and`"},
           {"é == 1", "column 1: unexpected `é`"},  // the whole character, not its first byte
           {"event.name == 'x' → true", "column 19: unexpected `→`"},
       }) {
    EXPECT_NE(CompileError(c.source).find(c.error), std::string::npos)
        << c.source << " -> " << CompileError(c.source);
  }
}

TEST_F(ExprTest, ReferencesListEveryPathWithTheStringsItIsComparedWith) {
  absl::StatusOr<Expr> e = Expr::Compile(
      "event.name == 'Landing' or ('x' != event.name and profile.device.type in ['mobile', "
      "'tablet'] and profile.sessions.count > 2 and event.properties.kind starts_with 'a')",
      schema_);
  ASSERT_TRUE(e.ok()) << e.status();
  std::vector<std::string> seen;
  for (const Reference& r : e->references()) {
    std::string line = r.path + "@" + std::to_string(r.column);
    for (const std::string& s : r.strings) line += " " + s;
    seen.push_back(line);
  }
  EXPECT_EQ(seen,
            (std::vector<std::string>{"event.name@1 Landing", "event.name@36 x",
                                      "profile.device.type@51 mobile tablet",
                                      "profile.sessions.count@99", "event.properties.kind@130"}));
}

TEST_F(ExprTest, NestingIsBounded) {
  // 64 levels of parentheses or `not` compile and evaluate; deeper is refused, however deep
  // (a body of 50,000 parentheses overflowed the stack).
  auto nested = [](int depth, std::string_view open, std::string_view close) {
    std::string s;
    for (int i = 0; i < depth; ++i) s += open;
    s += "profile.returning";
    for (int i = 0; i < depth; ++i) s += close;
    return s;
  };
  Map values;
  values.fields[returning_] = Value::Bool(true);
  EXPECT_TRUE(Eval(nested(64, "(", ")"), values));
  EXPECT_TRUE(Eval(nested(64, "not ", ""), values));  // an even number of them
  EXPECT_FALSE(Eval(nested(63, "not ", ""), values));
  EXPECT_TRUE(Eval(nested(32, "not (", ")"), values));
  for (const std::string& deep :
       {nested(65, "(", ")"), nested(65, "not ", ""), nested(33, "not (", ")"),
        nested(50'000, "(", ")"), nested(60'000, "not ", "")}) {
    EXPECT_NE(CompileError(deep).find("nested more than 64 deep"), std::string::npos)
        << deep.substr(0, 80);
  }
}

TEST_F(ExprTest, CompiledOnceEvaluatedManyTimesFromSeveralThreads) {
  absl::StatusOr<Expr> e = Expr::Compile("event.properties.price > 100", schema_);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->source(), "event.properties.price > 100");
  Map cheap, dear;
  cheap.below["price"] = Value::Number(5);
  dear.below["price"] = Value::Number(500);
  std::atomic<int> hits{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 1000; ++i) hits += e->Eval(i % 2 ? dear : cheap);
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(hits.load(), 2000);
}

}  // namespace
}  // namespace whisperer::expr
