#include "config/config.h"

#include <arpa/inet.h>

#include <algorithm>
#include <charconv>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "common/duration.h"
#include "common/json_writer.h"
#include "common/status.h"
#include "common/strings.h"
#include "common/timestamp.h"
#include "simdjson.h"
#include "yaml-cpp/depthguard.h"
#include "yaml-cpp/yaml.h"

namespace whisperer::config {
namespace {

// `text` as it may be shown on one line of an error: control characters escaped (a key or value
// with a line break would otherwise print a second line, which could pass for another message),
// and cut after `max` bytes.
std::string OneLine(std::string_view text, size_t max) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (out.size() >= max) {
      out += "...";
      break;
    }
    const unsigned char ch = static_cast<unsigned char>(text[i]);
    if (ch == '\n') {
      out += "\\n";
    } else if (ch == '\t') {
      out += "\\t";
    } else if (ch < 0x20 || ch == 0x7f) {
      static constexpr char kHex[] = "0123456789abcdef";
      out += "\\x";
      out.push_back(kHex[ch >> 4]);
      out.push_back(kHex[ch & 15]);
    } else {
      out.push_back(static_cast<char>(ch));
    }
  }
  return out;
}

// "file:line: path: reason", on one line (OneLine: a path of up to 256 bytes, a reason, which
// may quote a value, of up to 1,024).
absl::Status ConfigErrorAt(std::string_view file, int line, std::string_view path,
                           std::string_view reason) {
  const std::string field = OneLine(path, 256);
  return MakeError(absl::StatusCode::kInvalidArgument, "invalid_config",
                   StrCat(OneLine(file, 4096), ":", line, ": ", field, ": ", OneLine(reason, 1024)),
                   field);
}

absl::Status ConfigError(std::string_view file, const YAML::Node& node, std::string_view path,
                         std::string_view reason) {
  return ConfigErrorAt(file, node.Mark().line + 1, path, reason);
}

std::string Join(std::initializer_list<std::string_view> items) {
  std::string out;
  for (auto item : items) StrAppend(&out, out.empty() ? "" : ", ", item);
  return out;
}

constexpr std::string_view kBackgroundPriorities = "must be one of idle, low, normal";

// A key is sent as a Basic user name (which ends at ':') or a Bearer token, in a trimmed header
// (a request's headers may take 16 KiB in all, and base64 makes a Basic key a third longer).
constexpr std::string_view kBadKey =
    "a key may not contain ':', spaces or control characters, nor be over 1024 bytes";
bool ValidKey(std::string_view key) {
  return key.size() <= 1024 && std::none_of(key.begin(), key.end(), [](char ch) {
           return ch == ':' || static_cast<unsigned char>(ch) <= ' ' || ch == 0x7f;
         });
}
bool KnownBackgroundPriority(std::string_view p) {
  return p == "idle" || p == "low" || p == "normal";
}

class Reader {
 public:
  // `json`: the text was checked to be JSON (an action sent over HTTP), so a value must have its
  // JSON type: a string quoted, a number or a boolean not. (YAML would read `"issue": 5` as the
  // string "5" and `"cost": "5"` as the number 5.)
  explicit Reader(std::string_view file, bool json = false) : file_(file), json_(json) {}

  // Checks that `node` is a map whose keys are all in `known`, each once (yaml-cpp keeps a
  // repeated key and answers lookups with its first value, where most YAML tools take the last).
  absl::Status Map(const YAML::Node& node, std::string_view path,
                   std::initializer_list<std::string_view> known) {
    return Keys(node, path, &known);
  }
  // A mapping whose keys are the user's own (hint names, outcomes, identifier types, consent
  // categories): any keys, each once.
  absl::Status OpenMap(const YAML::Node& node, std::string_view path) {
    return Keys(node, path, nullptr);
  }

  absl::Status Keys(const YAML::Node& node, std::string_view path,
                    const std::initializer_list<std::string_view>* known) {
    if (!node.IsMap()) return ConfigError(file_, node, path, "must be a mapping");
    std::vector<std::string> seen;
    for (auto it = node.begin(); it != node.end(); ++it) {
      std::string key = it->first.as<std::string>();
      bool ok = known == nullptr;
      for (auto k : known ? *known : std::initializer_list<std::string_view>{}) {
        ok = ok || k == key;
      }
      if (!ok) {
        return ConfigError(file_, it->first, StrCat(path, path.empty() ? "" : ".", key),
                           StrCat("unknown key; expected one of ", Join(*known)));
      }
      if (std::find(seen.begin(), seen.end(), key) != seen.end()) {
        return ConfigError(file_, it->first, StrCat(path, path.empty() ? "" : ".", key),
                           "set twice in the same mapping");
      }
      seen.push_back(std::move(key));
    }
    return absl::OkStatus();
  }

  absl::Status String(const YAML::Node& node, std::string_view path, std::string* out) {
    if (!node) return absl::OkStatus();
    if (!node.IsScalar() || !QuotedIfJson(node)) {
      return ConfigError(file_, node, path, "must be a string");
    }
    *out = node.Scalar();
    return absl::OkStatus();
  }

  absl::Status Bool(const YAML::Node& node, std::string_view path, bool* out) {
    if (!node) return absl::OkStatus();
    bool v;
    if (!node.IsScalar() || !PlainIfJson(node) || !YAML::convert<bool>::decode(node, v)) {
      return ConfigError(file_, node, path, "must be true or false");
    }
    *out = v;
    return absl::OkStatus();
  }

  template <typename T>
  absl::Status Uint(const YAML::Node& node, std::string_view path, T* out, uint64_t min,
                    uint64_t max) {
    if (!node) return absl::OkStatus();
    const std::string& s = node.IsScalar() && PlainIfJson(node) ? node.Scalar() : std::string();
    uint64_t v = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() || v < min || v > max) {
      return ConfigError(file_, node, path,
                         StrCat("must be a whole number from ", min, " to ", max));
    }
    *out = static_cast<T>(v);
    return absl::OkStatus();
  }

  absl::Status Number(const YAML::Node& node, std::string_view path, double* out, double min,
                      double max) {
    if (!node) return absl::OkStatus();
    const std::string& s = node.IsScalar() && PlainIfJson(node) ? node.Scalar() : std::string();
    double v = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() || !(v >= min && v <= max)) {
      return ConfigError(file_, node, path, StrCat("must be a number from ", min, " to ", max));
    }
    *out = v;
    return absl::OkStatus();
  }

  absl::Status Duration(const YAML::Node& node, std::string_view path, int64_t* out) {
    if (!node) return absl::OkStatus();
    if (!node.IsScalar()) {
      return ConfigError(file_, node, path, "must be a duration such as 500ms, 30s, 5m, 7d");
    }
    absl::StatusOr<int64_t> ms = ParseDurationMillis(QuotedIfJson(node) ? node.Scalar() : "");
    if (!ms.ok()) return ConfigError(file_, node, path, ToStd(ms.status().message()));
    *out = *ms;
    return absl::OkStatus();
  }

  // Notes where `node`, when given, set the value of `key` (Config::origin).
  void Origin(const YAML::Node& node, const std::string& key, Config* c) const {
    if (node) c->origin[key] = StrCat(file_, ":", node.Mark().line + 1);
  }

  absl::Status StringList(const YAML::Node& node, std::string_view path,
                          std::vector<std::string>* out) {
    if (!node) return absl::OkStatus();
    if (!node.IsSequence()) return ConfigError(file_, node, path, "must be a list of strings");
    const size_t first = out->size();
    for (size_t i = 0; i < node.size(); ++i) {
      if (!node[i].IsScalar() || !QuotedIfJson(node[i]) || node[i].Scalar().empty()) {
        return ConfigError(file_, node[i], StrCat(path, "[", i, "]"), "must be a non-empty string");
      }
      // Every list of the config is a set (traits, purposes, keys, decision points...): a
      // value twice is a slip, which could count twice (a trait's feature, a goal's point).
      const std::string& value = node[i].Scalar();
      if (std::find(out->begin() + static_cast<ptrdiff_t>(first), out->end(), value) !=
          out->end()) {
        return ConfigError(file_, node[i], StrCat(path, "[", i, "]"),
                           StrCat("'", value, "' is listed twice"));
      }
      out->push_back(value);
    }
    return absl::OkStatus();
  }

  const std::string& file() const { return file_; }
  // In JSON, a string is a quoted scalar (YAML tags those "!") and a number or boolean a plain
  // one ("?"); in a YAML file either reads.
  bool QuotedIfJson(const YAML::Node& node) const { return !json_ || node.Tag() == "!"; }
  bool PlainIfJson(const YAML::Node& node) const { return !json_ || node.Tag() != "!"; }

 private:
  std::string file_;
  bool json_;
};

#define WHISPERER_RETURN_IF_ERROR(expr)       \
  do {                                        \
    if (absl::Status _s = (expr); !_s.ok()) { \
      return _s;                              \
    }                                         \
  } while (0)

bool ValidIdName(std::string_view name) {
  return !name.empty() && name.size() <= 64 &&
         name.find_first_not_of(
             "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_") ==
             std::string_view::npos;
}

// The 1-based line of the `key:` or `-` that a null at `mark` belongs to. yaml-cpp places a
// value left empty on the token after it, lines further down past blank and comment lines:
// this walks back from there to the last line with something on it before the mark.
int LineOfNull(std::string_view text, const YAML::Mark& mark) {
  std::vector<std::string_view> lines;
  for (size_t start = 0; start <= text.size();) {
    const size_t end = std::min(text.find('\n', start), text.size());
    lines.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  for (int line = std::min<int>(mark.line, static_cast<int>(lines.size()) - 1); line >= 0; --line) {
    std::string_view before = lines[line];
    if (line == mark.line) before = before.substr(0, std::max(mark.column, 0));
    for (size_t hash = before.find('#'); hash != std::string_view::npos;
         hash = before.find('#', hash + 1)) {
      if (hash == 0 || before[hash - 1] == ' ' || before[hash - 1] == '\t') {
        before = before.substr(0, hash);  // a comment
        break;
      }
    }
    if (!StripWhitespace(before).empty()) return line + 1;
  }
  return mark.line + 1;
}

// The shape of the whole tree, checked before any setting is read:
// - a key written without a value ("port:", or a list item "-") reads as null, which no setting
//   takes: refused, naming the line it is on (see LineOfNull). A section whose entries are all
//   commented out is such a key;
// - a key must be a plain scalar: a list, a mapping or nothing as a key ("? [a]", "{a: 1}: 2")
//   is refused here, since the readers of mappings read keys as strings;
// - aliases: one inside the node it names (`&a {x: *a}`) would be walked forever, and aliases
//   repeated into each other grow tenfold a level (a few hundred bytes stand for billions of
//   values): a node inside itself is refused, and so is a tree of more values, counted as
//   expanded, than its text could hold without aliases (one a byte; at least kMinValues);
// - nesting deeper than kMaxDepth levels (no setting is nested a tenth as deep).
class TreeCheck {
 public:
  static constexpr size_t kMinValues = 1'000'000;
  static constexpr size_t kMaxDepth = 64;

  TreeCheck(std::string_view file, std::string_view text)
      : file_(file), text_(text), max_values_(std::max(kMinValues, text.size())) {}

  absl::Status Check(const YAML::Node& node, const std::string& path) {
    if (++values_ > max_values_) {
      return ConfigError(file_, node, path,
                         StrCat("the config expands to more than ", max_values_,
                                " values, more than its text holds: aliases repeated into each "
                                "other"));
    }
    if (!node.IsMap() && !node.IsSequence()) return absl::OkStatus();
    if (ancestors_.size() >= kMaxDepth) {
      return ConfigError(file_, node, path,
                         StrCat("nests deeper than ", kMaxDepth, " levels, which no setting does"));
    }
    for (const YAML::Node& above : ancestors_) {
      if (above.is(node)) {
        return ConfigError(file_, node, path,
                           "an alias inside the node it names (&anchor ... *anchor within it): "
                           "the value would never end");
      }
    }
    ancestors_.push_back(node);
    absl::Status s = Children(node, path);
    ancestors_.pop_back();
    return s;
  }

 private:
  absl::Status Children(const YAML::Node& node, const std::string& path) {
    if (node.IsMap()) {
      for (auto it = node.begin(); it != node.end(); ++it) {
        if (!it->first.IsScalar()) {
          return ConfigError(file_, it->first, path.empty() ? "(top level)" : path,
                             "a key must be a name, not a list, a mapping or nothing");
        }
        const std::string at = StrCat(path, path.empty() ? "" : ".", it->first.Scalar());
        if (it->second.IsNull()) return Empty(it->second, at);
        WHISPERER_RETURN_IF_ERROR(Check(it->second, at));
      }
    } else {
      for (size_t i = 0; i < node.size(); ++i) {
        const std::string at = StrCat(path, "[", i, "]");
        if (node[i].IsNull()) return Empty(node[i], at);
        WHISPERER_RETURN_IF_ERROR(Check(node[i], at));
      }
    }
    return absl::OkStatus();
  }

  absl::Status Empty(const YAML::Node& value, const std::string& at) const {
    return ConfigErrorAt(file_, LineOfNull(text_, value.Mark()), at,
                         "has no value: write one, or leave the key out for its default (a list "
                         "or mapping whose entries are all commented out is no value)");
  }

  std::string_view file_;
  std::string_view text_;
  const size_t max_values_;
  std::vector<YAML::Node> ancestors_;
  size_t values_ = 0;
};

SourceRef RefOf(std::string_view file, const YAML::Node& node, std::string path) {
  return SourceRef{std::string(file), node.Mark().line + 1, std::move(path)};
}

// The `id` of the list entry `n` at `path`: 1-64 letters, digits or _, and not one `seen`
// already ("names a <what> twice").
absl::Status EntryId(Reader& r, std::string_view file, const YAML::Node& n, const std::string& path,
                     std::string_view what, std::set<std::string>* seen, std::string* out) {
  WHISPERER_RETURN_IF_ERROR(r.String(n["id"], path + ".id", out));
  if (!ValidIdName(*out)) {
    return ConfigError(file, n, path + ".id", "must be 1-64 letters, digits or _");
  }
  if (!seen->insert(*out).second) {
    return ConfigError(file, n, path + ".id", StrCat("names a ", what, " twice"));
  }
  return absl::OkStatus();
}

absl::Status ParseJourneys(Reader& r, std::string_view file, const YAML::Node& list,
                           const std::string& path, WorkspaceConfig* ws) {
  if (!list.IsSequence()) return ConfigError(file, list, path, "must be a list of journeys");
  std::set<std::string> ids;
  for (size_t j = 0; j < list.size(); ++j) {
    const YAML::Node& n = list[j];
    std::string jp = StrCat(path, "[", j, "]");
    WHISPERER_RETURN_IF_ERROR(r.Map(n, jp, {"id", "version", "stages", "goal", "exit", "reentry"}));
    JourneyConfig jc;
    WHISPERER_RETURN_IF_ERROR(EntryId(r, file, n, jp, "journey", &ids, &jc.id));
    WHISPERER_RETURN_IF_ERROR(r.Uint(n["version"], jp + ".version", &jc.version, 1, 1'000'000));
    jc.version_ref = RefOf(file, n["version"] ? n["version"] : n, jp + ".version");
    WHISPERER_RETURN_IF_ERROR(r.Bool(n["reentry"], jp + ".reentry", &jc.reentry));
    if (!n["goal"]) return ConfigError(file, n, jp + ".goal", "a journey needs a goal condition");
    WHISPERER_RETURN_IF_ERROR(r.String(n["goal"], jp + ".goal", &jc.goal));
    jc.goal_ref = RefOf(file, n["goal"], jp + ".goal");
    if (n["exit"]) {
      WHISPERER_RETURN_IF_ERROR(r.String(n["exit"], jp + ".exit", &jc.exit));
      jc.exit_ref = RefOf(file, n["exit"], jp + ".exit");
    }
    const YAML::Node& stages = n["stages"];
    if (!stages || !stages.IsSequence() || stages.size() == 0) {
      return ConfigError(file, n, jp + ".stages", "a journey needs a list of stages");
    }
    std::set<std::string> stage_ids;
    for (size_t i = 0; i < stages.size(); ++i) {
      const YAML::Node& st = stages[i];
      std::string sp = StrCat(jp, ".stages[", i, "]");
      WHISPERER_RETURN_IF_ERROR(r.Map(st, sp, {"id", "entry", "timeout"}));
      JourneyConfig::Stage stage;
      WHISPERER_RETURN_IF_ERROR(r.String(st["id"], sp + ".id", &stage.id));
      // `exit` is a timeout's target; `converted` and `exited` are what profile.journeys.<id>
      // says of a customer who finished.
      if (!ValidIdName(stage.id) || stage.id == "exit" || stage.id == "converted" ||
          stage.id == "exited") {
        return ConfigError(file, st, sp + ".id",
                           "must be 1-64 letters, digits or _, not `exit`, `converted` or "
                           "`exited`");
      }
      if (!stage_ids.insert(stage.id).second) {
        return ConfigError(file, st, sp + ".id", "names a stage twice");
      }
      if (!st["entry"])
        return ConfigError(file, st, sp + ".entry", "a stage needs an entry condition");
      WHISPERER_RETURN_IF_ERROR(r.String(st["entry"], sp + ".entry", &stage.entry));
      stage.entry_ref = RefOf(file, st["entry"], sp + ".entry");
      if (const YAML::Node& t = st["timeout"]) {
        WHISPERER_RETURN_IF_ERROR(r.Map(t, sp + ".timeout", {"after", "to"}));
        WHISPERER_RETURN_IF_ERROR(r.Duration(t["after"], sp + ".timeout.after", &stage.timeout_ms));
        WHISPERER_RETURN_IF_ERROR(r.String(t["to"], sp + ".timeout.to", &stage.timeout_to));
        if (stage.timeout_ms <= 0 || stage.timeout_to.empty()) {
          return ConfigError(file, t, sp + ".timeout",
                             "needs `after` (a duration above 0) and `to`");
        }
        stage.timeout_ref = RefOf(file, t["to"], sp + ".timeout.to");
      }
      jc.stages.push_back(std::move(stage));
    }
    // A timeout moves forward: to a later stage or out.
    for (size_t i = 0; i < jc.stages.size(); ++i) {
      const std::string& to = jc.stages[i].timeout_to;
      if (to.empty() || to == "exit") continue;
      bool later = false;
      for (size_t k = i + 1; k < jc.stages.size(); ++k) later = later || jc.stages[k].id == to;
      if (!later) {
        return ConfigError(file, stages[i]["timeout"]["to"],
                           StrCat(jp, ".stages[", i, "].timeout.to"),
                           "must name a later stage of the journey, or `exit`");
      }
    }
    ws->journeys.push_back(std::move(jc));
  }
  return absl::OkStatus();
}

absl::Status ParsePersonas(Reader& r, std::string_view file, const YAML::Node& list,
                           const std::string& path, WorkspaceConfig* ws) {
  if (!list.IsSequence()) return ConfigError(file, list, path, "must be a list of personas");
  std::set<std::string> ids;
  for (size_t p = 0; p < list.size(); ++p) {
    const YAML::Node& n = list[p];
    std::string pp = StrCat(path, "[", p, "]");
    WHISPERER_RETURN_IF_ERROR(r.Map(n, pp, {"id", "rules", "min_confidence"}));
    PersonaConfig pc;
    WHISPERER_RETURN_IF_ERROR(EntryId(r, file, n, pp, "persona", &ids, &pc.id));
    WHISPERER_RETURN_IF_ERROR(
        r.Number(n["min_confidence"], pp + ".min_confidence", &pc.min_confidence, 0, 1));
    const YAML::Node& rules = n["rules"];
    if (!rules || !rules.IsSequence() || rules.size() == 0) {
      return ConfigError(file, n, pp + ".rules", "a persona needs a list of rules");
    }
    for (size_t i = 0; i < rules.size(); ++i) {
      const YAML::Node& rn = rules[i];
      std::string rp = StrCat(pp, ".rules[", i, "]");
      WHISPERER_RETURN_IF_ERROR(r.Map(rn, rp, {"when", "weight"}));
      PersonaConfig::Rule rule;
      if (!rn["when"]) return ConfigError(file, rn, rp + ".when", "a rule needs a condition");
      WHISPERER_RETURN_IF_ERROR(r.String(rn["when"], rp + ".when", &rule.when));
      rule.when_ref = RefOf(file, rn["when"], rp + ".when");
      WHISPERER_RETURN_IF_ERROR(r.Number(rn["weight"], rp + ".weight", &rule.weight, 0.001, 1000));
      // Written twice, a condition would count its weight twice: say so rather than guess.
      for (size_t j = 0; j < pc.rules.size(); ++j) {
        if (pc.rules[j].when == rule.when) {
          return ConfigError(file, rn["when"], rp + ".when",
                             StrCat("the condition of rules[", j,
                                    "] again: give it one rule, with the weight it should have"));
        }
      }
      pc.rules.push_back(std::move(rule));
    }
    ws->personas.push_back(std::move(pc));
  }
  return absl::OkStatus();
}

absl::Status ParseAdaptations(Reader& r, std::string_view file, const YAML::Node& list,
                              const std::string& path, WorkspaceConfig* ws) {
  if (!list.IsSequence()) return ConfigError(file, list, path, "must be a list of rules");
  std::set<std::string> ids;
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node& n = list[i];
    std::string rp = StrCat(path, "[", i, "]");
    WHISPERER_RETURN_IF_ERROR(r.Map(n, rp, {"id", "when", "priority", "hints"}));
    AdaptationConfig a;
    WHISPERER_RETURN_IF_ERROR(EntryId(r, file, n, rp, "rule", &ids, &a.id));
    if (!n["when"]) return ConfigError(file, n, rp + ".when", "a rule needs a condition");
    WHISPERER_RETURN_IF_ERROR(r.String(n["when"], rp + ".when", &a.when));
    a.when_ref = RefOf(file, n["when"], rp + ".when");
    uint64_t priority = 0;
    WHISPERER_RETURN_IF_ERROR(r.Uint(n["priority"], rp + ".priority", &priority, 0, 1'000'000));
    a.priority = static_cast<int64_t>(priority);
    const YAML::Node& hints = n["hints"];
    if (!hints || !hints.IsMap() || hints.size() == 0) {
      return ConfigError(file, n, rp + ".hints", "a rule needs a mapping of hints to values");
    }
    WHISPERER_RETURN_IF_ERROR(r.OpenMap(hints, rp + ".hints"));
    for (auto it = hints.begin(); it != hints.end(); ++it) {
      std::string hint = it->first.as<std::string>();
      if (!ValidIdName(hint)) {
        return ConfigError(file, it->first, StrCat(rp, ".hints.", hint),
                           "a hint name must be 1-64 letters, digits or _");
      }
      if (!it->second.IsScalar() || it->second.Scalar().empty()) {
        return ConfigError(file, it->second, StrCat(rp, ".hints.", hint),
                           "must be a non-empty string");
      }
      a.hints.emplace_back(hint, it->second.Scalar());
    }
    ws->adaptations.push_back(std::move(a));
  }
  return absl::OkStatus();
}

absl::Status ParseTriggers(Reader& r, const YAML::Node& n, const std::string& path,
                           TriggerConfig* t) {
  WHISPERER_RETURN_IF_ERROR(
      r.Map(n, path,
            {"low_stock_at_most", "offer_ending_within", "viewing_now_at_least", "viewing_window",
             "max_per_profile_per_day"}));
  WHISPERER_RETURN_IF_ERROR(r.Uint(n["low_stock_at_most"], path + ".low_stock_at_most",
                                   &t->low_stock_at_most, 0, 1'000'000));
  WHISPERER_RETURN_IF_ERROR(r.Duration(n["offer_ending_within"], path + ".offer_ending_within",
                                       &t->offer_ending_within_ms));
  WHISPERER_RETURN_IF_ERROR(r.Uint(n["viewing_now_at_least"], path + ".viewing_now_at_least",
                                   &t->viewing_now_at_least, 1, 1'000'000));
  WHISPERER_RETURN_IF_ERROR(
      r.Duration(n["viewing_window"], path + ".viewing_window", &t->viewing_window_ms));
  if (t->viewing_window_ms < 60'000 || t->viewing_window_ms > 3'600'000) {
    return ConfigError(r.file(), n["viewing_window"], path + ".viewing_window",
                       "must be from 1m to 1h");
  }
  WHISPERER_RETURN_IF_ERROR(r.Uint(n["max_per_profile_per_day"], path + ".max_per_profile_per_day",
                                   &t->max_per_profile_per_day, 0, 1'000'000));
  return absl::OkStatus();
}

absl::Status ParseModels(Reader& r, const YAML::Node& n, const std::string& path, ModelsConfig* m) {
  WHISPERER_RETURN_IF_ERROR(r.Map(n, path,
                                  {"enabled", "conversion", "churn", "traits", "sample_every",
                                   "max_pending", "version_every", "ftrl", "clv", "text"}));
  WHISPERER_RETURN_IF_ERROR(r.Bool(n["enabled"], path + ".enabled", &m->enabled));
  if (YAML::Node c = n["conversion"]) {
    std::string p = path + ".conversion";
    WHISPERER_RETURN_IF_ERROR(r.Map(c, p, {"goal", "window"}));
    WHISPERER_RETURN_IF_ERROR(r.String(c["goal"], p + ".goal", &m->conversion_goal));
    if (m->conversion_goal.empty())
      return ConfigError(r.file(), c["goal"], p + ".goal", "is empty");
    WHISPERER_RETURN_IF_ERROR(r.Duration(c["window"], p + ".window", &m->conversion_window_ms));
    if (m->conversion_window_ms < 60'000) {
      return ConfigError(r.file(), c["window"], p + ".window", "must be at least 1m");
    }
  }
  if (YAML::Node c = n["churn"]) {
    std::string p = path + ".churn";
    WHISPERER_RETURN_IF_ERROR(r.Map(c, p, {"inactive", "cancel_event", "risk"}));
    WHISPERER_RETURN_IF_ERROR(r.Duration(c["inactive"], p + ".inactive", &m->churn_inactive_ms));
    if (m->churn_inactive_ms < 60'000) {
      return ConfigError(r.file(), c["inactive"], p + ".inactive", "must be at least 1m");
    }
    WHISPERER_RETURN_IF_ERROR(
        r.String(c["cancel_event"], p + ".cancel_event", &m->churn_cancel_event));
    if (YAML::Node risk = c["risk"]) {
      WHISPERER_RETURN_IF_ERROR(r.Map(risk, p + ".risk", {"high", "medium"}));
      WHISPERER_RETURN_IF_ERROR(r.Number(risk["high"], p + ".risk.high", &m->churn_high, 0, 1));
      WHISPERER_RETURN_IF_ERROR(
          r.Number(risk["medium"], p + ".risk.medium", &m->churn_medium, 0, 1));
      if (m->churn_medium > m->churn_high) {
        return ConfigError(r.file(), risk, p + ".risk", "medium must not be above high");
      }
    }
  }
  WHISPERER_RETURN_IF_ERROR(r.StringList(n["traits"], path + ".traits", &m->traits));
  WHISPERER_RETURN_IF_ERROR(
      r.Duration(n["sample_every"], path + ".sample_every", &m->sample_every_ms));
  WHISPERER_RETURN_IF_ERROR(
      r.Uint(n["max_pending"], path + ".max_pending", &m->max_pending, 0, 100'000'000));
  WHISPERER_RETURN_IF_ERROR(
      r.Uint(n["version_every"], path + ".version_every", &m->version_every, 100, 100'000));
  if (YAML::Node f = n["ftrl"]) {
    std::string p = path + ".ftrl";
    WHISPERER_RETURN_IF_ERROR(r.Map(f, p, {"alpha", "l1", "l2", "bits"}));
    WHISPERER_RETURN_IF_ERROR(r.Number(f["alpha"], p + ".alpha", &m->alpha, 1e-6, 100));
    WHISPERER_RETURN_IF_ERROR(r.Number(f["l1"], p + ".l1", &m->l1, 0, 1e6));
    WHISPERER_RETURN_IF_ERROR(r.Number(f["l2"], p + ".l2", &m->l2, 0, 1e6));
    WHISPERER_RETURN_IF_ERROR(r.Uint(f["bits"], p + ".bits", &m->bits, 10, 24));
  }
  if (YAML::Node c = n["clv"]) {
    std::string p = path + ".clv";
    WHISPERER_RETURN_IF_ERROR(r.Map(c, p, {"horizon", "refit_every", "monthly_discount"}));
    WHISPERER_RETURN_IF_ERROR(r.Duration(c["horizon"], p + ".horizon", &m->clv_horizon_ms));
    constexpr int64_t kDay = 86'400'000;
    if (m->clv_horizon_ms < kDay || m->clv_horizon_ms % kDay != 0) {
      return ConfigError(r.file(), c["horizon"], p + ".horizon",
                         "must be a whole number of days, at least 1d");
    }
    if (m->clv_horizon_ms > 36'500 * kDay) {
      return ConfigError(r.file(), c["horizon"], p + ".horizon", "must be at most 36500d");
    }
    WHISPERER_RETURN_IF_ERROR(
        r.Duration(c["refit_every"], p + ".refit_every", &m->clv_refit_every_ms));
    if (m->clv_refit_every_ms != 0 && m->clv_refit_every_ms < 60'000) {
      return ConfigError(r.file(), c["refit_every"], p + ".refit_every",
                         "must be 0 (only on demand) or at least 1m");
    }
    WHISPERER_RETURN_IF_ERROR(
        r.Number(c["monthly_discount"], p + ".monthly_discount", &m->clv_monthly_discount, 0, 1));
  }
  if (YAML::Node t = n["text"]) {
    std::string p = path + ".text";
    WHISPERER_RETURN_IF_ERROR(r.Map(t, p, {"properties"}));
    p += ".properties";
    WHISPERER_RETURN_IF_ERROR(r.StringList(t["properties"], p, &m->text_properties));
    constexpr size_t kMaxTextProperties = 20;
    if (m->text_properties.size() > kMaxTextProperties) {
      return ConfigError(r.file(), t["properties"], p,
                         StrCat("names more than ", kMaxTextProperties, " properties"));
    }
    for (size_t i = 0; i < m->text_properties.size(); ++i) {
      const std::string& prop = m->text_properties[i];
      std::string ip = StrCat(p, "[", i, "]");
      bool valid = prop.size() <= 200 && prop.front() != '.' && prop.back() != '.' &&
                   prop.find("..") == std::string::npos &&
                   prop.find_first_of(" \t\r\n") == std::string::npos;
      if (!valid) {
        return ConfigError(r.file(), t["properties"][i], ip,
                           "must be a property path such as `comment` or `review.body` (names "
                           "joined by dots, no spaces, at most 200 characters)");
      }
      if (prop.rfind("properties.", 0) == 0) {
        return ConfigError(r.file(), t["properties"][i], ip,
                           "paths are below the event's `properties`: leave out `properties.`");
      }
    }
  }
  return absl::OkStatus();
}

// A condition under `key` of `n` (optional): its text and where it was written.
absl::Status Condition(Reader& r, const YAML::Node& n, std::string_view key,
                       const std::string& path, std::string* out, SourceRef* ref) {
  if (!n[std::string(key)]) return absl::OkStatus();
  const std::string p = StrCat(path, ".", key);
  WHISPERER_RETURN_IF_ERROR(r.String(n[std::string(key)], p, out));
  *ref = RefOf(r.file(), n[std::string(key)], p);
  return absl::OkStatus();
}

absl::Status Timestamp(Reader& r, const YAML::Node& n, const std::string& path, int64_t* out) {
  if (!n) return absl::OkStatus();
  std::optional<int64_t> ms =
      n.IsScalar() && r.QuotedIfJson(n) ? ParseIso8601(n.Scalar()) : std::nullopt;
  if (!ms) {
    return ConfigError(r.file(), n, path, "must be an ISO-8601 time such as 2025-01-31T00:00:00Z");
  }
  *out = *ms;
  return absl::OkStatus();
}

absl::Status ParseAction(Reader& r, const YAML::Node& n, const std::string& path,
                         std::set<std::string>* ids, ActionConfig* a) {
  WHISPERER_RETURN_IF_ERROR(
      r.Map(n, path,
            {"id", "issue", "group", "kind", "value", "cost", "lever", "consent", "valid",
             "eligibility", "applicability", "suitability", "weights", "treatments", "contact",
             "suppress_after", "budget", "variants"}));
  WHISPERER_RETURN_IF_ERROR(EntryId(r, r.file(), n, path, "action", ids, &a->id));
  for (auto [key, out] : {std::pair{"issue", &a->issue}, std::pair{"group", &a->group}}) {
    WHISPERER_RETURN_IF_ERROR(r.String(n[key], StrCat(path, ".", key), out));
    if (!ValidIdName(*out)) {
      return ConfigError(r.file(), n[key] ? n[key] : n, StrCat(path, ".", key),
                         "an action needs an issue and a group: 1-64 letters, digits or _");
    }
  }
  WHISPERER_RETURN_IF_ERROR(r.String(n["kind"], path + ".kind", &a->kind));
  if (a->kind != "offer" && a->kind != "content" && a->kind != "message" && a->kind != "urgency" &&
      a->kind != "webhook") {
    return ConfigError(r.file(), n["kind"], path + ".kind",
                       "must be offer, content, message, urgency or webhook");
  }
  WHISPERER_RETURN_IF_ERROR(r.Number(n["value"], path + ".value", &a->value, 0, 1e12));
  WHISPERER_RETURN_IF_ERROR(r.Number(n["cost"], path + ".cost", &a->cost, 0, 1e12));
  WHISPERER_RETURN_IF_ERROR(r.Number(n["lever"], path + ".lever", &a->lever, 0, 1e6));
  WHISPERER_RETURN_IF_ERROR(r.String(n["consent"], path + ".consent", &a->consent));
  if (n["consent"]) a->consent_ref = RefOf(r.file(), n["consent"], path + ".consent");
  if (const YAML::Node& v = n["valid"]) {
    WHISPERER_RETURN_IF_ERROR(r.Map(v, path + ".valid", {"from", "until"}));
    WHISPERER_RETURN_IF_ERROR(Timestamp(r, v["from"], path + ".valid.from", &a->valid_from_ms));
    WHISPERER_RETURN_IF_ERROR(Timestamp(r, v["until"], path + ".valid.until", &a->valid_until_ms));
    if (v["until"] && a->valid_until_ms <= 0) {
      return ConfigError(r.file(), v["until"], path + ".valid.until",
                         "must be after 1970-01-01T00:00:00Z");
    }
    if (a->valid_until_ms != 0 && a->valid_until_ms <= a->valid_from_ms) {
      return ConfigError(r.file(), v, path + ".valid", "until must be after from");
    }
  }
  WHISPERER_RETURN_IF_ERROR(
      Condition(r, n, "eligibility", path, &a->eligibility, &a->eligibility_ref));
  WHISPERER_RETURN_IF_ERROR(
      Condition(r, n, "applicability", path, &a->applicability, &a->applicability_ref));
  WHISPERER_RETURN_IF_ERROR(
      Condition(r, n, "suitability", path, &a->suitability, &a->suitability_ref));
  if (const YAML::Node& ws = n["weights"]) {
    if (!ws.IsSequence()) return ConfigError(r.file(), ws, path + ".weights", "must be a list");
    for (size_t i = 0; i < ws.size(); ++i) {
      const std::string wp = StrCat(path, ".weights[", i, "]");
      WHISPERER_RETURN_IF_ERROR(r.Map(ws[i], wp, {"when", "weight"}));
      ActionConfig::Weight w;
      if (!ws[i]["when"]) return ConfigError(r.file(), ws[i], wp + ".when", "is required");
      WHISPERER_RETURN_IF_ERROR(Condition(r, ws[i], "when", wp, &w.when, &w.when_ref));
      if (!ws[i]["weight"]) return ConfigError(r.file(), ws[i], wp + ".weight", "is required");
      WHISPERER_RETURN_IF_ERROR(r.Number(ws[i]["weight"], wp + ".weight", &w.weight, 0, 1e6));
      a->weights.push_back(std::move(w));
    }
  }
  if (const YAML::Node& cn = n["contact"]) {
    WHISPERER_RETURN_IF_ERROR(r.Map(cn, path + ".contact", {"max", "per"}));
    WHISPERER_RETURN_IF_ERROR(r.Uint(cn["max"], path + ".contact.max", &a->contact_max, 1, 1000));
    WHISPERER_RETURN_IF_ERROR(r.Duration(cn["per"], path + ".contact.per", &a->contact_per_ms));
    if (a->contact_max == 0 || a->contact_per_ms < 60'000) {
      return ConfigError(r.file(), cn, path + ".contact",
                         "needs max (1 to 1000) and per (a duration of at least 1m)");
    }
  }
  if (const YAML::Node& sp = n["suppress_after"]) {
    WHISPERER_RETURN_IF_ERROR(r.Map(sp, path + ".suppress_after", {"negatives", "within"}));
    WHISPERER_RETURN_IF_ERROR(r.Uint(sp["negatives"], path + ".suppress_after.negatives",
                                     &a->suppress_negatives, 1, 1000));
    WHISPERER_RETURN_IF_ERROR(
        r.Duration(sp["within"], path + ".suppress_after.within", &a->suppress_within_ms));
    if (a->suppress_negatives == 0 || a->suppress_within_ms < 60'000) {
      return ConfigError(r.file(), sp, path + ".suppress_after",
                         "needs negatives (1 to 1000) and within (a duration of at least 1m)");
    }
  }
  if (const YAML::Node& b = n["budget"]) {
    WHISPERER_RETURN_IF_ERROR(r.Map(b, path + ".budget", {"per_day", "total_spend"}));
    WHISPERER_RETURN_IF_ERROR(
        r.Uint(b["per_day"], path + ".budget.per_day", &a->budget_per_day, 1, 1'000'000'000));
    WHISPERER_RETURN_IF_ERROR(
        r.Number(b["total_spend"], path + ".budget.total_spend", &a->budget_total_spend, 0, 1e15));
    if (a->budget_per_day == 0 && a->budget_total_spend == 0) {
      return ConfigError(r.file(), b, path + ".budget", "needs per_day or total_spend");
    }
    if (a->budget_total_spend > 0 && a->cost == 0) {
      return ConfigError(r.file(), b["total_spend"], path + ".budget.total_spend",
                         "a spend budget needs the action's cost");
    }
  }
  const YAML::Node& ts = n["treatments"];
  if (!ts || !ts.IsSequence() || ts.size() == 0) {
    return ConfigError(r.file(), ts ? ts : n, path + ".treatments",
                       "an action needs a list of treatments (its form per channel)");
  }
  std::set<std::string> treatment_ids;
  for (size_t i = 0; i < ts.size(); ++i) {
    const std::string tp = StrCat(path, ".treatments[", i, "]");
    WHISPERER_RETURN_IF_ERROR(r.Map(ts[i], tp, {"id", "channel"}));
    ActionConfig::Treatment t;
    WHISPERER_RETURN_IF_ERROR(EntryId(r, r.file(), ts[i], tp, "treatment", &treatment_ids, &t.id));
    WHISPERER_RETURN_IF_ERROR(r.String(ts[i]["channel"], tp + ".channel", &t.channel));
    if (t.channel != "email" && t.channel != "sms" && t.channel != "push" &&
        t.channel != "in_app" && t.channel != "web" && t.channel != "phone") {
      return ConfigError(r.file(), ts[i]["channel"] ? ts[i]["channel"] : ts[i], tp + ".channel",
                         "must be email, sms, push, in_app, web or phone");
    }
    a->treatments.push_back(std::move(t));
  }
  if (const YAML::Node& vs = n["variants"]) {
    if (!vs.IsSequence() || vs.size() < 2) {
      return ConfigError(r.file(), vs, path + ".variants",
                         "must be a list of at least two variants ({id, content})");
    }
    std::set<std::string> variant_ids;
    for (size_t i = 0; i < vs.size(); ++i) {
      const std::string vp = StrCat(path, ".variants[", i, "]");
      WHISPERER_RETURN_IF_ERROR(r.Map(vs[i], vp, {"id", "content"}));
      ActionConfig::Variant v;
      WHISPERER_RETURN_IF_ERROR(EntryId(r, r.file(), vs[i], vp, "variant", &variant_ids, &v.id));
      WHISPERER_RETURN_IF_ERROR(r.String(vs[i]["content"], vp + ".content", &v.content));
      a->variants.push_back(std::move(v));
    }
  }
  return absl::OkStatus();
}

absl::Status ParseDecisions(Reader& r, const YAML::Node& n, const std::string& path,
                            DecisionsConfig* d) {
  WHISPERER_RETURN_IF_ERROR(
      r.Map(n, path,
            {"environment", "exploration", "thresholds", "learning_rate", "control_group", "policy",
             "bandit", "rewards", "approvals", "contact_policy", "actions", "decision_points",
             "channels", "send_time"}));
  d->configured = true;
  WHISPERER_RETURN_IF_ERROR(r.String(n["environment"], path + ".environment", &d->environment));
  if (d->environment != "production" && d->environment != "staging" &&
      d->environment != "development") {
    return ConfigError(r.file(), n["environment"], path + ".environment",
                       "must be production, staging or development");
  }
  WHISPERER_RETURN_IF_ERROR(
      r.Number(n["exploration"], path + ".exploration", &d->exploration, 0, 1));
  if (const YAML::Node& c = n["channels"]) {
    const std::string cp = path + ".channels";
    WHISPERER_RETURN_IF_ERROR(r.Map(c, cp, {"choose", "prior_strength"}));
    d->channel_choice = true;
    if (c["choose"]) {
      WHISPERER_RETURN_IF_ERROR(r.Bool(c["choose"], cp + ".choose", &d->channel_choice));
    }
    WHISPERER_RETURN_IF_ERROR(r.Number(c["prior_strength"], cp + ".prior_strength",
                                       &d->channel_prior_strength, 0.01, 1e6));
  }
  if (const YAML::Node& t = n["send_time"]) {
    const std::string tp = path + ".send_time";
    WHISPERER_RETURN_IF_ERROR(
        r.Map(t, tp, {"exploration", "smoothing", "min_lead", "default_hour"}));
    d->send_time = true;
    WHISPERER_RETURN_IF_ERROR(
        r.Number(t["exploration"], tp + ".exploration", &d->send_exploration, 0, 1));
    WHISPERER_RETURN_IF_ERROR(
        r.Number(t["smoothing"], tp + ".smoothing", &d->send_smoothing, 0, 1e6));
    WHISPERER_RETURN_IF_ERROR(r.Duration(t["min_lead"], tp + ".min_lead", &d->send_min_lead_ms));
    WHISPERER_RETURN_IF_ERROR(
        r.Uint(t["default_hour"], tp + ".default_hour", &d->send_default_hour, 0, 23));
  }
  if (const YAML::Node& t = n["thresholds"]) {
    WHISPERER_RETURN_IF_ERROR(r.Map(t, path + ".thresholds", {"autonomous", "supervised"}));
    WHISPERER_RETURN_IF_ERROR(
        r.Number(t["autonomous"], path + ".thresholds.autonomous", &d->autonomous, 0, 1));
    WHISPERER_RETURN_IF_ERROR(
        r.Number(t["supervised"], path + ".thresholds.supervised", &d->supervised, 0, 1));
    // Either may be left at its default: the rule holds for the two in force.
    const double autonomous = d->autonomous >= 0 ? d->autonomous : kDefaultAutonomous;
    const double supervised = d->supervised >= 0 ? d->supervised : kDefaultSupervised;
    if (supervised > autonomous) {
      return ConfigError(
          r.file(), t, path + ".thresholds",
          StrCat("supervised (", supervised, d->supervised >= 0 ? "" : ", the default",
                 ") must not be above autonomous (", autonomous,
                 d->autonomous >= 0 ? "" : ", the default", ")"));
    }
  }
  WHISPERER_RETURN_IF_ERROR(
      r.Number(n["learning_rate"], path + ".learning_rate", &d->learning_rate, 1e-6, 10));
  WHISPERER_RETURN_IF_ERROR(
      r.Number(n["control_group"], path + ".control_group", &d->control_group, 0, 0.5));
  WHISPERER_RETURN_IF_ERROR(r.String(n["policy"], path + ".policy", &d->policy));
  if (d->policy != "thompson" && d->policy != "linucb" && d->policy != "epsilon_greedy" &&
      d->policy != "softmax") {
    return ConfigError(r.file(), n["policy"], path + ".policy",
                       "must be thompson, linucb, epsilon_greedy or softmax");
  }
  if (const YAML::Node& b = n["bandit"]) {
    const std::string bp = path + ".bandit";
    WHISPERER_RETURN_IF_ERROR(
        r.Map(b, bp, {"bits", "prior_variance", "noise", "ucb_alpha", "temperature"}));
    WHISPERER_RETURN_IF_ERROR(r.Uint(b["bits"], bp + ".bits", &d->bits, 10, 24));
    WHISPERER_RETURN_IF_ERROR(
        r.Number(b["prior_variance"], bp + ".prior_variance", &d->prior_variance, 1e-6, 100));
    WHISPERER_RETURN_IF_ERROR(r.Number(b["noise"], bp + ".noise", &d->noise, 1e-6, 100));
    WHISPERER_RETURN_IF_ERROR(r.Number(b["ucb_alpha"], bp + ".ucb_alpha", &d->ucb_alpha, 0, 100));
    WHISPERER_RETURN_IF_ERROR(
        r.Number(b["temperature"], bp + ".temperature", &d->temperature, 1e-4, 100));
  }
  if (const YAML::Node& rw = n["rewards"]) {
    const std::string rp = path + ".rewards";
    WHISPERER_RETURN_IF_ERROR(r.Map(rw, rp, {"aggregate", "outcomes", "negative", "goals"}));
    WHISPERER_RETURN_IF_ERROR(r.String(rw["aggregate"], rp + ".aggregate", &d->aggregate));
    if (d->aggregate != "first" && d->aggregate != "sum") {
      return ConfigError(r.file(), rw["aggregate"], rp + ".aggregate", "must be first or sum");
    }
    if (const YAML::Node& o = rw["outcomes"]) {
      WHISPERER_RETURN_IF_ERROR(r.OpenMap(o, rp + ".outcomes"));
      d->outcomes.clear();
      for (auto it = o.begin(); it != o.end(); ++it) {
        const std::string name = it->first.as<std::string>();
        const std::string op = StrCat(rp, ".outcomes.", name);
        if (!ValidIdName(name)) {
          return ConfigError(r.file(), it->first, op, "must be 1-64 letters, digits or _");
        }
        double v = 0;
        WHISPERER_RETURN_IF_ERROR(r.Number(it->second, op, &v, -1, 1));
        d->outcomes[name] = v;
      }
    }
    if (rw["negative"]) {
      d->negative_outcomes.clear();
      WHISPERER_RETURN_IF_ERROR(
          r.StringList(rw["negative"], rp + ".negative", &d->negative_outcomes));
      for (size_t i = 0; i < d->negative_outcomes.size(); ++i) {
        if (!d->outcomes.contains(d->negative_outcomes[i])) {
          return ConfigError(r.file(), rw["negative"][i], StrCat(rp, ".negative[", i, "]"),
                             "names no outcome of rewards.outcomes");
        }
      }
    } else {  // the default negatives the outcomes written still name
      std::erase_if(d->negative_outcomes,
                    [&](const std::string& name) { return !d->outcomes.contains(name); });
    }
    if (const YAML::Node& gs = rw["goals"]) {
      if (!gs.IsSequence()) return ConfigError(r.file(), gs, rp + ".goals", "must be a list");
      for (size_t i = 0; i < gs.size(); ++i) {
        const std::string gp = StrCat(rp, ".goals[", i, "]");
        WHISPERER_RETURN_IF_ERROR(
            r.Map(gs[i], gp, {"event", "outcome", "value", "within", "decision_points"}));
        GoalConfig g;
        WHISPERER_RETURN_IF_ERROR(r.String(gs[i]["event"], gp + ".event", &g.event));
        if (g.event.empty()) {
          return ConfigError(r.file(), gs[i], gp + ".event", "names the goal's track event");
        }
        WHISPERER_RETURN_IF_ERROR(r.String(gs[i]["outcome"], gp + ".outcome", &g.outcome));
        if (!g.outcome.empty()) {
          if (gs[i]["value"]) {
            return ConfigError(r.file(), gs[i]["value"], gp + ".value",
                               "give either outcome or value, not both");
          }
          auto it = d->outcomes.find(g.outcome);
          if (it == d->outcomes.end()) {
            return ConfigError(r.file(), gs[i]["outcome"], gp + ".outcome",
                               "names no outcome of rewards.outcomes");
          }
          g.value = it->second;
        }
        WHISPERER_RETURN_IF_ERROR(r.Number(gs[i]["value"], gp + ".value", &g.value, -1, 1));
        WHISPERER_RETURN_IF_ERROR(r.Duration(gs[i]["within"], gp + ".within", &g.within_ms));
        if (g.within_ms <= 0) {
          return ConfigError(r.file(), gs[i]["within"], gp + ".within", "must be positive");
        }
        WHISPERER_RETURN_IF_ERROR(
            r.StringList(gs[i]["decision_points"], gp + ".decision_points", &g.decision_points));
        d->goals.push_back(std::move(g));
      }
    }
  }
  if (const YAML::Node& cp = n["contact_policy"]) {
    const std::string p = path + ".contact_policy";
    WHISPERER_RETURN_IF_ERROR(r.Map(cp, p, {"channels"}));
    if (const YAML::Node& ch = cp["channels"]) {
      WHISPERER_RETURN_IF_ERROR(
          r.Map(ch, p + ".channels", {"email", "sms", "push", "in_app", "web", "phone"}));
      for (auto it = ch.begin(); it != ch.end(); ++it) {
        const std::string channel = it->first.as<std::string>();
        const std::string cp2 = StrCat(p, ".channels.", channel);
        DecisionsConfig::ChannelLimit limit;
        WHISPERER_RETURN_IF_ERROR(r.Map(it->second, cp2, {"max", "per"}));
        WHISPERER_RETURN_IF_ERROR(r.Uint(it->second["max"], cp2 + ".max", &limit.max, 1, 1000));
        WHISPERER_RETURN_IF_ERROR(r.Duration(it->second["per"], cp2 + ".per", &limit.per_ms));
        if (limit.max == 0 || limit.per_ms < 60'000) {
          return ConfigError(r.file(), it->second, cp2,
                             "needs max (1 to 1000) and per (a duration of at least 1m)");
        }
        d->channel_limits[channel] = limit;
      }
    }
  }
  if (const YAML::Node& ap = n["approvals"]) {
    const std::string p = path + ".approvals";
    WHISPERER_RETURN_IF_ERROR(r.Map(ap, p, {"expire_after", "feedback", "templates"}));
    WHISPERER_RETURN_IF_ERROR(
        r.Duration(ap["expire_after"], p + ".expire_after", &d->approval_expiry_ms));
    if (d->approval_expiry_ms < 1000) {
      return ConfigError(r.file(), ap["expire_after"], p + ".expire_after", "must be at least 1s");
    }
    if (const YAML::Node& f = ap["feedback"]) {
      WHISPERER_RETURN_IF_ERROR(r.Map(f, p + ".feedback", {"approve", "reject"}));
      WHISPERER_RETURN_IF_ERROR(
          r.Number(f["approve"], p + ".feedback.approve", &d->approve_reward, -1, 1));
      WHISPERER_RETURN_IF_ERROR(
          r.Number(f["reject"], p + ".feedback.reject", &d->reject_reward, -1, 1));
    }
    if (const YAML::Node& t = ap["templates"]) {
      const std::string tp = p + ".templates";
      WHISPERER_RETURN_IF_ERROR(
          r.Map(t, tp, {"offer", "content", "message", "urgency", "webhook"}));
      for (auto it = t.begin(); it != t.end(); ++it) {
        const std::string kind = it->first.as<std::string>();
        std::vector<std::string> fields;
        WHISPERER_RETURN_IF_ERROR(r.StringList(it->second, StrCat(tp, ".", kind), &fields));
        for (size_t i = 0; i < fields.size(); ++i) {
          static const std::set<std::string, std::less<>> kKnown = {
              "action",      "treatment", "priority", "confidence",
              "explanation", "cost",      "issue",    "group"};
          if (!kKnown.contains(fields[i])) {
            return ConfigError(r.file(), it->second[i], StrCat(tp, ".", kind, "[", i, "]"),
                               "must be action, treatment, priority, confidence, explanation, "
                               "cost, issue or group");
          }
        }
        d->review_templates[kind] = std::move(fields);
      }
    }
  }
  std::set<std::string> action_ids;
  if (const YAML::Node& as = n["actions"]) {
    if (!as.IsSequence()) return ConfigError(r.file(), as, path + ".actions", "must be a list");
    for (size_t i = 0; i < as.size(); ++i) {
      ActionConfig a;
      WHISPERER_RETURN_IF_ERROR(
          ParseAction(r, as[i], StrCat(path, ".actions[", i, "]"), &action_ids, &a));
      d->actions.push_back(std::move(a));
    }
  }
  std::set<std::string> point_ids, action_issues, action_groups;
  for (const ActionConfig& a : d->actions) {
    action_issues.insert(a.issue);
    action_groups.insert(a.group);
  }
  if (const YAML::Node& ps = n["decision_points"]) {
    if (!ps.IsSequence()) {
      return ConfigError(r.file(), ps, path + ".decision_points", "must be a list");
    }
    for (size_t i = 0; i < ps.size(); ++i) {
      const std::string pp = StrCat(path, ".decision_points[", i, "]");
      WHISPERER_RETURN_IF_ERROR(r.Map(ps[i], pp,
                                      {"id", "actions", "issues", "groups", "slots", "fallback",
                                       "reward_wait", "default_reward"}));
      DecisionPointConfig p;
      WHISPERER_RETURN_IF_ERROR(
          EntryId(r, r.file(), ps[i], pp, "decision point", &point_ids, &p.id));
      WHISPERER_RETURN_IF_ERROR(r.StringList(ps[i]["actions"], pp + ".actions", &p.actions));
      WHISPERER_RETURN_IF_ERROR(r.StringList(ps[i]["issues"], pp + ".issues", &p.issues));
      WHISPERER_RETURN_IF_ERROR(r.StringList(ps[i]["groups"], pp + ".groups", &p.groups));
      WHISPERER_RETURN_IF_ERROR(r.Uint(ps[i]["slots"], pp + ".slots", &p.slots, 1, 20));
      WHISPERER_RETURN_IF_ERROR(r.String(ps[i]["fallback"], pp + ".fallback", &p.fallback));
      WHISPERER_RETURN_IF_ERROR(
          r.Duration(ps[i]["reward_wait"], pp + ".reward_wait", &p.reward_wait_ms));
      if (ps[i]["reward_wait"] && p.reward_wait_ms == 0) {  // 0 is the default's "never"
        return ConfigError(r.file(), ps[i]["reward_wait"], pp + ".reward_wait",
                           "must be above 0; leave it out for no default reward");
      }
      WHISPERER_RETURN_IF_ERROR(
          r.Number(ps[i]["default_reward"], pp + ".default_reward", &p.default_reward, -1, 1));
      if (!p.fallback.empty() && !action_ids.contains(p.fallback)) {
        return ConfigError(r.file(), ps[i]["fallback"], pp + ".fallback",
                           "names no action of this workspace");
      }
      for (size_t k = 0; k < p.actions.size(); ++k) {
        if (!action_ids.contains(p.actions[k])) {
          return ConfigError(r.file(), ps[i]["actions"][k], StrCat(pp, ".actions[", k, "]"),
                             "names no action of this workspace");
        }
      }
      // An issue or group no action has is a typo: the point would silently draw from the
      // others only.
      for (const auto& [key, what, names, known] :
           {std::tuple{"issues", "issue", &p.issues, &action_issues},
            std::tuple{"groups", "group", &p.groups, &action_groups}}) {
        for (size_t k = 0; k < names->size(); ++k) {
          if (!known->contains((*names)[k])) {
            return ConfigError(
                r.file(), ps[i][key][k], StrCat(pp, ".", key, "[", k, "]"),
                StrCat("no action of this workspace has the ", what, " `", (*names)[k], "`"));
          }
        }
      }
      if (p.actions.empty() && p.issues.empty() && p.groups.empty()) {
        return ConfigError(r.file(), ps[i], pp,
                           "a decision point needs its candidates: actions, issues or groups");
      }
      p.ref = RefOf(r.file(), ps[i], pp);
      d->points.push_back(std::move(p));
    }
  }
  for (size_t i = 0; i < d->goals.size(); ++i) {
    for (size_t k = 0; k < d->goals[i].decision_points.size(); ++k) {
      if (!point_ids.contains(d->goals[i].decision_points[k])) {
        return ConfigError(r.file(), n["rewards"]["goals"][i]["decision_points"][k],
                           StrCat(path, ".rewards.goals[", i, "].decision_points[", k, "]"),
                           "names no decision point of this workspace");
      }
    }
  }
  return absl::OkStatus();
}

// `identity`, `sessions` and `consent` of one workspace.
absl::Status ParseWorkspaceProfiles(Reader& r, std::string_view file, const YAML::Node& node,
                                    const std::string& path, WorkspaceConfig* ws) {
  if (YAML::Node id = node["identity"]) {
    std::string p = path + ".identity";
    WHISPERER_RETURN_IF_ERROR(r.Map(
        id, p,
        {"blocked_values", "limits", "max_identifiers", "max_merges", "priority", "external_ids"}));
    WHISPERER_RETURN_IF_ERROR(
        r.StringList(id["external_ids"], p + ".external_ids", &ws->identity.external_ids));
    static const std::set<std::string, std::less<>> kBuiltIn = {"userId", "anonymousId", "email",
                                                                "phone"};
    for (size_t i = 0; i < ws->identity.external_ids.size(); ++i) {
      const std::string& name = ws->identity.external_ids[i];
      if (!ValidIdName(name) || kBuiltIn.count(name)) {
        return ConfigError(file, id["external_ids"][i], StrCat(p, ".external_ids[", i, "]"),
                           "must be 1-64 letters, digits or _, and not a built-in identifier");
      }
    }
    auto known = [&](std::string_view type) {
      return kBuiltIn.count(type) > 0 ||
             std::find(ws->identity.external_ids.begin(), ws->identity.external_ids.end(), type) !=
                 ws->identity.external_ids.end();
    };
    const std::string kTypes = "userId, anonymousId, email, phone or a name in external_ids";
    if (YAML::Node b = id["blocked_values"]) {
      if (!b.IsSequence()) return ConfigError(file, b, p + ".blocked_values", "must be a list");
      std::vector<std::string> values;
      for (size_t i = 0; i < b.size(); ++i) {
        const std::string at = StrCat(p, ".blocked_values[", i, "]");
        if (!b[i].IsScalar()) return ConfigError(file, b[i], at, "must be a string");
        // Compared case-insensitively, so "Test" and "test" are one value.
        for (const std::string& earlier : values) {
          if (absl::EqualsIgnoreCase(earlier, b[i].Scalar())) {
            return ConfigError(file, b[i], at, StrCat("'", b[i].Scalar(), "' is listed twice"));
          }
        }
        values.push_back(b[i].Scalar());
      }
      ws->identity.blocked_values = std::move(values);
    }
    if (YAML::Node pr = id["priority"]) {
      std::vector<std::string> priority;
      WHISPERER_RETURN_IF_ERROR(r.StringList(pr, p + ".priority", &priority));
      for (size_t i = 0; i < priority.size(); ++i) {
        if (!known(priority[i])) {
          return ConfigError(file, pr[i], StrCat(p, ".priority[", i, "]"),
                             StrCat("unknown identifier type; expected ", kTypes));
        }
      }
      ws->identity.priority = std::move(priority);
    }
    if (YAML::Node l = id["limits"]) {
      WHISPERER_RETURN_IF_ERROR(r.OpenMap(l, p + ".limits"));
      std::map<std::string, size_t> limits;
      for (auto it = l.begin(); it != l.end(); ++it) {
        std::string type = it->first.as<std::string>();
        std::string lp = StrCat(p, ".limits.", type);
        if (!known(type)) {
          return ConfigError(file, it->first, lp,
                             StrCat("unknown identifier type; expected ", kTypes));
        }
        size_t limit = 0;
        WHISPERER_RETURN_IF_ERROR(r.Uint(it->second, lp, &limit, 1, 1000));
        limits[type] = limit;
      }
      ws->identity.limits = std::move(limits);
    }
    for (auto [key, out] : {std::pair{"max_identifiers", &ws->identity.max_identifiers},
                            std::pair{"max_merges", &ws->identity.max_merges}}) {
      if (YAML::Node m = id[key]) {
        size_t max = 0;
        WHISPERER_RETURN_IF_ERROR(r.Uint(m, StrCat(p, ".", key), &max, 1, 100'000));
        *out = max;
      }
    }
  }
  if (YAML::Node s = node["sessions"]) {
    WHISPERER_RETURN_IF_ERROR(r.Map(s, path + ".sessions", {"timeout"}));
    WHISPERER_RETURN_IF_ERROR(
        r.Duration(s["timeout"], path + ".sessions.timeout", &ws->session_timeout_ms));
    if (ws->session_timeout_ms < 1000) {
      return ConfigError(file, s["timeout"], path + ".sessions.timeout", "must be at least 1s");
    }
  }
  if (YAML::Node c = node["consent"]) {
    WHISPERER_RETURN_IF_ERROR(r.Map(c, path + ".consent", {"purposes", "categories"}));
    WHISPERER_RETURN_IF_ERROR(
        r.StringList(c["purposes"], path + ".consent.purposes", &ws->consent_purposes));
    for (size_t i = 0; i < ws->consent_purposes.size(); ++i) {
      if (!ValidIdName(ws->consent_purposes[i])) {
        return ConfigError(file, c["purposes"][i], StrCat(path, ".consent.purposes[", i, "]"),
                           "must be 1-64 letters, digits or _");
      }
    }
    if (YAML::Node cats = c["categories"]) {
      const std::string cp = path + ".consent.categories";
      WHISPERER_RETURN_IF_ERROR(r.OpenMap(cats, cp));
      for (auto it = cats.begin(); it != cats.end(); ++it) {
        WorkspaceConfig::ConsentCategory cat;
        cat.name = it->first.as<std::string>();
        const std::string at = StrCat(cp, ".", cat.name);
        if (cat.name.empty() || cat.name.size() > 128) {
          return ConfigError(file, it->first, at, "a category name must be 1-128 characters");
        }
        WHISPERER_RETURN_IF_ERROR(r.StringList(it->second, at, &cat.purposes));
        if (cat.purposes.empty()) {
          return ConfigError(file, it->second, at, "must list at least one purpose");
        }
        cat.ref = RefOf(file, it->second, at);
        ws->consent_categories.push_back(std::move(cat));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ActionConfig> ParseActionJson(std::string_view json, std::string_view id) {
  // The body is JSON, which is YAML: the config's own reader checks it, and its errors are
  // turned into the API's (the key path within the action, without the file and line).
  auto invalid = [](std::string_view field, std::string_view message) {
    return MakeError(absl::StatusCode::kInvalidArgument, "invalid_action", message,
                     std::string(field));
  };
  // JSON first: the YAML reader would also take comments, unquoted keys, anchors or text after
  // the object, none of which is JSON.
  {
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    // Surrogate escapes as events take them: a lone one is U+FFFD.
    std::string checked;
    RewriteSurrogateEscapes(json, /*pairs_as_yaml=*/false, &checked);
    if (const simdjson::error_code e = parser.parse(checked).get(doc); e) {
      return MakeError(
          absl::StatusCode::kInvalidArgument,
          e == simdjson::UTF8_ERROR ? "invalid_utf8" : "malformed_json",
          StrCat("the body must be a JSON object (an action): ", simdjson::error_message(e)));
    }
    // As every JSON body: JSON that is no object is of the wrong type.
    if (!doc.is_object()) {
      return InvalidInput("wrong_type", "the body must be a JSON object (an action)");
    }
  }
  YAML::Node node;
  try {
    // YAML takes an emoji's surrogate pair as \U (Python's json.dumps writes emoji as pairs).
    std::string yaml;
    RewriteSurrogateEscapes(json, /*pairs_as_yaml=*/true, &yaml);
    node = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    return MakeError(absl::StatusCode::kInvalidArgument, "malformed_json",
                     "the body must be a JSON object (an action)");
  }
  if (!node.IsMap()) return invalid("", "the body must be a JSON object (an action)");
  if (node["id"]) {
    if (!node["id"].IsScalar() || node["id"].Scalar() != id) {
      return invalid("id", StrCat("id must be the action's id in the path, '", id, "'"));
    }
  } else {
    node["id"] = std::string(id);
    node["id"].SetTag("!");  // a string, as if it had been sent quoted
  }
  // `source` is what GET adds (config or api): an action read, changed and sent back keeps it.
  node.remove("source");
  constexpr std::string_view kRoot = "action";
  Reader r("body", /*json=*/true);
  std::set<std::string> ids;
  ActionConfig a;
  absl::Status s = ParseAction(r, node, std::string(kRoot), &ids, &a);
  if (s.ok()) return a;
  return ActionErrorOf(s);
}

absl::Status ActionErrorOf(const absl::Status& config_error) {
  // The field is the key path from the action ("action.treatments[0].channel"), maybe after
  // where it was written ("body:1: action.eligibility"); the message holds "PATH: REASON".
  std::string path = ErrorFieldOf(config_error);
  const std::string message(ToStd(config_error.message()));
  if (const size_t root = path.find("action"); root != std::string::npos) {
    path = path.substr(root);
  }
  const size_t at = message.find(StrCat(path, ": "));
  const std::string reason =
      at == std::string::npos ? message : message.substr(at + path.size() + 2);
  const std::string field = path.rfind("action.", 0) == 0 ? path.substr(7) : "";
  return MakeError(absl::StatusCode::kInvalidArgument, "invalid_action",
                   field.empty() ? reason : StrCat(field, ": ", reason), field);
}

std::string ActionJson(const ActionConfig& a) {
  std::string out;
  JsonWriter w(&out);
  w.StartObject();
  w.Key("id");
  w.String(a.id);
  w.Key("issue");
  w.String(a.issue);
  w.Key("group");
  w.String(a.group);
  w.Key("kind");
  w.String(a.kind);
  w.Key("value");
  w.Double(a.value);
  w.Key("cost");
  w.Double(a.cost);
  w.Key("lever");
  w.Double(a.lever);
  if (!a.consent.empty()) {
    w.Key("consent");
    w.String(a.consent);
  }
  if (a.valid_from_ms != 0 || a.valid_until_ms != 0) {
    w.Key("valid");
    w.StartObject();
    if (a.valid_from_ms != 0) {
      w.Key("from");
      w.String(FormatIso8601(a.valid_from_ms));
    }
    if (a.valid_until_ms != 0) {
      w.Key("until");
      w.String(FormatIso8601(a.valid_until_ms));
    }
    w.EndObject();
  }
  for (const auto& [key, condition] :
       {std::pair{"eligibility", &a.eligibility}, std::pair{"applicability", &a.applicability},
        std::pair{"suitability", &a.suitability}}) {
    if (condition->empty()) continue;
    w.Key(key);
    w.String(*condition);
  }
  if (!a.weights.empty()) {
    w.Key("weights");
    w.StartArray();
    for (const ActionConfig::Weight& x : a.weights) {
      w.StartObject();
      w.Key("when");
      w.String(x.when);
      w.Key("weight");
      w.Double(x.weight);
      w.EndObject();
    }
    w.EndArray();
  }
  if (a.contact_max > 0) {
    w.Key("contact");
    w.StartObject();
    w.Key("max");
    w.Int(a.contact_max);
    w.Key("per");
    w.String(FormatDurationMillis(a.contact_per_ms));
    w.EndObject();
  }
  if (a.suppress_negatives > 0) {
    w.Key("suppress_after");
    w.StartObject();
    w.Key("negatives");
    w.Int(a.suppress_negatives);
    w.Key("within");
    w.String(FormatDurationMillis(a.suppress_within_ms));
    w.EndObject();
  }
  if (a.budget_per_day > 0 || a.budget_total_spend > 0) {
    w.Key("budget");
    w.StartObject();
    if (a.budget_per_day > 0) {
      w.Key("per_day");
      w.Int(a.budget_per_day);
    }
    if (a.budget_total_spend > 0) {
      w.Key("total_spend");
      w.Double(a.budget_total_spend);
    }
    w.EndObject();
  }
  w.Key("treatments");
  w.StartArray();
  for (const ActionConfig::Treatment& t : a.treatments) {
    w.StartObject();
    w.Key("id");
    w.String(t.id);
    w.Key("channel");
    w.String(t.channel);
    w.EndObject();
  }
  w.EndArray();
  if (!a.variants.empty()) {
    w.Key("variants");
    w.StartArray();
    for (const ActionConfig::Variant& v : a.variants) {
      w.StartObject();
      w.Key("id");
      w.String(v.id);
      w.Key("content");
      w.String(v.content);
      w.EndObject();
    }
    w.EndArray();
  }
  w.EndObject();
  return out;
}

absl::StatusOr<Config> ParseConfig(std::string_view yaml, std::string_view filename) {
  YAML::Node root;
  try {
    // One document: a second one (after `---`) would be ignored by Load, and with it every
    // setting the user wrote there.
    std::vector<YAML::Node> documents = YAML::LoadAll(std::string(yaml));
    if (documents.size() > 1) {
      return MakeError(absl::StatusCode::kInvalidArgument, "invalid_config",
                       StrCat(filename, ":", documents[1].Mark().line + 1,
                              ": a second YAML document; the config is one document"));
    }
    if (!documents.empty()) root = documents.front();
  } catch (const YAML::DeepRecursion& e) {  // yaml-cpp's own message is "bad file"
    return ConfigErrorAt(
        filename, e.mark.line + 1, "(nesting)",
        StrCat("nests deeper than ", e.depth() - 1, " levels, which no setting does"));
  } catch (const YAML::Exception& e) {
    return MakeError(absl::StatusCode::kInvalidArgument, "invalid_config",
                     OneLine(StrCat(filename, ":", e.mark.line + 1, ": ", e.msg), 4096));
  }
  Config c;
  if (root.IsNull()) return c;  // an empty file means all defaults
  WHISPERER_RETURN_IF_ERROR(TreeCheck(filename, yaml).Check(root, ""));
  Reader r(filename);
  WHISPERER_RETURN_IF_ERROR(r.Map(root, "", {"server", "storage", "ingest", "log", "workspaces"}));

  if (YAML::Node n = root["server"]) {
    WHISPERER_RETURN_IF_ERROR(r.Map(
        n, "server",
        {"host", "port", "threads", "read_timeout", "shutdown_timeout", "trust_forwarded_for"}));
    WHISPERER_RETURN_IF_ERROR(r.String(n["host"], "server.host", &c.server.host));
    r.Origin(n["host"], "server.host", &c);
    r.Origin(n["read_timeout"], "server.read_timeout", &c);
    WHISPERER_RETURN_IF_ERROR(r.Uint(n["port"], "server.port", &c.server.port, 0, 65535));
    WHISPERER_RETURN_IF_ERROR(r.Uint(n["threads"], "server.threads", &c.server.threads, 0, 1024));
    WHISPERER_RETURN_IF_ERROR(
        r.Duration(n["read_timeout"], "server.read_timeout", &c.server.read_timeout_ms));
    WHISPERER_RETURN_IF_ERROR(r.Duration(n["shutdown_timeout"], "server.shutdown_timeout",
                                         &c.server.shutdown_timeout_ms));
    WHISPERER_RETURN_IF_ERROR(r.Bool(n["trust_forwarded_for"], "server.trust_forwarded_for",
                                     &c.server.trust_forwarded_for));
  }
  if (YAML::Node n = root["storage"]) {
    WHISPERER_RETURN_IF_ERROR(
        r.Map(n, "storage", {"path", "sync", "background_priority", "min_free_mb"}));
    WHISPERER_RETURN_IF_ERROR(r.String(n["path"], "storage.path", &c.storage.path));
    r.Origin(n["path"], "storage.path", &c);
    WHISPERER_RETURN_IF_ERROR(r.Bool(n["sync"], "storage.sync", &c.storage.sync));
    WHISPERER_RETURN_IF_ERROR(r.String(n["background_priority"], "storage.background_priority",
                                       &c.storage.background_priority));
    if (!KnownBackgroundPriority(c.storage.background_priority)) {
      return ConfigError(filename, n["background_priority"], "storage.background_priority",
                         kBackgroundPriorities);
    }
    WHISPERER_RETURN_IF_ERROR(r.Uint(n["min_free_mb"], "storage.min_free_mb",
                                     &c.storage.min_free_mb, 0, uint64_t{1} << 30));
  }
  if (YAML::Node n = root["ingest"]) {
    WHISPERER_RETURN_IF_ERROR(
        r.Map(n, "ingest",
              {"dedupe_window", "max_event_bytes", "max_request_bytes", "max_batch_events",
               "shards", "max_queued_events", "profiles", "profile_cache_mb"}));
    WHISPERER_RETURN_IF_ERROR(
        r.Duration(n["dedupe_window"], "ingest.dedupe_window", &c.ingest.dedupe_window_ms));
    WHISPERER_RETURN_IF_ERROR(r.Uint(n["max_event_bytes"], "ingest.max_event_bytes",
                                     &c.ingest.max_event_bytes, 256, 16 << 20));
    WHISPERER_RETURN_IF_ERROR(r.Uint(n["max_request_bytes"], "ingest.max_request_bytes",
                                     &c.ingest.max_request_bytes, 1024, 256 << 20));
    WHISPERER_RETURN_IF_ERROR(r.Uint(n["max_batch_events"], "ingest.max_batch_events",
                                     &c.ingest.max_batch_events, 1, 1'000'000));
    WHISPERER_RETURN_IF_ERROR(r.Uint(n["shards"], "ingest.shards", &c.ingest.shards, 0, 256));
    WHISPERER_RETURN_IF_ERROR(r.Uint(n["max_queued_events"], "ingest.max_queued_events",
                                     &c.ingest.max_queued_events, 1, 100'000'000));
    WHISPERER_RETURN_IF_ERROR(r.Bool(n["profiles"], "ingest.profiles", &c.ingest.profiles));
    WHISPERER_RETURN_IF_ERROR(r.Uint(n["profile_cache_mb"], "ingest.profile_cache_mb",
                                     &c.ingest.profile_cache_mb, 1, 1 << 20));
  }
  if (YAML::Node n = root["log"]) {
    WHISPERER_RETURN_IF_ERROR(r.Map(n, "log", {"level", "format"}));
    WHISPERER_RETURN_IF_ERROR(r.String(n["level"], "log.level", &c.log.level));
    WHISPERER_RETURN_IF_ERROR(r.String(n["format"], "log.format", &c.log.format));
    static const std::set<std::string> kLevels = {"trace", "debug", "info", "warn", "error", "off"};
    if (!kLevels.count(c.log.level)) {
      return ConfigError(filename, n["level"], "log.level",
                         "must be one of trace, debug, info, warn, error, off");
    }
    if (c.log.format != "json" && c.log.format != "text") {
      return ConfigError(filename, n["format"], "log.format", "must be json or text");
    }
  }
  if (YAML::Node n = root["workspaces"]) {
    if (!n.IsSequence()) return ConfigError(filename, n, "workspaces", "must be a list");
    std::set<std::string> names;
    for (size_t i = 0; i < n.size(); ++i) {
      std::string path = StrCat("workspaces[", i, "]");
      WHISPERER_RETURN_IF_ERROR(
          r.Map(n[i], path,
                {"name", "write_keys", "admin_keys", "identity", "sessions", "consent", "journeys",
                 "personas", "adaptations", "triggers", "models", "decisions"}));
      WorkspaceConfig ws;
      WHISPERER_RETURN_IF_ERROR(r.String(n[i]["name"], path + ".name", &ws.name));
      if (ws.name.empty() || ws.name.size() > 64 ||
          ws.name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_-") !=
              std::string::npos) {
        return ConfigError(filename, n[i], path + ".name",
                           "must be 1-64 characters of a-z, 0-9, _ and -");
      }
      if (!names.insert(ws.name).second) {
        return ConfigError(filename, n[i], path + ".name", "names a workspace twice");
      }
      for (auto [kind, keys] :
           {std::pair{"write_keys", &ws.write_keys}, std::pair{"admin_keys", &ws.admin_keys}}) {
        const YAML::Node list = n[i][kind];
        WHISPERER_RETURN_IF_ERROR(r.StringList(list, StrCat(path, ".", kind), keys));
        for (size_t k = 0; k < keys->size(); ++k) {
          const std::string field = StrCat(path, ".", kind, "[", k, "]");
          if (!ValidKey((*keys)[k])) return ConfigError(filename, list[k], field, kBadKey);
          r.Origin(list[k], field, &c);  // Validate names it when another workspace has it
        }
      }
      WHISPERER_RETURN_IF_ERROR(ParseWorkspaceProfiles(r, filename, n[i], path, &ws));
      if (n[i]["journeys"]) {
        WHISPERER_RETURN_IF_ERROR(
            ParseJourneys(r, filename, n[i]["journeys"], path + ".journeys", &ws));
      }
      if (n[i]["personas"]) {
        WHISPERER_RETURN_IF_ERROR(
            ParsePersonas(r, filename, n[i]["personas"], path + ".personas", &ws));
      }
      if (n[i]["adaptations"]) {
        WHISPERER_RETURN_IF_ERROR(
            ParseAdaptations(r, filename, n[i]["adaptations"], path + ".adaptations", &ws));
      }
      if (n[i]["triggers"]) {
        WHISPERER_RETURN_IF_ERROR(
            ParseTriggers(r, n[i]["triggers"], path + ".triggers", &ws.triggers));
      }
      if (n[i]["models"]) {
        WHISPERER_RETURN_IF_ERROR(ParseModels(r, n[i]["models"], path + ".models", &ws.models));
      }
      if (n[i]["decisions"]) {
        WHISPERER_RETURN_IF_ERROR(
            ParseDecisions(r, n[i]["decisions"], path + ".decisions", &ws.decisions));
      }
      c.workspaces.push_back(std::move(ws));
    }
  }
  return c;
}

std::string SourceRef::Describe() const {
  if (file.empty()) return path;
  return StrCat(file, ":", line, ": ", path);
}

absl::StatusOr<Config> LoadConfigFile(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return MakeError(absl::StatusCode::kNotFound, "config_not_found",
                     StrCat("cannot read config file ", path, ": it is a directory"));
  }
  std::ifstream in(path);
  if (!in) {
    return MakeError(absl::StatusCode::kNotFound, "config_not_found",
                     StrCat("cannot read config file ", path));
  }
  // Read up to a bound: a config is kilobytes, and /dev/zero or a pipe that never ends must
  // not fill the memory.
  constexpr size_t kMaxConfigBytes = 16 << 20;
  std::string text(kMaxConfigBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxConfigBytes) {
    return MakeError(absl::StatusCode::kInvalidArgument, "invalid_config",
                     StrCat("config file ", path, " is over ", kMaxConfigBytes >> 20, " MiB"));
  }
  return ParseConfig(text, path);
}

absl::Status ApplyEnvironment(const Getenv& getenv, Config* c) {
  auto env_error = [](std::string_view name, std::string_view reason) {
    return MakeError(absl::StatusCode::kInvalidArgument, "invalid_config",
                     StrCat("environment variable ", name, ": ", reason), name);
  };
  auto set = [&](const char* name, std::string* field, const char* key) {
    if (const char* v = getenv(name)) {
      *field = v;
      c->origin[key] = StrCat("environment variable ", name);
    }
  };
  set("WHISPERER_HOST", &c->server.host, "server.host");
  if (const char* v = getenv("WHISPERER_PORT")) {
    std::string_view s(v);
    unsigned port = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), port);
    if (ec != std::errc() || ptr != s.data() + s.size() || port > 65535) {
      return env_error("WHISPERER_PORT", "must be a port number from 0 to 65535");
    }
    c->server.port = static_cast<uint16_t>(port);
  }
  set("WHISPERER_DATA", &c->storage.path, "storage.path");
  set("WHISPERER_LOG_LEVEL", &c->log.level, "log.level");
  set("WHISPERER_LOG_FORMAT", &c->log.format, "log.format");
  if (const char* v = getenv("WHISPERER_STORAGE_SYNC")) {
    std::string_view s(v);
    if (s == "true" || s == "1")
      c->storage.sync = true;
    else if (s == "false" || s == "0")
      c->storage.sync = false;
    else
      return env_error("WHISPERER_STORAGE_SYNC", "must be true or false");
  }
  const char* write_key = getenv("WHISPERER_WRITE_KEY");
  const char* admin_key = getenv("WHISPERER_ADMIN_KEY");
  if ((write_key && *write_key) || (admin_key && *admin_key)) {
    WorkspaceConfig* def = nullptr;
    for (auto& ws : c->workspaces) {
      if (ws.name == "default") def = &ws;
    }
    if (def == nullptr) {  // after the file's, which keep the indexes their errors name
      WorkspaceConfig ws;
      ws.name = "default";
      c->workspaces.push_back(std::move(ws));
      def = &c->workspaces.back();
    }
    if (write_key && *write_key) {
      def->write_keys = {write_key};
      def->write_keys_variable = "WHISPERER_WRITE_KEY";
    }
    if (admin_key && *admin_key) {
      def->admin_keys = {admin_key};
      def->admin_keys_variable = "WHISPERER_ADMIN_KEY";
    }
  }
  return absl::OkStatus();
}

absl::Status Validate(const Config& c) {
  auto error = [&c](std::string_view field, std::string_view reason) {
    auto where = c.origin.find(std::string(field));
    return MakeError(
        absl::StatusCode::kInvalidArgument, "invalid_config",
        StrCat(where == c.origin.end() ? "" : StrCat(where->second, ": "), field, ": ", reason),
        field);
  };
  if (c.storage.path.empty()) return error("storage.path", "may not be empty");
  if (!KnownBackgroundPriority(c.storage.background_priority)) {
    return error("storage.background_priority", kBackgroundPriorities);
  }
  if (c.ingest.max_event_bytes > c.ingest.max_request_bytes) {
    return error("ingest.max_event_bytes", "may not be larger than ingest.max_request_bytes");
  }
  if (c.log.level != "trace" && c.log.level != "debug" && c.log.level != "info" &&
      c.log.level != "warn" && c.log.level != "error" && c.log.level != "off") {
    return error("log.level", "must be one of trace, debug, info, warn, error, off");
  }
  if (c.log.format != "json" && c.log.format != "text") {
    return error("log.format", "must be json or text");
  }
  if (c.server.read_timeout_ms <= 0) return error("server.read_timeout", "must be positive");
  // The address to listen on, as the server binds it (no name lookup): checked before the data
  // directory is opened.
  in6_addr scratch;
  if (inet_pton(AF_INET, c.server.host.c_str(), &scratch) != 1 &&
      inet_pton(AF_INET6, c.server.host.c_str(), &scratch) != 1) {
    return error("server.host",
                 StrCat("'", c.server.host, "' is not an IP address (such as 127.0.0.1 or ::1)"));
  }
  if (c.ingest.max_queued_events < c.ingest.max_batch_events) {
    return error("ingest.max_queued_events",
                 StrCat("must be at least ingest.max_batch_events (", c.ingest.max_batch_events,
                        "): a batch that cannot be queued whole would be refused at every retry"));
  }
  // Keys: checked here, before anything is opened. HTTP Basic sends a key as `key:` (its
  // password empty) and a header's value is trimmed, so a key with a colon or a blank in it
  // could only be sent as a Bearer token or in the body.
  std::map<std::string_view, std::string_view> owner;  // key -> its workspace
  for (size_t i = 0; i < c.workspaces.size(); ++i) {
    const WorkspaceConfig& ws = c.workspaces[i];
    struct Keys {
      std::string_view kind;
      const std::vector<std::string>* list;
      const std::string* variable;
    };
    for (const Keys& keys : {Keys{"write_keys", &ws.write_keys, &ws.write_keys_variable},
                             Keys{"admin_keys", &ws.admin_keys, &ws.admin_keys_variable}}) {
      for (size_t k = 0; k < keys.list->size(); ++k) {
        const std::string& key = (*keys.list)[k];
        // Named where it was set: the file's line (Config::origin), or the variable, as the
        // environment's other errors name it.
        auto fail = [&](std::string_view reason) {
          if (keys.variable->empty()) {
            return error(StrCat("workspaces[", i, "].", keys.kind, "[", k, "]"), reason);
          }
          return MakeError(absl::StatusCode::kInvalidArgument, "invalid_config",
                           StrCat("environment variable ", *keys.variable, ": ", reason),
                           *keys.variable);
        };
        if (!ValidKey(key)) return fail(kBadKey);
        if (auto [it, added] = owner.emplace(key, ws.name); !added) {
          return fail(StrCat("is already a key of workspace '", it->second,
                             "': a key belongs to one workspace, once"));
        }
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace whisperer::config
