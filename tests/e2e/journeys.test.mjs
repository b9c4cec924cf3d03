// The three example journeys of whisperer.example.yaml, run by the real binary started with that
// very file: each replays a realistic event sequence through the official Segment client and
// checks where the customer is and how they got there, including a timeout fired by the
// server's timer with no further event.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import path from 'node:path';
import zlib from 'node:zlib';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Analytics as SegmentAnalytics } from '@segment/analytics-node';
import { IPHONE_UA, MAC_UA } from './lib/user_agents.mjs';
import { spawn } from 'node:child_process';
import { binary, exampleConfig, startServer, runCli, makeTempDir, REPO_ROOT } from './lib/server.mjs';

let server;

before(async () => {
  server = await startServer({ config: await exampleConfig() });
});

after(async () => {
  if (server) assert.equal(await server.stop(), 0);
});

async function admin(p) {
  const res = await server.request(p, { headers: { authorization: server.bearer() } });
  assert.equal(res.status, 200, `${p}: ${res.text}`);
  return res.json;
}

/** Sends the calls in order, one flush each, so their order and times are the order sent. */
async function send(calls) {
  const analytics = new SegmentAnalytics({
    writeKey: server.writeKey,
    host: server.url,
    path: '/v1/batch',
    flushAt: 1,
    maxRetries: 2,
  });
  for (const [method, msg] of calls) {
    await new Promise((resolve, reject) =>
      analytics[method](msg, (err) => (err ? reject(err) : resolve())),
    );
  }
  await analytics.closeAndFlush({ timeout: 0 });
}

async function journeyOf(anonymousId, journey) {
  const { profileId } = await admin(`/v1/profiles/lookup?anonymousId=${anonymousId}`);
  const profile = await admin(`/v1/profiles/${profileId}`);
  return profile.journeys[journey];
}

const path_ = (state) => state.history.map((t) => `${t.to}/${t.reason}`);

test('GET /v1/journeys lists the example journeys as configured', async () => {
  const { journeys } = await admin('/v1/journeys');
  assert.deepEqual(
    journeys.map((j) => j.id),
    ['mobile_short_video', 'desktop_researcher', 'returning_visitor'],
  );
  const mobile = journeys[0];
  assert.deepEqual(mobile.stages[0].timeout, { afterMs: 3000, to: 'bounced' });
  assert.equal(mobile.goal, "event.name == 'Order Completed'");
  const res = await server.request('/v1/journeys', {
    headers: { authorization: `Bearer ${server.writeKey}` },
  });
  assert.equal(res.status, 403);
});

test('mobile visitor from a short-video ad: hook, browse, product, cart, purchase', async () => {
  const anon = `m-${randomUUID()}`;
  const ctx = { userAgent: IPHONE_UA, campaign: { source: 'tiktok', medium: 'short_video' } };
  await send([
    ['page', { anonymousId: anon, name: 'Landing', context: ctx }],
    ['track', { anonymousId: anon, event: 'Swiped', context: ctx }],
    ['track', { anonymousId: anon, event: 'Product Viewed', properties: { sku: 'A' }, context: ctx }],
    ['track', { anonymousId: anon, event: 'Product Added', properties: { sku: 'A' }, context: ctx }],
    ['track', { anonymousId: anon, event: 'Order Completed', properties: { revenue: 49 }, context: ctx }],
  ]);
  const state = await journeyOf(anon, 'mobile_short_video');
  assert.equal(state.status, 'converted');
  assert.deepEqual(path_(state), [
    'hook/entry',
    'browse/advance',
    'product_view/advance',
    'cart/advance',
    'converted/goal',
  ]);
  assert.ok(state.history.every((t) => t.messageId), 'each step names the event that caused it');
  // A desktop visitor from the same ad does not enter this journey.
  const desk = `m-desk-${randomUUID()}`;
  await send([['page', { anonymousId: desk, context: { ...ctx, userAgent: MAC_UA } }]]);
  assert.equal(await journeyOf(desk, 'mobile_short_video'), undefined);
});

test('mobile visitor with no interaction within 3 seconds of landing is bounced by the timer', async () => {
  const anon = `b-${randomUUID()}`;
  const ctx = { userAgent: IPHONE_UA, campaign: { source: 'tiktok', medium: 'short_video' } };
  await send([['page', { anonymousId: anon, name: 'Landing', context: ctx }]]);
  let state = await journeyOf(anon, 'mobile_short_video');
  assert.equal(state.stage, 'hook');
  assert.ok(state.deadline, 'the hook stage has a deadline');
  // No further event: the server's timer moves the customer on.
  const deadline = Date.parse(state.deadline);
  for (let i = 0; i < 100 && state.stage === 'hook'; ++i) {
    await sleep(100);
    state = await journeyOf(anon, 'mobile_short_video');
  }
  assert.equal(state.stage, 'bounced');
  assert.deepEqual(path_(state), ['hook/entry', 'bounced/timeout']);
  assert.ok(Date.now() >= deadline, 'not before the deadline');
  // The timer runs on the server's clock, but the move is dated on the events' clock: 3 s after
  // the entering event's own timestamp.
  assert.equal(Date.parse(state.history[1].at), Date.parse(state.history[0].at) + 3000);
});

let researcherAnon;

test('desktop researcher: comparisons, reviews and specifications, trust signals, purchase', async () => {
  const anon = `d-${randomUUID()}`;
  researcherAnon = anon;
  const ctx = { userAgent: MAC_UA };
  await send([
    ['track', { anonymousId: anon, event: 'Products Compared', properties: { skus: ['A', 'B'] }, context: ctx }],
    ['track', { anonymousId: anon, event: 'Reviews Viewed', context: ctx }],
    ['track', { anonymousId: anon, event: 'Specifications Viewed', context: ctx }],
    ['track', { anonymousId: anon, event: 'Returns Policy Viewed', context: ctx }],
    ['track', { anonymousId: anon, event: 'Order Completed', properties: { revenue: 1299 }, context: ctx }],
  ]);
  const state = await journeyOf(anon, 'desktop_researcher');
  assert.equal(state.status, 'converted');
  assert.deepEqual(path_(state), [
    'comparison/entry',
    'analysis/advance',
    'trust/advance',
    'converted/goal',
  ]);
});

test('returning visitor: recognised, offer shown, engaged, upsell, purchase; and round again', async () => {
  const anon = `r-${randomUUID()}`;
  const ctx = { userAgent: MAC_UA };
  const twoHoursAgo = new Date(Date.now() - 2 * 3_600_000);
  await send([
    // A first visit two hours ago, then a new session now.
    ['page', { anonymousId: anon, name: 'Home', timestamp: twoHoursAgo, context: ctx }],
    ['page', { anonymousId: anon, name: 'Home', context: ctx }],
    ['track', { anonymousId: anon, event: 'Offer Shown', properties: { offer: 'loyal10' }, context: ctx }],
    ['track', { anonymousId: anon, event: 'Offer Clicked', properties: { offer: 'loyal10' }, context: ctx }],
    ['track', { anonymousId: anon, event: 'Product Added', properties: { recommended: true }, context: ctx }],
    ['track', { anonymousId: anon, event: 'Order Completed', properties: { revenue: 80 }, context: ctx }],
  ]);
  let state = await journeyOf(anon, 'returning_visitor');
  assert.equal(state.status, 'converted');
  assert.deepEqual(path_(state), [
    'recognised/entry',
    'offer_shown/advance',
    'offer_engaged/advance',
    'upsell/advance',
    'converted/goal',
  ]);
  // The first visit alone was not a returning visit: entry came with the second session.
  assert.ok(Date.parse(state.history[0].at) > twoHoursAgo.getTime() + 3_600_000);
  // Re-entry is allowed for this journey: the next page starts it again.
  await send([['page', { anonymousId: anon, name: 'Home', context: ctx }]]);
  state = await journeyOf(anon, 'returning_visitor');
  assert.equal(state.status, 'active');
  assert.equal(state.stage, 'recognised');
});

test('funnels are counted as customers move: entries, moves, time in stage, by device and source', async () => {
  // Runs after the journeys above (node:test runs a file's tests in order).
  const today = new Date().toISOString().slice(0, 10);
  const funnel = await admin(`/v1/journeys/mobile_short_video/funnel?from=${today}&to=${today}`);
  assert.equal(funnel.by, 'all');
  assert.equal(funnel.groups.length, 1);
  const all = funnel.groups[0];
  const byId = Object.fromEntries(all.stages.map((s) => [s.id, s]));
  // One customer went hook -> browse -> product_view -> cart -> converted; one bounced.
  assert.deepEqual(
    all.stages.map((s) => [s.id, s.entered, s.movedOn]),
    [
      ['hook', 2, 2],
      ['browse', 1, 1],
      ['product_view', 1, 1],
      ['cart', 1, 1],
      ['bounced', 1, 0],
    ],
  );
  assert.equal(all.converted, 1);
  assert.equal(all.conversion, 0.5);
  assert.equal(byId.browse.conversionFromPrevious, 0.5);
  // Time in the hook: one moved on at once, the other after the 3 s timeout.
  assert.ok(byId.hook.p90MsInStage >= 2000 && byId.hook.p90MsInStage <= 4500, JSON.stringify(byId.hook));
  assert.ok(byId.hook.medianMsInStage < 2000, JSON.stringify(byId.hook));

  const byDevice = await admin('/v1/journeys/mobile_short_video/funnel?by=device');
  assert.deepEqual(byDevice.groups.map((g) => [g.value, g.stages[0].entered]), [['mobile', 2]]);
  const bySource = await admin('/v1/journeys/mobile_short_video/funnel?by=source');
  assert.deepEqual(bySource.groups.map((g) => g.value), ['tiktok']);
  const desk = await admin('/v1/journeys/desktop_researcher/funnel?by=source');
  assert.deepEqual(desk.groups.map((g) => [g.value, g.converted]), [['(none)', 1]]);
  // Earlier days hold nothing.
  const old = await admin('/v1/journeys/mobile_short_video/funnel?from=2020-01-01&to=2020-01-31');
  assert.deepEqual(old.groups, []);
  // "All time" from before 1970 takes in today too (days before 1970 are kept apart).
  const allTime = await admin(`/v1/journeys/mobile_short_video/funnel?from=1900-01-01&to=${today}`);
  assert.deepEqual(allTime.groups.map((g) => g.stages[0].entered), [2]);

  for (const [p, status, field] of [
    ['/v1/journeys/nope/funnel', 404, 'id'],
    ['/v1/journeys/mobile_short_video/funnel?by=weather', 400, 'by'],
    ['/v1/journeys/mobile_short_video/funnel?from=June', 400, 'from'],
    ['/v1/journeys/mobile_short_video/funnel?from=2024-02-02&to=2024-02-01', 400, 'from'],
  ]) {
    const res = await server.request(p, { headers: { authorization: server.bearer() } });
    assert.equal(res.status, status, p);
    assert.equal(res.json.error.field, field, p);
  }
});

test('personas: weighted rules give a persona and a confidence, changes are kept, funnels by persona', async () => {
  // Runs after the journeys above. The desktop researcher compared products, read reviews and
  // specifications: researcher with (2 + 1 + 1) / 5 of the rule weight.
  const researcher = await admin(`/v1/profiles/lookup?anonymousId=${researcherAnon}`);
  const r = await admin(`/v1/profiles/${researcher.profileId}`);
  assert.equal(r.persona.id, 'researcher');
  assert.equal(r.persona.confidence, 0.8);
  // It became one with the reviews (3 / 5), before the specifications.
  assert.deepEqual(r.persona.history.map((c) => [c.persona, c.confidence]), [['researcher', 0.6]]);

  // A deal seeker: a coupon on the first visit, then a returning visit that enters the
  // returning_visitor journey with that persona.
  const anon = `p-${randomUUID()}`;
  const ctx = { userAgent: MAC_UA };
  const twoHoursAgo = new Date(Date.now() - 2 * 3_600_000);
  const couponId = randomUUID();
  await send([
    ['page', { anonymousId: anon, name: 'Home', timestamp: twoHoursAgo, context: ctx }],
    ['track', { anonymousId: anon, messageId: couponId, event: 'Coupon Applied', timestamp: twoHoursAgo, context: ctx }],
    ['page', { anonymousId: anon, name: 'Home', context: ctx }],
  ]);
  const { profileId } = await admin(`/v1/profiles/lookup?anonymousId=${anon}`);
  let p = await admin(`/v1/profiles/${profileId}`);
  assert.equal(p.persona.id, 'deal_seeker');
  assert.equal(p.persona.confidence, 0.75); // coupon (2) + no orders (1) of 4
  assert.equal(p.persona.history[0].messageId, couponId);
  assert.equal(p.journeys.returning_visitor.stage, 'recognised');
  // Intent: the coupon makes the customer price-sensitive (0.5 * 1/(1+1)), in the earlier session
  // only; coming back within a day adds urgency now.
  assert.equal(p.intent.profile.priceSensitivity.score, 0.25);
  assert.deepEqual(p.intent.profile.priceSensitivity.drivers, [{ feature: 'coupons', value: 1, contribution: 0.25 }]);
  assert.equal(p.intent.session.priceSensitivity.score, 0);
  assert.ok(p.intent.session.urgency.drivers.some((d) => d.feature === 'returned within a day'));
  assert.ok(p.intent.profile.conversionProbability > 0 && p.intent.profile.conversionProbability < 0.2);

  const byPersona = await admin('/v1/journeys/returning_visitor/funnel?by=persona');
  assert.equal(byPersona.by, 'persona');
  const groups = Object.fromEntries(byPersona.groups.map((g) => [g.value, g.stages[0].entered]));
  assert.equal(groups.deal_seeker, 1);
  assert.equal(groups['(none)'], 2); // the returning visitor's two rounds

  // Two orders later the customer is loyal (3 + 1 of 4); the change is in the history.
  await send([
    ['track', { anonymousId: anon, event: 'Order Completed', properties: { revenue: 20 }, context: ctx }],
    ['track', { anonymousId: anon, event: 'Order Completed', properties: { revenue: 30 }, context: ctx }],
  ]);
  p = await admin(`/v1/profiles/${profileId}`);
  assert.equal(p.persona.id, 'loyal_customer');
  assert.equal(p.persona.confidence, 1);
  assert.deepEqual(p.persona.history.map((c) => c.persona), ['deal_seeker', 'loyal_customer']);
});

test('whisperer replay runs a file of history through the journeys, timeouts in event time', async (t) => {
  const dir = await makeTempDir(t);
  const t0 = Date.parse('2024-06-01T12:00:00.000Z');
  const at = (s) => new Date(t0 + s * 1000).toISOString();
  const ctx = { userAgent: IPHONE_UA, campaign: { source: 'tiktok', medium: 'short_video' } };
  const e = (anonymousId, s, fields) => ({ anonymousId, timestamp: at(s), context: ctx, ...fields });
  const events = [
    // A customer of 1969: their cohort day is before the epoch (negative), counted all the same.
    { type: 'page', anonymousId: 'old', timestamp: '1969-12-30T10:00:00.000Z', context: ctx },
    e('a', 0, { type: 'page', name: 'Landing' }),
    e('b', 1, { type: 'page', name: 'Landing' }),
    e('a', 2, { type: 'track', event: 'Product Viewed' }),
    e('a', 30, { type: 'track', event: 'Product Added' }),
    // b did nothing for 9 s: its 3-second hook ran out at 4 s, in the file's own time.
    e('b', 10, { type: 'page', name: 'Late' }),
    e('a', 60, { type: 'track', event: 'Order Completed', properties: { revenue: 10 } }),
    { ...e('c', 70, { type: 'page' }), context: { userAgent: MAC_UA } },
  ];
  const file = path.join(dir, 'history.ndjson');
  await fsp.writeFile(file, events.map((x) => JSON.stringify(x)).join('\n') + '\n');
  const configFile = path.join(REPO_ROOT, 'whisperer.example.yaml');
  const run = await runCli(['replay', file, '--config', configFile]);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /imported 8 events from 8 lines/);
  assert.match(run.stderr, /^replay: 100\.0%/m, 'progress lines name the command');
  const result = JSON.parse(run.stdout);
  assert.equal(result.workspace, 'default');
  assert.equal(result.lateEvents, 0);
  assert.doesNotMatch(run.stderr, /not in time order/);
  const mobile = result.journeys.find((j) => j.journey === 'mobile_short_video');
  assert.equal(mobile.from, null);
  const all = mobile.groups[0];
  assert.deepEqual(
    all.stages.map((s) => [s.id, s.entered]),
    [
      ['hook', 3],
      ['browse', 0],
      ['product_view', 1],
      ['cart', 1],
      ['bounced', 2],
    ],
  );
  assert.equal(all.converted, 1);
  const hook = all.stages[0];
  // a left the hook after 2 s; b timed out after 3 s.
  assert.ok(hook.p90MsInStage >= 2000 && hook.p90MsInStage <= 4500, JSON.stringify(hook));
  // The same history with a's purchase (60 s) before a's cart (30 s): a file out of time order.
  // The cart came late for a's journey, moves nothing, and the replay says so.
  const shuffled = path.join(dir, 'shuffled.ndjson');
  const moved = [0, 1, 2, 3, 6, 4, 5, 7].map((i) => events[i]);
  await fsp.writeFile(shuffled, moved.map((x) => JSON.stringify(x)).join('\n') + '\n');
  const late = await runCli(['replay', shuffled, '--config', configFile]);
  assert.equal(late.code, 0, late.stderr);
  const lateResult = JSON.parse(late.stdout);
  assert.ok(lateResult.lateEvents >= 1, late.stdout);
  assert.match(late.stderr, /events were dated before their customer's latest move in a journey and moved no journey: the file is not in time order \(sort it by timestamp\)/);
  // The example's data directory was not touched: replay used a scratch store.
  const bad = await runCli(['replay', path.join(dir, 'missing.ndjson'), '--config', configFile]);
  assert.notEqual(bad.code, 0);
  // A file cut inside its gzip stream: said so, without the import's advice (nothing is kept).
  const gz = zlib.gzipSync(await fsp.readFile(file));
  const cut = path.join(dir, 'cut.ndjson.gz');
  await fsp.writeFile(cut, gz.subarray(0, gz.length - 12));
  const truncated = await runCli(['replay', cut, '--config', configFile]);
  assert.notEqual(truncated.code, 0);
  assert.match(truncated.stderr, /ends inside its gzip stream \(truncated\?\) \[invalid_gzip\]/);
  assert.doesNotMatch(truncated.stderr, /imported, and importing/);
});

test('whisperer personas discover clusters the stored profiles while a server runs on them', async (t) => {
  const own = await startServer({ t });
  const events = [];
  for (let i = 0; i < 8; i += 1) {
    // Sale hunters: a couple of sale views. Trouser shoppers: many trouser views and a page.
    // Half of them send the event spelled in lower case once: one feature all the same.
    for (let k = 0; k < 2; k += 1) {
      const event = k === 1 && i % 2 === 1 ? 'sale viewed' : 'Sale Viewed';
      events.push({ type: 'track', anonymousId: `sale-${i}`, event });
    }
    for (let k = 0; k < 6; k += 1) events.push({ type: 'track', anonymousId: `trousers-${i}`, event: 'Trousers Viewed' });
    events.push({ type: 'page', anonymousId: `trousers-${i}`, name: 'Size guide' });
  }
  const res = await own.request('/v1/batch', { body: { batch: events }, headers: { authorization: own.basic() } });
  assert.equal(res.status, 200, res.text);

  const run = await runCli(['personas', 'discover', '--data', own.dataDir, '--json']);
  assert.equal(run.code, 0, run.stderr);
  const found = JSON.parse(run.stdout);
  assert.equal(found.profiles, 16);
  assert.equal(found.k, 2);
  assert.ok(found.silhouette > 0.5, String(found.silhouette));
  assert.deepEqual(found.clusters.map((c) => c.profiles), [8, 8]);
  assert.equal(found.features.filter((f) => f === 'profile.shares.sale_viewed').length, 1, found.features.join());
  assert.equal(new Set(found.features).size, found.features.length, found.features.join());
  const conditions = found.clusters.flatMap((c) => c.defining.map((d) => d.condition));
  assert.ok(conditions.includes('profile.shares.sale_viewed >= 1'), conditions.join('; '));
  assert.ok(conditions.includes('profile.events >= 7'), conditions.join('; '));

  const text = await runCli(['personas', 'discover', '--data', own.dataDir]);
  assert.equal(text.code, 0, text.stderr);
  assert.match(text.stdout, /^workspace default: 16 profiles, \d+ features; k = 2/);
  assert.match(text.stdout, /cluster 1: 8 profiles \(50%\)/);

  const unknown = await runCli(['personas', 'discover', '--data', own.dataDir, '--workspace', 'nope']);
  assert.notEqual(unknown.code, 0);
  assert.match(unknown.stderr, /nope/);
  const empty = await runCli(['personas', 'discover', '--data', path.join(await makeTempDir(t), 'none')]);
  assert.notEqual(empty.code, 0);
  assert.match(empty.stderr, /no whisperer data directory/);
});

/** A workspace `shop` (keys wk_j, ak_j) whose one journey, `onboarding`, has these stages. */
const onboarding = (version, stages) => `
workspaces:
  - name: shop
    write_keys: [wk_j]
    admin_keys: [ak_j]
    journeys:
      - id: onboarding
        version: ${version}
        stages:
${stages.map(([id, entry]) => `          - {id: ${id}, entry: "${entry}"}`).join('\n')}
        goal: "event.name == 'Subscribed'"
`;

/** Sends `batch` to the onboarding server `shop`; it must be accepted. */
async function postToShop(shop, batch) {
  const res = await shop.request('/v1/batch', { body: { batch }, headers: { authorization: 'Bearer wk_j' } });
  assert.equal(res.status, 200, res.text);
}

test('two devices of one customer merge: the funnel counts the customer once, with the further progress', async (t) => {
  const shop = await startServer({
    t,
    config: onboarding(1, [['signup', "event.name == 'Signed Up'"], ['setup', "event.name == 'Setup Done'"]]),
  });
  const post = (batch) => postToShop(shop, batch);
  const stages = async () => {
    const res = await shop.request('/v1/journeys/onboarding/funnel', { headers: { authorization: 'Bearer ak_j' } });
    assert.equal(res.status, 200, res.text);
    const [all] = res.json.groups;
    return { stages: all.stages.map((s) => [s.id, s.entered, s.movedOn]), converted: all.converted };
  };
  // The phone gets to setup, the laptop only signs up; then both turn out to be u-1.
  await post([
    { type: 'track', anonymousId: 'phone', event: 'Signed Up' },
    { type: 'track', anonymousId: 'phone', event: 'Setup Done' },
    { type: 'track', anonymousId: 'laptop', event: 'Signed Up' },
  ]);
  assert.deepEqual((await stages()).stages, [['signup', 2, 1], ['setup', 1, 0]]);
  await post([
    { type: 'identify', userId: 'u-1', anonymousId: 'laptop' },
    { type: 'identify', userId: 'u-1', anonymousId: 'phone' },
  ]);
  assert.deepEqual(await stages(), { stages: [['signup', 1, 1], ['setup', 1, 0]], converted: 0 });
  await post([{ type: 'track', userId: 'u-1', event: 'Subscribed' }]);
  assert.deepEqual(await stages(), { stages: [['signup', 1, 1], ['setup', 1, 1]], converted: 1 });
  assert.equal(await shop.stop(), 0);
});

test('a raised journey version: the old version funnel stays readable with ?version=', async (t) => {
  let shop = await startServer({
    t,
    config: onboarding(1, [['signup', "event.name == 'Signed Up'"], ['setup', "event.name == 'Setup Done'"]]),
  });
  const dataDir = shop.dataDir;
  const post = (batch) => postToShop(shop, batch);
  const funnel = async (query = '') => {
    const res = await shop.request(`/v1/journeys/onboarding/funnel${query}`, {
      headers: { authorization: 'Bearer ak_j' },
    });
    return res;
  };
  await post([
    { type: 'track', userId: 'v-1', event: 'Signed Up' },
    { type: 'track', userId: 'v-1', event: 'Setup Done' },
    { type: 'track', userId: 'v-2', event: 'Signed Up' },
  ]);
  assert.equal(await shop.stop(), 0);
  // Version 2 drops the setup stage and has one more: v-1, in setup, leaves at its next event.
  shop = await startServer({
    t,
    dataDir,
    config: onboarding(2, [
      ['signup', "event.name == 'Signed Up'"],
      ['invite', "event.name == 'Invited'"],
      ['share', "event.name == 'Shared'"],
    ]),
  });
  // v-2 keeps its stage (signup is in version 2 too): it leaves version 1's funnel and enters
  // version 2's there, then moves on. v-3 signs up on the last day of 1969.
  await post([
    { type: 'page', userId: 'v-1', name: 'Home' },
    { type: 'track', userId: 'v-2', event: 'Invited' },
    { type: 'track', userId: 'v-3', event: 'Signed Up', timestamp: '1969-12-31T12:00:00Z' },
  ]);
  const current = await funnel();
  assert.equal(current.status, 200, current.text);
  assert.equal(current.json.version, 2);
  assert.deepEqual(
    current.json.groups[0].stages.map((s) => [s.id, s.entered, s.movedOn]),
    [
      ['signup', 1, 1],
      ['invite', 1, 0],
      ['share', 0, 0],
    ],
  );
  const lastDayOf1969 = await funnel('?from=1969-12-31&to=1969-12-31');
  assert.deepEqual(lastDayOf1969.json.groups.map((g) => g.stages[0].entered), [1], lastDayOf1969.text);
  const firstDayOf1970 = await funnel('?from=1970-01-01&to=1970-01-01');
  assert.deepEqual(firstDayOf1970.json.groups, []);
  const old = await funnel('?version=1');
  assert.equal(old.status, 200, old.text);
  assert.equal(old.json.version, 1);
  const [all] = old.json.groups;
  assert.deepEqual(
    all.stages.map((s) => [s.id, s.entered, s.movedOn]),
    [
      [null, 2, 1],
      [null, 1, 0],
    ],
    'its two stages by position: the config holds the current version only',
  );
  assert.equal(all.exited, 2, 'both customers the version change moved count as exits in the old funnel');
  for (const bad of ['?version=3', '?version=0', '?version=x']) {
    const res = await funnel(bad);
    assert.equal(res.status, 400, `${bad}: ${res.text}`);
    assert.equal(res.json.error.field, 'version');
  }
  assert.equal(await shop.stop(), 0);
  // Version 2's stages changed without raising it: refused at start, naming the version.
  const edited = path.join(await makeTempDir(t), 'edited.yaml');
  await fsp.writeFile(edited, onboarding(2, [['signup', "event.name == 'Signed Up'"], ['invited', "event.name == 'Invited'"], ['share', "event.name == 'Shared'"]]));
  const refused = await runCli(['serve', '--port', '0', '--config', edited, '--data', dataDir]);
  assert.equal(refused.code, 2, refused.stderr);
  assert.match(refused.stderr, /edited\.yaml:\d+: workspaces\[0\]\.journeys\[0\]\.version: journey `onboarding` version 2 ran with the stages signup, invite, share and now has signup, invited, share: raise `version`/);
});

test('whisperer replay stopped by a signal removes its scratch store, then ends by the signal', async (t) => {
  const dir = await makeTempDir(t);
  const scratch = path.join(dir, 'tmp');
  await fsp.mkdir(scratch);
  const lines = [];
  for (let i = 0; i < 200_000; i += 1) {
    lines.push(JSON.stringify({ type: 'track', userId: `u${i % 5000}`, event: `E${i % 7}`, messageId: `r${i}`,
      timestamp: new Date(Date.UTC(2024, 0, 1) + i * 1000).toISOString() }));
  }
  const file = path.join(dir, 'big.ndjson');
  await fsp.writeFile(file, `${lines.join('\n')}\n`);
  const bin = await binary();
  for (const signal of ['SIGINT', 'SIGTERM']) {
    const child = spawn(bin, ['replay', file, '--config', path.join(REPO_ROOT, 'whisperer.example.yaml')], {
      env: { ...process.env, TMPDIR: scratch },
      stdio: 'ignore',
    });
    // Once its scratch store exists, stop it.
    for (let i = 0; i < 100 && (await fsp.readdir(scratch)).length === 0; i += 1) await sleep(20);
    await sleep(300);
    child.kill(signal);
    const [code, by] = await new Promise((resolve) => child.on('exit', (c, s) => resolve([c, s])));
    assert.equal(by, signal, `ended by ${signal} (exit ${code})`);
    assert.deepEqual(await fsp.readdir(scratch), [], `nothing left in TMPDIR after ${signal}`);
  }
});
