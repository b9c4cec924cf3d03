#include "expr/expr.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>

#include "common/status.h"
#include "common/strings.h"

namespace whisperer::expr {

std::string_view TypeName(Type type) {
  switch (type) {
    case Type::kBool:
      return "bool";
    case Type::kNumber:
      return "number";
    case Type::kString:
      return "string";
    case Type::kAny:
      return "any";
  }
  return "?";
}

int Schema::AddField(std::string path, Type type) {
  entries_.push_back({std::move(path), type, false});
  return static_cast<int>(entries_.size()) - 1;
}

int Schema::AddPrefix(std::string path, Type type, bool one_name) {
  entries_.push_back({std::move(path), type, true, one_name});
  return static_cast<int>(entries_.size()) - 1;
}

Schema::Resolved Schema::Resolve(const std::vector<std::string>& names) const {
  Resolved r;
  for (size_t i = 0; i < entries_.size(); ++i) {
    const Entry& e = entries_[i];
    // How many of `names` the entry's dotted path spells; 0 when it does not.
    size_t n = 0;
    for (size_t start = 0;;) {
      const size_t dot = e.path.find('.', start);
      if (n == names.size() || names[n] != std::string_view(e.path).substr(start, dot - start)) {
        n = 0;
        break;
      }
      ++n;
      if (dot == std::string::npos) break;
      start = dot + 1;
    }
    if (n == 0) continue;
    if (!e.prefix) {
      if (n == names.size()) return {static_cast<int>(i), e.type, {}};
      continue;
    }
    if (n == names.size() || (e.one_name && names.size() - n != 1)) continue;
    r.slot = static_cast<int>(i);
    r.type = e.type;
    r.rest.assign(names.begin() + static_cast<std::ptrdiff_t>(n), names.end());
  }
  return r;
}

// ---------------------------------------------------------------------------------------------
// The compiled tree.

class Node {
 public:
  explicit Node(Type type) : type_(type) {}
  virtual ~Node() = default;
  virtual Value Eval(const Bindings& b) const = 0;
  Type type() const { return type_; }

 private:
  Type type_;
};

namespace {

// A character of one name of a path (a.b.c): letters, digits, _ and -.
bool IsNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
}

bool Truthy(const Value& v) { return v.kind == Value::Kind::kBool && v.b; }

class LiteralNode final : public Node {
 public:
  LiteralNode(Type type, Value value, std::string text)
      : Node(type), value_(value), text_(std::move(text)) {
    if (value_.kind == Value::Kind::kString) value_.str = text_;
  }
  Value Eval(const Bindings&) const override { return value_; }
  const Value& value() const { return value_; }
  const std::string& text() const { return text_; }

 private:
  Value value_;
  std::string text_;  // owns a string literal's bytes
};

class PathNode final : public Node {
 public:
  PathNode(Schema::Resolved r, size_t reference)
      : Node(r.type), slot_(r.slot), rest_(std::move(r.rest)), reference_(reference) {}
  Value Eval(const Bindings& b) const override {
    return rest_.empty() ? b.Field(slot_) : b.Below(slot_, rest_);
  }
  size_t reference() const { return reference_; }  // its index in Parser::references()

 private:
  int slot_;
  std::vector<std::string> rest_;
  size_t reference_;
};

class ExistsNode final : public Node {
 public:
  explicit ExistsNode(std::unique_ptr<Node> path) : Node(Type::kBool), path_(std::move(path)) {}
  Value Eval(const Bindings& b) const override {
    return Value::Bool(path_->Eval(b).kind != Value::Kind::kMissing);
  }

 private:
  std::unique_ptr<Node> path_;
};

class NotNode final : public Node {
 public:
  explicit NotNode(std::unique_ptr<Node> child) : Node(Type::kBool), child_(std::move(child)) {}
  Value Eval(const Bindings& b) const override {
    Value v = child_->Eval(b);
    // A value that is not there (or no bool) is unknown, and so is its negation: `not x` never
    // holds for an x that is not there (a customer who never stated a consent has not denied
    // it), nor does `not not x`.
    if (v.kind != Value::Kind::kBool) return Value::Missing();
    return Value::Bool(!v.b);
  }

 private:
  std::unique_ptr<Node> child_;
};

class LogicNode final : public Node {
 public:
  LogicNode(bool is_and, std::vector<std::unique_ptr<Node>> children)
      : Node(Type::kBool), is_and_(is_and), children_(std::move(children)) {}
  // Three-valued, as SQL's: an unknown operand (not there, or no bool) leaves the result
  // unknown unless another decides it (`false and x` is false, `true or x` true), so that
  // `not (x and true)` fails as `not x` does.
  Value Eval(const Bindings& b) const override {
    bool unknown = false;
    for (const auto& c : children_) {
      Value v = c->Eval(b);
      if (v.kind != Value::Kind::kBool) {
        unknown = true;
      } else if (v.b != is_and_) {
        return Value::Bool(v.b);
      }
    }
    return unknown ? Value::Missing() : Value::Bool(is_and_);
  }

 private:
  bool is_and_;
  std::vector<std::unique_ptr<Node>> children_;
};

enum class Op : uint8_t { kEq, kNe, kLt, kLe, kGt, kGe, kContains, kStartsWith };

bool Compare(Op op, const Value& a, const Value& b) {
  if (a.kind == Value::Kind::kMissing || b.kind == Value::Kind::kMissing || a.kind != b.kind) {
    return false;
  }
  switch (a.kind) {
    case Value::Kind::kBool:
      if (op == Op::kEq) return a.b == b.b;
      if (op == Op::kNe) return a.b != b.b;
      return false;
    case Value::Kind::kNumber:
      switch (op) {
        case Op::kEq:
          return a.num == b.num;
        case Op::kNe:
          return a.num != b.num;
        case Op::kLt:
          return a.num < b.num;
        case Op::kLe:
          return a.num <= b.num;
        case Op::kGt:
          return a.num > b.num;
        case Op::kGe:
          return a.num >= b.num;
        default:
          return false;
      }
    case Value::Kind::kString:
      switch (op) {
        case Op::kEq:
          return a.str == b.str;
        case Op::kNe:
          return a.str != b.str;
        case Op::kContains:
          return a.str.find(b.str) != std::string_view::npos;
        case Op::kStartsWith:
          return a.str.substr(0, b.str.size()) == b.str;
        default:
          return false;
      }
    case Value::Kind::kMissing:
    case Value::Kind::kOther:
      return false;
  }
  return false;
}

class CompareNode final : public Node {
 public:
  CompareNode(Op op, std::unique_ptr<Node> lhs, std::unique_ptr<Node> rhs)
      : Node(Type::kBool), op_(op), lhs_(std::move(lhs)), rhs_(std::move(rhs)) {}
  Value Eval(const Bindings& b) const override {
    return Value::Bool(Compare(op_, lhs_->Eval(b), rhs_->Eval(b)));
  }

 private:
  Op op_;
  std::unique_ptr<Node> lhs_, rhs_;
};

class InNode final : public Node {
 public:
  InNode(std::unique_ptr<Node> lhs, std::vector<std::unique_ptr<LiteralNode>> list)
      : Node(Type::kBool), lhs_(std::move(lhs)), list_(std::move(list)) {}
  Value Eval(const Bindings& b) const override {
    Value v = lhs_->Eval(b);
    for (const auto& item : list_) {
      if (Compare(Op::kEq, v, item->value())) return Value::Bool(true);
    }
    return Value::Bool(false);
  }

 private:
  std::unique_ptr<Node> lhs_;
  std::vector<std::unique_ptr<LiteralNode>> list_;
};

// ---------------------------------------------------------------------------------------------
// Parsing.

struct Token {
  enum class Kind : uint8_t { kEnd, kNumber, kString, kName, kOp, kPunct };
  Kind kind = Kind::kEnd;
  std::string text;  // the name, operator, punctuation, or the decoded string
  double number = 0;
  bool duration = false;  // a number written with a unit (3s)
  size_t column = 1;      // 1-based
};

class Parser {
 public:
  Parser(std::string_view source, const Schema& schema) : src_(source), schema_(schema) {}

  absl::StatusOr<std::unique_ptr<Node>> Parse() {
    if (absl::Status s = Next(); !s.ok()) return s;
    absl::StatusOr<std::unique_ptr<Node>> root = ParseOr();
    if (!root.ok()) return root;
    if (tok_.kind != Token::Kind::kEnd)
      return Error(tok_.column, "expected the end, got " + Describe());
    if ((*root)->type() != Type::kBool && (*root)->type() != Type::kAny) {
      return Error(1, StrCat("the condition is a ", TypeName((*root)->type()),
                             ", not a bool: compare it with something"));
    }
    return root;
  }
  // The paths Parse() read (Expr::references()).
  std::vector<Reference>& references() { return references_; }

 private:
  absl::Status Error(size_t column, std::string_view what) const {
    return MakeError(absl::StatusCode::kInvalidArgument, "invalid_condition",
                     StrCat("column ", column, ": ", what));
  }

  std::string Describe() const {
    switch (tok_.kind) {
      case Token::Kind::kEnd:
        return "the end";
      case Token::Kind::kString:
        return "a string";
      case Token::Kind::kNumber:
        return "a number";
      default:
        return StrCat("`", tok_.text, "`");
    }
  }

  bool IsKeyword(std::string_view word) const {
    return tok_.kind == Token::Kind::kName && tok_.text == word;
  }
  bool IsPunct(std::string_view p) const {
    return tok_.kind == Token::Kind::kPunct && tok_.text == p;
  }

  // The 1-based column of byte `pos` in characters (UTF-8 code points), as an editor shows it;
  // counted on from the last position asked for, which only grows.
  size_t ColumnAt(size_t pos) {
    for (; counted_pos_ < pos; ++counted_pos_) {
      counted_column_ += (static_cast<unsigned char>(src_[counted_pos_]) & 0xC0) != 0x80;
    }
    return counted_column_;
  }

  absl::Status Next() {
    while (pos_ < src_.size() && std::isspace(static_cast<unsigned char>(src_[pos_]))) ++pos_;
    tok_ = Token{};
    tok_.column = ColumnAt(pos_);
    if (pos_ >= src_.size()) return absl::OkStatus();
    char c = src_[pos_];
    if (std::isdigit(static_cast<unsigned char>(c)) ||
        (c == '-' && pos_ + 1 < src_.size() &&
         std::isdigit(static_cast<unsigned char>(src_[pos_ + 1])))) {
      return LexNumber();
    }
    if (c == '\'' || c == '"') return LexString(c);
    if (std::isalpha(static_cast<unsigned char>(c))) {
      size_t start = pos_;
      while (pos_ < src_.size() && (IsNameChar(src_[pos_]) || src_[pos_] == '.')) {
        ++pos_;
      }
      tok_.kind = Token::Kind::kName;
      tok_.text = std::string(src_.substr(start, pos_ - start));
      if (tok_.text.back() == '.' || tok_.text.find("..") != std::string::npos) {
        return Error(tok_.column, StrCat("`", tok_.text, "` is not a path"));
      }
      return absl::OkStatus();
    }
    static constexpr std::string_view kOps[] = {"==", "!=", "<=", ">=", "<", ">"};
    for (std::string_view op : kOps) {
      if (src_.substr(pos_, op.size()) == op) {
        tok_.kind = Token::Kind::kOp;
        tok_.text = std::string(op);
        pos_ += op.size();
        return absl::OkStatus();
      }
    }
    if (c == '(' || c == ')' || c == '[' || c == ']' || c == ',') {
      tok_.kind = Token::Kind::kPunct;
      tok_.text = std::string(1, c);
      ++pos_;
      return absl::OkStatus();
    }
    if (c == '=') return Error(tok_.column, "use `==` to compare");
    // The whole character: a UTF-8 lead byte and the continuation bytes after it.
    size_t end = pos_ + 1;
    while (end < src_.size() && (static_cast<unsigned char>(src_[end]) & 0xC0) == 0x80) ++end;
    return Error(tok_.column, StrCat("unexpected `", src_.substr(pos_, end - pos_), "`"));
  }

  absl::Status LexNumber() {
    size_t start = pos_;
    if (src_[pos_] == '-') ++pos_;
    while (pos_ < src_.size() &&
           (std::isdigit(static_cast<unsigned char>(src_[pos_])) || src_[pos_] == '.')) {
      ++pos_;
    }
    // An exponent (1e3, 2.5E-2), as JSON writes one.
    if (pos_ + 1 < src_.size() && (src_[pos_] == 'e' || src_[pos_] == 'E')) {
      size_t after = pos_ + 1;
      if (src_[after] == '+' || src_[after] == '-') ++after;
      if (after < src_.size() && std::isdigit(static_cast<unsigned char>(src_[after]))) {
        pos_ = after;
        while (pos_ < src_.size() && std::isdigit(static_cast<unsigned char>(src_[pos_]))) ++pos_;
      }
    }
    std::string_view digits = src_.substr(start, pos_ - start);
    double v = 0;
    auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), v);
    if (ec != std::errc() || p != digits.data() + digits.size()) {
      return Error(tok_.column, StrCat("`", digits, "` is not a number"));
    }
    // A duration unit makes it milliseconds.
    size_t unit_start = pos_;
    while (pos_ < src_.size() && std::isalpha(static_cast<unsigned char>(src_[pos_]))) ++pos_;
    std::string_view unit = src_.substr(unit_start, pos_ - unit_start);
    if (!unit.empty()) {
      double scale = unit == "ms"  ? 1
                     : unit == "s" ? 1e3
                     : unit == "m" ? 60e3
                     : unit == "h" ? 3600e3
                     : unit == "d" ? 86400e3
                                   : 0;
      if (scale == 0) {
        return Error(tok_.column, StrCat("unknown duration unit `", unit, "` (ms, s, m, h, d)"));
      }
      v *= scale;
      tok_.duration = true;
    }
    tok_.kind = Token::Kind::kNumber;
    tok_.number = v;
    return absl::OkStatus();
  }

  absl::Status LexString(char quote) {
    ++pos_;
    std::string out;
    while (pos_ < src_.size() && src_[pos_] != quote) {
      if (src_[pos_] == '\\' && pos_ + 1 < src_.size()) ++pos_;
      out.push_back(src_[pos_++]);
    }
    if (pos_ >= src_.size()) return Error(tok_.column, "the string is not closed");
    ++pos_;
    tok_.kind = Token::Kind::kString;
    tok_.text = std::move(out);
    return absl::OkStatus();
  }

  absl::StatusOr<std::unique_ptr<Node>> ParseOr() { return ParseLogic(false); }

  // `and` binds tighter than `or`.
  absl::StatusOr<std::unique_ptr<Node>> ParseLogic(bool is_and) {
    std::string_view word = is_and ? "and" : "or";
    std::vector<std::unique_ptr<Node>> children;
    size_t column = tok_.column;  // where the last operand starts
    for (;;) {
      column = tok_.column;
      absl::StatusOr<std::unique_ptr<Node>> child = is_and ? ParseUnary() : ParseLogic(true);
      if (!child.ok()) return child;
      children.push_back(*std::move(child));
      if (!IsKeyword(word)) break;
      if (absl::Status s = NeedBool(*children.back(), column, word); !s.ok()) return s;
      if (absl::Status s = Next(); !s.ok()) return s;
    }
    if (children.size() == 1) return std::move(children.front());
    if (absl::Status s = NeedBool(*children.back(), column, word); !s.ok()) return s;
    return std::unique_ptr<Node>(new LogicNode(is_and, std::move(children)));
  }

  absl::Status NeedBool(const Node& n, size_t column, std::string_view op) const {
    if (n.type() == Type::kBool || n.type() == Type::kAny) return absl::OkStatus();
    return Error(column, StrCat("`", op, "` needs conditions, got a ", TypeName(n.type())));
  }

  // Parentheses and `not` nest by recursion (here, in evaluation and in destruction): a bound
  // keeps a condition from an HTTP body or a config file from overflowing the stack.
  static constexpr int kMaxNesting = 64;
  class Nesting {
   public:
    explicit Nesting(int* depth) : depth_(depth) { ++*depth_; }
    ~Nesting() { --*depth_; }
    Nesting(const Nesting&) = delete;
    Nesting& operator=(const Nesting&) = delete;
    bool TooDeep() const { return *depth_ > kMaxNesting; }

   private:
    int* depth_;
  };
  absl::Status TooDeep(size_t column) const {
    return Error(column, StrCat("nested more than ", kMaxNesting,
                                " deep (parentheses and `not`): write it flatter"));
  }

  absl::StatusOr<std::unique_ptr<Node>> ParseUnary() {
    if (IsKeyword("not")) {
      size_t column = tok_.column;
      Nesting nesting(&depth_);
      if (nesting.TooDeep()) return TooDeep(column);
      if (absl::Status s = Next(); !s.ok()) return s;
      absl::StatusOr<std::unique_ptr<Node>> child = ParseUnary();
      if (!child.ok()) return child;
      if (absl::Status s = NeedBool(**child, column, "not"); !s.ok()) return s;
      return std::unique_ptr<Node>(new NotNode(*std::move(child)));
    }
    return ParseCompare();
  }

  absl::StatusOr<std::unique_ptr<Node>> ParseCompare() {
    absl::StatusOr<std::unique_ptr<Node>> lhs = ParseOperand();
    if (!lhs.ok()) return lhs;
    size_t column = tok_.column;
    if (IsKeyword("in")) return ParseIn(*std::move(lhs), column);
    Op op;
    std::string text = tok_.text;
    if (tok_.kind == Token::Kind::kOp) {
      op = text == "=="   ? Op::kEq
           : text == "!=" ? Op::kNe
           : text == "<"  ? Op::kLt
           : text == "<=" ? Op::kLe
           : text == ">"  ? Op::kGt
                          : Op::kGe;
    } else if (IsKeyword("contains")) {
      op = Op::kContains;
    } else if (IsKeyword("starts_with")) {
      op = Op::kStartsWith;
    } else {
      return lhs;  // a bare operand; the caller checks it is a bool
    }
    if (absl::Status s = Next(); !s.ok()) return s;
    absl::StatusOr<std::unique_ptr<Node>> rhs = ParseOperand();
    if (!rhs.ok()) return rhs;
    Type a = (*lhs)->type(), b = (*rhs)->type();
    Type want = op == Op::kLt || op == Op::kLe || op == Op::kGt || op == Op::kGe ? Type::kNumber
                : op == Op::kContains || op == Op::kStartsWith                   ? Type::kString
                                                                                 : Type::kAny;
    auto fits = [want](Type t) { return want == Type::kAny || t == want || t == Type::kAny; };
    if (!fits(a) || !fits(b)) {
      return Error(column, StrCat("`", text, "` needs ", TypeName(want), "s, got ", TypeName(a),
                                  " and ", TypeName(b)));
    }
    if (want == Type::kAny && a != b && a != Type::kAny && b != Type::kAny) {
      return Error(column,
                   StrCat("`", text, "` compares a ", TypeName(a), " with a ", TypeName(b)));
    }
    if (op == Op::kEq || op == Op::kNe) {
      NoteCompared(**lhs, **rhs);
      NoteCompared(**rhs, **lhs);
    }
    return std::unique_ptr<Node>(new CompareNode(op, *std::move(lhs), *std::move(rhs)));
  }

  absl::StatusOr<std::unique_ptr<Node>> ParseIn(std::unique_ptr<Node> lhs, size_t column) {
    if (absl::Status s = Next(); !s.ok()) return s;
    if (!IsPunct("[")) return Error(tok_.column, "`in` needs a list: [a, b, ...]");
    std::vector<std::unique_ptr<LiteralNode>> list;
    do {
      if (absl::Status s = Next(); !s.ok()) return s;
      absl::StatusOr<std::unique_ptr<LiteralNode>> item = ParseLiteral();
      if (!item.ok()) return item.status();
      Type t = (*item)->type();
      if (lhs->type() != Type::kAny && t != lhs->type()) {
        return Error(column, StrCat("`in` compares a ", TypeName(lhs->type()), " with a ",
                                    TypeName(t), " in its list"));
      }
      NoteCompared(*lhs, **item);
      list.push_back(*std::move(item));
    } while (IsPunct(","));
    if (!IsPunct("]")) return Error(tok_.column, "expected `,` or `]`, got " + Describe());
    if (absl::Status s = Next(); !s.ok()) return s;
    return std::unique_ptr<Node>(new InNode(std::move(lhs), std::move(list)));
  }

  absl::StatusOr<std::unique_ptr<LiteralNode>> ParseLiteral() {
    std::unique_ptr<LiteralNode> out;
    if (tok_.kind == Token::Kind::kNumber) {
      out = std::make_unique<LiteralNode>(Type::kNumber, Value::Number(tok_.number), "");
    } else if (tok_.kind == Token::Kind::kString) {
      out = std::make_unique<LiteralNode>(Type::kString, Value::String({}), tok_.text);
    } else if (IsKeyword("true") || IsKeyword("false")) {
      out = std::make_unique<LiteralNode>(Type::kBool, Value::Bool(tok_.text == "true"), "");
    } else {
      return Error(tok_.column, "expected a number, string, true or false, got " + Describe());
    }
    if (absl::Status s = Next(); !s.ok()) return s;
    return out;
  }

  // path := dotted ('[' string-or-index ']' ('.' dotted)?)*, where `dotted` is a name token
  // (a.b.c). A subscript names what a dotted name cannot: a key with blanks, dots or non-ASCII
  // letters (`event.properties['Plan Type']`), or an array element (`products[0]`, the same as
  // `products.0`). Nothing else may follow a path, so a `[` after one is always a subscript.
  absl::StatusOr<std::unique_ptr<Node>> ParsePath() {
    if (tok_.kind != Token::Kind::kName)
      return Error(tok_.column, "expected a path, got " + Describe());
    const size_t column = tok_.column;
    std::vector<std::string> names;
    std::string shown;  // the path as a dotted name where it can be one (Reference::path)
    auto add_dotted = [&](std::string_view dotted) {
      for (size_t start = 0;;) {
        const size_t dot = dotted.find('.', start);
        names.emplace_back(dotted.substr(start, dot - start));
        if (dot == std::string_view::npos) break;
        start = dot + 1;
      }
      StrAppend(&shown, shown.empty() ? "" : ".", dotted);
    };
    add_dotted(tok_.text);
    if (absl::Status s = Next(); !s.ok()) return s;
    while (IsPunct("[")) {
      if (absl::Status s = Next(); !s.ok()) return s;
      if (tok_.kind == Token::Kind::kString && !tok_.text.empty()) {
        names.push_back(tok_.text);
        const bool plain = std::all_of(tok_.text.begin(), tok_.text.end(), IsNameChar);
        StrAppend(&shown, plain ? "." : "['", tok_.text, plain ? "" : "']");
      } else if (tok_.kind == Token::Kind::kNumber && tok_.number >= 0 && tok_.number < 1e9 &&
                 tok_.number == std::floor(tok_.number) && !tok_.duration) {
        names.push_back(std::to_string(static_cast<int64_t>(tok_.number)));
        StrAppend(&shown, "[", names.back(), "]");
      } else {
        return Error(tok_.column,
                     "a subscript is a non-empty 'name' or an index from 0, got " + Describe());
      }
      if (absl::Status s = Next(); !s.ok()) return s;
      if (!IsPunct("]")) return Error(tok_.column, "expected `]`, got " + Describe());
      if (pos_ < src_.size() && src_[pos_] == '.') {  // `[0].price`: the path goes on
        ++pos_;
        if (absl::Status s = Next(); !s.ok()) return s;
        if (tok_.kind != Token::Kind::kName) {
          return Error(tok_.column, "expected a name after `.`, got " + Describe());
        }
        add_dotted(tok_.text);
      }
      if (absl::Status s = Next(); !s.ok()) return s;
    }
    Schema::Resolved r = schema_.Resolve(names);
    if (r.slot < 0) return Error(column, StrCat("unknown name `", shown, "`"));
    references_.push_back({std::move(shown), std::move(names), column, {}});
    return std::unique_ptr<Node>(new PathNode(std::move(r), references_.size() - 1));
  }

  // `path` compared for equality with `value`: a string literal is kept with its reference.
  void NoteCompared(const Node& path, const Node& value) {
    const auto* p = dynamic_cast<const PathNode*>(&path);
    const auto* v = dynamic_cast<const LiteralNode*>(&value);
    if (p != nullptr && v != nullptr && v->value().kind == Value::Kind::kString) {
      references_[p->reference()].strings.push_back(v->text());
    }
  }

  absl::StatusOr<std::unique_ptr<Node>> ParseOperand() {
    if (IsPunct("(")) {
      Nesting nesting(&depth_);
      if (nesting.TooDeep()) return TooDeep(tok_.column);
      if (absl::Status s = Next(); !s.ok()) return s;
      absl::StatusOr<std::unique_ptr<Node>> inner = ParseOr();
      if (!inner.ok()) return inner;
      if (!IsPunct(")")) return Error(tok_.column, "expected `)`, got " + Describe());
      if (absl::Status s = Next(); !s.ok()) return s;
      return inner;
    }
    if (IsKeyword("exists")) {
      if (absl::Status s = Next(); !s.ok()) return s;
      if (!IsPunct("(")) return Error(tok_.column, "`exists` needs a path in parentheses");
      if (absl::Status s = Next(); !s.ok()) return s;
      absl::StatusOr<std::unique_ptr<Node>> path = ParsePath();
      if (!path.ok()) return path;
      if (!IsPunct(")")) return Error(tok_.column, "expected `)`, got " + Describe());
      if (absl::Status s = Next(); !s.ok()) return s;
      return std::unique_ptr<Node>(new ExistsNode(*std::move(path)));
    }
    if (tok_.kind == Token::Kind::kName && !IsKeyword("true") && !IsKeyword("false")) {
      static constexpr std::string_view kReserved[] = {"and", "or",       "not",
                                                       "in",  "contains", "starts_with"};
      for (std::string_view word : kReserved) {
        if (tok_.text == word)
          return Error(tok_.column, StrCat("expected a value, got `", word, "`"));
      }
      return ParsePath();
    }
    absl::StatusOr<std::unique_ptr<LiteralNode>> lit = ParseLiteral();
    if (!lit.ok()) return lit.status();
    return std::unique_ptr<Node>(std::move(*lit));
  }

  std::string_view src_;
  const Schema& schema_;
  size_t pos_ = 0;
  size_t counted_pos_ = 0;  // ColumnAt: the byte counted to, and its column
  size_t counted_column_ = 1;
  Token tok_;
  int depth_ = 0;  // parentheses and `not` open around the token
  std::vector<Reference> references_;
};

}  // namespace

Expr::Expr(std::string source, std::unique_ptr<Node> root, std::vector<Reference> references)
    : source_(std::move(source)), root_(std::move(root)), references_(std::move(references)) {}
Expr::Expr(Expr&&) noexcept = default;
Expr& Expr::operator=(Expr&&) noexcept = default;
Expr::~Expr() = default;

absl::StatusOr<Expr> Expr::Compile(std::string_view source, const Schema& schema) {
  Parser parser(source, schema);
  absl::StatusOr<std::unique_ptr<Node>> root = parser.Parse();
  if (!root.ok()) return root.status();
  return Expr(std::string(source), *std::move(root), std::move(parser.references()));
}

bool Expr::Eval(const Bindings& bindings) const { return Truthy(root_->Eval(bindings)); }

}  // namespace whisperer::expr
