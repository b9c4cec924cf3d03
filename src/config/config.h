// Config: everything `whisperer serve` can be told, from (lowest to highest precedence) built-in
// defaults, the YAML file (`--config`), environment variables, and flags.
//
// Every key, its default and its trade-off is documented in whisperer.example.yaml, which a
// unit test loads so the example cannot drift from the code. A bad file is refused at load with
// `file:line: reason`; unknown keys are errors (a typo must not silently fall back to a default).
//
// Environment variables: WHISPERER_CONFIG (file), WHISPERER_HOST, WHISPERER_PORT,
// WHISPERER_DATA, WHISPERER_LOG_LEVEL, WHISPERER_LOG_FORMAT, WHISPERER_STORAGE_SYNC, and
// WHISPERER_WRITE_KEY / WHISPERER_ADMIN_KEY (keys of the `default` workspace).
//
// Thread-safety: plain values; loaded once at start-up.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace whisperer::config {

// Where a value was written, for errors found after parsing (conditions are type-checked when
// the server compiles them): "file:line: path".
struct SourceRef {
  std::string file;
  int line = 0;
  std::string path;  // e.g. workspaces[0].journeys[1].stages[2].entry
  std::string Describe() const;
};

// A journey as written (server/ compiles its conditions; state/journeys.h runs it).
struct JourneyConfig {
  std::string id;
  int64_t version = 1;
  SourceRef version_ref;  // the `version` key, or the journey when it has none
  struct Stage {
    std::string id;
    std::string entry;  // condition (expr/expr.h)
    SourceRef entry_ref;
    int64_t timeout_ms = 0;  // 0: none
    std::string timeout_to;  // a later stage's id, or "exit"
    SourceRef timeout_ref;
  };
  std::vector<Stage> stages;
  std::string goal;  // condition; required
  SourceRef goal_ref;
  std::string exit;  // condition; optional
  SourceRef exit_ref;
  bool reentry = false;
};

// A persona as written (server/ compiles its conditions; state/personas.h scores it).
struct PersonaConfig {
  std::string id;
  struct Rule {
    std::string when;  // condition (expr/expr.h)
    SourceRef when_ref;
    double weight = 1;
  };
  std::vector<Rule> rules;
  double min_confidence = 0.5;
};

// An adaptation rule of POST /v1/experience (state/experience.h): hints to set when `when` holds.
struct AdaptationConfig {
  std::string id;
  std::string when;
  SourceRef when_ref;
  int64_t priority = 0;
  std::vector<std::pair<std::string, std::string>> hints;  // in the order written
};

// When the experience answer may carry urgency and scarcity triggers.
struct TriggerConfig {
  int64_t low_stock_at_most = 5;                // 0 < stock <= this: low_stock
  int64_t offer_ending_within_ms = 86'400'000;  // an offer ending within this: offer_ending
  int64_t viewing_now_at_least = 3;             // this many other customers viewing: viewing_now
  int64_t viewing_window_ms = 15 * 60'000;      // what "now" is for viewing_now
  int64_t max_per_profile_per_day = 3;          // answers with triggers per customer per UTC day
};

// The propensity models of a workspace (state/models.h): conversion and churn.
struct ModelsConfig {
  bool enabled = true;
  std::string conversion_goal = "Order Completed";  // the event a conversion is
  int64_t conversion_window_ms = 7 * 86'400'000LL;  // within this after the scored moment
  int64_t churn_inactive_ms = 30 * 86'400'000LL;    // churned: no event for this long
  std::string churn_cancel_event;                   // or this event ("" for none)
  double churn_high = 0.6;                          // risk level thresholds
  double churn_medium = 0.3;
  std::vector<std::string> traits = {};  // profile traits used as features
  int64_t sample_every_ms = 86'400'000;  // one example per customer and model per this
  uint64_t max_pending = 200'000;        // pending examples per model
  uint64_t version_every = 10'000;       // labelled examples per version
  double alpha = 0.1;                    // FTRL-Proximal learning rate
  double l1 = 1;
  double l2 = 1;
  int bits = 18;  // 2^bits hashed weights
  // Lifetime value (models.clv): refitted this often (0: only on demand), each customer's value
  // projected over `horizon` (whole days, at least 1d), discounted by this much per month.
  int64_t clv_horizon_ms = 365 * 86'400'000LL;
  int64_t clv_refit_every_ms = 86'400'000;
  double clv_monthly_discount = 0.01;
  // Event properties whose string values are scored for sentiment and intent (models.text.
  // properties): paths below `properties`, dots nesting ("review.body"). None by default.
  std::vector<std::string> text_properties = {};
};

// Next-best-action decisions (decide/): the action catalog, the decision points, and how the
// engine learns and when it acts alone.
struct ActionConfig {
  std::string id;
  std::string issue;           // what business need it serves ("retention"); required
  std::string group;           // a family within the issue ("discounts"); required
  std::string kind = "offer";  // offer, content, message, urgency, webhook
  double value = 1;            // what one success is worth to the business
  double cost = 0;             // what showing it costs (reported; budgets later)
  double lever = 1;            // a business weight on its priority
  std::string consent;         // the consent purpose it needs ("" for none)
  SourceRef consent_ref;
  int64_t valid_from_ms = 0;   // 0: always
  int64_t valid_until_ms = 0;  // 0: no end
  // Conditions (state/conditions.h): may this customer ever get it, is it relevant now, is it in
  // the customer's interest. Empty: true.
  std::string eligibility, applicability, suitability;
  SourceRef eligibility_ref, applicability_ref, suitability_ref;
  struct Weight {
    std::string when;
    SourceRef when_ref;
    double weight = 1;
  };
  std::vector<Weight> weights;  // context weights: the product of those that hold
  // Contact policy of this action: at most `contact_max` decisions acted on per customer within
  // `contact_per` (0: no limit), and none for a customer with `suppress_negatives` negative
  // outcomes within `suppress_within` (0: never suppressed).
  int64_t contact_max = 0;
  int64_t contact_per_ms = 0;
  int64_t suppress_negatives = 0;
  int64_t suppress_within_ms = 0;
  // Budget across all customers (0: none): at most `budget_per_day` acted on per UTC day, and
  // at most `budget_total_spend` of `cost` in all.
  int64_t budget_per_day = 0;
  double budget_total_spend = 0;
  struct Treatment {
    std::string id;
    std::string channel;  // email, sms, push, in_app, web, phone
  };
  std::vector<Treatment> treatments;  // at least one
  // A/B/n content variants (subject lines, copy), chosen by a Thompson-sampling bandit per
  // action; none: no variant.
  struct Variant {
    std::string id;
    std::string content;  // what the caller renders (free text, returned as is)
  };
  std::vector<Variant> variants;
};

struct DecisionPointConfig {
  std::string id;
  std::vector<std::string> actions;  // action ids
  std::vector<std::string> issues;   // and every action of these issues
  std::vector<std::string> groups;   // and of these groups
  int64_t slots = 1;                 // answered when the request does not say
  std::string fallback;  // the action a held decision falls back to when its approval expires
  // A slot still without a reward `reward_wait` after it was acted on (0: never) is given
  // `default_reward`, and later rewards of it are acknowledged without effect.
  int64_t reward_wait_ms = 0;
  double default_reward = 0;
  SourceRef ref;
};

// A goal event (a track event by name) that rewards the customer's recent decisions: every slot
// acted on within `within_ms` before it, at the listed decision points (empty: any), gets
// `value`, as if posted to /v1/rewards with `outcome` (when given) or `value`.
struct GoalConfig {
  std::string event;
  std::string outcome;  // "" for a plain value
  double value = 1;
  int64_t within_ms = 7 * 86'400'000LL;
  std::vector<std::string> decision_points;
};

// The confidence thresholds when the config sets none (in every environment).
inline constexpr double kDefaultAutonomous = 0.85;
inline constexpr double kDefaultSupervised = 0.65;

struct DecisionsConfig {
  bool configured = false;                 // a `decisions` block was given
  std::string environment = "production";  // production, staging, development
  // Overrides of the environment's defaults (negative: not set).
  double exploration = -1;          // share of decisions that pick uniformly among the candidates
  double autonomous = -1;           // confidence from which the engine acts alone
  double supervised = -1;           // from which it acts and flags the decision for review
  double learning_rate = -1;        // scales each bandit update
  double control_group = 0.02;      // customers who get a uniformly random action, to measure lift
  std::string policy = "thompson";  // thompson, linucb, epsilon_greedy, softmax
  double ucb_alpha = 1;             // linucb: mean + alpha * standard deviation
  double temperature = 0.1;         // softmax
  int bits = 16;                    // 2^bits weights per decision point
  double prior_variance = 0.05;
  double noise = 0.25;
  std::string aggregate = "first";  // several rewards of one slot: first or sum
  std::map<std::string, double> outcomes = {{"clicked", 1},   {"converted", 1}, {"accepted", 1},
                                            {"dismissed", 0}, {"ignored", 0},   {"rejected", 0}};
  // Contact policy per channel: at most `max` actions on that channel per customer within `per`.
  struct ChannelLimit {
    int64_t max = 0;
    int64_t per_ms = 0;
  };
  std::map<std::string, ChannelLimit> channel_limits;
  // Outcomes that count as negative for suppression (besides any reward below 0). Default: those
  // of dismissed and rejected that `outcomes` names.
  std::vector<std::string> negative_outcomes = {"dismissed", "rejected"};
  std::vector<GoalConfig> goals;
  // Channel choice among an action's treatments by each customer's engagement (Thompson sampling
  // on a Beta posterior shrunk towards the workspace's rate with `channel_prior_strength`
  // pseudo-messages). Off: the first treatment the request allows.
  bool channel_choice = false;
  double channel_prior_strength = 10;
  // The next best send time in each answer: the customer's hour-of-week engagement, smoothed by
  // `send_smoothing` pseudo-engagements shaped like the workspace's, explored with
  // `send_exploration`, at least `send_min_lead_ms` ahead; `send_default_hour` local time for a
  // workspace without history.
  bool send_time = false;
  double send_smoothing = 5;
  double send_exploration = 0.1;
  int64_t send_min_lead_ms = 0;
  int64_t send_default_hour = 10;
  // Held decisions: how long an approval waits, what an approval or a rejection teaches the
  // bandit, and what the reviewer sees per action kind.
  int64_t approval_expiry_ms = 24 * 3'600'000LL;
  double approve_reward = 1;
  double reject_reward = 0;
  std::map<std::string, std::vector<std::string>> review_templates;  // kind -> fields
  std::vector<ActionConfig> actions;
  std::vector<DecisionPointConfig> points;
};

struct WorkspaceConfig {
  std::string name;
  // Keys given here are used as they are; a workspace with none gets one of each kind,
  // generated once and kept in the data directory.
  std::vector<std::string> write_keys = {};
  std::vector<std::string> admin_keys = {};
  // The environment variable a key list came from (WHISPERER_WRITE_KEY, WHISPERER_ADMIN_KEY),
  // which an error about its key names; empty for a list from the file.
  std::string write_keys_variable = {};
  std::string admin_keys_variable = {};
  // Identity resolution rules (identity/resolver.h). Unset ones keep the built-in defaults.
  struct Identity {
    std::optional<std::vector<std::string>> blocked_values;
    std::optional<std::map<std::string, size_t>> limits;
    std::optional<size_t> max_identifiers;
    std::optional<size_t> max_merges;
    std::optional<std::vector<std::string>> priority;
    std::vector<std::string> external_ids;
  } identity = {};
  int64_t session_timeout_ms = 30 * 60 * 1000;
  // Consent purposes beyond the standard ones (state/profile.h).
  std::vector<std::string> consent_purposes = {};
  // A consent manager's categories, as events state them in context.consent.categoryPreferences,
  // and the purposes each stands for (state::ConsentPurposes).
  struct ConsentCategory {
    std::string name;
    std::vector<std::string> purposes;
    SourceRef ref;
  };
  std::vector<ConsentCategory> consent_categories = {};
  std::vector<JourneyConfig> journeys = {};
  std::vector<PersonaConfig> personas = {};
  std::vector<AdaptationConfig> adaptations = {};
  TriggerConfig triggers = {};
  ModelsConfig models = {};
  DecisionsConfig decisions = {};
};

struct Config {
  struct Server {
    std::string host = "0.0.0.0";
    uint16_t port = 8080;
    size_t threads = 0;  // 0: every core (common/cores.h)
    int64_t read_timeout_ms = 30'000;
    int64_t shutdown_timeout_ms = 10'000;
    bool trust_forwarded_for = false;
  } server;
  struct Storage {
    std::string path = "./data";
    bool sync = false;
    // CPU priority of RocksDB's flush and compaction threads: "idle", "low" or "normal"
    // (storage/store.h, storage::BackgroundPriority).
    std::string background_priority = "idle";
    // Writes are refused (503 storage_unavailable) while the data directory's disk has less
    // than this many MiB free; 0 never refuses (storage/store.h, Options::min_free_bytes).
    uint64_t min_free_mb = 128;
  } storage;
  struct Ingest {
    int64_t dedupe_window_ms = 7LL * 24 * 3600 * 1000;
    size_t max_event_bytes = 32 * 1024;
    size_t max_request_bytes = 500 * 1024;
    size_t max_batch_events = 2500;
    size_t shards = 0;  // 0: half the cores (common/cores.h)
    size_t max_queued_events = 200'000;
    // Resolve identities and update profiles as events arrive; false only stores events.
    bool profiles = true;
    // Memory for profiles held between events, in MiB; beyond it profiles are read again from
    // the store when needed.
    size_t profile_cache_mb = 1024;
  } ingest;
  struct Log {
    std::string level = "info";
    std::string format = "json";
  } log;
  // Empty: one workspace named `default`.
  std::vector<WorkspaceConfig> workspaces;
  // Where the values Validate checks were set, by key ("server.host"): "file.yaml:3", or
  // "environment variable WHISPERER_HOST", or "--host"; absent for a default. Validate's errors
  // start with it, so that they point at the place to fix.
  std::map<std::string, std::string> origin;
};

// Parses YAML text; `filename` is used in error messages only.
absl::StatusOr<Config> ParseConfig(std::string_view yaml, std::string_view filename);

// An action written as JSON (PUT /v1/actions/{id}), checked by the same rules as the config's
// `actions` entries. The body's `id`, when given, must be `id`. 400 `invalid_action` naming the
// field (its key path within the action, such as `treatments[0].channel`), `malformed_json`.
absl::StatusOr<ActionConfig> ParseActionJson(std::string_view json, std::string_view id);
// A config error about an action parsed or compiled from a body rooted at `action` as the
// API's: 400 `invalid_action` naming the field within the action, without the file and line.
absl::Status ActionErrorOf(const absl::Status& config_error);
// The action as JSON, in the shape ParseActionJson reads (durations as 7d, times ISO-8601).
std::string ActionJson(const ActionConfig& a);
absl::StatusOr<Config> LoadConfigFile(const std::string& path);

using Getenv = std::function<const char*(const char*)>;
// Applies the WHISPERER_* variables above to `config`.
absl::Status ApplyEnvironment(const Getenv& getenv, Config* config);

// Checks cross-field rules (non-empty names, limits that fit together). Called after every
// source has been applied.
absl::Status Validate(const Config& config);

}  // namespace whisperer::config
