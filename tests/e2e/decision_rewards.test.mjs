// Where decisions' rewards come from besides POST /v1/rewards, through the real binary:
// decisions computed ahead of showing (deferActivation, POST /v1/decisions/{id}/activate), a
// decision point's reward wait with its default reward, goal events arriving through the
// collection API, and the NDJSON export of the log that offline evaluation reads.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { makeTempDir, runCli, startServer } from './lib/server.mjs';

const CONFIG = `
workspaces:
  - name: shop
    write_keys: [wk_shop]
    admin_keys: [ak_shop]
    decisions:
      control_group: 0
      thresholds: {autonomous: 0, supervised: 0}
      rewards:
        outcomes: {clicked: 1, converted: 1, ignored: 0}
        goals:
          - {event: Order Completed, outcome: converted, within: 1d, decision_points: [home]}
      actions:
        - {id: a, issue: engage, group: content, treatments: [{id: a_web, channel: web}]}
        - {id: b, issue: engage, group: content, treatments: [{id: b_web, channel: web}]}
        - {id: c, issue: engage, group: content, treatments: [{id: c_web, channel: web}]}
      decision_points:
        - {id: home, issues: [engage], slots: 2}
        - {id: banner, issues: [engage]}
        - {id: quick, issues: [engage], reward_wait: 1s, default_reward: -0.25}
`;

let server;

before(async () => {
  server = await startServer({ config: CONFIG });
});

after(async () => {
  if (server?.running) assert.equal(await server.stop(), 0);
});

const basic = (key = 'wk_shop') => `Basic ${Buffer.from(`${key}:`).toString('base64')}`;
const post = (path, body) => server.request(path, { method: 'POST', body, headers: { authorization: basic() } });
const decide = (body) => post('/v1/decide', body);
const reward = (body) => post('/v1/rewards', body);
const activate = (id) => post(`/v1/decisions/${id}/activate`, {});
const admin = (p) => server.request(p, { headers: { authorization: 'Bearer ak_shop' } });
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function rewardsOf(id, want, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await admin(`/v1/decisions/${id}`);
    assert.equal(res.status, 200, res.text);
    if (res.json.rewards.length >= want || Date.now() > deadline) return res.json;
    await sleep(100);
  }
}

test('a deferred decision is acted on, and rewarded, only once activated', async () => {
  const bad = await decide({ userId: 'dee', decisionPoint: 'banner', deferActivation: 'yes' });
  assert.equal(bad.status, 400, bad.text);
  assert.equal(bad.json.error.field, 'deferActivation');

  const d = await decide({ userId: 'dee', decisionPoint: 'banner', deferActivation: true });
  assert.equal(d.status, 200, d.text);
  assert.equal(d.json.activation, 'deferred');
  const id = d.json.decisionId;
  const early = await reward({ decisionId: id, outcome: 'clicked' });
  assert.equal(early.status, 409, early.text);
  assert.equal(early.json.error.code, 'decision_not_activated');
  assert.match(early.json.error.message, /activate/);
  assert.equal((await admin(`/v1/decisions/${id}`)).json.activatedAt, null);

  const first = await activate(id);
  assert.equal(first.status, 200, first.text);
  assert.equal(first.json.activated, true);
  assert.match(first.json.activatedAt, /^\d{4}-\d\d-\d\dT/);
  const again = await activate(id);
  assert.equal(again.status, 200, again.text);
  assert.deepEqual([again.json.activated, again.json.reason], [false, 'already_activated']);
  assert.equal(again.json.activatedAt, first.json.activatedAt);
  assert.equal((await admin(`/v1/decisions/${id}`)).json.activatedAt, first.json.activatedAt);

  const now = await reward({ decisionId: id, outcome: 'clicked' });
  assert.equal(now.status, 200, now.text);
  assert.equal(now.json.applied, true);
  // The slot as JSON may write it (1.0), or null for the default: the same slot, rewarded.
  for (const slot of ['1.0', '1e0', 'null']) {
    const res = await reward(`{"decisionId":"${id}","slot":${slot},"outcome":"clicked"}`);
    assert.equal(res.status, 200, `${slot}: ${res.text}`);
    assert.deepEqual([res.json.applied, res.json.reason], [false, 'already_rewarded'], slot);
  }
  assert.equal((await reward(`{"decisionId":"${id}","slot":1.5,"value":1}`)).json.error.field, 'slot');

  const plain = await decide({ userId: 'dee', decisionPoint: 'banner' });
  assert.equal(plain.json.activation, 'immediate');
  const noop = await activate(plain.json.decisionId);
  assert.deepEqual([noop.json.activated, noop.json.reason], [false, 'not_deferred']);
  // The key comes in the header: there is no body to put it in.
  const keyless = await server.request(`/v1/decisions/${id}/activate`, { method: 'POST', body: '' });
  assert.equal(keyless.status, 401, keyless.text);
  assert.match(keyless.json.error.message, /Authorization header/);
  assert.doesNotMatch(keyless.json.error.message, /body;|in the body/);
  const unknown = await activate('dec_00000000000000ff');
  assert.equal(unknown.status, 404, unknown.text);
  assert.equal(unknown.json.error.code, 'decision_not_found');
});

test('a slot with no reward after the wait gets the default reward; later ones do not count', async () => {
  const d = await decide({ userId: 'walt', decisionPoint: 'quick' });
  assert.equal(d.status, 200, d.text);
  const id = d.json.decisionId;
  const got = await rewardsOf(id, 1);
  assert.equal(got.rewards.length, 1, JSON.stringify(got));
  assert.deepEqual(
    [got.rewards[0].slot, got.rewards[0].value, got.rewards[0].source, got.rewards[0].rewardId],
    [1, -0.25, 'default', 'default'],
  );
  const late = await reward({ decisionId: id, outcome: 'clicked' });
  assert.equal(late.status, 200, late.text);
  assert.deepEqual([late.json.applied, late.json.reason, late.json.total], [false, 'already_rewarded', -0.25]);

  // Rewarded in time: no default.
  const quick = await decide({ userId: 'walt', decisionPoint: 'quick' });
  assert.equal((await reward({ decisionId: quick.json.decisionId, outcome: 'clicked' })).json.applied, true);
  // Deferred: the wait starts at activation.
  const later = await decide({ userId: 'walt', decisionPoint: 'quick', deferActivation: true });
  await sleep(2000);
  assert.deepEqual((await admin(`/v1/decisions/${later.json.decisionId}`)).json.rewards, []);
  assert.equal((await activate(later.json.decisionId)).json.activated, true);
  const defaulted = await rewardsOf(later.json.decisionId, 1);
  assert.equal(defaulted.rewards[0].source, 'default');
  const kept = await admin(`/v1/decisions/${quick.json.decisionId}`);
  assert.deepEqual(kept.json.rewards.map((r) => [r.source, r.value]), [['api', 1]]);
});

async function send(batch) {
  const res = await server.request('/v1/batch', { body: { batch }, headers: { authorization: basic() } });
  assert.equal(res.status, 200, res.text);
}

test('a goal event rewards the customer\'s recent decisions at its decision points, once', async () => {
  // Goals credit the decisions of a profile: these customers have one.
  await send([
    { type: 'identify', userId: 'gus', traits: { plan: 'pro' }, messageId: 'gus-0' },
    { type: 'identify', userId: 'ida', traits: { plan: 'pro' }, messageId: 'ida-0' },
  ]);
  await sleep(300);
  const home = await decide({ userId: 'gus', decisionPoint: 'home' });
  assert.equal(home.status, 200, home.text);
  assert.equal(home.json.slots.length, 2);
  const banner = await decide({ userId: 'gus', decisionPoint: 'banner' });
  const other = await decide({ userId: 'ida', decisionPoint: 'home' });
  const batch = [
    { type: 'track', userId: 'gus', event: 'Order Completed', messageId: 'gus-order-1' },
    { type: 'track', userId: 'gus', event: 'Product Viewed', messageId: 'gus-view-1' },
  ];
  await send(batch);
  const got = await rewardsOf(home.json.decisionId, 2);
  assert.deepEqual(
    got.rewards.map((r) => [r.slot, r.value, r.outcome, r.source, r.rewardId]),
    [
      [1, 1, 'converted', 'goal', 'goal:gus-order-1'],
      [2, 1, 'converted', 'goal', 'goal:gus-order-1'],
    ],
  );
  await sleep(1500);
  assert.deepEqual((await admin(`/v1/decisions/${banner.json.decisionId}`)).json.rewards, [], 'not a goal point');
  assert.deepEqual((await admin(`/v1/decisions/${other.json.decisionId}`)).json.rewards, [], 'another customer');
  // An order placed before the decision, arriving late (its timestamp an hour earlier), did not
  // follow it: no credit.
  await send([{
    type: 'track', userId: 'ida', event: 'Order Completed', messageId: 'ida-order-old',
    timestamp: new Date(Date.now() - 3_600_000).toISOString(),
  }]);
  await sleep(1500);
  assert.deepEqual((await admin(`/v1/decisions/${other.json.decisionId}`)).json.rewards, [], 'an order before it');
  // The same event again (a retry) is deduplicated at collection; a second order counts once
  // more only under aggregate: sum, and this workspace keeps the first.
  const again = await server.request('/v1/track', {
    body: { userId: 'gus', event: 'Order Completed', messageId: 'gus-order-2' },
    headers: { authorization: basic() },
  });
  assert.equal(again.status, 200, again.text);
  await sleep(1500);
  assert.equal((await admin(`/v1/decisions/${home.json.decisionId}`)).json.rewards.length, 2);
});

test('a goal credits the decisions made for a profile merged into the customer\'s since', async () => {
  // Decided for while anonymous, then signed in: the order comes from the merged customer.
  await send([{ type: 'page', anonymousId: 'goal-anon', messageId: 'goal-anon-1' }]);
  await send([{ type: 'identify', userId: 'goal-user', messageId: 'goal-user-1' }]);
  const home = await decide({ anonymousId: 'goal-anon', decisionPoint: 'home' });
  assert.equal(home.status, 200, home.text);
  assert.match(home.json.profileId, /^prf_/);
  await send([{ type: 'identify', userId: 'goal-user', anonymousId: 'goal-anon', messageId: 'goal-merge-1' }]);
  const profile = await admin(`/v1/profiles/${home.json.profileId}`);
  assert.notEqual(profile.json.profileId, home.json.profileId, 'the anonymous profile was merged away');
  await send([{ type: 'track', userId: 'goal-user', event: 'Order Completed', messageId: 'goal-order-1' }]);
  const got = await rewardsOf(home.json.decisionId, 2);
  assert.deepEqual(
    got.rewards.map((r) => [r.slot, r.source, r.rewardId]),
    [
      [1, 'goal', 'goal:goal-order-1'],
      [2, 'goal', 'goal:goal-order-1'],
    ],
  );
});

test('a goal event acknowledged just before a kill -9 still rewards after the restart', async () => {
  await send([{ type: 'identify', userId: 'kim', messageId: 'kim-0' }]);
  await sleep(300);
  const d = await decide({ userId: 'kim', decisionPoint: 'home' });
  assert.equal(d.status, 200, d.text);
  // Goals are applied once a second: killed right after the answer, this one has not been yet,
  // and only what was written with the event can bring it back.
  await send([{ type: 'track', userId: 'kim', event: 'Order Completed', messageId: 'kim-order-1' }]);
  await server.kill9();
  server = await startServer({ config: CONFIG, dataDir: server.dataDir });
  const got = await rewardsOf(d.json.decisionId, 2);
  assert.deepEqual(
    got.rewards.map((r) => [r.slot, r.source, r.rewardId]),
    [
      [1, 'goal', 'goal:kim-order-1'],
      [2, 'goal', 'goal:kim-order-1'],
    ],
  );
  await sleep(1500);  // applied once, and not again
  assert.equal((await admin(`/v1/decisions/${d.json.decisionId}`)).json.rewards.length, 2);
});

test('the log exports as NDJSON, a line per slot, with what offline evaluation needs', async () => {
  const from = new Date(Date.now() - 1000).toISOString();
  const ids = [];
  for (const user of ['eve', 'fay', 'gil']) {
    const d = await decide({ userId: user, decisionPoint: 'home', context: { page: { path: '/x' } } });
    assert.equal(d.status, 200, d.text);
    ids.push(d.json.decisionId);
  }
  await reward({ decisionId: ids[0], slot: 2, value: 0.5 });
  const res = await admin(`/v1/decisions/export?from=${encodeURIComponent(from)}`);
  assert.equal(res.status, 200, res.text);
  assert.match(res.headers['content-type'], /application\/x-ndjson/);
  assert.equal(res.headers['whisperer-next-cursor'], undefined);
  const lines = res.text.trim().split('\n').map((l) => JSON.parse(l));
  const mine = lines.filter((l) => ids.includes(l.decisionId));
  assert.equal(mine.length, 6);
  for (const l of mine) {
    assert.equal(l.decisionPoint, 'home', JSON.stringify(l));
    assert.ok([1, 2].includes(l.position));
    assert.ok(l.candidates.includes(l.action), JSON.stringify(l));
    assert.equal(l.candidates.length, l.position === 1 ? 3 : 2);
    assert.ok(l.propensity > 0 && l.propensity <= 1);
    assert.ok(l.context.length > 0 && l.context.every(([i, v]) => Number.isInteger(i) && typeof v === 'number'), JSON.stringify(l));
  }
  for (const id of ids) {  // the second slot chose among what the first left
    const [first, second] = [1, 2].map((p) => mine.find((l) => l.decisionId === id && l.position === p));
    assert.deepEqual(second.candidates, first.candidates.filter((a) => a !== first.action));
  }
  const rewarded = mine.filter((l) => l.reward !== null);
  assert.deepEqual(rewarded.map((l) => [l.decisionId, l.position, l.reward]), [[ids[0], 2, 0.5]]);

  // Pages: the cursor of the next one in a header.
  const page = await admin(`/v1/decisions/export?from=${encodeURIComponent(from)}&limit=1`);
  assert.equal(page.status, 200, page.text);
  const cursor = page.headers['whisperer-next-cursor'];
  assert.match(cursor, /^dec_/);
  const next = await admin(`/v1/decisions/export?from=${encodeURIComponent(from)}&limit=1&cursor=${cursor}`);
  assert.notEqual(JSON.parse(next.text.split('\n')[0]).decisionId, JSON.parse(page.text.split('\n')[0]).decisionId);
  // What offline evaluation reads: the export as it is.
  const dir = await makeTempDir();
  const file = path.join(dir, 'log.ndjson');
  await fsp.writeFile(file, res.text);
  const ope = await runCli(['eval', 'ope', '--log', file, '--policy', 'uniform', '--train', '0']);
  assert.equal(ope.code, 0, ope.stderr);
  const est = JSON.parse(ope.stdout);
  assert.equal(est.lines, lines.length);
  assert.equal(est.missingRewards, lines.filter((l) => l.reward === null).length);
  assert.ok(Number.isFinite(est.ipw.value) && Number.isFinite(est.dr.value), ope.stdout);

  const tooMany = await admin('/v1/decisions/export?limit=100001');
  assert.equal(tooMany.status, 400, tooMany.text);
  assert.equal(tooMany.json.error.field, 'limit');
  // The write key reads no decision log, however it is sent.
  const writeKey = await server.request('/v1/decisions/export', { headers: { authorization: basic() } });
  assert.equal(writeKey.status, 403, writeKey.text);
  assert.equal(writeKey.json.error.code, 'forbidden');
});

const DELIVERY = `
workspaces:
  - name: mail
    write_keys: [wk_mail]
    admin_keys: [ak_mail]
    decisions:
      control_group: 0
      thresholds: {autonomous: 0, supervised: 0}
      channels: {prior_strength: 2}
      send_time: {exploration: 0, default_hour: 9}
      actions:
        - id: promo
          issue: engage
          group: mail
          treatments: [{id: promo_email, channel: email}, {id: promo_sms, channel: sms}]
          variants:
            - {id: plain, content: "Our new range"}
            - {id: urgent, content: "Last day: 20% off"}
      decision_points:
        - {id: send, actions: [promo]}
`;

test('delivery: the channel a customer engages on, variants by their clicks, the next send time in their zone', async () => {
  const srv = await startServer({ config: DELIVERY });
  try {
    const auth = { authorization: `Basic ${Buffer.from('wk_mail:').toString('base64')}` };
    const ask = (body) => srv.request('/v1/decide', { body, headers: auth });
    const pay = (body) => srv.request('/v1/rewards', { body, headers: auth });
    await srv.request('/v1/identify', {
      body: { userId: 'kim', traits: { timezone: 'Asia/Tokyo' }, messageId: 'kim-0' },
      headers: auth,
    });
    await sleep(300);
    // Kim clicks what comes by SMS with the urgent copy, never e-mail or the plain copy.
    for (let i = 0; i < 60; ++i) {
      const d = await ask({ userId: 'kim', decisionPoint: 'send' });
      assert.equal(d.status, 200, d.text);
      const [slot] = d.json.slots;
      assert.equal(slot.channelChoice.among, 2);
      assert.ok(slot.channelChoice.probability > 0 && slot.channelChoice.probability <= 1);
      assert.ok(['plain', 'urgent'].includes(slot.variant.id));
      assert.equal(slot.variant.content, slot.variant.id === 'plain' ? 'Our new range' : 'Last day: 20% off');
      assert.equal(d.json.sendTime.zone, 'Asia/Tokyo');
      const clicked = slot.treatment.channel === 'sms' && slot.variant.id === 'urgent';
      const r = await pay({ decisionId: d.json.decisionId, value: clicked ? 1 : 0 });
      assert.equal(r.status, 200, r.text);
    }
    let sms = 0;
    let urgent = 0;
    let last;
    for (let i = 0; i < 40; ++i) {
      last = await ask({ userId: 'kim', decisionPoint: 'send' });
      if (last.json.slots[0].treatment.channel === 'sms') ++sms;
      if (last.json.slots[0].variant.id === 'urgent') ++urgent;
    }
    assert.ok(sms >= 30, `sms chosen ${sms} of 40`);
    assert.ok(urgent >= 30, `urgent chosen ${urgent} of 40`);
    // Her engagements were all this hour, Tokyo time: the best send time is that hour next
    // week or sooner, in her zone, from her own history.
    const st = last.json.sendTime;
    assert.equal(st.source, 'customer');
    assert.equal(st.mode, 'exploit');
    const at = Date.parse(st.at);
    assert.ok(at > Date.now() && at <= Date.now() + 7 * 86_400_000, st.at);
    const tokyoHour = (ms) => Number(new Intl.DateTimeFormat('en-GB', { timeZone: 'Asia/Tokyo', hour: 'numeric', hourCycle: 'h23' }).format(ms));
    assert.equal(tokyoHour(at), tokyoHour(Date.now()));
    assert.equal(new Date(at).getUTCMinutes(), 0);

    // A customer with no history: the workspace's best hour (Kim's), in their own zone.
    const fresh = await ask({ userId: 'lee', decisionPoint: 'send', context: { timezone: 'Europe/Paris' } });
    assert.equal(fresh.json.sendTime.zone, 'Europe/Paris');
    assert.equal(fresh.json.sendTime.source, 'workspace');
    const bad = await ask({ userId: 'lee', decisionPoint: 'send', context: { timezone: '../etc/passwd' } });
    assert.equal(bad.status, 200, bad.text);
    assert.equal(bad.json.sendTime.zone, 'UTC');
  } finally {
    assert.equal(await srv.stop(), 0);
  }
});

// The lift test's workspace, before its decisions' settings.
const LIFT_WORKSPACE = `
workspaces:
  - name: lift
    write_keys: [wk_lift]
    admin_keys: [ak_lift]
    decisions:
`;

test('the lift report: the engine against its control group', async (t) => {
  const srv = await startServer({
    t,
    config: `${LIFT_WORKSPACE}      control_group: 0.5
      thresholds: {autonomous: 0, supervised: 0}
      actions:
        - {id: good, issue: i, group: g, treatments: [{id: good_web, channel: web}]}
        - {id: meh, issue: i, group: g, treatments: [{id: meh_web, channel: web}]}
        - {id: bad, issue: i, group: g, treatments: [{id: bad_web, channel: web}]}
      decision_points:
        - {id: page, issues: [i]}
        - {id: other, issues: [i]}
`,
  });
  const auth = { authorization: `Basic ${Buffer.from('wk_lift:').toString('base64')}` };
  const groups = { engine: 0, control: 0 };
  for (let i = 0; i < 300; ++i) {
    const d = await srv.request('/v1/decide', { body: { userId: `c${i}`, decisionPoint: 'page' }, headers: auth });
    assert.equal(d.status, 200, d.text);
    ++groups[d.json.group];
    const value = d.json.slots[0].action === 'good' ? 1 : 0;
    if (i % 10 !== 9) {  // every tenth slot gets no reward: it counts as 0
      await srv.request('/v1/rewards', { body: { decisionId: d.json.decisionId, value }, headers: auth });
    }
  }
  await srv.request('/v1/decide', { body: { userId: 'x', decisionPoint: 'other' }, headers: auth });
  const admin = (p) => srv.request(p, { headers: { authorization: 'Bearer ak_lift' } });
  const res = await admin('/v1/decisions/lift?decisionPoint=page');
  assert.equal(res.status, 200, res.text);
  const { engine, control, lift } = res.json;
  assert.equal(res.json.scanned, 301);
  assert.equal(res.json.truncated, false);
  assert.deepEqual([engine.decisions, control.decisions], [groups.engine, groups.control]);
  assert.ok(groups.control > 90 && groups.engine > 90, JSON.stringify(groups));
  assert.equal(engine.slots + control.slots, 300);
  assert.equal(engine.rewarded + control.rewarded, 270);
  assert.ok(engine.low <= engine.meanReward && engine.meanReward <= engine.high);
  assert.ok(Math.abs(lift.absolute - (engine.meanReward - control.meanReward)) < 1e-12);
  assert.ok(lift.low < lift.absolute && lift.absolute < lift.high);
  // The engine learned that good pays; the control group draws uniformly (about a third).
  assert.ok(engine.meanReward > control.meanReward + 0.2, res.text);
  assert.ok(lift.low > 0, res.text);
  // One decision at the other point: its group's mean has no interval, the other group's no mean.
  const one = (await admin('/v1/decisions/lift?decisionPoint=other')).json;
  const [used, unused] = one.engine.slots === 1 ? [one.engine, one.control] : [one.control, one.engine];
  assert.equal(used.slots, 1, JSON.stringify(one));
  assert.equal(typeof used.meanReward, 'number');
  assert.deepEqual([used.low, used.high], [null, null]);
  assert.deepEqual([unused.slots, unused.meanReward, unused.low, unused.high], [0, null, null, null]);
  assert.equal(one.lift, null);
  // Decisions computed ahead and never activated were never shown: the report and the export
  // leave them out. One activated counts (without a reward: as 0).
  const deferred = [];
  for (let i = 0; i < 3; ++i) {
    const d = await srv.request('/v1/decide', {
      body: { userId: `late${i}`, decisionPoint: 'page', deferActivation: true },
      headers: auth,
    });
    assert.equal(d.status, 200, d.text);
    deferred.push(d.json);
  }
  const shown = await srv.request(`/v1/decisions/${deferred[0].decisionId}/activate`, {
    method: 'POST',
    body: {},
    headers: auth,
  });
  assert.equal(shown.status, 200, shown.text);
  ++groups[deferred[0].group];
  const after = (await admin('/v1/decisions/lift?decisionPoint=page')).json;
  assert.equal(after.scanned, 304);
  assert.deepEqual([after.engine.decisions, after.control.decisions], [groups.engine, groups.control]);
  assert.equal(after.engine.slots + after.control.slots, 301);
  assert.equal(after.engine.rewarded + after.control.rewarded, 270);
  const exported = await admin('/v1/decisions/export');
  const exportedIds = new Set(exported.text.trim().split('\n').map((l) => JSON.parse(l).decisionId));
  assert.deepEqual(
    deferred.map((d) => exportedIds.has(d.decisionId)),
    [true, false, false],
  );
  const other = await admin('/v1/decisions/lift?decisionPoint=other');
  assert.equal(other.json.lift, null, other.text);
  const bad = await admin('/v1/decisions/lift?from=yesterday');
  assert.equal(bad.status, 400, bad.text);
  assert.equal(bad.json.error.field, 'from');
  // A point neither configured nor logged is a mistake, not zero lift.
  const typo = await admin('/v1/decisions/lift?decisionPoint=pgae');
  assert.equal(typo.status, 404, typo.text);
  assert.equal(typo.json.error.code, 'unknown_decision_point');
  assert.equal(typo.json.error.field, 'decisionPoint');
  // A configured point with nothing logged in the range is no lift yet.
  const empty = await admin('/v1/decisions/lift?decisionPoint=page&to=2020-01-01T00:00:00Z');
  assert.equal(empty.status, 200, empty.text);
  assert.deepEqual([empty.json.scanned, empty.json.lift], [0, null]);
  assert.equal(await srv.stop(), 0);

  // A point taken out of the catalog still reports what was logged at it.
  const again = await startServer({
    t,
    dataDir: srv.dataDir,
    config: `${LIFT_WORKSPACE}      actions:
        - {id: good, issue: i, group: g, treatments: [{id: good_web, channel: web}]}
      decision_points:
        - {id: other, issues: [i]}
`,
  });
  const gone = await again.request('/v1/decisions/lift?decisionPoint=page', {
    headers: { authorization: 'Bearer ak_lift' },
  });
  assert.equal(gone.status, 200, gone.text);
  assert.deepEqual([gone.json.engine.decisions, gone.json.control.decisions], [groups.engine, groups.control]);
  assert.equal(await again.stop(), 0);

  // So does a workspace whose decisions block is gone; a point it never logged is still a typo.
  const none = await startServer({
    t,
    dataDir: srv.dataDir,
    config: LIFT_WORKSPACE.replace('    decisions:\n', ''),
  });
  const liftOf = (point) =>
    none.request(`/v1/decisions/lift?decisionPoint=${point}`, { headers: { authorization: 'Bearer ak_lift' } });
  const logged = await liftOf('page');
  assert.equal(logged.status, 200, logged.text);
  assert.equal(logged.json.engine.decisions, groups.engine);
  const typoNone = await liftOf('pgae');
  assert.equal(typoNone.status, 404, typoNone.text);
  assert.equal(typoNone.json.error.code, 'unknown_decision_point');
  assert.equal(await none.stop(), 0);
});

test('aggregate: sum adds one reward per rewardId, and the same rewards always give the same total', async (t) => {
  const srv = await startServer({
    t,
    config: `
workspaces:
  - name: sums
    write_keys: [wk_sum]
    admin_keys: [ak_sum]
    decisions:
      control_group: 0
      thresholds: {autonomous: 0, supervised: 0}
      rewards: {aggregate: sum}
      actions:
        - {id: a, issue: engage, group: content, treatments: [{id: a_web, channel: web}]}
      decision_points:
        - {id: home, issues: [engage]}
`,
  });
  const call = (p, body, key) =>
    srv.request(p, { method: body ? 'POST' : 'GET', body, headers: { authorization: `Bearer ${key}` } });
  const d = (await call('/v1/decide', { userId: 'summer', decisionPoint: 'home' }, 'wk_sum')).json;
  // Sent out of rewardId order: each answer's total is of the rewards so far.
  const totals = [];
  for (const [rewardId, value] of [['d', 0.25], ['a', 0.5], ['c', -0.1], ['b', 0.3]]) {
    const res = await call('/v1/rewards', { decisionId: d.decisionId, value, rewardId }, 'wk_sum');
    assert.equal(res.status, 200, res.text);
    assert.equal(res.json.applied, true);
    totals.push(res.json.total);
  }
  assert.ok(Math.abs(totals[3] - 0.95) < 1e-12, String(totals[3]));
  // A repeated rewardId changes nothing, the total to the last digit included; nor does a 0.
  const repeated = await call('/v1/rewards', { decisionId: d.decisionId, value: 0.5, rewardId: 'a' }, 'wk_sum');
  assert.equal(repeated.json.applied, false);
  assert.equal(repeated.json.reason, 'duplicate_reward_id');
  assert.equal(repeated.json.total, totals[3]);
  const zero = await call('/v1/rewards', { decisionId: d.decisionId, value: 0, rewardId: 'e' }, 'wk_sum');
  assert.equal(zero.json.total, totals[3]);
  const logged = await call(`/v1/decisions/${d.decisionId}`, null, 'ak_sum');
  assert.equal(logged.json.rewards.length, 5);
  const exported = await call('/v1/decisions/export', null, 'ak_sum');
  assert.equal(exported.status, 200, exported.text);
  const line = JSON.parse(exported.text.trim().split('\n')[0]);
  assert.equal(line.reward, totals[3], 'the export sums the same way');
  assert.equal(await srv.stop(), 0);
});
