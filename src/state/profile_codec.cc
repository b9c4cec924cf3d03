#include "state/profile_codec.h"

#include <algorithm>
#include <cstring>

#include "common/status.h"
#include "common/varint.h"
#include "learn/clv.h"

namespace whisperer::state {
namespace {

// 2: journeys; 3: journey rounds; 4: personas; 5: intent evidence; 6: model scores and text
// sentiment; 7: order days and the first order day's revenue (after the last order time; older
// profiles read as one day per order, each worth the mean); 8: the list of order days after the
// first day's revenue (a count, then the first day zigzag-encoded and each next one as its gap
// from the one before; older profiles read with the days their first and last orders tell,
// when those are all of them). Versions from kOldestVersion on are read.
//
// Format 6 ends with the model scores (two doubles, three signed varints) and then the text
// sentiment (TextSentiment): a varint count of texts scored, and only when it is not 0: the mean
// (double), the positive and negative counts (varints), the latest compound (double), its
// property (string), time (signed) and messageId (string), then the intent label (string, ""
// for none), its probability (double) and time (signed). A profile without texts spends one
// byte on it.
constexpr uint8_t kVersion = 8;
constexpr uint8_t kOldestVersion = 3;

// Writes into the string's own buffer, growing it ahead of need and cutting it to what was
// written in Finish. EncodeProfile took a sixth of the shard thread's time on the 1M-customer
// load, most of it in std::string's capacity checks, one per byte of each varint; written this
// way the load ran at 83.0/82.4/76.8k instead of 79.2/75.5/72.8k events/s (alternating runs,
// bench/ingest_load, November 2026).
class Writer {
 public:
  explicit Writer(std::string* out) : out_(out), pos_(out->size()) {}

  // Cuts the string to what was written. Call once, last.
  void Finish() { out_->resize(pos_); }

  void Varint(uint64_t v) {
    char* start = Room(kMaxVarintBytes);
    pos_ += static_cast<size_t>(EncodeVarint(start, v) - start);
  }
  void Signed(int64_t v) { Varint(ZigZag(v)); }
  void Str(std::string_view s) {
    Varint(s.size());
    Bytes(s.data(), s.size());
  }
  void Double(double d) { Bytes(&d, sizeof(d)); }
  void SeenOf(const Seen& s) {
    Signed(s.first_ms);
    Signed(s.last_ms);
    Varint(s.events);
  }
  void Ids(const std::vector<identity::Identifier>& ids) {
    Varint(ids.size());
    for (const identity::Identifier& id : ids) {
      Str(id.type);
      Str(id.value);
    }
  }
  void U64List(const std::vector<uint64_t>& list) {
    Varint(list.size());
    for (uint64_t v : list) Varint(v);
  }
  void SeenMap(const std::map<std::string, Seen, std::less<>>& map) {
    Varint(map.size());
    for (const auto& [key, seen] : map) {
      Str(key);
      SeenOf(seen);
    }
  }

 private:
  // At least `n` writable bytes at pos_.
  char* Room(size_t n) {
    if (out_->size() - pos_ < n) out_->resize(std::max({out_->size() * 2, pos_ + n, size_t{512}}));
    return out_->data() + pos_;
  }
  void Bytes(const void* data, size_t n) {
    if (n == 0) return;
    std::memcpy(Room(n), data, n);
    pos_ += n;
  }

  std::string* out_;
  size_t pos_;  // bytes written; the string beyond them is room
};

// Reads with bounds checks; the first failure sticks and every later read returns zero values.
class Reader {
 public:
  explicit Reader(std::string_view in) : in_(in) {}
  bool ok() const { return ok_; }
  bool at_end() const { return in_.empty(); }

  uint64_t Varint() {
    uint64_t v = 0;
    if (!GetVarint(&in_, &v)) return Fail();
    return v;
  }
  int64_t Signed() { return UnZigZag(Varint()); }
  std::string Str() {
    uint64_t n = Varint();
    if (n > in_.size()) return Fail(), std::string();
    std::string s(in_.substr(0, n));
    in_.remove_prefix(n);
    return s;
  }
  double Double() {
    if (in_.size() < sizeof(double)) return Fail(), 0.0;
    double d;
    std::memcpy(&d, in_.data(), sizeof(d));
    in_.remove_prefix(sizeof(d));
    return d;
  }
  uint8_t Byte() {
    if (in_.empty()) return Fail(), 0;
    uint8_t b = static_cast<uint8_t>(in_.front());
    in_.remove_prefix(1);
    return b;
  }
  // A list length: each element takes at least one byte, so a length beyond the input is corrupt
  // (and is refused before anything is allocated for it).
  size_t Count() {
    uint64_t n = Varint();
    if (n > in_.size()) return Fail(), 0;
    return static_cast<size_t>(n);
  }
  Seen SeenOf() {
    Seen s;
    s.first_ms = Signed();
    s.last_ms = Signed();
    s.events = Varint();
    return s;
  }
  std::vector<identity::Identifier> Ids() {
    std::vector<identity::Identifier> out(Count());
    for (identity::Identifier& id : out) {
      id.type = Str();
      id.value = Str();
    }
    return out;
  }
  std::vector<uint64_t> U64List() {
    std::vector<uint64_t> out(Count());
    for (uint64_t& v : out) v = Varint();
    return out;
  }
  void SeenMap(std::map<std::string, Seen, std::less<>>* map) {
    for (size_t n = Count(); n > 0 && ok_; --n) {
      std::string key = Str();
      (*map)[std::move(key)] = SeenOf();
    }
  }

 private:
  uint64_t Fail() {
    ok_ = false;
    in_ = {};
    return 0;
  }

  std::string_view in_;
  bool ok_ = true;
};

}  // namespace

void EncodeProfile(const Profile& p, std::string* out) {
  Writer w(out);
  w.Varint(kVersion);
  w.Varint(p.id);
  w.Ids(p.identifiers);
  w.Varint(p.traits.size());
  for (const auto& [key, t] : p.traits) {
    w.Str(key);
    w.Str(t.json);
    w.Signed(t.set_at_ms);
  }
  w.SeenOf(p.seen);
  w.Varint(p.event_counts.size());
  for (const auto& [name, n] : p.event_counts) {
    w.Str(name);
    w.Varint(n);
  }
  w.Double(p.revenue);
  w.Varint(p.orders);
  w.Signed(p.first_order_ms);
  w.Signed(p.last_order_ms);
  w.Varint(p.order_days);
  w.Double(p.first_day_revenue);
  w.Varint(p.order_day_list.size());
  int64_t previous_day = 0;
  for (size_t i = 0; i < p.order_day_list.size(); ++i) {
    const int64_t day = p.order_day_list[i];
    if (i == 0) {
      w.Signed(day);
    } else {
      w.Varint(static_cast<uint64_t>(day - previous_day));  // sorted: the gap is positive
    }
    previous_day = day;
  }
  const Sessions& s = p.sessions;
  w.Varint(s.count);
  w.Signed(s.total_ms);
  w.Varint(s.views);
  w.Signed(s.current_start_ms);
  w.Signed(s.current_last_ms);
  w.Varint(s.current_events);
  w.Varint(s.current_views);
  w.Varint(p.devices.size());
  for (const DeviceSeen& d : p.devices) {
    w.Str(d.type);
    w.Str(d.os);
    w.Str(d.os_version);
    w.Str(d.browser);
    w.Str(d.browser_version);
    w.Varint(d.bot);
    w.SeenOf(d);
  }
  w.SeenMap(p.platforms);
  w.SeenMap(p.channels);
  w.Varint(p.sources.size());
  for (const SourceSeen& src : p.sources) {
    w.Str(src.source);
    w.Str(src.medium);
    w.Str(src.campaign);
    w.SeenOf(src);
  }
  w.SeenMap(p.referrers);
  w.Varint(p.consent.size());
  for (const auto& [purpose, c] : p.consent) {
    w.Str(purpose);
    w.Varint(c.granted);
    w.Signed(c.at_ms);
    w.Str(c.source);
  }
  w.Varint(p.merges.size());
  for (const MergeRecord& m : p.merges) {
    w.Signed(m.at_ms);
    w.Varint(m.absorbed);
    w.Str(m.message_id);
    w.Str(m.event_type);
    w.Ids(m.identifiers);
  }
  w.U64List(p.absorbed);
  w.U64List(p.separated);
  w.Varint(p.journeys.size());
  for (const auto& [id, j] : p.journeys) {
    w.Str(id);
    w.Signed(j.version);
    w.Str(j.stage);
    w.Varint(static_cast<uint64_t>(j.stage_index));
    w.Str(j.status);
    w.Signed(j.entered_ms);
    w.Signed(j.deadline_ms);
    w.Signed(j.started_ms);
    w.Str(j.entry_device);
    w.Str(j.entry_source);
    w.Str(j.entry_persona);
    w.Varint(j.history.size());
    for (const JourneyTransition& t : j.history) {
      w.Str(t.from);
      w.Str(t.to);
      w.Signed(t.at_ms);
      w.Varint(t.sequence);
      w.Str(t.message_id);
      w.Str(t.reason);
    }
  }
  w.Varint(p.bot_events);
  w.Varint(p.last_sequence);
  w.Str(p.persona.id);
  w.Double(p.persona.confidence);
  w.Signed(p.persona.since_ms);
  w.Varint(p.persona.history.size());
  for (const PersonaChange& c : p.persona.history) {
    w.Str(c.persona);
    w.Double(c.confidence);
    w.Signed(c.at_ms);
    w.Varint(c.sequence);
    w.Str(c.message_id);
  }
  w.Varint(kSignalKinds);
  for (size_t k = 0; k < kSignalKinds; ++k) {
    w.Varint(p.signals[k]);
    w.Varint(p.sessions.current_signals[k]);
  }
  w.Signed(p.sessions.previous_last_ms);
  w.Double(p.scores.conversion);
  w.Double(p.scores.churn);
  w.Signed(p.scores.at_ms);
  for (int64_t sampled : p.scores.sampled_ms) w.Signed(sampled);
  const TextSentiment& t = p.text;
  w.Varint(t.count);
  if (t.count > 0) {
    w.Double(t.mean);
    w.Varint(t.positive);
    w.Varint(t.negative);
    w.Double(t.latest);
    w.Str(t.latest_property);
    w.Signed(t.latest_ms);
    w.Str(t.latest_message_id);
    w.Str(t.intent);
    w.Double(t.intent_probability);
    w.Signed(t.intent_ms);
  }
  w.Finish();
}

absl::StatusOr<Profile> DecodeProfile(std::string_view bytes) {
  Reader r(bytes);
  const uint64_t version = r.Varint();
  if (version < kOldestVersion || version > kVersion) {
    return MakeError(absl::StatusCode::kDataLoss, "corrupt_profile",
                     "stored profile has an unknown format version");
  }
  Profile p;
  p.id = r.Varint();
  p.identifiers = r.Ids();
  for (size_t n = r.Count(); n > 0 && r.ok(); --n) {
    std::string key = r.Str();
    TraitValue t;
    t.json = r.Str();
    t.set_at_ms = r.Signed();
    p.traits.emplace(std::move(key), std::move(t));
  }
  p.seen = r.SeenOf();
  for (size_t n = r.Count(); n > 0 && r.ok(); --n) {
    std::string name = r.Str();
    p.event_counts[std::move(name)] = r.Varint();
  }
  p.revenue = r.Double();
  p.orders = r.Varint();
  p.first_order_ms = r.Signed();
  p.last_order_ms = r.Signed();
  if (version >= 7) {
    p.order_days = r.Varint();
    p.first_day_revenue = r.Double();
  } else if (p.orders > 0) {  // older profiles did not count days: every order was one
    p.order_days = p.orders;
    p.first_day_revenue = p.revenue / static_cast<double>(p.orders);
  }
  if (version >= 8) {
    int64_t day = 0;
    for (size_t n = r.Count(), i = 0; i < n && r.ok(); ++i) {
      if (i == 0) {
        day = r.Signed();
      } else {
        const uint64_t gap = r.Varint();
        day = gap > uint64_t{UINT32_MAX} ? int64_t{INT64_MAX} : day + static_cast<int64_t>(gap);
      }
      if (day < INT32_MIN || day > INT32_MAX) {
        return MakeError(absl::StatusCode::kDataLoss, "corrupt_profile",
                         "stored profile has an order day out of range");
      }
      p.order_day_list.push_back(static_cast<int32_t>(day));
    }
  } else if (p.orders > 0 && p.order_days <= 2) {
    // The days the first and last orders tell, when they are all of them.
    const int64_t first = learn::DayOfMillis(p.first_order_ms);
    const int64_t last = learn::DayOfMillis(p.last_order_ms);
    if (p.order_days == 1 && first == last) {
      p.order_day_list = {static_cast<int32_t>(first)};
    } else if (p.order_days == 2 && first < last) {
      p.order_day_list = {static_cast<int32_t>(first), static_cast<int32_t>(last)};
    }
  }
  Sessions& s = p.sessions;
  s.count = r.Varint();
  s.total_ms = r.Signed();
  s.views = r.Varint();
  s.current_start_ms = r.Signed();
  s.current_last_ms = r.Signed();
  s.current_events = r.Varint();
  s.current_views = r.Varint();
  for (size_t n = r.Count(); n > 0 && r.ok(); --n) {
    DeviceSeen d;
    d.type = r.Str();
    d.os = r.Str();
    d.os_version = r.Str();
    d.browser = r.Str();
    d.browser_version = r.Str();
    d.bot = r.Varint() != 0;
    static_cast<Seen&>(d) = r.SeenOf();
    p.devices.push_back(std::move(d));
  }
  r.SeenMap(&p.platforms);
  r.SeenMap(&p.channels);
  for (size_t n = r.Count(); n > 0 && r.ok(); --n) {
    SourceSeen src;
    src.source = r.Str();
    src.medium = r.Str();
    src.campaign = r.Str();
    static_cast<Seen&>(src) = r.SeenOf();
    p.sources.push_back(std::move(src));
  }
  r.SeenMap(&p.referrers);
  for (size_t n = r.Count(); n > 0 && r.ok(); --n) {
    std::string purpose = r.Str();
    ConsentState c;
    c.granted = r.Varint() != 0;
    c.at_ms = r.Signed();
    c.source = r.Str();
    p.consent.emplace(std::move(purpose), std::move(c));
  }
  for (size_t n = r.Count(); n > 0 && r.ok(); --n) {
    MergeRecord m;
    m.at_ms = r.Signed();
    m.absorbed = r.Varint();
    m.message_id = r.Str();
    m.event_type = r.Str();
    m.identifiers = r.Ids();
    p.merges.push_back(std::move(m));
  }
  p.absorbed = r.U64List();
  p.separated = r.U64List();
  for (size_t n = r.Count(); n > 0 && r.ok(); --n) {
    std::string id = r.Str();
    JourneyState j;
    j.version = r.Signed();
    j.stage = r.Str();
    j.stage_index = static_cast<int>(r.Varint());
    j.status = r.Str();
    j.entered_ms = r.Signed();
    j.deadline_ms = r.Signed();
    j.started_ms = r.Signed();
    j.entry_device = r.Str();
    j.entry_source = r.Str();
    if (version >= 4) j.entry_persona = r.Str();
    j.history.resize(r.Count());
    for (JourneyTransition& t : j.history) {
      t.from = r.Str();
      t.to = r.Str();
      t.at_ms = r.Signed();
      t.sequence = r.Varint();
      t.message_id = r.Str();
      t.reason = r.Str();
    }
    p.journeys.emplace(std::move(id), std::move(j));
  }
  p.bot_events = r.Varint();
  p.last_sequence = r.Varint();
  if (version >= 4) {
    p.persona.id = r.Str();
    p.persona.confidence = r.Double();
    p.persona.since_ms = r.Signed();
    p.persona.history.resize(r.Count());
    for (PersonaChange& c : p.persona.history) {
      c.persona = r.Str();
      c.confidence = r.Double();
      c.at_ms = r.Signed();
      c.sequence = r.Varint();
      c.message_id = r.Str();
    }
  }
  if (version >= 5) {
    // Kinds added later are read as zero from older rows; kinds beyond ours are skipped.
    for (size_t k = 0, kinds = r.Count(); k < kinds && r.ok(); ++k) {
      uint64_t all = r.Varint(), session = r.Varint();
      if (k < kSignalKinds) {
        p.signals[k] = static_cast<uint32_t>(all);
        p.sessions.current_signals[k] = static_cast<uint32_t>(session);
      }
    }
    p.sessions.previous_last_ms = r.Signed();
  }
  if (version >= 6) {
    p.scores.conversion = r.Double();
    p.scores.churn = r.Double();
    p.scores.at_ms = r.Signed();
    for (int64_t& sampled : p.scores.sampled_ms) sampled = r.Signed();
    TextSentiment& t = p.text;
    t.count = r.Varint();
    if (t.count > 0) {
      t.mean = r.Double();
      t.positive = r.Varint();
      t.negative = r.Varint();
      t.latest = r.Double();
      t.latest_property = r.Str();
      t.latest_ms = r.Signed();
      t.latest_message_id = r.Str();
      t.intent = r.Str();
      t.intent_probability = r.Double();
      t.intent_ms = r.Signed();
    }
  }
  if (!r.ok() || !r.at_end() || p.id == 0) {
    return MakeError(absl::StatusCode::kDataLoss, "corrupt_profile",
                     "stored profile is truncated or malformed");
  }
  return p;
}

}  // namespace whisperer::state
