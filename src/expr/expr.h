// The condition language: small boolean expressions over an event, a profile and scores, written
// in the config (journey stages, personas, adaptation rules, action eligibility), checked against
// a schema when the config is loaded, and compiled once into a tree that evaluates without
// parsing or looking names up per event.
//
// Grammar (keywords are lower-case; whitespace is free):
//
//   expr    := and ('or' and)*
//   and     := unary ('and' unary)*
//   unary   := 'not' unary | compare
//   compare := operand [ ('==' | '!=' | '<' | '<=' | '>' | '>=') operand
//                       | 'in' '[' literal (',' literal)* ']'
//                       | 'contains' operand | 'starts_with' operand ]
//   operand := literal | path | 'exists' '(' path ')' | '(' expr ')'
//   literal := number | duration | 'string' | "string" | 'true' | 'false'
//   path    := dotted ('[' (string | index) ']' ['.' dotted])*
//   dotted  := name ('.' name)*          names: letters, digits, _ and -, the first a letter
//
// A subscript names a key a dotted name cannot spell (blanks, dots, non-ASCII letters:
// event.properties['Plan Type']) or an array element from 0 (event.properties.products[0].sku,
// which is event.properties.products.0.sku). Numbers may have an exponent (1e3).
//
// A duration (500ms, 3s, 30m, 2h, 7d) is a number of milliseconds. Examples:
//
//   event.name == 'Product Viewed' and profile.device.type in ['mobile', 'tablet']
//   context.campaign.source == 'tiktok' and not profile.returning
//   profile.sessions.count >= 2 or exists(profile.traits.email)
//   event.properties.price > 100 and event.properties.category starts_with 'Shoe'
//
// Types: bool, number, string, and `any` for paths whose type is only known per event (event
// properties, profile traits). Compile() checks every path against the Schema and every
// operator against its operands' types: `and`/`or`/`not` take bools; `<`, `<=`, `>`, `>=` take
// numbers; `==`/`!=` and `in` take the same type on both sides; `contains` and `starts_with` take
// strings; `any` is accepted where any type is, and checked when evaluated. A bare path is a
// condition when it is a bool or an `any` (then it holds only for the value true). Errors say
// what is wrong and at which column.
//
// Evaluation: a path with no value for this event (a missing property, an unset trait) makes
// every comparison on it false (and `!=` too), `exists` false, and a bare bool path false; an
// `any` value of the wrong type for its operator behaves the same way. So a condition never
// fails at run time: it is false.
//
// Thread-safety: a compiled Expr is immutable and may be evaluated from any thread at once.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace whisperer::expr {

enum class Type : uint8_t { kBool, kNumber, kString, kAny };
std::string_view TypeName(Type type);

// A value while evaluating. Strings point into the caller's data, valid during Eval.
struct Value {
  // kOther: there, but neither a bool, a number nor a string (an array or an object): `exists`
  // holds, every comparison is false.
  enum class Kind : uint8_t { kMissing, kBool, kNumber, kString, kOther };
  Kind kind = Kind::kMissing;
  bool b = false;
  double num = 0;
  std::string_view str;

  static Value Missing() { return {}; }
  static Value Bool(bool v) { return {Kind::kBool, v, 0, {}}; }
  static Value Number(double v) { return {Kind::kNumber, false, v, {}}; }
  static Value String(std::string_view v) { return {Kind::kString, false, 0, v}; }
  static Value Other() { return {Kind::kOther, false, 0, {}}; }
};

// The paths an expression may use. A field is one path with a type (`profile.sessions.count`:
// number); a prefix stands for every path below it (`event.properties`: `event.properties.price`,
// `event.properties.item.sku`, ...), of type any unless every value below it has one type
// (`profile.counts`: numbers), and, when `one_name`, only for paths one name below it. Each gets a
// slot number, in the order declared, which Bindings uses to answer.
class Schema {
 public:
  // Returns the slot of the new field or prefix.
  int AddField(std::string path, Type type);
  int AddPrefix(std::string path, Type type = Type::kAny, bool one_name = false);

  struct Resolved {
    int slot = -1;
    Type type = Type::kAny;
    // For a prefix: the names below it (an array index is its decimal digits, "0").
    std::vector<std::string> rest;
  };
  // The field or prefix the path `names` ({"event", "properties", "Plan Type"}) names; slot -1
  // when none.
  Resolved Resolve(const std::vector<std::string>& names) const;

 private:
  struct Entry {
    std::string path;
    Type type;
    bool prefix;
    bool one_name = false;
  };
  std::vector<Entry> entries_;
};

// What the caller supplies at evaluation: the value of each slot.
class Bindings {
 public:
  virtual ~Bindings() = default;
  virtual Value Field(int slot) const = 0;
  // For a prefix slot: the value at `rest` below it. A name of digits below an array is the
  // index of an element.
  virtual Value Below(int slot, const std::vector<std::string>& rest) const = 0;
};

class Node;

// A path an expression names, where, and the string literals it is compared with for equality
// (`==`, `!=`, `in`): what a caller checks against names the schema cannot know (a workspace's
// journeys and their stages, say).
struct Reference {
  // Dotted ("profile.journeys.onboarding"), with the subscripts a dotted name cannot spell as
  // written ("event.properties['Plan Type']", "event.properties.items[0]").
  std::string path;
  std::vector<std::string> names;  // the path's names: {"event", "properties", "Plan Type"}
  size_t column = 0;               // 1-based
  std::vector<std::string> strings;
};

class Expr {
 public:
  // Parses and type-checks `source`. InvalidArgument with code `invalid_condition` and a
  // message naming the column, e.g. "column 14: `<` needs numbers, got string".
  static absl::StatusOr<Expr> Compile(std::string_view source, const Schema& schema);

  bool Eval(const Bindings& bindings) const;
  const std::string& source() const { return source_; }
  // Every path, in the order written.
  const std::vector<Reference>& references() const { return references_; }

  Expr(Expr&&) noexcept;
  Expr& operator=(Expr&&) noexcept;
  ~Expr();

 private:
  Expr(std::string source, std::unique_ptr<Node> root, std::vector<Reference> references);
  std::string source_;
  std::unique_ptr<Node> root_;
  std::vector<Reference> references_;
};

}  // namespace whisperer::expr
