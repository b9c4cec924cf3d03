#include "state/device.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <thread>
#include <vector>

#include "common/status.h"
#include "yaml-cpp/yaml.h"

namespace whisperer::state {
namespace {

// One detector with the embedded rules for the whole binary: building it takes a while.
const DeviceDetector& Embedded() {
  static const DeviceDetector* detector = [] {
    auto d = DeviceDetector::Create();
    EXPECT_TRUE(d.ok()) << d.status();
    return d->release();
  }();
  return *detector;
}

std::unique_ptr<DeviceDetector> Uncached() {
  DeviceDetector::Options o;
  o.cache_entries = 0;
  auto d = DeviceDetector::Create(o);
  EXPECT_TRUE(d.ok()) << d.status();
  return std::move(*d);
}

TEST(DeviceDetectorTest, EmbeddedRulesCompileWithFewSkipped) {
  const DeviceDetector& d = Embedded();
  std::printf("uap-core rules: %zu, skipped by RE2: %zu\n", d.rules_total(), d.rules_skipped());
  EXPECT_GT(d.rules_total(), 1000u);
  EXPECT_LT(d.rules_skipped() * 20, d.rules_total());  // under 5%
}

struct Case {
  const char* name;
  const char* user_agent;
  DeviceInfo want;
};

const Case kCases[] = {
    {"iPhoneSafari",
     "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like "
     "Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
     {DeviceType::kMobile, "iOS", "17", "Mobile Safari", "17", "iPhone", "Apple", "iPhone"}},
    {"AndroidChromePhone",
     "Mozilla/5.0 (Linux; Android 13; Pixel 7) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/120.0.6099.144 Mobile Safari/537.36",
     {DeviceType::kMobile, "Android", "13", "Chrome Mobile", "120", "Pixel 7", "Google",
      "Pixel 7"}},
    {"AndroidAppDalvik",
     "Dalvik/2.1.0 (Linux; U; Android 11; SM-G991B Build/RP1A.200720.012)",
     {DeviceType::kMobile, "Android", "11", "Android", "11", "Samsung SM-G991B", "Samsung",
      "SM-G991B"}},
    {"CubotPhoneIsNotABot",
     "Mozilla/5.0 (Linux; Android 9; CUBOT P30) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/83.0.4103.106 Mobile Safari/537.36",
     {DeviceType::kMobile, "Android", "9", "Chrome Mobile", "83", "P30", "Cubot", "P30"}},
    {"iPad",
     "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/16.6 Mobile/15E148 Safari/604.1",
     {DeviceType::kTablet, "iOS", "16", "Mobile Safari", "16", "iPad", "Apple", "iPad"}},
    {"AndroidTabletChrome",
     "Mozilla/5.0 (Linux; Android 12; SM-X700) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/119.0.0.0 Safari/537.36",
     {DeviceType::kTablet, "Android", "12", "Chrome", "119", "SM-X700", "Generic_Android_Tablet",
      "SM-X700"}},
    {"AndroidTabletFirefox",
     "Mozilla/5.0 (Android 4.4; Tablet; rv:41.0) Gecko/41.0 Firefox/41.0",
     {DeviceType::kTablet, "Android", "4", "Firefox Mobile", "41", "Generic Tablet", "Generic",
      "Tablet"}},
    {"WindowsChrome",
     "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "Chrome/120.0.0.0 Safari/537.36",
     {DeviceType::kDesktop, "Windows", "10", "Chrome", "120", "Other", "", ""}},
    {"MacSafari",
     "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
     "Version/17.2 Safari/605.1.15",
     {DeviceType::kDesktop, "Mac OS X", "10", "Safari", "17", "Mac", "Apple", "Mac"}},
    {"LinuxFirefox",
     "Mozilla/5.0 (X11; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
     {DeviceType::kDesktop, "Linux", "", "Firefox", "121", "Other", "", ""}},
    {"UbuntuFirefox",
     "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
     {DeviceType::kDesktop, "Ubuntu", "", "Firefox", "121", "Other", "", ""}},
    {"Googlebot",
     "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
     {DeviceType::kBot, "Other", "", "Googlebot", "2", "Spider", "Spider", "Desktop"}},
    {"GooglebotSmartphone",
     "Mozilla/5.0 (Linux; Android 6.0.1; Nexus 5X Build/MMB29P) AppleWebKit/537.36 (KHTML, like "
     "Gecko) Chrome/120.0.6099.71 Mobile Safari/537.36 (compatible; Googlebot/2.1; "
     "+http://www.google.com/bot.html)",
     {DeviceType::kBot, "Android", "6", "Googlebot", "2", "Spider", "Spider", "Smartphone"}},
    {"Bingbot",
     "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)",
     {DeviceType::kBot, "Other", "", "bingbot", "2", "Spider", "Spider", "Desktop"}},
    // Command-line tools and HTTP libraries are not bots: server-side SDKs use them (device.h).
    {"Curl", "curl/8.4.0", {DeviceType::kUnknown, "Other", "", "curl", "8", "Other", "", ""}},
    {"PythonRequests",
     "python-requests/2.31.0",
     {DeviceType::kUnknown, "Other", "", "Python Requests", "2", "Other", "", ""}},
    {"Axios", "axios/1.6.2", {DeviceType::kUnknown, "Other", "", "axios", "1", "Other", "", ""}},
    // uap-core calls some libraries crawlers (Python-urllib, Java) or phones (libwww-perl):
    // their own product token alone is a library all the same.
    {"PythonUrllib",
     "Python-urllib/3.11",
     {DeviceType::kUnknown, "Other", "", "Python-urllib", "3", "Spider", "Spider", "Desktop"}},
    {"Java",
     "Java/17.0.1",
     {DeviceType::kUnknown, "Other", "", "Java", "0", "Spider", "Spider", "Desktop"}},
    {"ApacheHttpClient",
     "Apache-HttpClient/4.5.13 (Java/11.0.2)",
     {DeviceType::kUnknown, "Other", "", "Apache-HttpClient", "4", "Other", "", ""}},
    {"LibwwwPerl",
     "libwww-perl/6.67",
     {DeviceType::kUnknown, "Other", "", "libwww-perl", "6", "Generic Feature Phone", "Generic",
      "Feature Phone"}},
    // A library's token followed by a crawler's name is the crawler.
    {"LibraryBot",
     "python-requests/2.31.0 (compatible; PriceBot)",
     {DeviceType::kBot, "Other", "", "PriceBot", "", "Spider", "Spider", "Desktop"}},
    {"HeadlessChrome",
     "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
     "HeadlessChrome/120.0.6099.109 Safari/537.36",
     {DeviceType::kBot, "Linux", "", "HeadlessChrome", "120", "Other", "", ""}},
    // An app's HTTP library: probably a phone, but nothing says so.
    {"Okhttp",
     "okhttp/4.12.0",
     {DeviceType::kUnknown, "Other", "", "okhttp", "4", "Other", "", ""}},
    {"Xbox",
     "Mozilla/5.0 (Windows NT 10.0; Win64; x64; Xbox; Xbox One) AppleWebKit/537.36 (KHTML, like "
     "Gecko) Chrome/120.0.0.0 Safari/537.36 Edge/44.18363.8131",
     {DeviceType::kUnknown, "Windows", "10", "Edge", "44", "Other", "", ""}},
    {"FeaturePhone",
     "ALCATEL-OT510A/382 ObigoInternetBrowser/Q05A",
     {DeviceType::kMobile, "Other", "", "Obigo", "", "Alcatel OT510A", "Alcatel", "OT510A"}},
    {"SmartTv",
     "Mozilla/5.0 (SMART-TV; LINUX; Tizen 6.0) AppleWebKit/537.36 (KHTML, like Gecko) "
     "76.0.3809.146/6.0 TV Safari/537.36",
     {DeviceType::kUnknown, "Tizen", "6", "Safari", "", "Samsung SMART-TV", "Samsung", "SMART-TV"}},
    {"Garbage", "x", {DeviceType::kUnknown, "Other", "", "Other", "", "Other", "", ""}},
    {"Empty", "", {}},
};

void PrintTo(const Case& c, std::ostream* os) { *os << c.name; }

class DeviceCaseTest : public ::testing::TestWithParam<Case> {};

TEST_P(DeviceCaseTest, Detects) {
  const Case& c = GetParam();
  DeviceInfo got = Embedded().Detect(c.user_agent);
  EXPECT_EQ(DeviceTypeName(got.type), DeviceTypeName(c.want.type));
  EXPECT_EQ(got.os, c.want.os);
  EXPECT_EQ(got.os_version, c.want.os_version);
  EXPECT_EQ(got.browser, c.want.browser);
  EXPECT_EQ(got.browser_version, c.want.browser_version);
  EXPECT_EQ(got.device_family, c.want.device_family);
  EXPECT_EQ(got.brand, c.want.brand);
  EXPECT_EQ(got.model, c.want.model);
}

INSTANTIATE_TEST_SUITE_P(UserAgents, DeviceCaseTest, ::testing::ValuesIn(kCases),
                         [](const auto& info) { return std::string(info.param.name); });

TEST(DeviceDetectorTest, TypeNames) {
  EXPECT_EQ(DeviceTypeName(DeviceType::kUnknown), "unknown");
  EXPECT_EQ(DeviceTypeName(DeviceType::kDesktop), "desktop");
  EXPECT_EQ(DeviceTypeName(DeviceType::kMobile), "mobile");
  EXPECT_EQ(DeviceTypeName(DeviceType::kTablet), "tablet");
  EXPECT_EQ(DeviceTypeName(DeviceType::kBot), "bot");
}

// Crawlers whose name uap-core reads as a browser family ending in "bot", or that its rules do
// not name, behind a browser's user agent.
TEST(DeviceDetectorTest, CrawlersNamedAtTheEndAreBots) {
  for (const char* ua : {
           "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like "
           "Gecko) Version/17.0 Safari/605.1.15 (Applebot/0.1; +http://www.apple.com/go/applebot)",
           "Mozilla/5.0 (Linux; Android 7.0;) AppleWebKit/537.36 (KHTML, like Gecko) Mobile "
           "Safari/537.36 (compatible; PetalBot;+https://webmaster.petalsearch.com/site/petalbot)",
           "Mozilla/5.0 (iPhone; CPU iPhone OS 13_2_3 like Mac OS X) AppleWebKit/605.1.15 (KHTML, "
           "like Gecko) Version/13.0.3 Mobile/15E148 Safari/604.1 DuckDuckBot-Https/1.1; "
           "(+https://duckduckgo.com/duckduckbot)",
           "Mediapartners-Google",
           "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/122.0.0.0 Safari/537.36 (compatible; Google-InspectionTool/1.0)",
           "Mozilla/5.0 (Linux; Android 11; Pixel 5) AppleWebKit/537.36 (KHTML, like Gecko) "
           "Chrome/120.0.0.0 Mobile Safari/537.36 Prerender "
           "(+https://github.com/prerender/prerender)",
       }) {
    EXPECT_EQ(Embedded().Detect(ua).type, DeviceType::kBot) << ua;
  }
}

TEST(DeviceDetectorTest, ReadsOnlyTheFirstKilobyte) {
  std::string ua = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0.0.0 Safari/537.36 ";
  ua.resize(kMaxUserAgentBytes, 'x');
  EXPECT_EQ(Embedded().Detect(ua + " Googlebot/2.1").type, DeviceType::kDesktop);
  // A cut inside a UTF-8 sequence backs off to its start.
  std::string utf8 = std::string(kMaxUserAgentBytes - 1, 'a') + "\xC3\xA9 Googlebot/2.1";
  EXPECT_EQ(Embedded().Detect(utf8), Embedded().Detect(std::string(kMaxUserAgentBytes - 1, 'a')));
}

// uap-core's semantics, on rules written for the test.
constexpr std::string_view kSmallYaml = R"(
user_agent_parsers:
  - regex: '(?<=x)Never'
  - regex: '(Foo)Browser/(\d+)\.(\d+)'
    family_replacement: '$1 Browser '
  - regex: '(Bar)/(\d+)'
  - regex: 'Baz(Qux)?/(\d+)'
    family_replacement: 'Baz $1'
    v1_replacement: 'v$2'
os_parsers:
  - regex: '(Tux) ?OS/?(\d+)?'
device_parsers:
  - regex: '(acme) ([a-z0-9]+)'
    regex_flag: 'i'
    device_replacement: 'Acme $2'
    brand_replacement: 'Acme'
  - regex: '(Widget)(\d)'
)";

TEST(DeviceDetectorTest, UapReplacementSemantics) {
  auto d = DeviceDetector::FromYaml(kSmallYaml);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ((*d)->rules_total(), 7u);
  EXPECT_EQ((*d)->rules_skipped(), 1u);  // look-behind: not RE2

  DeviceInfo a = (*d)->Detect("FooBrowser/12.3 Bar/7 Tux OS ACME X200");
  EXPECT_EQ(a.browser, "Foo Browser");  // $1 substituted, trailing space trimmed
  EXPECT_EQ(a.browser_version, "12");   // group 2 by default
  EXPECT_EQ(a.os, "Tux");
  EXPECT_EQ(a.os_version, "");              // optional group that did not take part
  EXPECT_EQ(a.device_family, "Acme X200");  // regex_flag 'i'
  EXPECT_EQ(a.brand, "Acme");
  EXPECT_EQ(a.model, "ACME");  // model defaults to group 1

  DeviceInfo b = (*d)->Detect("Baz/3 TuxOS9 Widget7");
  EXPECT_EQ(b.browser, "Baz");  // $1 did not take part: empty, then trimmed
  EXPECT_EQ(b.browser_version, "v3");
  EXPECT_EQ(b.os_version, "9");
  EXPECT_EQ(b.device_family, "Widget");
  EXPECT_EQ(b.brand, "");  // no brand_replacement: none
  EXPECT_EQ(b.model, "Widget");

  DeviceInfo c = (*d)->Detect("Bar/5 Never");  // the skipped rule cannot win
  EXPECT_EQ(c.browser, "Bar");
  EXPECT_EQ(c.os, "Other");
  EXPECT_EQ(c.device_family, "Other");
}

TEST(DeviceDetectorTest, MalformedYamlIsAClearError) {
  struct Bad {
    std::string_view yaml;
    std::string_view message;
  };
  const Bad bad[] = {
      {"user_agent_parsers: [\n  {regex: 'a'\n", "uap regexes: line "},
      {"- a\n- b\n", "expected a mapping"},
      {"user_agent_parsers: []\nos_parsers: []\n", "missing section device_parsers"},
      {"user_agent_parsers: []\nos_parsers: {a: 1}\ndevice_parsers: []\n",
       "line 2: os_parsers must be a list of rules"},
      {"user_agent_parsers:\n  - family_replacement: x\nos_parsers: []\ndevice_parsers: []\n",
       "line 2: a rule of user_agent_parsers must be a mapping with a regex"},
      {"user_agent_parsers: []\nos_parsers: []\ndevice_parsers:\n  - regex: a\n    regex_flag: x\n",
       "line 5: regex_flag must be 'i'"},
  };
  for (const Bad& b : bad) {
    auto d = DeviceDetector::FromYaml(b.yaml);
    ASSERT_FALSE(d.ok()) << b.yaml;
    EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_EQ(ErrorCodeOf(d.status()), "invalid_uap_regexes");
    EXPECT_NE(d.status().ToString().find(b.message), std::string::npos)
        << d.status() << " should say " << b.message;
  }
}

// uap-core's own test cases: `user_agent_string` and the expected fields.
struct UapCase {
  std::string user_agent;
  std::string family, major, brand, model;
};

std::vector<UapCase> LoadUapCases(const std::string& file) {
  std::vector<UapCase> out;
  YAML::Node root = YAML::LoadFile(std::string(WHISPERER_UAP_TESTS_DIR) + "/" + file);
  auto str = [](const YAML::Node& n) { return n && !n.IsNull() ? n.as<std::string>() : ""; };
  for (const YAML::Node& c : root["test_cases"]) {
    out.push_back({str(c["user_agent_string"]), str(c["family"]), str(c["major"]), str(c["brand"]),
                   str(c["model"])});
  }
  return out;
}

// Runs `check` over uap-core's cases in `file`, prints the rate and the first misses, and
// returns the share of cases that matched.
template <typename Check>
double Conformance(const std::string& file, Check check) {
  std::vector<UapCase> cases = LoadUapCases(file);
  auto d = Uncached();
  size_t ok = 0;
  int shown = 0;
  for (const UapCase& c : cases) {
    DeviceInfo got = d->Detect(c.user_agent);
    std::string miss = check(c, got);
    if (miss.empty()) {
      ++ok;
    } else if (shown++ < 10) {
      std::printf("  miss: %s\n    %s\n", c.user_agent.c_str(), miss.c_str());
    }
  }
  double rate = cases.empty() ? 0 : static_cast<double>(ok) / cases.size();
  std::printf("%s: %zu of %zu match (%.2f%%)\n", file.c_str(), ok, cases.size(), 100 * rate);
  return rate;
}

std::string Diff(std::string_view what, const std::string& got, const std::string& want) {
  return got == want ? "" : std::string(what) + " '" + got + "' want '" + want + "' ";
}

TEST(DeviceConformanceTest, UapUserAgents) {
  double rate = Conformance("test_ua.yaml", [](const UapCase& c, const DeviceInfo& got) {
    return Diff("family", got.browser, c.family) + Diff("major", got.browser_version, c.major);
  });
  EXPECT_GE(rate, 0.99);
}

TEST(DeviceConformanceTest, UapOperatingSystems) {
  double rate = Conformance("test_os.yaml", [](const UapCase& c, const DeviceInfo& got) {
    return Diff("family", got.os, c.family) + Diff("major", got.os_version, c.major);
  });
  EXPECT_GE(rate, 0.99);
}

TEST(DeviceConformanceTest, UapDevices) {
  double rate = Conformance("test_device.yaml", [](const UapCase& c, const DeviceInfo& got) {
    return Diff("family", got.device_family, c.family) + Diff("brand", got.brand, c.brand) +
           Diff("model", got.model, c.model);
  });
  EXPECT_GE(rate, 0.99);
}

std::vector<std::string> UapUserAgents() {
  std::vector<std::string> out;
  for (UapCase& c : LoadUapCases("test_ua.yaml")) out.push_back(std::move(c.user_agent));
  return out;
}

TEST(DeviceCacheTest, CachedResultsEqualUncached) {
  std::vector<std::string> agents = UapUserAgents();
  auto uncached = Uncached();
  auto cached = DeviceDetector::Create();
  ASSERT_TRUE(cached.ok());
  for (int round = 0; round < 2; ++round) {  // the second round is served from the cache
    for (const std::string& ua : agents) {
      ASSERT_EQ((*cached)->Detect(ua), uncached->Detect(ua)) << ua;
    }
  }
}

TEST(DeviceCacheTest, SmallCacheSharedByThreads) {
  std::vector<std::string> agents = UapUserAgents();
  agents.resize(300);
  auto reference = Uncached();
  std::vector<DeviceInfo> want;
  for (const std::string& ua : agents) want.push_back(reference->Detect(ua));
  DeviceDetector::Options o;
  o.cache_entries = 40;  // far fewer than the strings: shards fill and are emptied often
  auto d = DeviceDetector::Create(o);
  ASSERT_TRUE(d.ok());
  std::vector<std::thread> threads;
  std::vector<int> wrong(4, 0);
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 5; ++round) {
        for (size_t i = 0; i < agents.size(); ++i) {
          size_t k = (i * (t + 1) + round) % agents.size();
          if (!((*d)->Detect(agents[k]) == want[k])) ++wrong[t];
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong, std::vector<int>(4, 0));
}

std::vector<std::string> UapDeviceUserAgents() {
  std::vector<std::string> out;
  for (UapCase& c : LoadUapCases("test_device.yaml")) out.push_back(std::move(c.user_agent));
  return out;
}

// Not a benchmark with a bound: prints what one call costs so changes can be compared.
TEST(DeviceCostTest, PrintsUncachedAndCachedCost) {
  auto per_call_us = [](const DeviceDetector& d, const std::vector<std::string>& agents,
                        int rounds) {
    auto start = std::chrono::steady_clock::now();
    size_t sink = 0;
    for (int r = 0; r < rounds; ++r) {
      for (const std::string& ua : agents) sink += d.Detect(ua).browser.size();
    }
    std::chrono::duration<double, std::micro> us = std::chrono::steady_clock::now() - start;
    EXPECT_GT(sink, 0u);
    return us.count() / (static_cast<double>(rounds) * agents.size());
  };
  std::vector<std::string> ua_agents = UapUserAgents();
  std::vector<std::string> device_agents = UapDeviceUserAgents();

  auto start = std::chrono::steady_clock::now();
  auto uncached = Uncached();
  std::chrono::duration<double, std::milli> create = std::chrono::steady_clock::now() - start;
  // Just after start RE2 still builds its automata; after that, a string not seen before.
  double cold = per_call_us(*uncached, ua_agents, 1);
  double warm = per_call_us(*uncached, device_agents, 1);
  auto cached = DeviceDetector::Create();
  ASSERT_TRUE(cached.ok());
  per_call_us(**cached, ua_agents, 1);  // fills the cache
  double hit = per_call_us(**cached, ua_agents, 20);
  std::printf(
      "DeviceDetector::Create %.0f ms; Detect uncached: %.1f us/call on the first %zu strings "
      "after start, %.1f us/call on %zu more new strings; cached: %.2f us/call\n",
      create.count(), cold, ua_agents.size(), warm, device_agents.size(), hit);
}

}  // namespace
}  // namespace whisperer::state
