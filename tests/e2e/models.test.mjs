// The models of a workspace, run by the real binary.
//
// Conversion and churn: events sent through the official Segment client, with explicit
// timestamps so that event time is under the test's control, teach the models from labels that
// arrive late (a goal within the window is a conversion; a window that passes in event time is
// not); versions are cut with their metrics; the scores show on the profile and in conditions;
// the registry survives a restart, rolls back, and answers its errors; models off and profiles
// off answer as documented; bots teach nothing; the readers catch up without traffic.
//
// Lifetime value (clv): a year of orders sent the same way, fitted by POST /v1/models/clv/fit
// and by `whisperer models fit clv`, shown as scores.lifetimeValue on the profile, rolled back;
// not_enough_data without repeat orders; a scheduled fit at start. And `whisperer import`
// writes what the models learned, so a restart keeps it.
//
// The main workspace's tests run in order on one server (each builds on what the previous one
// taught the models); so do the lifetime value tests, on a server of their own.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { Analytics as SegmentAnalytics } from '@segment/analytics-node';
import { MAC_UA } from './lib/user_agents.mjs';
import { startServer, makeTempDir, runCli } from './lib/server.mjs';
import { random } from './lib/random.mjs';

const MIN = 60_000;
const DAY = 86_400_000;

// shop: the models with small numbers. One shard, so that the events of a request are folded in
// the order sent (with several shards a request is split by customer and the parts are folded
// shard by shard; the workspace's event clock could then pass a window before a goal of the
// same request is folded).
// fresh: models that never see a conversion, and conditions on the scores.
// off: models off.
const CONFIG = `
log: {level: warn}
ingest: {shards: 1}
workspaces:
  - name: shop
    write_keys: [wk_shop]
    admin_keys: [ak_shop]
    models:
      conversion: {goal: Order Completed, window: 1h}
      churn: {inactive: 121m, cancel_event: Subscription Cancelled, risk: {high: 0.6, medium: 0.3}}
      sample_every: 1s
      version_every: 100
  - name: fresh
    write_keys: [wk_fresh]
    admin_keys: [ak_fresh]
    models:
      sample_every: 1s
    journeys:
      - id: hot_leads
        stages:
          - id: warm
            entry: "profile.scores.lead_score >= 50"
          - id: hot
            entry: "profile.scores.lead_score > 50 and profile.scores.conversion > 0.5"
        goal: "event.name == 'Order Completed'"
    personas:
      - id: at_risk
        rules:
          - {when: "profile.scores.churn >= 0.3", weight: 1}
  - name: off
    write_keys: [wk_off]
    admin_keys: [ak_off]
    models: {enabled: false}
`;

let server;
let dataDir;
let ltv; // the lifetime value tests' server (see below)

before(async () => {
  dataDir = `${await makeTempDir(null, 'whisperer-e2e-models-')}/data`;
  server = await startServer({ config: CONFIG, dataDir });
});

after(async () => {
  if (ltv?.running) await ltv.stop();
  if (server) assert.equal(await server.stop(), 0, 'whisperer exits 0 on SIGTERM');
});

function get(path, key = 'ak_shop', target = server) {
  return target.request(path, { headers: { authorization: `Bearer ${key}` } });
}

function post(path, body, key = 'ak_shop', target = server) {
  return target.request(path, { body, headers: { authorization: `Bearer ${key}` } });
}

async function getOk(path, key = 'ak_shop', target = server) {
  const res = await get(path, key, target);
  assert.equal(res.status, 200, `${path}: ${res.text}`);
  return res.json;
}

async function profileOf(userId, key = 'ak_shop', target = server) {
  const { profileId } = await getOk(
    `/v1/profiles/lookup?userId=${encodeURIComponent(userId)}`,
    key,
    target,
  );
  return getOk(`/v1/profiles/${profileId}`, key, target);
}

/**
 * Sends track calls through the Segment client, in the order given: each chunk of 100 is one
 * batch request, and the next is sent only once it was answered.
 */
async function send(writeKey, calls, target = server) {
  for (let i = 0; i < calls.length; i += 100) {
    const chunk = calls.slice(i, i + 100);
    const analytics = new SegmentAnalytics({
      writeKey,
      host: target.url,
      path: '/v1/batch',
      flushAt: chunk.length,
      flushInterval: 60_000,
      maxRetries: 2,
      httpRequestTimeout: 10_000,
    });
    const statuses = [];
    analytics.on('http_response', (r) => statuses.push(r.status));
    const delivered = chunk.map(
      (msg) => new Promise((resolve) => analytics.track(msg, (err) => resolve(err))),
    );
    await analytics.closeAndFlush({ timeout: 0 });
    for (const err of await Promise.all(delivered)) assert.equal(err, undefined, `delivered: ${err}`);
    assert.deepEqual(statuses, [200], 'one batch request per chunk, answered 200');
  }
}

function track(userId, event, atMs, properties = {}) {
  return {
    userId,
    event,
    properties,
    timestamp: new Date(atMs).toISOString(),
    context: { userAgent: MAC_UA },
  };
}

/**
 * The registry and the scores read the models' published copy, replaced at most once a second:
 * by a commit a second or more after the previous copy (or one that cuts a version), and by the
 * server's model-publish thread, every second, when no commit did. An event of the `off`
 * workspace, a second after the last copy, makes the readers current at once without touching
 * the models under test (the thread alone may take up to two seconds; a test below checks it).
 */
async function refresh() {
  await sleep(1100);
  await send('wk_off', [{ userId: 'refresher', event: 'Refresh', context: { userAgent: MAC_UA } }]);
}

/** The whisperer_profiles_cached gauge of /metrics. */
async function profilesCached(target = server) {
  const res = await target.request('/metrics');
  assert.equal(res.status, 200);
  const m = /^whisperer_profiles_cached (\S+)$/m.exec(res.text);
  assert.ok(m, 'whisperer_profiles_cached is exposed');
  return Number(m[1]);
}

const driftLevel = (psi) => (psi < 0.1 ? 'stable' : psi < 0.25 ? 'moderate' : 'major');

function assertScores(scores, { high = 0.6, medium = 0.3 } = {}) {
  assert.ok(scores, 'scores are present');
  assert.ok('lifetimeValue' in scores, 'the lifetime value key is there (null or an object)');
  assert.match(scores.at, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  for (const name of ['conversion', 'churn']) {
    const s = scores[name];
    assert.equal(typeof s.probability, 'number', `${name}.probability`);
    assert.ok(s.probability >= 0 && s.probability <= 1, `${name}.probability ${s.probability}`);
    assert.ok(Number.isInteger(s.version) && s.version >= 0, `${name}.version`);
    assert.ok(Array.isArray(s.factors) && s.factors.length <= 5, `${name}.factors`);
    for (const f of s.factors) {
      assert.equal(typeof f.feature, 'string');
      assert.ok(Number.isFinite(f.contribution) && f.contribution !== 0, `${f.feature}`);
    }
    const sizes = s.factors.map((f) => Math.abs(f.contribution));
    assert.deepEqual(sizes, [...sizes].sort((a, b) => b - a), `${name}.factors largest first`);
  }
  assert.equal(scores.conversion.leadScore, Math.round(100 * scores.conversion.probability));
  const p = scores.churn.probability;
  assert.equal(scores.churn.risk, p >= high ? 'high' : p >= medium ? 'medium' : 'low');
}

function assertVersion(v, number, examplesTotal) {
  assert.equal(v.version, number);
  assert.equal(v.examplesTotal, examplesTotal);
  assert.equal(v.reason, 'scheduled');
  assert.match(v.createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  const m = v.metrics;
  assert.equal(m.examples, 100, `version ${number}: version_every labelled examples`);
  assert.ok(m.positives >= 0 && m.positives <= 100);
  assert.ok(m.auc >= 0 && m.auc <= 1, `auc ${m.auc}`);
  assert.ok(m.logLoss > 0, `logLoss ${m.logLoss}`);
  assert.ok(m.calibrationError >= 0 && m.calibrationError <= 1, `calibration ${m.calibrationError}`);
  assert.ok(m.psi >= 0, `psi ${m.psi}`);
  if (number === 1) assert.equal(m.psi, 0, 'the first version has no previous one to drift from');
}

// ---------------------------------------------------------------------------------------------
// The shop workspace: 240 customers, 10 days ago. Customer i's first event is at T0 + i minutes:
// even customers start a checkout and complete an order 40 minutes later (inside the 1 h window:
// a conversion; the order also starts a new session, a return after 40 minutes); odd customers
// view a product 20 s past their minute and never come back (their window passes in event time:
// no conversion). The 20 s, and churn's odd 121 minutes, keep every window's end clear of the
// events around it (the server adds a few milliseconds of clock-skew correction to each).

const T0 = Math.floor((Date.now() - 10 * DAY) / MIN) * MIN;
const CUSTOMERS = 240;
const customer = (i) => `c${i}`;
const lastGoalAt = T0 + (CUSTOMERS - 2 + 40) * MIN; // the latest event of the history
const tickAt = lastGoalAt + 3 * 60 * MIN; // beyond every window (1 h) and inactivity (121 min)

function history() {
  const calls = [];
  for (let i = 0; i < CUSTOMERS; i++) {
    if (i % 2 === 0) {
      calls.push(track(customer(i), 'Checkout Started', T0 + i * MIN));
      calls.push(track(customer(i), 'Order Completed', T0 + (i + 40) * MIN, { revenue: 25 }));
    } else {
      calls.push(track(customer(i), 'Product Viewed', T0 + i * MIN + 20_000));
    }
  }
  return calls.sort((a, b) => Date.parse(a.timestamp) - Date.parse(b.timestamp));
}

let learned; // GET /v1/models/conversion after the history, for the restart and rollback tests
let c0Before; // customer 0's scores then

test('scores on a profile before any learning: 0.5, lead score 50, no factors', async () => {
  // `fresh` never sees an Order Completed, so its conversion model learns nothing.
  const at = Date.now() - 5 * MIN;
  await send('wk_fresh', [track('newcomer', 'Product Viewed', at)]);
  const profile = await profileOf('newcomer', 'ak_fresh');
  assert.equal(profile.events, 1);
  assert.equal(profile.botEvents, 0);
  assertScores(profile.scores);
  assert.equal(profile.scores.at, profile.lastSeen, 'scored at the latest event, in event time');
  const { conversion, churn } = profile.scores;
  assert.equal(conversion.probability, 0.5, 'a model with no weights says 0.5');
  assert.equal(conversion.leadScore, 50);
  assert.equal(conversion.version, 0, 'no version cut yet');
  assert.deepEqual(conversion.factors, []);
  assert.equal(churn.interventionWindow, null, 'fewer than 20 returns seen');
  assert.equal(profile.scores.lifetimeValue, null, 'no lifetime value version, and no orders');

  const { models } = await getOk('/v1/models', 'ak_fresh');
  assert.deepEqual(
    models.map((m) => m.name),
    ['conversion', 'churn', 'clv', 'intent'],
  );
  for (const m of models) {
    assert.equal(m.version, 0);
    assert.equal(m.latest, null);
    assert.equal(m.versions, undefined, 'the list carries no version history');
  }
  for (const m of models.slice(0, 2)) {
    assert.equal(m.algorithm, 'FTRL-Proximal logistic regression, Platt-calibrated');
  }
  // Durations are written the way the config writes them.
  assert.equal(models[0].label, "'Order Completed' within 7d", 'the default window');
  assert.equal(models[1].label, 'no event for 30d', 'the default inactivity');
  assert.deepEqual(models[2], {
    name: 'clv',
    algorithm: 'BG/NBD purchases + Gamma-Gamma spend, maximum likelihood (libLBFGS)',
    refitEveryHours: 24,
    version: 0,
    latest: null,
  });
  // The message intent model is trained offline (`whisperer models train intent`, see
  // text.test.mjs): none yet.
  assert.deepEqual(models[3], {
    name: 'intent',
    algorithm: 'fastText supervised classifier (word and character n-grams, softmax)',
    version: 0,
    latest: null,
  });
});

test('late labels in event time teach the conversion and churn models; versions are cut with metrics', async () => {
  await send('wk_shop', history());
  await refresh();
  let conversion = await getOk('/v1/models/conversion');
  assert.equal(conversion.label, "'Order Completed' within 1h");
  // Every order came within its window: 120 conversions, each learned when it arrived. Of the
  // 120 who never ordered, those whose hour had passed by the latest event time (T0 + 278 min)
  // were learned as non-conversions: customers 1, 3, ..., 217 (their hour ends at 61..277 min
  // and 20 s). The 11 others are still pending: no event of the workspace is later yet.
  assert.equal(conversion.examplesLearned, 120 + 109);
  assert.equal(conversion.pendingExamples, 11);
  assert.equal(conversion.skippedExamples, 0);
  assert.equal(conversion.version, 2, 'a version per 100 labelled examples');

  // Churn (121 minutes without an event, or Subscription Cancelled): the order 40 minutes
  // after the checkout labels the checkout moment 0 (120); the order is a moment too, labelled 1
  // when 121 minutes pass without an event (customers 0..116 by T0 + 278 min: 59); a product
  // view with no further event is labelled 1 after 121 minutes (customers 1..155: 78).
  let churn = await getOk('/v1/models/churn');
  assert.equal(churn.label, "no event for 121m, or 'Subscription Cancelled'");
  assert.equal(churn.examplesLearned, 120 + 59 + 78);
  assert.equal(churn.pendingExamples, 61 + 42);

  // One later event of the workspace, three hours on in event time, ends every window.
  await send('wk_shop', [track('tick', 'Page Viewed', tickAt)]);
  await refresh();
  conversion = await getOk('/v1/models/conversion');
  assert.equal(conversion.examplesLearned, 240);
  assert.equal(conversion.pendingExamples, 1, "the tick's own moment");
  assert.equal(conversion.version, 2);
  assert.equal(conversion.versions.length, 2);
  assertVersion(conversion.versions[0], 1, 100);
  assertVersion(conversion.versions[1], 2, 200);
  assert.deepEqual(conversion.latest, conversion.versions[1]);
  assert.equal(conversion.drift.psi, conversion.latest.metrics.psi);
  assert.equal(conversion.drift.level, driftLevel(conversion.drift.psi));
  // Checkouts convert and product views do not: once the model has learned that, its
  // predictions (each made before the label was learned) rank the converters first.
  assert.ok(
    conversion.versions[1].metrics.auc > 0.8,
    `version 2 AUC ${conversion.versions[1].metrics.auc}`,
  );
  const positives = conversion.versions.reduce((n, v) => n + v.metrics.positives, 0);
  assert.ok(positives > 0 && positives <= 120, `positives ${positives}`);

  churn = await getOk('/v1/models/churn');
  assert.equal(churn.examplesLearned, 360);
  assert.equal(churn.version, 3);
  assert.deepEqual(
    churn.versions.map((v) => [v.version, v.examplesTotal, v.metrics.examples]),
    [
      [1, 100, 100],
      [2, 200, 100],
      [3, 300, 100],
    ],
  );

  const list = await getOk('/v1/models');
  assert.deepEqual(
    list.models.map((m) => [m.name, m.version, m.examplesLearned]),
    [
      ['conversion', 2, 240],
      ['churn', 3, 360],
      ['clv', 0, undefined], // single orders only: nothing to fit lifetime value on
      ['intent', 0, undefined], // never trained
    ],
  );
  assert.deepEqual(list.models[0].latest, conversion.latest);
  learned = conversion;
});

test('scores after learning: a checkout scores above a product view, with the factors that made it', async () => {
  const at = tickAt + MIN;
  await send('wk_shop', [
    track('probe-checkout', 'Checkout Started', at),
    track('probe-view', 'Product Viewed', at),
  ]);
  const checkout = (await profileOf('probe-checkout')).scores;
  const view = (await profileOf('probe-view')).scores;
  assertScores(checkout);
  assertScores(view);
  assert.equal(checkout.conversion.version, 2);
  assert.equal(checkout.churn.version, 3);
  assert.ok(
    checkout.conversion.probability > view.conversion.probability,
    `checkout ${checkout.conversion.probability} > view ${view.conversion.probability}`,
  );
  assert.ok(checkout.conversion.leadScore >= view.conversion.leadScore);
  const features = checkout.conversion.factors.map((f) => f.feature);
  assert.ok(
    features.includes('count=Checkout Started') || features.includes('intent.purchase'),
    `the checkout shows among the factors: ${features}`,
  );
  for (const f of checkout.conversion.factors) {
    if (f.feature === 'count=Checkout Started') assert.ok(f.contribution > 0, 'it raises the odds');
  }

  // A converted customer: 120 returns after 40 minutes make the intervention window.
  const c0 = await profileOf(customer(0));
  assertScores(c0.scores);
  assert.equal(c0.orders.count, 1);
  assert.equal(c0.sessions.count, 2, 'the order came 40 minutes later: a return');
  assert.equal(c0.scores.at, c0.lastSeen);
  const window = c0.scores.churn.interventionWindow;
  assert.ok(window, 'an intervention window once 20 returns were seen');
  assert.ok(Math.abs(window.fromDays - 40 / 1440) < 1e-3, `fromDays ${window.fromDays}`);
  assert.ok(Math.abs(window.toDays - 40 / 1440) < 1e-3, `toDays ${window.toDays}`);
  assert.ok(
    Math.abs(Date.parse(window.from) - (Date.parse(c0.lastSeen) + window.fromDays * DAY)) <= 1,
    'from = the last event + fromDays',
  );
  assert.ok(
    Math.abs(Date.parse(window.to) - (Date.parse(c0.lastSeen) + window.toDays * DAY)) <= 1,
    'to = the last event + toDays',
  );
  c0Before = c0.scores;
});

test('a restart keeps what the models learned, their versions and pending examples; a crash loses the pending ones', async () => {
  await refresh();
  const before = await getOk('/v1/models/conversion');
  const churnBefore = await getOk('/v1/models/churn');
  assert.ok(before.pendingExamples > 0, 'moments waiting for their label');
  assert.equal(await server.stop(), 0);
  server = await startServer({ config: CONFIG, dataDir });

  let conversion = await getOk('/v1/models/conversion');
  assert.equal(conversion.examplesLearned, 240);
  assert.deepEqual(conversion.versions, learned.versions);
  assert.equal(conversion.pendingExamples, before.pendingExamples, 'written at shutdown, read back');
  assert.equal((await getOk('/v1/models/churn')).pendingExamples, churnBefore.pendingExamples);

  // Read back once: after a crash they are gone, and what was learned is as it was saved.
  await server.kill9();
  server = await startServer({ config: CONFIG, dataDir });
  conversion = await getOk('/v1/models/conversion');
  assert.equal(conversion.pendingExamples, 0, 'a crash loses the pending examples');
  assert.equal(conversion.examplesLearned, 240);
  const churn = await getOk('/v1/models/churn');
  assert.equal(churn.examplesLearned, 360);
  assert.equal(churn.version, 3);
  const c0 = await profileOf(customer(0));
  assert.equal(
    c0.scores.conversion.probability,
    c0Before.conversion.probability,
    'the same state scores the same',
  );
  assert.equal(c0.scores.churn.probability, c0Before.churn.probability);
});

test('rollback to version 1 makes its state live again, as a new version', async () => {
  const res = await post('/v1/models/conversion/rollback', { version: 1 });
  assert.equal(res.status, 200, res.text);
  const model = res.json;
  assert.equal(model.name, 'conversion');
  assert.equal(model.version, 3);
  assert.equal(model.examplesLearned, 100, "version 1's state: the first 100 examples");
  assert.equal(model.versions.length, 3);
  assert.deepEqual(model.versions.slice(0, 2), learned.versions);
  const v3 = model.latest;
  assert.equal(v3.version, 3);
  assert.equal(v3.reason, 'rollback');
  assert.equal(v3.restoredVersion, 1);
  assert.equal(v3.examplesTotal, 100);
  assert.deepEqual(model.versions[2], v3);

  // The readers see it at once (a rollback publishes), and scores use the restored state.
  assert.deepEqual((await getOk('/v1/models/conversion')).latest, v3);
  const c0 = (await profileOf(customer(0))).scores;
  assert.equal(c0.conversion.version, 3);
  assert.notEqual(c0.conversion.probability, c0Before.conversion.probability);
  assert.equal(c0.churn.version, 3, 'the churn model is untouched');
  assert.equal(c0.churn.probability, c0Before.churn.probability);

  // Bad versions.
  for (const body of [
    { version: 0 },
    { version: '1' },
    { version: -1 },
    { version: 1.5 },
    {},
    '{"version":99999999999999999999}',
  ]) {
    const bad = await post('/v1/models/conversion/rollback', body);
    assert.equal(bad.status, 400, `${JSON.stringify(body)}: ${bad.text}`);
    assert.equal(bad.json.error.code, 'invalid_value');
    assert.equal(bad.json.error.field, 'version');
  }
  const misspelt = await post('/v1/models/conversion/rollback', { version: 1, reason: 'bad' });
  assert.equal(misspelt.status, 400, misspelt.text);
  assert.equal(misspelt.json.error.code, 'invalid_value');
  assert.equal(misspelt.json.error.field, 'reason');
  for (const [body, code] of [['not json', 'malformed_json'], ['[1]', 'wrong_type']]) {
    const bad = await post('/v1/models/conversion/rollback', body);
    assert.equal(bad.status, 400, bad.text);
    assert.equal(bad.json.error.code, code);
  }
  // A refused rollback changes nothing: not the model, and not the profiles held in memory (a
  // failed commit would drop the profile engine's caches). An event of the `off` workspace puts
  // a profile in the cache (reads do not) without touching the models.
  await send('wk_off', [{ userId: 'cached', event: 'Cache', context: { userAgent: MAC_UA } }]);
  const cachedBefore = await profilesCached();
  assert.ok(cachedBefore > 0, `profiles are cached: ${cachedBefore}`);
  const unknown = await post('/v1/models/conversion/rollback', { version: 99 });
  assert.equal(unknown.status, 404, unknown.text);
  assert.equal(unknown.json.error.code, 'unknown_version');
  assert.equal(unknown.json.error.field, 'version');
  assert.match(unknown.json.error.message, /no stored state for version 99/);
  assert.equal((await getOk('/v1/models/conversion')).version, 3, 'a refused rollback changes nothing');
  assert.equal(await profilesCached(), cachedBefore, 'the profile cache was not dropped');
});

test('a stored model takes the configured ftrl.l1 when it is loaded', async () => {
  assert.equal(await server.stop(), 0);
  const strict = CONFIG.replace(
    'version_every: 100',
    'version_every: 100\n      ftrl: {l1: 1000000}',
  );
  server = await startServer({ config: strict, dataDir });
  assert.equal(
    (await getOk('/v1/models/conversion')).examplesLearned,
    100,
    'the stored state is loaded, not started afresh',
  );
  assert.equal((await getOk('/v1/models/churn')).examplesLearned, 360);
  const strictScores = (await profileOf(customer(0))).scores;
  assert.deepEqual(strictScores.conversion.factors, [], 'an L1 this strong keeps weights at 0');
  assert.deepEqual(strictScores.churn.factors, []);
  assert.notEqual(strictScores.churn.probability, c0Before.churn.probability);

  // Back to the configured L1 of 1: the same stored state scores as it did.
  assert.equal(await server.stop(), 0);
  server = await startServer({ config: CONFIG, dataDir });
  const scores = (await profileOf(customer(0))).scores;
  assert.equal(scores.churn.probability, c0Before.churn.probability);
  assert.deepEqual(scores.churn.factors, c0Before.churn.factors);
  assert.ok(scores.churn.factors.length > 0);
});

test('a changed models.ftrl.bits starts the model afresh and refuses older versions', async () => {
  assert.equal(await server.stop(), 0);
  const config = CONFIG.replace('version_every: 100', 'version_every: 100\n      ftrl: {bits: 12}');
  server = await startServer({ config, dataDir });
  const model = await getOk('/v1/models/conversion');
  assert.equal(model.examplesLearned, 0, 'a state hashed into 2^18 slots means nothing in 2^12');
  assert.equal(model.versions.length, 3, 'the versions stay listed, the rollback among them');
  assert.equal(model.versions[2].reason, 'rollback');
  const res = await post('/v1/models/conversion/rollback', { version: 1 });
  assert.equal(res.status, 400, res.text);
  assert.equal(res.json.error.code, 'incompatible_version');
  assert.equal(res.json.error.field, 'version');
  assert.equal(await server.stop(), 0);
  server = await startServer({ config: CONFIG, dataDir });
});

test('registry errors: unknown model, and keys', async () => {
  for (const [method, path] of [
    ['GET', '/v1/models/lead'],
    ['POST', '/v1/models/lead/rollback'],
  ]) {
    const res = await server.request(path, {
      method,
      body: method === 'POST' ? { version: 1 } : undefined,
      headers: { authorization: 'Bearer ak_shop' },
    });
    assert.equal(res.status, 404, `${path}: ${res.text}`);
    assert.equal(res.json.error.code, 'unknown_model');
    assert.equal(res.json.error.field, 'name');
    // The name comes from the request path, which outlives the handler's reading of it.
    assert.equal(res.json.error.message, "no model named 'lead' (conversion, churn, clv, intent)");
  }
  // Only lifetime value is fitted on demand.
  const fitConversion = await post('/v1/models/conversion/fit', {});
  assert.equal(fitConversion.status, 400, fitConversion.text);
  assert.equal(fitConversion.json.error.code, 'invalid_value');
  assert.equal(fitConversion.json.error.field, 'name');
  assert.match(fitConversion.json.error.message, /conversion learns online/);
  const fitIntent = await post('/v1/models/intent/fit', {});
  assert.match(fitIntent.json.error.message, /whisperer models train intent/);
  assert.equal((await post('/v1/models/lead/fit', {})).json.error.code, 'unknown_model');
  assert.equal((await get('/v1/models/clv/fit')).status, 405);
  for (const [method, path] of [
    ['GET', '/v1/models'],
    ['GET', '/v1/models/conversion'],
    ['GET', '/v1/models/clv'],
    ['GET', '/v1/models/intent'],
    ['POST', '/v1/models/conversion/rollback'],
    ['POST', '/v1/models/clv/rollback'],
    ['POST', '/v1/models/intent/rollback'],
    ['POST', '/v1/models/clv/fit'],
  ]) {
    const body = method === 'POST' ? { version: 1 } : undefined;
    const cases = [
      [undefined, 401, 'unauthenticated'],
      ['Bearer ak_nobody', 401, 'unauthenticated'],
      ['Bearer wk_shop', 403, 'forbidden'],
      [`Basic ${Buffer.from('wk_shop:').toString('base64')}`, 403, 'forbidden'],
      [`Basic ${Buffer.from('ak_nobody:').toString('base64')}`, 401, 'unauthenticated'],
    ];
    for (const [authorization, status, code] of cases) {
      const headers = authorization ? { authorization } : {};
      const res = await server.request(path, { method, body, headers });
      assert.equal(res.status, status, `${method} ${path} with ${authorization}: ${res.text}`);
      assert.equal(res.json.error.code, code);
    }
  }
  assert.equal((await server.request('/v1/models', { method: 'DELETE' })).status, 405);
  assert.equal((await get('/v1/models/conversion/rollback')).status, 405);
  assert.equal((await getOk('/v1/models/conversion')).version, 3, 'nothing was rolled back');
});

test('models off: 404 models_disabled, and scores null on the profile', async () => {
  await send('wk_off', [track('quiet', 'Checkout Started', Date.now() - MIN)]);
  for (const [method, path] of [
    ['GET', '/v1/models'],
    ['GET', '/v1/models/conversion'],
    ['GET', '/v1/models/clv'],
    ['GET', '/v1/models/intent'],
    ['POST', '/v1/models/conversion/rollback'],
    ['POST', '/v1/models/clv/rollback'],
    ['POST', '/v1/models/intent/rollback'],
    ['POST', '/v1/models/clv/fit'],
  ]) {
    const res = await server.request(path, {
      method,
      body: method === 'POST' ? { version: 1 } : undefined,
      headers: { authorization: 'Bearer ak_off' },
    });
    assert.equal(res.status, 404, `${path}: ${res.text}`);
    assert.equal(res.json.error.code, 'models_disabled');
  }
  const profile = await profileOf('quiet', 'ak_off');
  assert.equal(profile.events, 1);
  assert.ok('scores' in profile, 'the key is there');
  assert.equal(profile.scores, null);
});

test('profiles off: the registry answers 503 profiles_disabled', async (t) => {
  const bare = await startServer({
    t,
    config: 'ingest: {profiles: false}\nworkspaces:\n  - name: w\n    admin_keys: [ak_w]\n',
  });
  for (const [method, path] of [
    ['GET', '/v1/models'],
    ['GET', '/v1/models/churn'],
    ['GET', '/v1/models/clv'],
    ['GET', '/v1/models/intent'],
    ['POST', '/v1/models/churn/rollback'],
    ['POST', '/v1/models/clv/rollback'],
    ['POST', '/v1/models/intent/rollback'],
    ['POST', '/v1/models/clv/fit'],
  ]) {
    const res = await bare.request(path, {
      method,
      body: method === 'POST' ? { version: 1 } : undefined,
      headers: { authorization: 'Bearer ak_w' },
    });
    assert.equal(res.status, 503, `${path}: ${res.text}`);
    assert.equal(res.json.error.code, 'profiles_disabled');
    assert.equal(res.headers['retry-after'], '1');
  }
  assert.equal(await bare.stop(), 0);
});

test('conditions on profile.scores.*: journeys see this event\'s scores, personas the previous ones', async () => {
  // The `fresh` workspace started with a journey on profile.scores.lead_score and a persona on
  // profile.scores.churn: the config loader accepted them.
  const at = Date.now() - 2 * MIN;
  await send('wk_fresh', [track('lead', 'Product Viewed', at)]);
  let profile = await profileOf('lead', 'ak_fresh');
  assert.equal(profile.scores.conversion.leadScore, 50);
  assert.equal(profile.journeys.hot_leads?.stage, 'warm', 'lead_score 50 >= 50');
  assert.equal(profile.journeys.hot_leads.status, 'active');
  assert.equal(profile.persona, null, 'persona rules see the scores before the event: none yet');

  await send('wk_fresh', [track('lead', 'Product Viewed', at + 30_000)]);
  profile = await profileOf('lead', 'ak_fresh');
  assert.equal(profile.persona?.id, 'at_risk', 'the churn score of the first event, >= 0.3');
  assert.equal(profile.journeys.hot_leads.stage, 'warm', 'lead_score is not above 50');

  // A condition that does not type-check keeps the server from starting, with file and line.
  const bad = CONFIG.replace(
    'profile.scores.lead_score >= 50"',
    "profile.scores.lead_score == 'hot'\"",
  );
  await assert.rejects(
    startServer({ config: bad }),
    /whisperer\.yaml:\d+: workspaces\[1\]\.journeys\[0\]\.stages\[0\]\.entry: column \d+: `==` compares a number with a string/,
  );
});

test('the registry and the scores catch up within two seconds with no further traffic', async () => {
  const before = await getOk('/v1/models/conversion');
  const at = tickAt + 10 * MIN;
  await send('wk_shop', [track('late-buyer', 'Product Viewed', at)]);
  await refresh(); // the readers now show the moment as pending
  const pending = await getOk('/v1/models/conversion');
  assert.equal(pending.pendingExamples, before.pendingExamples + 1);
  assert.equal(pending.examplesLearned, before.examplesLearned);
  // The order labels that moment: learned at once, published by the model-publish thread
  // (every second) although nothing else arrives.
  await send('wk_shop', [track('late-buyer', 'Order Completed', at + MIN, { revenue: 10 })]);
  await sleep(2500);
  const after = await getOk('/v1/models/conversion');
  assert.equal(after.examplesLearned, before.examplesLearned + 1);
  assert.equal(after.pendingExamples, before.pendingExamples);
});

test('bot traffic does not teach the models', async () => {
  await refresh();
  const before = await getOk('/v1/models/churn', 'ak_fresh');
  const beforeConversion = await getOk('/v1/models/conversion', 'ak_fresh');
  const googlebot = 'Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)';
  const at = Date.now() - MIN;
  await send('wk_fresh', [
    { ...track('crawler', 'Product Viewed', at), context: { userAgent: googlebot } },
    { ...track('crawler', 'Checkout Started', at + 1000), context: { userAgent: googlebot } },
  ]);
  const profile = await profileOf('crawler', 'ak_fresh');
  assert.equal(profile.botEvents, 2);
  assert.equal(profile.events, 0);
  assert.equal(profile.scores, null, 'no moment to score a bot-only profile at (not one in 1970)');
  await refresh();
  const after = await getOk('/v1/models/churn', 'ak_fresh');
  assert.equal(after.pendingExamples, before.pendingExamples, 'no moment kept for a bot');
  assert.equal(after.examplesLearned, before.examplesLearned);
  const afterConversion = await getOk('/v1/models/conversion', 'ak_fresh');
  assert.equal(afterConversion.pendingExamples, beforeConversion.pendingExamples);
  // The same events from a browser are moments of both models.
  await send('wk_fresh', [track('browser-twin', 'Product Viewed', at)]);
  await refresh();
  assert.equal(
    (await getOk('/v1/models/churn', 'ak_fresh')).pendingExamples,
    before.pendingExamples + 1,
  );
});

// ---------------------------------------------------------------------------------------------
// Lifetime value (clv). `store`: a year of orders by 60 customers, with a deterministic random
// history (a spend level per customer, gaps of a day plus an exponential with a mean of 40
// days, a 30% chance to stop after each order), sent through the Segment client in time order;
// no scheduled refit, a 180-day horizon. `single`: customers with one order each, and one with
// two orders without revenue.

const LTV_CONFIG = `
log: {level: error}
workspaces:
  - name: store
    write_keys: [wk_store]
    admin_keys: [ak_store]
    models:
      clv: {refit_every: 0, horizon: 180d}
  - name: single
    write_keys: [wk_single]
    admin_keys: [ak_single]
    models:
      clv: {refit_every: 0}
`;
const WEEK = 7 * DAY;
let ltvDataDir;
let ltvOrders; // userId -> [{at, revenue}] of the store workspace, oldest first
let ltvV1; // the first fit
let ltvLate; // the orders of the ten customers added before the refit


/** A year of orders of `customers` customers named prefix + i, up to a day before `nowMs`. */
function orderHistory(prefix, customers, seed, nowMs) {
  const rand = random(seed);
  const orders = new Map();
  for (let i = 0; i < customers; i++) {
    const spend = 15 + 120 * rand() ** 2;
    let at = nowMs - 360 * DAY + i * 2 * DAY + Math.floor(rand() * DAY);
    const list = [];
    while (at < nowMs - DAY && list.length < 12) {
      list.push({ at, revenue: Math.round(spend * (0.6 + 0.8 * rand()) * 100) / 100 });
      if (rand() < 0.3) break;
      at += Math.floor((1 - Math.log(1 - rand()) * 40) * DAY);
    }
    orders.set(`${prefix}${i}`, list);
  }
  return orders;
}

function orderCalls(orders) {
  const calls = [];
  for (const [userId, list] of orders) {
    for (const { at, revenue } of list) {
      calls.push(track(userId, 'Order Completed', at, { revenue }));
    }
  }
  return calls.sort((a, b) => Date.parse(a.timestamp) - Date.parse(b.timestamp));
}

function assertFit(fit) {
  assert.match(fit.fittedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  for (const key of ['r', 'alpha', 'a', 'b']) {
    const v = fit.bgnbd[key];
    assert.ok(Number.isFinite(v) && v > 0, `bgnbd.${key} ${v}`);
  }
  for (const key of ['p', 'q', 'v']) {
    const v = fit.gammaGamma[key];
    assert.ok(Number.isFinite(v) && v > 0, `gammaGamma.${key} ${v}`);
  }
  assert.ok(fit.bgnbd.logLikelihood < 0 && Number.isFinite(fit.bgnbd.logLikelihood));
  assert.ok(Number.isFinite(fit.gammaGamma.logLikelihood));
  assert.ok(fit.gammaGamma.q > 1, 'a finite population mean spend');
}

const ltvGet = (p, key = 'ak_store') => getOk(p, key, ltv);
const ltvPost = (p, body, key = 'ak_store') => post(p, body, key, ltv);
const ltvProfile = (userId, key = 'ak_store') => profileOf(userId, key, ltv);

test('lifetime value: POST /v1/models/clv/fit fits BG/NBD and Gamma-Gamma on the stored orders', async () => {
  ltvDataDir = `${await makeTempDir(null, 'whisperer-e2e-ltv-')}/data`;
  ltv = await startServer({ config: LTV_CONFIG, dataDir: ltvDataDir });
  const before = await ltvGet('/v1/models/clv');
  assert.deepEqual(before, {
    name: 'clv',
    algorithm: 'BG/NBD purchases + Gamma-Gamma spend, maximum likelihood (libLBFGS)',
    refitEveryHours: 0,
    version: 0,
    latest: null,
    versions: [],
  });

  ltvOrders = orderHistory('buyer', 60, 7, Date.now());
  const calls = orderCalls(ltvOrders);
  calls.push(track('browser', 'Product Viewed', Date.now() - DAY)); // no orders
  await send('wk_store', calls, ltv);
  const withOrders = [...ltvOrders.values()].filter((l) => l.length > 0).length;
  const repeaters = [...ltvOrders.values()].filter((l) => l.length > 1).length;
  assert.ok(repeaters >= 20 && withOrders - repeaters >= 5, `${repeaters} of ${withOrders} repeat`);

  // Before any fit a customer's lifetime value is null.
  assert.equal((await ltvProfile('buyer0')).scores.lifetimeValue, null);

  const res = await ltvPost('/v1/models/clv/fit', {});
  assert.equal(res.status, 200, res.text);
  const model = res.json;
  assert.equal(model.name, 'clv');
  assert.equal(model.version, 1);
  assert.equal(model.versions, undefined, 'the fit answers the model without its versions');
  const fit = model.latest;
  assert.equal(fit.version, 1);
  assert.equal(fit.reason, 'fit');
  assert.equal(fit.restoredVersion, undefined);
  assert.equal(fit.customers, withOrders, 'every customer with an order, not the browser');
  assert.equal(fit.repeatCustomers, repeaters);
  assertFit(fit);
  assert.ok(Math.abs(Date.parse(fit.fittedAt) - Date.now()) < 60_000, 'fitted now');

  const list = await ltvGet('/v1/models');
  assert.deepEqual(
    list.models.map((m) => m.name),
    ['conversion', 'churn', 'clv', 'intent'],
  );
  assert.deepEqual(list.models[2], model, 'the list shows it, without versions');
  const full = await ltvGet('/v1/models/clv');
  assert.deepEqual(full.versions, [fit]);
  assert.deepEqual(full.latest, fit);
  ltvV1 = fit;
});

test('lifetime value on the profile: P(alive), expected purchases, spend and value; null without orders', async () => {
  // A repeat customer: the figures follow from the fitted parameters and the profile's orders
  // (x = orders - 1, t_x and T in weeks from the first order, the mean spend over every order).
  const [repeatId, repeatOrders] = [...ltvOrders].find(([, l]) => l.length >= 3);
  const t0 = Date.now();
  const profile = await ltvProfile(repeatId);
  const t1 = Date.now();
  const sent = repeatOrders.reduce((sum, o) => sum + o.revenue, 0);
  assert.equal(profile.orders.count, repeatOrders.length);
  assert.ok(Math.abs(profile.orders.revenue - sent) < 1e-9, `revenue ${profile.orders.revenue}`);
  const lv = profile.scores.lifetimeValue;
  assert.ok(lv, 'a fitted version and orders: a lifetime value');
  assert.deepEqual(Object.keys(lv).sort(), [
    'expectedPurchases',
    'expectedSpendPerPurchase',
    'expectedValue',
    'historicalValue',
    'horizonDays',
    'probabilityAlive',
    'version',
  ]);
  assert.equal(lv.version, 1);
  assert.equal(lv.horizonDays, 180);
  assert.ok(Math.abs(lv.historicalValue - sent) < 1e-9, 'historicalValue: the revenue sent');
  assert.ok(lv.probabilityAlive > 0 && lv.probabilityAlive <= 1, `P(alive) ${lv.probabilityAlive}`);
  assert.ok(lv.expectedPurchases > 0, `expectedPurchases ${lv.expectedPurchases}`);
  assert.ok(lv.expectedSpendPerPurchase > 0);
  assert.ok(lv.expectedValue > 0, `expectedValue ${lv.expectedValue}`);
  // Discounted by 1% a month (the default): a little less than purchases x spend.
  const undiscounted = lv.expectedPurchases * lv.expectedSpendPerPurchase;
  assert.ok(lv.expectedValue < undiscounted && lv.expectedValue > 0.9 * undiscounted);

  const { r, alpha, a, b } = ltvV1.bgnbd;
  const { p, q, v } = ltvV1.gammaGamma;
  const x = repeatOrders.length - 1;
  // One order a day at most here: every order but the first is a repeat purchase, and the
  // spend is that of the repeats.
  assert.equal(profile.orders.days, repeatOrders.length);
  assert.equal(profile.orders.firstDayRevenue, repeatOrders[0].revenue);
  const m = (profile.orders.revenue - profile.orders.firstDayRevenue) / x;
  const first = Date.parse(profile.orders.first);
  const tx = (Date.parse(profile.orders.last) - first) / WEEK;
  const alive = (now) => {
    const T = (now - first) / WEEK;
    return 1 / (1 + (a / (b + x - 1)) * ((alpha + T) / (alpha + tx)) ** (r + x));
  };
  const [lo, hi] = [alive(t1 + 1000), alive(t0 - 1000)].sort((u, w) => u - w);
  assert.ok(
    lv.probabilityAlive >= lo - 1e-9 && lv.probabilityAlive <= hi + 1e-9,
    `P(alive) ${lv.probabilityAlive} is BG/NBD's for x ${x}, t_x ${tx} (between ${lo} and ${hi})`,
  );
  const spend = (p * (v + x * m)) / (p * x + q - 1);
  assert.ok(
    Math.abs(lv.expectedSpendPerPurchase - spend) < 1e-9 * spend,
    `spend ${lv.expectedSpendPerPurchase} is Gamma-Gamma's ${spend}`,
  );

  // A customer with one order has not bought again: P(alive) is 1 and the expected spend is the
  // population's mean, p v / (q - 1).
  const [singleId] = [...ltvOrders].find(([, l]) => l.length === 1);
  const single = (await ltvProfile(singleId)).scores.lifetimeValue;
  assert.equal(single.probabilityAlive, 1);
  const populationMean = (p * v) / (q - 1);
  assert.ok(Math.abs(single.expectedSpendPerPurchase - populationMean) < 1e-9 * populationMean);
  assert.ok(single.expectedValue > 0);

  // A customer without orders has none; the other scores are there.
  const browser = await ltvProfile('browser');
  assert.equal(browser.orders.count, 0);
  assert.equal(browser.scores.lifetimeValue, null);
  assert.ok(browser.scores.conversion && browser.scores.churn);
});

test('lifetime value: not_enough_data without a repeat order with revenue', async () => {
  const at = Date.now() - 30 * DAY;
  await send(
    'wk_single',
    [
      track('one', 'Order Completed', at, { revenue: 30 }),
      track('two', 'Order Completed', at + DAY, { revenue: 45 }),
      track('free', 'Order Completed', at, {}), // two orders without an amount
      track('free', 'Order Completed', at + 10 * DAY, {}),
    ],
    ltv,
  );
  const res = await ltvPost('/v1/models/clv/fit', {}, 'ak_single');
  assert.equal(res.status, 400, res.text);
  assert.equal(res.json.error.code, 'not_enough_data');
  assert.match(res.json.error.message, /repeat order with revenue.*\(3 with orders\)/);
  const model = await ltvGet('/v1/models/clv', 'ak_single');
  assert.equal(model.version, 0, 'nothing was fitted');
  assert.deepEqual(model.versions, []);
  assert.equal((await ltvProfile('one', 'ak_single')).scores.lifetimeValue, null);
  const rollback = await ltvPost('/v1/models/clv/rollback', { version: 1 }, 'ak_single');
  assert.equal(rollback.status, 404, rollback.text);
  assert.equal(rollback.json.error.code, 'unknown_version');
  assert.equal(rollback.json.error.field, 'version');
  // The other workspace's fit is its own.
  assert.equal((await ltvGet('/v1/models/clv')).version, 1);
});

test('lifetime value: a refit is the next version, and a rollback restores an earlier one', async () => {
  // Ten more customers with repeat orders change the fit.
  ltvLate = orderHistory('late', 10, 11, Date.now());
  await send('wk_store', orderCalls(ltvLate), ltv);
  let res = await ltvPost('/v1/models/clv/fit', {});
  assert.equal(res.status, 200, res.text);
  const v2 = res.json.latest;
  assert.equal(v2.version, 2);
  assert.equal(v2.reason, 'fit');
  assert.equal(v2.customers, ltvV1.customers + 10);
  assertFit(v2);
  assert.notDeepEqual(v2.bgnbd, ltvV1.bgnbd);
  const repeatId = [...ltvOrders].find(([, l]) => l.length >= 3)[0];
  const atV2 = (await ltvProfile(repeatId)).scores.lifetimeValue;
  assert.equal(atV2.version, 2);

  res = await ltvPost('/v1/models/clv/rollback', { version: 1 });
  assert.equal(res.status, 200, res.text);
  const model = res.json;
  assert.equal(model.version, 3);
  assert.equal(model.versions.length, 3);
  assert.deepEqual(model.versions.slice(0, 2), [ltvV1, v2]);
  const v3 = model.latest;
  assert.deepEqual(model.versions[2], v3);
  assert.equal(v3.reason, 'rollback');
  assert.equal(v3.restoredVersion, 1);
  assert.deepEqual(v3.bgnbd, ltvV1.bgnbd, "version 1's parameters");
  assert.deepEqual(v3.gammaGamma, ltvV1.gammaGamma);
  assert.equal(v3.customers, ltvV1.customers);
  assert.ok(Date.parse(v3.fittedAt) >= Date.parse(v2.fittedAt), 'stamped with the rollback time');

  // The profile's figures use the restored parameters at once.
  const lv = (await ltvProfile(repeatId)).scores.lifetimeValue;
  assert.equal(lv.version, 3);
  const { p, q, v } = ltvV1.gammaGamma;
  const profile = await ltvProfile(repeatId);
  const x = profile.orders.days - 1;
  const m = (profile.orders.revenue - profile.orders.firstDayRevenue) / x;
  const spend = (p * (v + x * m)) / (p * x + q - 1);
  assert.ok(Math.abs(lv.expectedSpendPerPurchase - spend) < 1e-9 * spend);

  // Refused rollbacks change nothing.
  for (const [body, status, code] of [
    [{ version: 99 }, 404, 'unknown_version'],
    [{ version: 0 }, 400, 'invalid_value'],
    [{}, 400, 'invalid_value'],
  ]) {
    const bad = await ltvPost('/v1/models/clv/rollback', body);
    assert.equal(bad.status, status, `${JSON.stringify(body)}: ${bad.text}`);
    assert.equal(bad.json.error.code, code);
    assert.equal(bad.json.error.field, 'version');
  }
  assert.equal((await ltvGet('/v1/models/clv')).version, 3);
});

test('whisperer models fit clv: server_running while a server holds the data; the next version once stopped', async () => {
  const cli = ['models', 'fit', 'clv', '--data', ltvDataDir, '--workspace', 'store'];
  const refused = await runCli(cli);
  assert.equal(refused.code, 1, refused.stderr);
  assert.match(refused.stderr, /\[server_running\]/);
  assert.match(refused.stderr, /POST \/v1\/models\/clv\/fit/);
  assert.equal(refused.stdout, '');
  const before = await ltvGet('/v1/models/clv');
  assert.equal(before.version, 3, 'nothing was fitted');
  assert.equal(await ltv.stop(), 0);

  const fitted = await runCli(cli);
  assert.equal(fitted.code, 0, fitted.stderr);
  const lines = fitted.stdout.trimEnd().split('\n');
  const lateRepeaters = [...ltvLate.values()].filter((l) => l.length > 1).length;
  assert.equal(
    lines[0],
    `clv version 4 of workspace store: ${ltvV1.customers + 10} customers with orders, ` +
      `${ltvV1.repeatCustomers + lateRepeaters} with repeat orders`,
  );
  const n = '[\\d.e+-]+';
  assert.match(
    lines[1],
    new RegExp(`^  BG/NBD {7}r ${n}, alpha ${n}, a ${n}, b ${n} \\(log-likelihood -${n}\\)$`),
  );
  assert.match(
    lines[2],
    new RegExp(`^  Gamma-Gamma  p ${n}, q ${n}, v ${n} \\(log-likelihood -?${n}\\)$`),
  );
  assert.equal(lines.length, 3);

  // The server started on the directory serves it, and the versions before it.
  ltv = await startServer({ config: LTV_CONFIG, dataDir: ltvDataDir });
  const model = await ltvGet('/v1/models/clv');
  assert.equal(model.version, 4);
  assert.deepEqual(model.versions.slice(0, 3), before.versions, 'a restart keeps every version');
  const v4 = model.latest;
  assert.equal(v4.reason, 'fit');
  assert.equal(v4.customers, before.latest.customers + 10);
  assertFit(v4);
  // The CLI prints six significant digits.
  const printed = Number(/ r ([\d.e+-]+),/.exec(lines[1])[1]);
  assert.ok(Math.abs(printed - v4.bgnbd.r) <= 1e-5 * v4.bgnbd.r, `printed r ${printed}`);
  const repeatId = [...ltvOrders].find(([, l]) => l.length >= 3)[0];
  assert.equal((await ltvProfile(repeatId)).scores.lifetimeValue.version, 4);
  assert.equal(await ltv.stop(), 0);

  // Without a repeat order the command fits nothing.
  const fitClv = (workspace) =>
    runCli(['models', 'fit', 'clv', '--data', ltvDataDir, '--workspace', workspace]);
  const none = await fitClv('single');
  assert.equal(none.code, 1);
  assert.match(none.stderr, /\[not_enough_data\]/);
  assert.match(none.stderr, /no customer has a repeat order with revenue yet/);
  assert.equal(none.stdout, '');
  const unknown = await fitClv('nope');
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /\[unknown_workspace\]/);
});

test('whisperer models fit clv without repeat orders: not_enough_data, exit 1, as over HTTP', async () => {
  const none = await runCli(['models', 'fit', 'clv', '--data', ltvDataDir, '--workspace', 'single']);
  assert.match(none.stderr, /\[not_enough_data\]/);
  assert.equal(none.code, 1, 'not a usage error');
  assert.equal(none.stdout, '');
});

test('whisperer models fit clv on a directory without data: no_data, and nothing created', async (t) => {
  const missing = path.join(await makeTempDir(t), 'no-such-data');
  const res = await runCli(['models', 'fit', 'clv', '--data', missing, '--workspace', 'store']);
  assert.equal(res.code, 1, res.stderr);
  assert.match(res.stderr, /\[no_data\]/);
  assert.equal(res.stdout, '');
  await assert.rejects(fsp.stat(missing), /ENOENT/);
  // A directory that holds no store is not made into one.
  const other = await makeTempDir(t);
  const empty = await runCli(['models', 'fit', 'clv', '--data', other, '--workspace', 'store']);
  assert.equal(empty.code, 1, empty.stderr);
  assert.match(empty.stderr, /\[no_data\]/);
  assert.deepEqual(await fsp.readdir(other), []);
});

// ---------------------------------------------------------------------------------------------
// `whisperer import` teaches the models like live traffic and writes what they learned when it
// ends; a server started afterwards fits lifetime value at start when none was fitted.

const IMPORT_CONFIG = `
log: {level: error}
ingest: {shards: 1}
workspaces:
  - name: hist
    write_keys: [wk_hist]
    admin_keys: [ak_hist]
    models:
      conversion: {goal: Order Completed, window: 1h}
      churn: {inactive: 121m}
      sample_every: 1s
  - name: ltv
    write_keys: [wk_ltv]
    admin_keys: [ak_ltv]
`;

test('whisperer import writes what the models learned: a restart keeps it; a due CLV fit runs at start', async (t) => {
  const dir = await makeTempDir(t);
  const data = path.join(dir, 'data');
  const configFile = path.join(dir, 'whisperer.yaml');
  await fsp.writeFile(configFile, IMPORT_CONFIG);
  // hist: 40 customers, as the shop's history: even ones check out and order 40 minutes later
  // (conversion 1; churn 0 for the checkout, 1 for the order once 121 minutes pass), odd ones
  // view a product and go (conversion 0, churn 1); a last event 3 hours later ends every window.
  const n = 40;
  const start = Math.floor((Date.now() - 5 * DAY) / MIN) * MIN;
  const hist = [];
  for (let i = 0; i < n; i++) {
    if (i % 2 === 0) {
      hist.push(track(`h${i}`, 'Checkout Started', start + i * MIN));
      hist.push(track(`h${i}`, 'Order Completed', start + (i + 40) * MIN, { revenue: 20 }));
    } else {
      hist.push(track(`h${i}`, 'Product Viewed', start + i * MIN + 20_000));
    }
  }
  hist.sort((a, b) => Date.parse(a.timestamp) - Date.parse(b.timestamp));
  hist.push(track('h-tick', 'Page Viewed', start + (n + 40 + 180) * MIN));
  const ndjson = (calls) =>
    calls
      .map((c, i) => JSON.stringify({ type: 'track', messageId: `imp-${c.userId}-${i}`, ...c }))
      .join('\n') + '\n';
  const histFile = path.join(dir, 'hist.ndjson');
  await fsp.writeFile(histFile, ndjson(hist));
  const orders = orderHistory('imp', 40, 7, Date.now());
  const ordersFile = path.join(dir, 'orders.ndjson');
  await fsp.writeFile(ordersFile, ndjson(orderCalls(orders)));

  for (const [file, workspace, count] of [
    [histFile, 'hist', hist.length],
    [ordersFile, 'ltv', orderCalls(orders).length],
  ]) {
    const res = await runCli([
      'import', file, '--data', data, '--config', configFile, '--workspace', workspace,
    ]);
    assert.equal(res.code, 0, res.stderr);
    assert.match(res.stdout, new RegExp(`^imported ${count} events from ${count} lines`));
  }

  const restarted = await startServer({ t, config: IMPORT_CONFIG, dataDir: data });
  const conversion = await getOk('/v1/models/conversion', 'ak_hist', restarted);
  assert.equal(conversion.examplesLearned, n, 'every first moment was labelled during the import');
  assert.equal(conversion.pendingExamples, 1, "the tick's moment, saved at the end of the import");
  const churn = await getOk('/v1/models/churn', 'ak_hist', restarted);
  assert.equal(churn.examplesLearned, n + n / 2);
  assert.equal(churn.pendingExamples, 1, "the tick's moment");

  // ltv has repeat orders and no lifetime value version: the refit due at start (every 24h by
  // default) fits one.
  let clv;
  for (let i = 0; i < 50; i++) {
    clv = await getOk('/v1/models/clv', 'ak_ltv', restarted);
    if (clv.version > 0) break;
    await sleep(100);
  }
  assert.equal(clv.version, 1, 'fitted at start');
  assert.equal(clv.refitEveryHours, 24);
  assert.equal(clv.latest.reason, 'scheduled');
  assert.equal(clv.latest.customers, 40);
  assertFit(clv.latest);
  // hist has no repeat order: its refit was attempted and fitted nothing.
  assert.equal((await getOk('/v1/models/clv', 'ak_hist', restarted)).version, 0);
  assert.equal(await restarted.stop(), 0);
});
