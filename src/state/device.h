// DeviceDetector: the device, operating system and browser that an event's `context.userAgent`
// names, for the profile engine.
//
// The rules are uap-core's (the ua-parser project's regexes.yaml, Debian package `uap-core`),
// compiled into the binary at build time (WHISPERER_UAP_REGEXES, src/CMakeLists.txt) and
// compiled with RE2 when the detector is created. They are applied as uap-core's specification
// says: in each section (user_agent_parsers, os_parsers, device_parsers) the first rule whose
// regex matches anywhere in the string wins, `regex_flag: 'i'` makes a rule case-insensitive,
// and a `*_replacement` replaces the matching capture group, with `$1`..`$9` standing for the
// groups and the result trimmed. To find that first rule without trying hundreds of regexes,
// one RE2::Set per section holds the literals the rules require (RE2's FilteredRE2 atoms) and
// finds in one pass which ones the string contains; only the rules those allow run, in file
// order, and only the winner runs again to extract its groups (details in device.cc). A uap-core
// pattern RE2 cannot compile (PCRE look-around or back-references) would be skipped and counted
// in rules_skipped(), and a string only it matches would fall to the next rule; with uap-core
// 0.16 there are none.
//
// Device type, decided from the string and uap-core's results, first rule that applies:
//   1. kBot: uap-core's device family is "Spider" (its convention for crawlers: bot, crawl,
//      spider, slurp and a few hundred named ones in the first 100 characters), or the string
//      names an automated client as a whole word: a headless or driven browser (HeadlessChrome,
//      PhantomJS, Lighthouse, Puppeteer, Selenium, Prerender, ...), a crawler named otherwise
//      (Mediapartners-Google, Google-InspectionTool) or the words bot / crawler / spider /
//      scraper; or uap-core's browser family ends in "bot" (Applebot, PetalBot, DuckDuckBot,
//      named after a browser's tokens). No person is behind these, so the profile engine keeps them
//      out of profile statistics. Whole words only, so the Cubot phone brand is not a bot. HTTP
//      libraries and command-line tools (curl, python-requests, axios, okhttp, ...) are not bots
//      but kUnknown (rule 7), also those uap-core calls Spider or a phone (Python-urllib, Java,
//      libwww-perl) when the string is their product token alone: server-side SDKs send real
//      customers' events through them, and the server records the request's User-Agent when an
//      event has none.
//   2. kUnknown for smart TVs, set-top boxes and game consoles (SMART-TV, HbbTV, Web0S, Roku,
//      Xbox, PlayStation, Nintendo, Chromecast, Apple TV, Android TV, or a uap-core device family
//      with the word TV): there is no type for them, and Xbox would otherwise look like Windows.
//   3. kTablet: an iPad, Kindle or PlayBook (in the string or uap-core's device family), a uap-core
//      device family naming a tablet ("Generic Tablet", "... Tablet ...", "TouchPad"), the
//      operating systems "BlackBerry Tablet OS" and "Kindle", or a mobile operating system
//      (below) whose string has the word "Tablet" or, on Android, a browser string (`Mozilla/`)
//      without "Mobile": Google's convention for Android tablets.
//   4. kMobile: a mobile operating system by uap-core's OS family (iOS, Android, Windows Phone,
//      Windows Mobile, Windows CE, BlackBerry OS, Symbian, Nokia Series 30/40, KaiOS, Firefox OS,
//      webOS, Tizen, Sailfish, MeeGo, Maemo, Bada, BREW, WatchOS), an iPhone or iPod or a
//      "Generic Smartphone" / "Generic Feature Phone" device family, or "Mobi" in the string (the
//      marker browsers put in mobile user agents).
//   5. kMobile too when uap-core names the device's brand (other than a Mac): it names none for
//      desktops, so this is a handset it knows, mostly feature phones that name no OS.
//   6. kDesktop: a desktop operating system by uap-core's OS family: Windows (other than the
//      phone ones above), Mac OS X / Mac OS, Chrome OS, Linux and its distributions (Ubuntu,
//      Debian, Fedora, ...), the BSDs, Solaris.
//   7. kUnknown otherwise, and for the empty string.
// Known limits: iPadOS 13+ Safari sends a Mac user agent by default and so counts as desktop;
// Android apps whose user agent is `Dalvik/...` count as mobile even on tablets.
//
// The empty string gives DeviceInfo{} (every field empty, kUnknown) rather than uap-core's
// "Other": no user agent is not the same as an unrecognized one. Only the first
// kMaxUserAgentBytes of a longer string are read, which bounds the cost of one call and the
// memory of the cache.
//
// Cost: the first time a string is seen, a few tens of microseconds (a few hundred just after
// start, while RE2 builds its automata); the result is then kept in a bounded cache keyed by
// the string (Options::cache_entries), because real traffic repeats a small set of user agents,
// and a repeat costs one hash lookup and a copy. RE2 keeps the automata it builds, within its
// per-regex memory budget, so memory grows with the variety of strings seen: about 15 MB after
// Create and about 100 MB after 17,500 distinct user agents (uap-core's test strings).
//
// Thread-safety: Create and FromYaml build the detector on one thread; afterwards every const
// method is safe from any number of threads at once (RE2 objects are thread-safe; the cache is
// sharded, each shard under its own mutex).
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace whisperer::state {

enum class DeviceType : uint8_t { kUnknown, kDesktop, kMobile, kTablet, kBot };

// "unknown", "desktop", "mobile", "tablet" or "bot": the names to store and to show.
std::string_view DeviceTypeName(DeviceType type);

// What one user agent string says. Families use uap-core's spelling ("Mobile Safari",
// "Mac OS X", "Samsung SM-G960F") and are "Other" when no rule recognized that part; versions
// are the major version only, empty when unknown.
struct DeviceInfo {
  DeviceType type = DeviceType::kUnknown;
  std::string os;               // uap-core OS family: "iOS", "Windows", "Android", ...
  std::string os_version;       // its major version: "17", "10", "XP", ...
  std::string browser;          // uap-core user agent family: "Chrome", "Googlebot", "curl", ...
  std::string browser_version;  // its major version
  std::string device_family;    // uap-core device family: "iPhone", "Spider", "Other", ...
  std::string brand;            // "Apple", "Samsung", ...; empty when uap-core gives none
  std::string model;            // "iPhone", "SM-G960F", ...; empty when uap-core gives none

  bool operator==(const DeviceInfo&) const = default;
};

// Strings longer than this are read only up to this many bytes. Real user agents are under
// 600 bytes (uap-core's longest test string has 517).
inline constexpr size_t kMaxUserAgentBytes = 1024;

class DeviceDetector {
 public:
  struct Options {
    // How many distinct user agents the cache keeps (each a key of at most kMaxUserAgentBytes
    // and a DeviceInfo: about 0.5 KB). 0 disables the cache. When a shard of the cache is full
    // it is emptied and starts over: simple, bounded, and with real traffic's few distinct
    // user agents a rare event.
    size_t cache_entries = 16384;
  };

  // A detector with the rules compiled into the binary (uap-core's regexes.yaml at build time).
  // Takes a few hundred milliseconds: call once at start.
  static absl::StatusOr<std::unique_ptr<DeviceDetector>> Create();
  static absl::StatusOr<std::unique_ptr<DeviceDetector>> Create(const Options& options);

  // A detector with the rules of `yaml`, a document in uap-core's regexes.yaml format. Fails
  // with kInvalidArgument (code `invalid_uap_regexes`, with the line when there is one) when the
  // YAML is malformed or not in that format; a regex RE2 cannot compile is skipped, not an error.
  static absl::StatusOr<std::unique_ptr<DeviceDetector>> FromYaml(std::string_view yaml);
  static absl::StatusOr<std::unique_ptr<DeviceDetector>> FromYaml(std::string_view yaml,
                                                                  const Options& options);

  ~DeviceDetector();
  DeviceDetector(const DeviceDetector&) = delete;
  DeviceDetector& operator=(const DeviceDetector&) = delete;

  // What `user_agent` says; see the top of this file. From the cache when it was seen before.
  DeviceInfo Detect(std::string_view user_agent) const;

  // How many rules of the YAML were skipped because RE2 cannot compile their regex, and how many
  // were loaded in all (skipped included).
  size_t rules_skipped() const { return rules_skipped_; }
  size_t rules_total() const { return rules_total_; }

 private:
  struct Rules;
  struct CacheShard;
  static constexpr size_t kCacheShards = 16;

  DeviceDetector(std::unique_ptr<Rules> rules, const Options& options);
  DeviceInfo DetectUncached(std::string_view user_agent) const;

  std::unique_ptr<Rules> rules_;
  size_t rules_skipped_ = 0;
  size_t rules_total_ = 0;
  size_t entries_per_shard_ = 0;  // 0: no cache
  std::unique_ptr<std::array<CacheShard, kCacheShards>> cache_;
};

}  // namespace whisperer::state
