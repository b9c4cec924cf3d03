#include "config/config.h"

#include <gtest/gtest.h>

#include <map>

#include "common/status.h"
#include "common/strings.h"

namespace whisperer::config {
namespace {

TEST(ConfigTest, EmptyIsDefaults) {
  auto c = ParseConfig("", "x.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server.port, 8080);
  EXPECT_EQ(c->storage.path, "./data");
  EXPECT_EQ(c->ingest.max_event_bytes, 32u * 1024);
  EXPECT_EQ(c->ingest.max_request_bytes, 500u * 1024);
  EXPECT_EQ(c->ingest.max_batch_events, 2500u);
  EXPECT_EQ(c->ingest.dedupe_window_ms, 7LL * 86'400'000);
  EXPECT_TRUE(c->workspaces.empty());
}

TEST(ConfigTest, ExampleFileLoadsAndMatchesDefaults) {
  // The commented example must stay loadable and say the truth about the defaults.
  auto c = LoadConfigFile(WHISPERER_SOURCE_DIR "/whisperer.example.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  Config d;
  EXPECT_EQ(c->server.host, d.server.host);
  EXPECT_EQ(c->server.port, d.server.port);
  EXPECT_EQ(c->server.threads, d.server.threads);
  EXPECT_EQ(c->server.read_timeout_ms, d.server.read_timeout_ms);
  EXPECT_EQ(c->server.shutdown_timeout_ms, d.server.shutdown_timeout_ms);
  EXPECT_EQ(c->server.trust_forwarded_for, d.server.trust_forwarded_for);
  EXPECT_EQ(c->storage.path, d.storage.path);
  EXPECT_EQ(c->storage.sync, d.storage.sync);
  EXPECT_EQ(c->storage.background_priority, d.storage.background_priority);
  EXPECT_EQ(c->storage.min_free_mb, d.storage.min_free_mb);
  EXPECT_EQ(c->ingest.dedupe_window_ms, d.ingest.dedupe_window_ms);
  EXPECT_EQ(c->ingest.max_event_bytes, d.ingest.max_event_bytes);
  EXPECT_EQ(c->ingest.max_request_bytes, d.ingest.max_request_bytes);
  EXPECT_EQ(c->ingest.max_batch_events, d.ingest.max_batch_events);
  EXPECT_EQ(c->ingest.shards, d.ingest.shards);
  EXPECT_EQ(c->ingest.max_queued_events, d.ingest.max_queued_events);
  EXPECT_EQ(c->log.level, d.log.level);
  EXPECT_EQ(c->log.format, d.log.format);
  EXPECT_EQ(c->ingest.profiles, d.ingest.profiles);
  EXPECT_EQ(c->ingest.profile_cache_mb, d.ingest.profile_cache_mb);
  ASSERT_EQ(c->workspaces.size(), 1u);
  EXPECT_EQ(c->workspaces[0].name, "default");
  WorkspaceConfig dw;
  EXPECT_EQ(c->workspaces[0].session_timeout_ms, dw.session_timeout_ms);
  EXPECT_EQ(c->workspaces[0].consent_purposes, dw.consent_purposes);
  EXPECT_EQ(c->workspaces[0].identity.external_ids, dw.identity.external_ids);
  // The identity values are compared with the resolver's defaults in server/workspaces_test.cc.
  EXPECT_TRUE(c->workspaces[0].identity.blocked_values.has_value());
  const ModelsConfig& m = c->workspaces[0].models;
  const ModelsConfig dm;
  EXPECT_EQ(m.clv_horizon_ms, dm.clv_horizon_ms);
  EXPECT_EQ(m.clv_refit_every_ms, dm.clv_refit_every_ms);
  EXPECT_EQ(m.clv_monthly_discount, dm.clv_monthly_discount);
  EXPECT_EQ(m.text_properties, dm.text_properties);
  const DecisionsConfig& dc = c->workspaces[0].decisions;
  const DecisionsConfig dd;
  EXPECT_TRUE(dc.configured);
  EXPECT_EQ(dc.environment, dd.environment);
  EXPECT_EQ(dc.exploration, dd.exploration);  // unset: the environment's
  EXPECT_EQ(dc.autonomous, dd.autonomous);
  EXPECT_EQ(dc.control_group, dd.control_group);
  EXPECT_EQ(dc.policy, dd.policy);
  EXPECT_EQ(dc.bits, dd.bits);
  EXPECT_EQ(dc.prior_variance, dd.prior_variance);
  EXPECT_EQ(dc.noise, dd.noise);
  EXPECT_EQ(dc.ucb_alpha, dd.ucb_alpha);
  EXPECT_EQ(dc.temperature, dd.temperature);
  EXPECT_EQ(dc.aggregate, dd.aggregate);
  EXPECT_EQ(dc.outcomes, dd.outcomes);
  EXPECT_EQ(dc.actions.size(), 2u);
  EXPECT_EQ(dc.points.size(), 1u);
  EXPECT_TRUE(Validate(*c).ok());
}

TEST(ConfigTest, ReadsWorkspaceIdentitySessionsAndConsent) {
  auto c = ParseConfig(R"(
ingest: {profiles: false, profile_cache_mb: 64}
workspaces:
  - name: shop
    identity:
      blocked_values: [guest]
      limits: {userId: 1, email: 2, crm_id: 1}
      max_identifiers: 200
      max_merges: 20
      priority: [crm_id, userId, anonymousId]
      external_ids: [crm_id]
    sessions: {timeout: 10m}
    consent:
      purposes: [profiling]
      categories: {C0004: [marketing_email, profiling], "Strictly Necessary": [analytics]}
)",
                       "x.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_FALSE(c->ingest.profiles);
  EXPECT_EQ(c->ingest.profile_cache_mb, 64u);
  const WorkspaceConfig& ws = c->workspaces[0];
  EXPECT_EQ(*ws.identity.blocked_values, std::vector<std::string>{"guest"});
  EXPECT_EQ(ws.identity.limits->at("email"), 2u);
  EXPECT_EQ(ws.identity.limits->at("crm_id"), 1u);
  EXPECT_EQ(ws.identity.max_identifiers, 200u);
  EXPECT_EQ(ws.identity.max_merges, 20u);
  EXPECT_EQ(ws.identity.priority->front(), "crm_id");
  EXPECT_EQ(ws.session_timeout_ms, 600'000);
  EXPECT_EQ(ws.consent_purposes, std::vector<std::string>{"profiling"});
  ASSERT_EQ(ws.consent_categories.size(), 2u);
  EXPECT_EQ(ws.consent_categories[0].name, "C0004");
  EXPECT_EQ(ws.consent_categories[0].purposes,
            (std::vector<std::string>{"marketing_email", "profiling"}));
  EXPECT_EQ(ws.consent_categories[1].name, "Strictly Necessary");
  EXPECT_EQ(ws.consent_categories[1].ref.path,
            "workspaces[0].consent.categories.Strictly Necessary");
}

TEST(ConfigTest, ReadsValues) {
  auto c = ParseConfig(R"(
server: {host: 127.0.0.1, port: 9000, read_timeout: 500ms}
storage: {path: /tmp/x, sync: true, background_priority: low, min_free_mb: 2048}
ingest: {dedupe_window: 1h, shards: 3}
log: {level: debug, format: text}
workspaces:
  - name: shop
    write_keys: [w1, w2]
    admin_keys: [a1]
)",
                       "x.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->server.host, "127.0.0.1");
  EXPECT_EQ(c->server.port, 9000);
  EXPECT_EQ(c->server.read_timeout_ms, 500);
  EXPECT_TRUE(c->storage.sync);
  EXPECT_EQ(c->storage.background_priority, "low");
  EXPECT_EQ(c->storage.min_free_mb, 2048u);
  EXPECT_EQ(c->ingest.dedupe_window_ms, 3'600'000);
  EXPECT_EQ(c->ingest.shards, 3u);
  EXPECT_EQ(c->log.format, "text");
  ASSERT_EQ(c->workspaces.size(), 1u);
  EXPECT_EQ(c->workspaces[0].write_keys, (std::vector<std::string>{"w1", "w2"}));
}

TEST(ConfigTest, ErrorsNameFileLineAndKey) {
  struct Case {
    const char* yaml;
    const char* expect;  // substring of the message
    const char* field;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"server:\n  prot: 1\n", "x.yaml:2: server.prot: unknown key", "server.prot"},
           {"server:\n  port: 70000\n", "x.yaml:2: server.port", "server.port"},
           {"server:\n  port: eighty\n", "whole number", "server.port"},
           {"storage:\n  sync: maybe\n", "true or false", "storage.sync"},
           {"storage:\n  background_priority: realtime\n",
            "x.yaml:2: storage.background_priority: "
            "must be one of idle, low, normal",
            "storage.background_priority"},
           {"storage:\n  min_free_mb: -1\n", "x.yaml:2: storage.min_free_mb",
            "storage.min_free_mb"},
           {"ingest:\n  dedupe_window: 7w\n", "x.yaml:2: ingest.dedupe_window",
            "ingest.dedupe_window"},
           {"log:\n  level: loud\n", "log.level", "log.level"},
           {"workspaces:\n  - name: Bad Name\n", "workspaces[0].name", "workspaces[0].name"},
           {"workspaces:\n  - name: a\n  - name: a\n", "twice", "workspaces[1].name"},
           {"bogus: 1\n", "x.yaml:1: bogus: unknown key", "bogus"},
           {"log: {level: error, level: debug}\n", "x.yaml:1: log.level: set twice", "log.level"},
           {"server:\n  port: 1\nserver:\n  port: 2\n", "x.yaml:3: server: set twice", "server"},
           {"server:\n  port: 1\n---\nserver:\n  port: 2\n", "x.yaml:4: a second YAML document",
            ""},
           {"server:\n  read_timeout: 106752d\n",
            "x.yaml:2: server.read_timeout: '106752d' is "
            "longer than 36500d",
            "server.read_timeout"},
           {"workspaces:\n  - name: a\n    journeys:\n      - id: j\n        stages: [{id: s, "
            "entry: 'true'}]\n",
            "needs a goal", "workspaces[0].journeys[0].goal"},
           {"workspaces:\n  - name: a\n    journeys:\n      - id: j\n        goal: 'true'\n"
            "        stages: [{id: s, entry: 'true'}, {id: s, entry: 'true'}]\n",
            "names a stage twice", "workspaces[0].journeys[0].stages[1].id"},
           {"workspaces:\n  - name: a\n    journeys:\n      - id: j\n        goal: 'true'\n"
            "        stages: [{id: a, entry: 'true'}, {id: converted, entry: 'true'}]\n",
            "not `exit`, `converted` or `exited`", "workspaces[0].journeys[0].stages[1].id"},
           {"workspaces:\n  - name: a\n    journeys:\n      - id: j\n        goal: 'true'\n"
            "        stages:\n          - {id: a, entry: 'true'}\n"
            "          - {id: b, entry: 'true', timeout: {after: 3s, to: a}}\n",
            "x.yaml:8: workspaces[0].journeys[0].stages[1].timeout.to: must name a later stage",
            "workspaces[0].journeys[0].stages[1].timeout.to"},
           {"workspaces:\n  - name: a\n    journeys:\n      - id: j\n        goal: 'true'\n"
            "        stages: [{id: a, entry: 'true', timeout: {after: 3s}}]\n",
            "needs `after` (a duration above 0) and `to`",
            "workspaces[0].journeys[0].stages[0].timeout"},
           // A key without a value, named on its own line (yaml-cpp places the null further
           // down, past the comment, on the next key's line).
           {"server:\n  port:\n  # the port\n\nworkspaces:\n  - name: a\n",
            "x.yaml:2: server.port: has no value: write one, or leave the key out for its default",
            "server.port"},
           {"workspaces:\n  - name: a\n    sessions: {timeout: ~}\n",
            "x.yaml:3: workspaces[0].sessions.timeout: has no value",
            "workspaces[0].sessions.timeout"},
           // A list item left empty, and a section whose entries are all commented out.
           {"workspaces:\n  - name: a\n    identity:\n      blocked_values:\n        - guest\n"
            "        -\n\n        # more later\n",
            "x.yaml:6: workspaces[0].identity.blocked_values[1]: has no value",
            "workspaces[0].identity.blocked_values[1]"},
           {"workspaces:\n  - name: a\n    journeys:\n      # - id: j1\n      #   goal: 'true'\n"
            "    sessions: {timeout: 5m}\n",
            "x.yaml:3: workspaces[0].journeys: has no value: write one, or leave the key out for "
            "its "
            "default (a list or mapping whose entries are all commented out is no value)",
            "workspaces[0].journeys"},
           {"workspaces:\n  - name: a\n    identity:\n      limits: {fax: 1}\n",
            "x.yaml:4: workspaces[0].identity.limits.fax: unknown identifier type",
            "workspaces[0].identity.limits.fax"},
           {"workspaces:\n  - name: a\n    identity:\n      limits: {userId: 0}\n",
            "whole number from 1", "workspaces[0].identity.limits.userId"},
           {"workspaces:\n  - name: a\n    identity:\n      max_identifiers: 100001\n",
            "x.yaml:4: workspaces[0].identity.max_identifiers: must be a whole number from 1 to "
            "100000",
            "workspaces[0].identity.max_identifiers"},
           {"workspaces:\n  - name: a\n    identity:\n      priority: [userId, crm]\n",
            "unknown identifier type", "workspaces[0].identity.priority[1]"},
           {"workspaces:\n  - name: a\n    identity:\n      priority: [email, userId, email]\n",
            "listed twice", "workspaces[0].identity.priority[2]"},
           {"workspaces:\n  - name: a\n    identity:\n      external_ids: [email]\n", "built-in",
            "workspaces[0].identity.external_ids[0]"},
           {"workspaces:\n  - name: a\n    sessions: {timeout: 10ms}\n", "at least 1s",
            "workspaces[0].sessions.timeout"},
           {"workspaces:\n  - name: a\n    consent: {purposes: [\"bad purpose\"]}\n", "letters",
            "workspaces[0].consent.purposes[0]"},
           {"workspaces:\n  - name: a\n    consent: {categories: [C0004]}\n", "must be a mapping",
            "workspaces[0].consent.categories"},
           {"workspaces:\n  - name: a\n    consent: {categories: {C0004: []}}\n",
            "at least one purpose", "workspaces[0].consent.categories.C0004"},
           {"workspaces:\n  - name: a\n    consent: {categories: {C0004: analytics}}\n",
            "list of strings", "workspaces[0].consent.categories.C0004"},
           {"workspaces:\n  - name: a\n    personas:\n      - id: p\n", "needs a list of rules",
            "workspaces[0].personas[0].rules"},
           {"workspaces:\n  - name: a\n    personas:\n      - id: p\n"
            "        rules: [{when: 'true', weight: -1}]\n",
            "x.yaml:5: workspaces[0].personas[0].rules[0].weight: must be a number from 0.001",
            "workspaces[0].personas[0].rules[0].weight"},
           {"workspaces:\n  - name: a\n    personas:\n      - id: p\n        min_confidence: 2\n"
            "        rules: [{when: 'true'}]\n",
            "must be a number from 0 to 1", "workspaces[0].personas[0].min_confidence"},
           {"workspaces:\n  - name: a\n    personas:\n      - {id: p, rules: [{when: 'true'}]}\n"
            "      - {id: p, rules: [{when: 'true'}]}\n",
            "names a persona twice", "workspaces[0].personas[1].id"},
           {"workspaces:\n  - name: a\n    adaptations:\n      - {id: r, when: 'true'}\n",
            "needs a mapping of hints", "workspaces[0].adaptations[0].hints"},
           {"workspaces:\n  - name: a\n    adaptations:\n      - {id: r, when: 'true', hints: {a: "
            "''}}\n",
            "non-empty string", "workspaces[0].adaptations[0].hints.a"},
           {"workspaces:\n  - name: a\n    adaptations:\n      - {id: r, hints: {a: b}}\n",
            "needs a condition", "workspaces[0].adaptations[0].when"},
           {"workspaces:\n  - name: a\n    triggers: {viewing_window: 2h}\n", "from 1m to 1h",
            "workspaces[0].triggers.viewing_window"},
           {"workspaces:\n  - name: a\n    triggers: {low_stock: 3}\n", "unknown key",
            "workspaces[0].triggers.low_stock"},
           {"workspaces:\n  - name: a\n    models:\n      clv: {horizon: 12h}\n",
            "x.yaml:4: workspaces[0].models.clv.horizon: must be a whole number of days, at "
            "least 1d",
            "workspaces[0].models.clv.horizon"},
           {"workspaces:\n  - name: a\n    models:\n      clv: {horizon: 36h}\n",
            "whole number of days", "workspaces[0].models.clv.horizon"},
           {"workspaces:\n  - name: a\n    models:\n      clv: {horizon: soon}\n", "not a duration",
            "workspaces[0].models.clv.horizon"},
           {"workspaces:\n  - name: a\n    models:\n      clv: {refit_every: 10s}\n",
            "must be 0 (only on demand) or at least 1m", "workspaces[0].models.clv.refit_every"},
           {"workspaces:\n  - name: a\n    models:\n      clv: {monthly_discount: 1.5}\n",
            "x.yaml:4: workspaces[0].models.clv.monthly_discount: must be a number from 0 to 1",
            "workspaces[0].models.clv.monthly_discount"},
           {"workspaces:\n  - name: a\n    models:\n      clv: {discount: 0.1}\n", "unknown key",
            "workspaces[0].models.clv.discount"},
           {"workspaces:\n  - name: a\n    models:\n      text: {properties: comment}\n",
            "must be a list of strings", "workspaces[0].models.text.properties"},
           {"workspaces:\n  - name: a\n    models:\n      text:\n        properties:\n"
            "          - comment\n          - review..body\n",
            "x.yaml:7: workspaces[0].models.text.properties[1]: must be a property path",
            "workspaces[0].models.text.properties[1]"},
           {"workspaces:\n  - name: a\n    models:\n      text: {properties: [\"\"]}\n",
            "non-empty string", "workspaces[0].models.text.properties[0]"},
           {"workspaces:\n  - name: a\n    models:\n      text: {properties: [.comment]}\n",
            "must be a property path", "workspaces[0].models.text.properties[0]"},
           {"workspaces:\n  - name: a\n    models:\n      text: {properties: [\"my note\"]}\n",
            "must be a property path", "workspaces[0].models.text.properties[0]"},
           {"workspaces:\n  - name: a\n    models:\n      text: {properties: [properties.x]}\n",
            "leave out `properties.`", "workspaces[0].models.text.properties[0]"},
           {"workspaces:\n  - name: a\n    models:\n      text: {properties: [a, b, a]}\n",
            "'a' is listed twice", "workspaces[0].models.text.properties[2]"},
           {"workspaces:\n  - name: a\n    models: {traits: [plan, seats, plan]}\n",
            "x.yaml:3: workspaces[0].models.traits[2]: 'plan' is listed twice",
            "workspaces[0].models.traits[2]"},
           {"workspaces:\n  - name: a\n    write_keys: [wk_1, wk_1]\n", "listed twice",
            "workspaces[0].write_keys[1]"},
           // Blocked values compare case-insensitively: Test and test are one.
           {"workspaces:\n  - name: a\n    identity:\n      blocked_values: [x, Test, test]\n",
            "x.yaml:4: workspaces[0].identity.blocked_values[2]: 'test' is listed twice",
            "workspaces[0].identity.blocked_values[2]"},
           // The thresholds' rule holds for a default too.
           {"workspaces:\n  - name: a\n    decisions:\n      thresholds: {supervised: 0.9}\n",
            "supervised (0.9) must not be above autonomous (0.85, the default)",
            "workspaces[0].decisions.thresholds"},
           {"workspaces:\n  - name: a\n    decisions:\n      thresholds: {autonomous: 0.5}\n",
            "supervised (0.65, the default) must not be above autonomous (0.5)",
            "workspaces[0].decisions.thresholds"},
           // Mappings of the user's own keys take each key once too.
           {"workspaces:\n  - name: a\n    identity:\n      limits: {userId: 1, userId: 5}\n",
            "x.yaml:4: workspaces[0].identity.limits.userId: set twice",
            "workspaces[0].identity.limits.userId"},
           {"workspaces:\n  - name: a\n    consent: {categories: {C1: [analytics], C1: "
            "[marketing_email]}}\n",
            "set twice", "workspaces[0].consent.categories.C1"},
           {"workspaces:\n  - name: a\n    models:\n      text: {fields: [a]}\n", "unknown key",
            "workspaces[0].models.text.fields"},
           {"server: [1, 2\n", "x.yaml:", ""},
           // A persona's condition written twice would count twice.
           {"workspaces:\n  - name: a\n    personas:\n      - id: p\n        rules:\n"
            "          - {when: \"profile.returning\", weight: 1}\n"
            "          - {when: \"profile.returning\", weight: 2}\n",
            "x.yaml:7: workspaces[0].personas[0].rules[1].when: the condition of rules[0] again",
            "workspaces[0].personas[0].rules[1].when"},
           // 0 would mean never, as leaving it out does: not what one writes 0s for.
           {"workspaces:\n  - name: a\n    decisions:\n      actions: [{id: x, issue: i, group: "
            "g, treatments: [{id: t, channel: web}]}]\n      decision_points: [{id: p, issues: "
            "[i], reward_wait: 0s}]\n",
            "x.yaml:5: workspaces[0].decisions.decision_points[0].reward_wait: must be above 0",
            "workspaces[0].decisions.decision_points[0].reward_wait"},
       }) {
    auto r = ParseConfig(c.yaml, "x.yaml");
    ASSERT_FALSE(r.ok()) << c.yaml;
    EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.expect), absl::string_view::npos)
        << c.yaml << " -> " << r.status().message();
    EXPECT_EQ(ErrorFieldOf(r.status()), c.field) << c.yaml;
  }
}

// YAML a hand (or a fuzzer) can write that no setting reads: refused with one line naming
// where, quickly, and never by a crash.
TEST(ConfigTest, TreesNoSettingReadsAreRefusedOnOneLine) {
  struct Case {
    std::string yaml;
    const char* expect;  // the message's text after "whisperer: "
  };
  // Aliases repeated into each other, each level ten times the last: 10^8 values as written.
  std::string laughs = "a0: &a0 [a, a, a, a, a, a, a, a, a, a]\n";
  for (int level = 1; level < 8; ++level) {
    StrAppend(&laughs, "a", level, ": &a", level, " [");
    for (int i = 0; i < 10; ++i) StrAppend(&laughs, i ? ", " : "", "*a", level - 1);
    laughs += "]\n";
  }
  std::string deep = "x: " + std::string(100, '[') + std::string(100, ']') + "\n";
  std::string deeper = "x: " + std::string(600, '[') + std::string(600, ']') + "\n";
  for (const Case& c : std::initializer_list<Case>{
           {"log: &a {level: *a}\n",
            "x.yaml:1: log.level: an alias inside the node it names (&anchor ... *anchor within "
            "it): the value would never end"},
           {"workspaces: &w [*w]\n", "x.yaml:1: workspaces[0]: an alias inside the node it names"},
           {laughs,
            "the config expands to more than 1000000 values, more than its text holds: "
            "aliases repeated into each other"},
           {"? [a]\n: 1\n",
            "x.yaml:1: (top level): a key must be a name, not a list, a mapping or nothing"},
           {"{a: 1}: 2\n", "x.yaml:1: (top level): a key must be a name"},
           {"? \n: 1\n", "a key must be a name"},
           {"server: {? [host] : x}\n", "x.yaml:1: server: a key must be a name"},
           {"workspaces:\n  - name: a\n    identity:\n      limits: {[userId]: 1}\n",
            "x.yaml:4: workspaces[0].identity.limits: a key must be a name"},
           {deep, "x.yaml:1: x[0][0][0]"},
           {deeper, "x.yaml:1: (nesting): nests deeper than"},
           // A line break in a key or value is escaped: the message stays one line.
           {"\"a\\nb\": 1\n", "x.yaml:1: a\\nb: unknown key"},
           {"server:\n  read_timeout: [30s]\n",
            "x.yaml:2: server.read_timeout: must be a duration such as 500ms, 30s, 5m, 7d"},
           {"workspaces:\n  - name: a\n    sessions: {timeout: {a: 1}}\n",
            "workspaces[0].sessions.timeout: must be a duration"},
       }) {
    absl::StatusOr<Config> r = ParseConfig(c.yaml, "x.yaml");
    ASSERT_FALSE(r.ok()) << c.yaml;
    const std::string_view message = ToStd(r.status().message());
    EXPECT_NE(message.find(c.expect), std::string_view::npos) << c.yaml << " -> " << message;
    EXPECT_EQ(message.find('\n'), std::string_view::npos) << message;
  }
  // The budget grows with the text: 1.1 million values are refused from a few hundred bytes,
  // and read (then refused for their unknown keys) from a file long enough to hold them.
  std::string six = "a0: &a0 [a, a, a, a, a, a, a, a, a, a]\n";
  for (int level = 1; level < 6; ++level) {
    StrAppend(&six, "a", level, ": &a", level, " [");
    for (int i = 0; i < 10; ++i) StrAppend(&six, i ? ", " : "", "*a", level - 1);
    six += "]\n";
  }
  absl::StatusOr<Config> small = ParseConfig(six, "x.yaml");
  ASSERT_FALSE(small.ok());
  EXPECT_NE(small.status().message().find("expands to more than"), absl::string_view::npos);
  absl::StatusOr<Config> padded =
      ParseConfig("# " + std::string(2'000'000, '.') + "\n" + six, "x.yaml");
  ASSERT_FALSE(padded.ok());
  EXPECT_NE(padded.status().message().find("a0: unknown key"), absl::string_view::npos)
      << padded.status();
  // A value echoed in the message is cut.
  absl::StatusOr<Config> long_value =
      ParseConfig("server:\n  read_timeout: " + std::string(100'000, '9') + "x\n", "x.yaml");
  ASSERT_FALSE(long_value.ok());
  EXPECT_LT(long_value.status().message().size(), 1500u);
  // Aliases that expand to a sane tree still load.
  absl::StatusOr<Config> shared = ParseConfig(
      "workspaces:\n  - name: a\n    identity: &same {limits: {userId: 1}}\n  - name: b\n"
      "    identity: *same\n",
      "x.yaml");
  ASSERT_TRUE(shared.ok()) << shared.status();
  EXPECT_EQ(shared->workspaces.size(), 2u);
}

TEST(ConfigTest, PersonasWithWeightsAndWhereEachRuleWasWritten) {
  auto c = ParseConfig(
      "workspaces:\n"
      "  - name: a\n"
      "    personas:\n"
      "      - id: deal_seeker\n"
      "        min_confidence: 0.6\n"
      "        rules:\n"
      "          - {when: 'profile.counts.coupon_applied >= 1', weight: 2.5}\n"
      "          - when: profile.orders.count == 0\n",
      "x.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  ASSERT_EQ(c->workspaces[0].personas.size(), 1u);
  const PersonaConfig& p = c->workspaces[0].personas[0];
  EXPECT_EQ(p.id, "deal_seeker");
  EXPECT_DOUBLE_EQ(p.min_confidence, 0.6);
  ASSERT_EQ(p.rules.size(), 2u);
  EXPECT_DOUBLE_EQ(p.rules[0].weight, 2.5);
  EXPECT_DOUBLE_EQ(p.rules[1].weight, 1);  // the default
  EXPECT_EQ(p.rules[1].when, "profile.orders.count == 0");
  EXPECT_EQ(p.rules[1].when_ref.Describe(), "x.yaml:8: workspaces[0].personas[0].rules[1].when");
}

TEST(ConfigTest, AdaptationsAndTriggers) {
  auto c = ParseConfig(
      "workspaces:\n"
      "  - name: a\n"
      "    adaptations:\n"
      "      - id: mobile\n"
      "        priority: 10\n"
      "        when: event.device.type == 'mobile'\n"
      "        hints: {layout: single_column, density: low}\n"
      "    triggers: {low_stock_at_most: 2, viewing_window: 5m}\n",
      "x.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  const WorkspaceConfig& ws = c->workspaces[0];
  ASSERT_EQ(ws.adaptations.size(), 1u);
  EXPECT_EQ(ws.adaptations[0].priority, 10);
  EXPECT_EQ(ws.adaptations[0].hints, (std::vector<std::pair<std::string, std::string>>{
                                         {"layout", "single_column"}, {"density", "low"}}));
  EXPECT_EQ(ws.adaptations[0].when_ref.Describe(), "x.yaml:6: workspaces[0].adaptations[0].when");
  EXPECT_EQ(ws.triggers.low_stock_at_most, 2);
  EXPECT_EQ(ws.triggers.viewing_window_ms, 300'000);
  EXPECT_EQ(ws.triggers.max_per_profile_per_day, 3);  // the default
}

TEST(ConfigTest, ModelsClvAndTextProperties) {
  auto c = ParseConfig(
      "workspaces:\n"
      "  - name: a\n"
      "  - name: b\n"
      "    models:\n"
      "      clv: {horizon: 90d, refit_every: 0, monthly_discount: 0.02}\n"
      "      text:\n"
      "        properties: [comment, review.body]\n",
      "x.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  const ModelsConfig& d = c->workspaces[0].models;  // the defaults
  EXPECT_EQ(d.clv_horizon_ms, 365 * 86'400'000LL);
  EXPECT_EQ(d.clv_refit_every_ms, 86'400'000);
  EXPECT_EQ(d.clv_monthly_discount, 0.01);
  EXPECT_TRUE(d.text_properties.empty());
  const ModelsConfig& m = c->workspaces[1].models;
  EXPECT_EQ(m.clv_horizon_ms, 90 * 86'400'000LL);
  EXPECT_EQ(m.clv_refit_every_ms, 0);  // only on demand
  EXPECT_EQ(m.clv_monthly_discount, 0.02);
  EXPECT_EQ(m.text_properties, (std::vector<std::string>{"comment", "review.body"}));
  // Hours that make whole days are days.
  c = ParseConfig("workspaces:\n  - name: a\n    models: {clv: {horizon: 48h}}\n", "x.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->workspaces[0].models.clv_horizon_ms, 2 * 86'400'000LL);
}

TEST(ConfigTest, MissingFileIsNotFound) {
  // A directory is no config file (an ifstream opens it and reads nothing).
  absl::StatusOr<Config> dir = LoadConfigFile(WHISPERER_SOURCE_DIR);
  ASSERT_FALSE(dir.ok());
  EXPECT_NE(dir.status().message().find("is a directory"), std::string::npos) << dir.status();
  EXPECT_EQ(LoadConfigFile("/nonexistent/whisperer.yaml").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(ConfigTest, EnvironmentOverrides) {
  std::map<std::string, std::string> env = {{"WHISPERER_PORT", "9999"},
                                            {"WHISPERER_DATA", "/var/w"},
                                            {"WHISPERER_WRITE_KEY", "wk_env"},
                                            {"WHISPERER_STORAGE_SYNC", "true"}};
  auto getenv = [&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  Config c;
  ASSERT_TRUE(ApplyEnvironment(getenv, &c).ok());
  EXPECT_EQ(c.server.port, 9999);
  EXPECT_EQ(c.storage.path, "/var/w");
  EXPECT_TRUE(c.storage.sync);
  ASSERT_EQ(c.workspaces.size(), 1u);
  EXPECT_EQ(c.workspaces[0].name, "default");
  EXPECT_EQ(c.workspaces[0].write_keys, (std::vector<std::string>{"wk_env"}));
  EXPECT_TRUE(c.workspaces[0].admin_keys.empty());  // generated later
  // With workspaces in the file, the default one comes after them: an error in the file names
  // the index it has there.
  Config file;
  file.workspaces.resize(1);
  file.workspaces[0].name = "shop";
  file.workspaces[0].write_keys = {"wk shop"};  // a blank: not usable over HTTP Basic
  ASSERT_TRUE(ApplyEnvironment(getenv, &file).ok());
  ASSERT_EQ(file.workspaces.size(), 2u);
  EXPECT_EQ(file.workspaces[1].name, "default");
  EXPECT_EQ(ErrorFieldOf(Validate(file)), "workspaces[0].write_keys[0]");
  // A key from the environment: its error names the variable it came from.
  file.workspaces[0].write_keys = {"wk_shop"};
  ASSERT_TRUE(Validate(file).ok());
  env["WHISPERER_ADMIN_KEY"] = "wk_shop";  // already the file's write key
  ASSERT_TRUE(ApplyEnvironment(getenv, &file).ok());
  EXPECT_EQ(ErrorFieldOf(Validate(file)), "WHISPERER_ADMIN_KEY");
  env["WHISPERER_ADMIN_KEY"] = "ak env";
  ASSERT_TRUE(ApplyEnvironment(getenv, &file).ok());
  EXPECT_EQ(ErrorFieldOf(Validate(file)), "WHISPERER_ADMIN_KEY");
  env.erase("WHISPERER_ADMIN_KEY");

  env["WHISPERER_PORT"] = "http";
  EXPECT_EQ(ErrorFieldOf(ApplyEnvironment(getenv, &c)), "WHISPERER_PORT");
}

TEST(ConfigTest, ValidateCrossFieldRules) {
  Config c;
  c.ingest.max_event_bytes = 600 * 1024;
  EXPECT_EQ(ErrorFieldOf(Validate(c)), "ingest.max_event_bytes");
  Config d;
  d.log.level = "loud";
  EXPECT_EQ(ErrorFieldOf(Validate(d)), "log.level");
  Config e;
  e.storage.background_priority = "high";
  EXPECT_EQ(ErrorFieldOf(Validate(e)), "storage.background_priority");
  // A batch larger than the queue could never be queued: refused at start, not at every retry.
  Config q;
  q.ingest.max_queued_events = q.ingest.max_batch_events - 1;
  EXPECT_EQ(ErrorFieldOf(Validate(q)), "ingest.max_queued_events");
  q.ingest.max_queued_events = q.ingest.max_batch_events;
  EXPECT_TRUE(Validate(q).ok());
  // The listen address is an IP address, checked before anything is opened.
  for (const char* ok : {"127.0.0.1", "0.0.0.0", "::1", "::"}) {
    Config h;
    h.server.host = ok;
    EXPECT_TRUE(Validate(h).ok()) << ok;
  }
  for (const char* bad : {"localhost", "bad", "", "1.2.3.4.5"}) {
    Config h;
    h.server.host = bad;
    EXPECT_EQ(ErrorFieldOf(Validate(h)), "server.host") << bad;
  }
}

TEST(ConfigTest, ValidateErrorsNameWhereTheValueWasSet) {
  // In the file: its line.
  absl::StatusOr<Config> c = ParseConfig(
      "server:\n  read_timeout: 0s\nstorage:\n  path: \"\"\nworkspaces:\n"
      "  - name: a\n    write_keys: [\"ok\", \"wk a\"]\n",
      "w.yaml");
  ASSERT_FALSE(c.ok());  // the key is checked where it is read
  EXPECT_EQ(c.status().message(),
            "w.yaml:7: workspaces[0].write_keys[1]: a key may not contain ':', spaces or control "
            "characters, nor be over 1024 bytes");
  // Nor one longer than a request's headers could carry.
  c = ParseConfig(
      "workspaces:\n  - name: a\n    write_keys: [\"" + std::string(1025, 'k') + "\"]\n", "w.yaml");
  ASSERT_FALSE(c.ok());
  EXPECT_EQ(ErrorFieldOf(c.status()), "workspaces[0].write_keys[0]");
  ASSERT_TRUE(ParseConfig("workspaces:\n  - name: a\n    write_keys: [\"" + std::string(1024, 'k') +
                              "\"]\n",
                          "w.yaml")
                  .ok());
  // A key of two workspaces is found by Validate, which names the line of the second.
  c = ParseConfig(
      "workspaces:\n  - name: a\n    write_keys: [\"wk_a\"]\n  - name: b\n    admin_keys:\n"
      "      - ak_b\n      - wk_a\n",
      "w.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(Validate(*c).message(),
            "w.yaml:7: workspaces[1].admin_keys[1]: is already a key of workspace 'a': a key "
            "belongs to one workspace, once");
  c = ParseConfig("server:\n  read_timeout: 0s\nstorage:\n  path: \"\"\n", "w.yaml");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(Validate(*c).message(), "w.yaml:4: storage.path: may not be empty");
  c->storage.path = "d";
  EXPECT_EQ(Validate(*c).message(), "w.yaml:2: server.read_timeout: must be positive");
  // From the environment: the variable.
  std::map<std::string, std::string> env = {{"WHISPERER_HOST", "localhost"},
                                            {"WHISPERER_LOG_LEVEL", "loud"}};
  auto getenv = [&](const char* name) -> const char* {
    auto it = env.find(name);
    return it == env.end() ? nullptr : it->second.c_str();
  };
  Config e;
  ASSERT_TRUE(ApplyEnvironment(getenv, &e).ok());
  EXPECT_EQ(Validate(e).message(),
            "environment variable WHISPERER_LOG_LEVEL: log.level: must be one of trace, debug, "
            "info, warn, error, off");
  e.log.level = "info";
  EXPECT_EQ(
      std::string(Validate(e).message())
          .rfind("environment variable WHISPERER_HOST: server.host: 'localhost' is not an IP", 0),
      0u)
      << Validate(e);
  // A key from the environment: the variable, as the environment's other errors.
  env = {{"WHISPERER_WRITE_KEY", "wk env"}};
  Config k;
  ASSERT_TRUE(ApplyEnvironment(getenv, &k).ok());
  absl::Status bad_key = Validate(k);
  EXPECT_EQ(bad_key.message(),
            "environment variable WHISPERER_WRITE_KEY: a key may not contain ':', spaces or "
            "control characters, nor be over 1024 bytes");
  EXPECT_EQ(ErrorFieldOf(bad_key), "WHISPERER_WRITE_KEY");
  // A default has no origin.
  Config d;
  d.server.read_timeout_ms = 0;
  EXPECT_EQ(Validate(d).message(), "server.read_timeout: must be positive");
}

TEST(ConfigTest, KeysAreUsableOverBasicAuthAndBelongToOneWorkspace) {
  Config c;
  c.workspaces.resize(2);
  c.workspaces[0].name = "a";
  c.workspaces[1].name = "b";
  c.workspaces[0].write_keys = {"wk_a"};
  c.workspaces[1].admin_keys = {"ak_b"};
  EXPECT_TRUE(Validate(c).ok());
  for (const char* bad : {"wk:a", "wk a", "wk\ta", "wk\x7f"}) {
    Config d = c;
    d.workspaces[1].write_keys = {bad};
    EXPECT_EQ(ErrorFieldOf(Validate(d)), "workspaces[1].write_keys[0]") << bad;
  }
  Config dup = c;
  dup.workspaces[1].write_keys = {"wk_a"};
  absl::Status s = Validate(dup);
  EXPECT_EQ(ErrorFieldOf(s), "workspaces[1].write_keys[0]");
  EXPECT_NE(s.message().find("workspace 'a'"), std::string::npos) << s;
  Config same = c;
  same.workspaces[0].admin_keys = {"wk_a"};  // a write key and an admin key alike
  EXPECT_EQ(ErrorFieldOf(Validate(same)), "workspaces[0].admin_keys[0]");
}

TEST(ConfigTest, ActionJsonRoundTripsAndErrorsNameTheFieldWithinTheAction) {
  absl::StatusOr<ActionConfig> a = ParseActionJson(
      R"({"issue": "retention", "group": "offers", "kind": "urgency", "value": 3, "cost": 1,
          "consent": "marketing_email", "valid": {"until": "2027-01-01T00:00:00Z"},
          "eligibility": "profile.orders.count > 0", "weights": [{"when": "true", "weight": 2}],
          "contact": {"max": 2, "per": "7d"}, "suppress_after": {"negatives": 1, "within": "30d"},
          "budget": {"per_day": 10}, "treatments": [{"id": "t", "channel": "push"}],
          "variants": [{"id": "v1", "content": "a"}, {"id": "v2", "content": "b"}]})",
      "flash");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->id, "flash");
  EXPECT_EQ(a->contact_per_ms, 7 * 86'400'000LL);
  // What ActionJson writes reads back the same.
  absl::StatusOr<ActionConfig> again = ParseActionJson(ActionJson(*a), "flash");
  ASSERT_TRUE(again.ok()) << again.status() << ActionJson(*a);
  EXPECT_EQ(ActionJson(*again), ActionJson(*a));
  EXPECT_EQ(again->valid_until_ms, a->valid_until_ms);
  EXPECT_EQ(again->variants.size(), 2u);
  // The `source` that GET /v1/actions/{id} adds is ignored when the action is sent back.
  std::string read = ActionJson(*a);
  read.insert(read.size() - 1, R"(,"source":"config")");
  absl::StatusOr<ActionConfig> sent_back = ParseActionJson(read, "flash");
  ASSERT_TRUE(sent_back.ok()) << sent_back.status();
  EXPECT_EQ(ActionJson(*sent_back), ActionJson(*a));

  // Escapes as Python's json.dumps writes them: an emoji as a surrogate pair, read as the
  // emoji; a lone surrogate (a JavaScript string cut inside one) as U+FFFD.
  absl::StatusOr<ActionConfig> escaped = ParseActionJson(
      R"({"issue": "i", "group": "g", "treatments": [{"id": "t", "channel": "push"}],
          "variants": [{"id": "v1", "content": "\ud83d\udd25 Sale \u00e9t\u00e9 \\ud83d"},
                       {"id": "v2", "content": "cut \ud83d"}]})",
      "emoji");
  ASSERT_TRUE(escaped.ok()) << escaped.status();
  EXPECT_EQ(escaped->variants[0].content, "\U0001F525 Sale \u00e9t\u00e9 \\ud83d");
  EXPECT_EQ(escaped->variants[1].content, "cut \uFFFD");

  struct Case {
    const char* json;
    const char* field;
  };
  for (
      const Case& c : std::initializer_list<Case>{
          {R"({"issue": "i", "group": "g", "treatments": [{"id": "t", "channel": "fax"}]})",
           "treatments[0].channel"},
          {R"({"issue": "i", "group": "g", "value": -1, "treatments": [{"id": "t", "channel": "web"}]})",
           "value"},
          {R"({"id": "other", "issue": "i", "group": "g", "treatments": [{"id": "t", "channel": "web"}]})",
           "id"},
          {R"({"issue": "i", "group": "g", "size": 1, "treatments": [{"id": "t", "channel": "web"}]})",
           "size"},
          // JSON types are kept: YAML alone would read 5 as "5" and "5" as 5.
          {R"({"issue": 5, "group": "g", "treatments": [{"id": "t", "channel": "web"}]})", "issue"},
          {R"({"issue": "i", "group": "g", "cost": "5", "treatments": [{"id": "t", "channel": "web"}]})",
           "cost"},
          {R"({"issue": "i", "group": "g", "contact": {"max": "1", "per": "7d"},
               "treatments": [{"id": "t", "channel": "web"}]})",
           "contact.max"},
          {R"({"issue": "i", "group": "g", "contact": {"max": 1, "per": 7},
               "treatments": [{"id": "t", "channel": "web"}]})",
           "contact.per"},
          {R"({"issue": "i", "group": "g", "treatments": [{"id": "t", "channel": "web"}],
               "variants": [{"id": "v1", "content": 5}, {"id": "v2", "content": "b"}]})",
           "variants[0].content"},
          {R"({"issue": "i", "group": "g", "valid": {"until": "1969-06-01T00:00:00Z"},
               "treatments": [{"id": "t", "channel": "web"}]})",
           "valid.until"},
      }) {
    absl::StatusOr<ActionConfig> bad = ParseActionJson(c.json, "x");
    ASSERT_FALSE(bad.ok()) << c.json;
    EXPECT_EQ(ErrorCodeOf(bad.status()), "invalid_action") << c.json;
    EXPECT_EQ(ErrorFieldOf(bad.status()), c.field) << bad.status();
    EXPECT_EQ(bad.status().message().find("body:"), absl::string_view::npos) << bad.status();
  }
  EXPECT_EQ(ErrorCodeOf(ParseActionJson("{\"issue\": ", "x").status()), "malformed_json");
  EXPECT_EQ(ErrorCodeOf(ParseActionJson("[1, 2]", "x").status()), "wrong_type");
  // YAML that is not JSON is refused, though the config's reader would take it.
  for (const char* not_json : {
           R"({"issue": "i", "group": "g", "treatments": [{"id": "t", "channel": "web"}]} garbage)",
           R"({issue: i, group: g, treatments: [{id: t, channel: web}]})",
           R"({"issue": "i", "group": "g", "treatments": [{"id": "t", "channel": "web"},]})",
           "issue: i\ngroup: g\ntreatments: [{id: t, channel: web}]  # a comment\n",
           "",
       }) {
    EXPECT_EQ(ErrorCodeOf(ParseActionJson(not_json, "x").status()), "malformed_json") << not_json;
  }
  EXPECT_EQ(ErrorCodeOf(ParseActionJson("{\"issue\": \"\xc3(\"}", "x").status()), "invalid_utf8");
}

}  // namespace
}  // namespace whisperer::config
