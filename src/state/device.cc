#include "state/device.h"

#include <algorithm>
#include <array>
#include <mutex>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "common/status.h"
#include "common/strings.h"
#include "re2/filtered_re2.h"
#include "re2/re2.h"
#include "re2/set.h"
#include "yaml-cpp/yaml.h"

namespace whisperer {
// uap-core's regexes.yaml, compiled in by cmake/embed_file.cmake (see src/CMakeLists.txt).
extern const std::string_view kUapRegexes;
}  // namespace whisperer

namespace whisperer::state {
namespace {

// uap-core's replacements may name groups $1..$9.
constexpr int kMaxGroups = 9;

// Every regex is compiled as Latin-1: uap-core's patterns are ASCII, so this matches the same
// ASCII strings as UTF-8 would, costs far fewer instructions per `.` (uap-core bounds most
// repeats, as in `.{0,200}`), and takes any bytes. RE2's \d, \s and \w are ASCII in both modes.
RE2::Options RuleOptions(bool case_insensitive) {
  RE2::Options o;
  o.set_encoding(RE2::Options::EncodingLatin1);
  o.set_case_sensitive(!case_insensitive);
  o.set_log_errors(false);
  return o;
}

// Atoms shorter than this are not used to filter rules: a rule whose only literals are shorter
// is always a candidate. 2 measured slightly faster than RE2's default of 3 on uap-core's tests.
constexpr int kMinAtomLength = 2;

// The atoms set is a set of literals, so its DFA stays small (at most one state per prefix of
// an atom); this cap is RE2's default, stated because the set depends on it.
constexpr int64_t kAtomSetMaxMem = int64_t{8} << 20;

absl::Status UapError(std::string_view message, int line = -1) {
  return MakeError(absl::StatusCode::kInvalidArgument, "invalid_uap_regexes",
                   line >= 0 ? StrCat("uap regexes: line ", line + 1, ": ", message)
                             : StrCat("uap regexes: ", message));
}

// The parts of uap-core's result one section sets, each from a `*_replacement` when the rule has
// one, else from a capture group (0: none).
struct FieldSpec {
  const char* replacement_key;
  int default_group;
};

struct SectionSpec {
  const char* name;
  std::array<FieldSpec, 3> fields;
};

// Field order per section: user agent (family, major), os (family, major), device (family,
// brand, model). Minor and patch versions are not kept, so their replacements are ignored.
constexpr SectionSpec kUserAgentSpec{
    "user_agent_parsers", {{{"family_replacement", 1}, {"v1_replacement", 2}, {nullptr, 0}}}};
constexpr SectionSpec kOsSpec{"os_parsers",
                              {{{"os_replacement", 1}, {"os_v1_replacement", 2}, {nullptr, 0}}}};
constexpr SectionSpec kDeviceSpec{
    "device_parsers",
    {{{"device_replacement", 1}, {"brand_replacement", 0}, {"model_replacement", 1}}}};

std::string Trimmed(std::string_view s) { return std::string(StripWhitespace(s)); }

std::string_view View(const re2::StringPiece& p) { return {p.data(), p.size()}; }

// `replacement` with $1..$9 replaced by those groups ("" for a group that did not take part or
// does not exist), trimmed.
std::string Substitute(std::string_view replacement, const re2::StringPiece* groups,
                       int group_count) {
  std::string out;
  for (size_t i = 0; i < replacement.size(); ++i) {
    char c = replacement[i];
    if (c == '$' && i + 1 < replacement.size() && replacement[i + 1] >= '1' &&
        replacement[i + 1] <= '9') {
      int g = replacement[i + 1] - '0';
      if (g <= group_count && groups[g].data() != nullptr) out.append(View(groups[g]));
      ++i;
    } else {
      out.push_back(c);
    }
  }
  return Trimmed(out);
}

// Whether a uap-core family name ends in "bot", in any case ("Applebot", "PetalBot").
bool EndsWithBot(std::string_view family) {
  if (family.size() < 3) return false;
  std::string_view end = family.substr(family.size() - 3);
  return (end[0] | 0x20) == 'b' && (end[1] | 0x20) == 'o' && (end[2] | 0x20) == 't';
}

// Whole-word markers of automated clients uap-core does not already call "Spider"; see the
// header. RE2's \b is ASCII, so "Cubot" has no word boundary before "bot". HTTP libraries and
// command-line tools are deliberately absent: server-side SDKs (the RudderStack node client
// sends with axios) report real customers' events through them.
constexpr std::string_view kBotMarkers =
    R"(\b(?:bot|crawler|spider|scraper|headlesschrome|phantomjs|)"
    R"(chrome-lighthouse|lighthouse|puppeteer|playwright|selenium|webdriver|)"
    R"(mediapartners-google|google-inspectiontool|prerender)\b)";
// A user agent that is nothing but an HTTP library's or command-line tool's product token:
// uap-core calls some of them crawlers ("Python-urllib/3.11" and "Java/17" are Spiders) or phones
// ("libwww-perl" a feature phone), but server-side code sends real customers' events through
// them, so they are rule 7's kUnknown (device.h). With more after the token (a comment naming a
// crawler, say), uap-core's verdict stands.
constexpr std::string_view kHttpLibraries =
    R"(^(?:python-urllib|python-requests|python-httpx|aiohttp|java|apache-httpclient|okhttp|)"
    R"(go-http-client|libwww-perl|lwp::simple|curl|wget|axios|node-fetch|undici|)"
    R"(ruby|faraday|guzzlehttp|php|dart|restsharp)/[^\s/]*$)";
constexpr std::string_view kTvMarkers =
    R"(smart-?tv|hbbtv|\bweb0s\b|netcast|\broku\b|xbox|playstation|nintendo|\bcrkey\b|)"
    R"(apple ?tv|google ?tv|android tv)";
constexpr std::string_view kTabletMarkers = R"(iPad|Kindle|Silk/|PlayBook)";
constexpr std::string_view kTabletDeviceFamilies = R"(^(?:iPad|Kindle)|Tablet|TouchPad)";
constexpr std::string_view kTvDeviceFamilies = R"(\bTV\b)";
constexpr std::string_view kTabletWord = R"(\bTablet\b)";

constexpr std::string_view kMobileOses[] = {"iOS",
                                            "Android",
                                            "Windows Phone",
                                            "Windows Mobile",
                                            "Windows CE",
                                            "BlackBerry OS",
                                            "Symbian OS",
                                            "Symbian^3",
                                            "Symbian^3 Anna",
                                            "Symbian^3 Belle",
                                            "Nokia Series 40",
                                            "Nokia Series 30 Plus",
                                            "KaiOS",
                                            "Firefox OS",
                                            "webOS",
                                            "Tizen",
                                            "Sailfish",
                                            "MeeGo",
                                            "Maemo",
                                            "Bada",
                                            "Brew MP",
                                            "BREW",
                                            "WatchOS"};
constexpr std::string_view kTabletOses[] = {"BlackBerry Tablet OS", "Kindle"};
constexpr std::string_view kDesktopOses[] = {
    "Mac OS X", "Mac OS",  "Chrome OS", "Linux",  "Ubuntu",     "Kubuntu", "Lubuntu",
    "Debian",   "Fedora",  "Red Hat",   "CentOS", "Arch Linux", "Gentoo",  "Slackware",
    "openSUSE", "SUSE",    "Mandriva",  "Mageia", "PCLinuxOS",  "Puppy",   "BackTrack",
    "Mint",     "FreeBSD", "OpenBSD",   "NetBSD", "BSD",        "Solaris", "SerenityOS"};
constexpr std::string_view kMobileDeviceFamilies[] = {"iPhone", "iPod", "Generic Smartphone",
                                                      "Generic Feature Phone"};

template <size_t N>
bool OneOf(std::string_view s, const std::string_view (&list)[N]) {
  return std::find(std::begin(list), std::end(list), s) != std::end(list);
}

bool Contains(std::string_view s, std::string_view part) {
  return s.find(part) != std::string_view::npos;
}

// The longest prefix of `s` of at most kMaxUserAgentBytes that does not end inside a UTF-8
// sequence, so captured groups stay valid UTF-8 when `s` is.
std::string_view Bounded(std::string_view s) {
  if (s.size() <= kMaxUserAgentBytes) return s;
  size_t n = kMaxUserAgentBytes;
  while (n > 0 && (static_cast<unsigned char>(s[n]) & 0xC0) == 0x80) --n;
  return s.substr(0, n);
}

}  // namespace

struct DeviceDetector::Rules {
  struct Rule {
    int groups = 0;                          // capture groups used, at most kMaxGroups
    std::array<std::string, 3> replacement;  // by the section's field order; "" when none
  };

  // One section's rules. Finding the first matching rule goes in three steps:
  //   1. `atoms`, one RE2::Set of the literals the rules require (FilteredRE2's atoms, matched
  //      case-insensitively), finds in one pass over the string which literals it contains;
  //   2. `filter` turns those into the rules that can match, and runs their regexes in file
  //      order until one matches (rules without a usable literal are always candidates);
  //   3. that rule's regex runs once more to extract the capture groups.
  // A single RE2::Set of the rules' own patterns would find the first rule in one pass too, but
  // uap-core bounds most repeats (`.{0,200}`), which makes that set's DFA states explode: on
  // uap-core's test strings it took 400-1000 us per new string and grew past 500 MB, where
  // steps 1 and 2 here take about 25 us.
  struct Section {
    const SectionSpec* spec = nullptr;
    std::vector<Rule> rules;  // in file order, without the skipped; index = id in `filter`
    std::unique_ptr<re2::FilteredRE2> filter = std::make_unique<re2::FilteredRE2>(kMinAtomLength);
    std::unique_ptr<RE2::Set> atoms;  // null when the rules have no atoms
    int atom_count = 0;

    // The index of the first rule (in file order) that matches anywhere in `text`, or -1.
    int FirstMatch(re2::StringPiece text) const {
      if (rules.empty()) return -1;
      std::vector<int> found;
      if (atoms != nullptr) {
        RE2::Set::ErrorInfo error;
        if (!atoms->Match(text, &found, &error) && error.kind != RE2::Set::kNoError) {
          // Out of DFA memory (not seen with uap-core's rules): assume every atom is present,
          // which gives the same answer more slowly.
          found.resize(atom_count);
          for (int i = 0; i < atom_count; ++i) found[i] = i;
        }
      }
      return filter->FirstMatch(text, found);
    }

    // The section's fields for `text`, or "" each when no rule matches.
    std::array<std::string, 3> Apply(re2::StringPiece text) const {
      std::array<std::string, 3> out;
      int id = FirstMatch(text);
      if (id < 0) return out;
      const Rule& rule = rules[id];
      re2::StringPiece groups[kMaxGroups + 1];
      if (!filter->GetRE2(id).Match(text, 0, text.size(), RE2::UNANCHORED, groups,
                                    rule.groups + 1)) {
        return out;  // it matched a moment ago; only a failed RE2 memory budget gets here
      }
      for (size_t f = 0; f < out.size(); ++f) {
        const FieldSpec& field = spec->fields[f];
        if (field.replacement_key == nullptr) continue;
        if (!rule.replacement[f].empty()) {
          out[f] = Substitute(rule.replacement[f], groups, rule.groups);
        } else if (field.default_group > 0 && field.default_group <= rule.groups) {
          out[f] = Trimmed(View(groups[field.default_group]));
        }
      }
      return out;
    }
  };

  Section user_agent{&kUserAgentSpec};
  Section os{&kOsSpec};
  Section device{&kDeviceSpec};
  size_t skipped = 0;
  size_t total = 0;

  std::unique_ptr<RE2> bot_markers;
  std::unique_ptr<RE2> http_libraries;
  std::unique_ptr<RE2> tv_markers;
  std::unique_ptr<RE2> tablet_markers;
  std::unique_ptr<RE2> tablet_device_families;
  std::unique_ptr<RE2> tv_device_families;
  std::unique_ptr<RE2> tablet_word;

  absl::Status Load(const YAML::Node& root, Section* section) {
    const SectionSpec& spec = *section->spec;
    YAML::Node list = root[spec.name];
    if (!list) return UapError(StrCat("missing section ", spec.name));
    if (!list.IsSequence()) {
      return UapError(StrCat(spec.name, " must be a list of rules"), list.Mark().line);
    }
    for (const YAML::Node& item : list) {
      if (!item.IsMap() || !item["regex"] || !item["regex"].IsScalar()) {
        return UapError(StrCat("a rule of ", spec.name, " must be a mapping with a regex"),
                        item.Mark().line);
      }
      ++total;
      bool case_insensitive = false;
      if (YAML::Node flag = item["regex_flag"]) {
        if (!flag.IsScalar() || flag.Scalar() != "i") {
          return UapError("regex_flag must be 'i'", flag.Mark().line);
        }
        case_insensitive = true;
      }
      Rule rule;
      for (size_t f = 0; f < spec.fields.size(); ++f) {
        const char* key = spec.fields[f].replacement_key;
        if (key == nullptr) continue;
        if (YAML::Node r = item[key]) {
          if (!r.IsScalar()) return UapError(StrCat(key, " must be a string"), r.Mark().line);
          rule.replacement[f] = r.Scalar();
        }
      }
      const std::string& pattern = item["regex"].Scalar();
      int id = -1;
      if (section->filter->Add(re2::StringPiece(pattern.data(), pattern.size()),
                               RuleOptions(case_insensitive), &id) != RE2::NoError) {
        ++skipped;  // PCRE-only syntax (look-around, back-references)
        continue;
      }
      if (static_cast<size_t>(id) != section->rules.size()) {
        return absl::InternalError("FilteredRE2 numbered a uap rule out of order");
      }
      rule.groups = std::min(section->filter->GetRE2(id).NumberOfCapturingGroups(), kMaxGroups);
      section->rules.push_back(std::move(rule));
    }
    if (section->rules.empty()) return absl::OkStatus();  // FilteredRE2 refuses to compile none
    std::vector<std::string> atoms;
    section->filter->Compile(&atoms);
    section->atom_count = static_cast<int>(atoms.size());
    if (atoms.empty()) return absl::OkStatus();
    RE2::Options options = RuleOptions(/*case_insensitive=*/true);  // atoms are lowercased
    options.set_max_mem(kAtomSetMaxMem);
    section->atoms = std::make_unique<RE2::Set>(options, RE2::UNANCHORED);
    for (const std::string& atom : atoms) {
      std::string error;
      if (section->atoms->Add(RE2::QuoteMeta(atom), &error) < 0) {
        return absl::InternalError(StrCat("uap regexes: atom ", atom, ": ", error));
      }
    }
    if (!section->atoms->Compile()) {
      return absl::ResourceExhaustedError(
          StrCat("uap regexes: the literals of ", spec.name, " do not fit in RE2's memory"));
    }
    return absl::OkStatus();
  }

  // The fixed patterns of Classify. They are ours, so failing to compile is a bug.
  absl::Status CompileMarkers() {
    const std::tuple<std::string_view, bool, std::unique_ptr<RE2>*> markers[] = {
        {kBotMarkers, true, &bot_markers},
        {kHttpLibraries, true, &http_libraries},
        {kTvMarkers, true, &tv_markers},
        {kTabletMarkers, false, &tablet_markers},
        {kTabletDeviceFamilies, false, &tablet_device_families},
        {kTvDeviceFamilies, false, &tv_device_families},
        {kTabletWord, false, &tablet_word}};
    for (const auto& [pattern, case_insensitive, out] : markers) {
      *out = std::make_unique<RE2>(re2::StringPiece(pattern.data(), pattern.size()),
                                   RuleOptions(case_insensitive));
      if (!(*out)->ok()) return absl::InternalError(StrCat("device marker regex: ", pattern));
    }
    return absl::OkStatus();
  }

  DeviceType Classify(std::string_view ua, const DeviceInfo& info) const {
    re2::StringPiece text(ua.data(), ua.size());
    re2::StringPiece family(info.device_family.data(), info.device_family.size());
    if (RE2::PartialMatch(text, *bot_markers)) return DeviceType::kBot;
    // A crawler uap-core names as a browser: Applebot, PetalBot, DuckDuckBot (their names run
    // into "bot", which the whole-word markers above miss, and come after a browser's tokens).
    if (EndsWithBot(info.browser)) return DeviceType::kBot;
    if (RE2::FullMatch(text, *http_libraries)) return DeviceType::kUnknown;
    if (info.device_family == "Spider") return DeviceType::kBot;
    if (RE2::PartialMatch(text, *tv_markers) || RE2::PartialMatch(family, *tv_device_families)) {
      return DeviceType::kUnknown;
    }
    if (RE2::PartialMatch(text, *tablet_markers) ||
        RE2::PartialMatch(family, *tablet_device_families) || OneOf(info.os, kTabletOses)) {
      return DeviceType::kTablet;
    }
    // uap-core calls Windows CE "Windows" with version "CE".
    if (OneOf(info.os, kMobileOses) || (info.os == "Windows" && info.os_version == "CE")) {
      if (RE2::PartialMatch(text, *tablet_word)) return DeviceType::kTablet;
      if (info.os == "Android" && Contains(ua, "Mozilla/") && !Contains(ua, "Mobile")) {
        return DeviceType::kTablet;
      }
      return DeviceType::kMobile;
    }
    if (OneOf(info.device_family, kMobileDeviceFamilies) || Contains(ua, "Mobi")) {
      return DeviceType::kMobile;
    }
    // uap-core names no device for desktops (a Mac is "Mac"); a named one is a handset.
    if (!info.brand.empty() && info.device_family != "Mac") return DeviceType::kMobile;
    if (OneOf(info.os, kDesktopOses) || info.os.starts_with("Windows")) {
      return DeviceType::kDesktop;
    }
    return DeviceType::kUnknown;
  }
};

struct DeviceDetector::CacheShard {
  std::mutex mu;
  absl::flat_hash_map<std::string, DeviceInfo> entries;  // GUARDED_BY(mu)
};

std::string_view DeviceTypeName(DeviceType type) {
  switch (type) {
    case DeviceType::kUnknown:
      return "unknown";
    case DeviceType::kDesktop:
      return "desktop";
    case DeviceType::kMobile:
      return "mobile";
    case DeviceType::kTablet:
      return "tablet";
    case DeviceType::kBot:
      return "bot";
  }
  return "unknown";
}

absl::StatusOr<std::unique_ptr<DeviceDetector>> DeviceDetector::Create() {
  return FromYaml(kUapRegexes, Options());
}

absl::StatusOr<std::unique_ptr<DeviceDetector>> DeviceDetector::Create(const Options& options) {
  return FromYaml(kUapRegexes, options);
}

absl::StatusOr<std::unique_ptr<DeviceDetector>> DeviceDetector::FromYaml(std::string_view yaml) {
  return FromYaml(yaml, Options());
}

absl::StatusOr<std::unique_ptr<DeviceDetector>> DeviceDetector::FromYaml(std::string_view yaml,
                                                                         const Options& options) {
  auto rules = std::make_unique<Rules>();
  try {
    YAML::Node root = YAML::Load(std::string(yaml));
    if (!root.IsMap()) {
      return UapError("expected a mapping with user_agent_parsers, os_parsers, device_parsers");
    }
    for (Rules::Section* section : {&rules->user_agent, &rules->os, &rules->device}) {
      absl::Status s = rules->Load(root, section);
      if (!s.ok()) return s;
    }
  } catch (const YAML::Exception& e) {
    return UapError(e.msg, e.mark.line);
  }
  absl::Status s = rules->CompileMarkers();
  if (!s.ok()) return s;
  return std::unique_ptr<DeviceDetector>(new DeviceDetector(std::move(rules), options));
}

DeviceDetector::DeviceDetector(std::unique_ptr<Rules> rules, const Options& options)
    : rules_(std::move(rules)),
      rules_skipped_(rules_->skipped),
      rules_total_(rules_->total),
      entries_per_shard_((options.cache_entries + kCacheShards - 1) / kCacheShards) {
  if (entries_per_shard_ > 0) cache_ = std::make_unique<std::array<CacheShard, kCacheShards>>();
}

DeviceDetector::~DeviceDetector() = default;

DeviceInfo DeviceDetector::Detect(std::string_view user_agent) const {
  user_agent = Bounded(user_agent);
  if (user_agent.empty()) return DeviceInfo{};
  if (cache_ == nullptr) return DetectUncached(user_agent);
  // The top bits pick the shard: the map itself uses the low bits of the same hash.
  size_t hash = absl::Hash<absl::string_view>{}(ToAbsl(user_agent));
  CacheShard& shard = (*cache_)[(hash >> (sizeof(size_t) * 8 - 8)) % kCacheShards];
  {
    std::lock_guard lock(shard.mu);
    auto it = shard.entries.find(ToAbsl(user_agent));
    if (it != shard.entries.end()) return it->second;
  }
  // Detected outside the lock: two threads may both detect the same new string, and the
  // second insert is then a no-op.
  DeviceInfo info = DetectUncached(user_agent);
  std::lock_guard lock(shard.mu);
  if (shard.entries.size() >= entries_per_shard_) shard.entries.clear();
  shard.entries.emplace(std::string(user_agent), info);
  return info;
}

DeviceInfo DeviceDetector::DetectUncached(std::string_view user_agent) const {
  re2::StringPiece text(user_agent.data(), user_agent.size());
  DeviceInfo info;
  auto ua = rules_->user_agent.Apply(text);
  auto os = rules_->os.Apply(text);
  auto device = rules_->device.Apply(text);
  info.browser = ua[0].empty() ? "Other" : std::move(ua[0]);
  info.browser_version = std::move(ua[1]);
  info.os = os[0].empty() ? "Other" : std::move(os[0]);
  info.os_version = std::move(os[1]);
  info.device_family = device[0].empty() ? "Other" : std::move(device[0]);
  info.brand = std::move(device[1]);
  info.model = std::move(device[2]);
  info.type = rules_->Classify(user_agent, info);
  return info;
}

}  // namespace whisperer::state
