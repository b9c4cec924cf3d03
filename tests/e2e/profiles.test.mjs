// Unified profiles through the real binary: the official Segment client browses anonymously on
// two devices and then identifies on both; the profile API shows one customer with both
// devices and the whole timeline. Also: concurrent merges from many connections, consent,
// workspace isolation and the errors of the profile endpoints.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { randomUUID } from 'node:crypto';
import { Analytics as SegmentAnalytics } from '@segment/analytics-node';
import { IPHONE_UA, MAC_UA } from './lib/user_agents.mjs';
import { startServer } from './lib/server.mjs';

let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  if (server) assert.equal(await server.stop(), 0, 'whisperer exits 0 on SIGTERM');
});

async function admin(path, opts = {}) {
  return server.request(path, { ...opts, headers: { authorization: server.bearer(), ...opts.headers } });
}

async function lookup(type, value) {
  const res = await admin(`/v1/profiles/lookup?${type}=${encodeURIComponent(value)}`);
  return res;
}

async function profileOf(type, value) {
  const res = await lookup(type, value);
  assert.equal(res.status, 200, `lookup ${type}=${value}: ${res.text}`);
  const profile = await admin(`/v1/profiles/${res.json.profileId}`);
  assert.equal(profile.status, 200, profile.text);
  return profile.json;
}

/** Every event of a profile's timeline, following the cursor with pages of `limit`. */
async function timeline(profileId, limit) {
  const events = [];
  let cursor = '';
  for (;;) {
    const res = await admin(`/v1/profiles/${profileId}/events?limit=${limit}&cursor=${cursor}`);
    assert.equal(res.status, 200, res.text);
    assert.ok(res.json.events.length <= limit);
    events.push(...res.json.events);
    if (!res.json.hasMore) {
      assert.equal(res.json.nextCursor, null);
      return events;
    }
    cursor = res.json.nextCursor;
  }
}

function segmentClient() {
  return new SegmentAnalytics({
    writeKey: server.writeKey,
    host: server.url,
    path: '/v1/batch',
    flushAt: 4,
    flushInterval: 100,
    maxRetries: 2,
    httpRequestTimeout: 10_000,
  });
}

async function send(analytics, calls) {
  const delivered = calls.map(
    ([method, msg]) =>
      new Promise((resolve) => analytics[method](msg, (err) => resolve({ method, err }))),
  );
  await analytics.closeAndFlush({ timeout: 0 });
  for (const r of await Promise.all(delivered)) assert.equal(r.err, undefined, `${r.method}`);
}

test(
  'Segment client: anonymous browsing on two devices, then identify on both, is one customer',
  { timeout: 60_000 },
  async () => {
    const run = randomUUID().slice(0, 8);
    const user = `user-${run}`;
    const phone = `anon-phone-${run}`;
    const laptop = `anon-laptop-${run}`;
    const t0 = Date.now() - 3_600_000;
    const at = (minutes) => new Date(t0 + minutes * 60_000);
    const onPhone = { userAgent: IPHONE_UA, campaign: { source: 'tiktok', medium: 'paid_social' } };
    const onLaptop = { userAgent: MAC_UA, page: { referrer: 'https://www.google.com/search?q=x' } };

    // Anonymous on both devices, an hour ago.
    await send(segmentClient(), [
      ['page', { anonymousId: phone, name: 'Home', timestamp: at(0), context: onPhone }],
      ['track', { anonymousId: phone, event: 'Product Viewed', timestamp: at(1), context: onPhone }],
      ['page', { anonymousId: laptop, name: 'Specs', timestamp: at(10), context: onLaptop }],
      ['page', { anonymousId: laptop, name: 'Reviews', timestamp: at(11), context: onLaptop }],
    ]);
    const phoneBefore = (await lookup('anonymousId', phone)).json.profileId;
    const laptopBefore = (await lookup('anonymousId', laptop)).json.profileId;
    assert.ok(phoneBefore && laptopBefore);
    assert.notEqual(phoneBefore, laptopBefore, 'two anonymous devices are two profiles at first');

    await send(segmentClient(), [
      [
        'identify',
        {
          userId: user,
          anonymousId: phone,
          traits: { email: `${user}@Example.com`, plan: 'free' },
          timestamp: at(20),
          context: onPhone,
        },
      ],
      [
        'identify',
        { userId: user, anonymousId: laptop, traits: { plan: 'pro' }, timestamp: at(30), context: onLaptop },
      ],
      [
        'track',
        {
          userId: user,
          event: 'Order Completed',
          properties: { revenue: 42.5 },
          timestamp: at(31),
          context: onLaptop,
        },
      ],
    ]);

    const profile = await profileOf('userId', user);
    for (const [type, value] of [
      ['anonymousId', phone],
      ['anonymousId', laptop],
      ['email', `${user}@example.com`],
    ]) {
      assert.equal((await lookup(type, value)).json.profileId, profile.profileId, `${type} ${value}`);
    }
    const ids = profile.identifiers.map((i) => `${i.type}:${i.value}`).sort();
    assert.deepEqual(ids, [
      `anonymousId:${laptop}`,
      `anonymousId:${phone}`,
      `email:${user}@example.com`,
      `userId:${user}`,
    ]);
    assert.equal(profile.events, 7);
    assert.equal(profile.eventCounts.page, 3);
    assert.equal(profile.eventCounts.identify, 2);
    assert.equal(profile.traits.plan.value, 'pro', 'the later trait wins');
    assert.equal(profile.orders.count, 1);
    assert.equal(profile.orders.revenue, 42.5);
    assert.equal(profile.rfm.frequency, 1);
    assert.equal(profile.sessions.count, 2, 'two devices, two sessions (gap over 30 minutes too)');
    // Skew correction moves client times by the (sub-second) sentAt-to-receivedAt difference.
    assert.ok(Math.abs(Date.parse(profile.firstSeen) - at(0).getTime()) < 5000, profile.firstSeen);
    assert.ok(Math.abs(Date.parse(profile.lastSeen) - at(31).getTime()) < 5000, profile.lastSeen);
    assert.deepEqual(
      profile.devices.map((d) => `${d.type} ${d.os} ${d.browser}`).sort(),
      ['desktop Mac OS X Chrome', 'mobile iOS Mobile Safari'],
      'both devices, from the user agents',
    );
    assert.deepEqual(profile.sources.map((s) => s.source), ['tiktok']);
    assert.deepEqual(profile.referrers.map((r) => r.host), ['www.google.com']);
    assert.equal(profile.platforms[0].library, '@segment/analytics-node');
    assert.equal(profile.merges.length, 1, 'the second identify merged the laptop profile');
    assert.ok([phoneBefore, laptopBefore].includes(profile.merges[0].absorbed));
    // The absorbed profile's id answers with the survivor.
    const absorbed = await admin(`/v1/profiles/${profile.merges[0].absorbed}`);
    assert.equal(absorbed.json.profileId, profile.profileId);

    // The whole timeline across both devices, newest first, in one page and in pages of 2.
    for (const limit of [100, 2]) {
      const events = await timeline(profile.profileId, limit);
      assert.equal(events.length, 7, `limit ${limit}`);
      const times = events.map((e) => Date.parse(e.timestamp));
      assert.deepEqual(times, [...times].sort((a, b) => b - a), 'newest first');
      assert.deepEqual(
        new Set(events.map((e) => e.anonymousId).filter(Boolean)),
        new Set([phone, laptop]),
      );
    }
  },
);

/** POST /v1/batch over a keep-alive agent. */
async function batch(agent, events) {
  const res = await server.request('/v1/batch', {
    body: { batch: events },
    headers: { authorization: server.basic() },
    agent,
  });
  assert.equal(res.status, 200, res.text);
}

test(
  'concurrent merges from many connections: no event lost, none counted twice',
  { timeout: 120_000 },
  async () => {
    const run = randomUUID().slice(0, 8);
    const USERS = 20;
    const DEVICES = 3;
    const EVENTS_PER_DEVICE = 10;
    const CONNECTIONS = 8;
    // Every device browses, and every device identifies as its user, in a random order over
    // many connections; some batches are sent twice (a client retry).
    const batches = [];
    for (let u = 0; u < USERS; ++u) {
      for (let d = 0; d < DEVICES; ++d) {
        const anonymousId = `c-${run}-u${u}-d${d}`;
        const events = [];
        for (let i = 0; i < EVENTS_PER_DEVICE; ++i) {
          events.push({ type: 'track', event: 'Viewed', anonymousId, messageId: `${anonymousId}-${i}` });
        }
        events.push({
          type: 'identify',
          userId: `c-${run}-u${u}`,
          anonymousId,
          messageId: `${anonymousId}-identify`,
        });
        for (let i = 0; i < events.length; i += 4) batches.push(events.slice(i, i + 4));
      }
    }
    for (let i = batches.length - 1; i > 0; --i) {
      const j = Math.floor(Math.random() * (i + 1));
      [batches[i], batches[j]] = [batches[j], batches[i]];
    }
    const retries = batches.filter((_, i) => i % 7 === 0);
    const work = [...batches, ...retries];
    const agents = Array.from({ length: CONNECTIONS }, () => new http.Agent({ keepAlive: true, maxSockets: 1 }));
    let next = 0;
    await Promise.all(
      agents.map(async (agent) => {
        while (next < work.length) await batch(agent, work[next++]);
      }),
    );
    for (const a of agents) a.destroy();

    const seen = new Set();
    for (let u = 0; u < USERS; ++u) {
      const profile = await profileOf('userId', `c-${run}-u${u}`);
      assert.ok(!seen.has(profile.profileId), 'one profile per user');
      seen.add(profile.profileId);
      assert.equal(profile.events, DEVICES * (EVENTS_PER_DEVICE + 1), `user ${u} event count`);
      assert.equal(profile.eventCounts.Viewed, DEVICES * EVENTS_PER_DEVICE);
      assert.equal(profile.identifiers.length, DEVICES + 1);
      for (let d = 0; d < DEVICES; ++d) {
        const id = (await lookup('anonymousId', `c-${run}-u${u}-d${d}`)).json.profileId;
        assert.equal(id, profile.profileId, `device ${d} of user ${u}`);
      }
      const events = await timeline(profile.profileId, 7);
      assert.equal(events.length, DEVICES * (EVENTS_PER_DEVICE + 1));
      assert.equal(new Set(events.map((e) => e.messageId)).size, events.length, 'no duplicates');
    }
  },
);

test('consent: set through the API and from events; denied cross_device stops merges', async () => {
  const run = randomUUID().slice(0, 8);
  const anon = `consent-anon-${run}`;
  const user = `consent-user-${run}`;
  const post = (body) =>
    server.request('/v1/batch', { body: { batch: body }, headers: { authorization: server.basic() } });
  let res = await post([
    { type: 'page', anonymousId: anon, context: { consent: { categoryPreferences: { cross_device: false } } } },
    { type: 'identify', userId: user, traits: { plan: 'x' } },
  ]);
  assert.equal(res.status, 200);
  res = await post([{ type: 'identify', userId: user, anonymousId: anon }]);
  assert.equal(res.status, 200);
  const anonProfile = (await lookup('anonymousId', anon)).json.profileId;
  const userProfile = (await lookup('userId', user)).json.profileId;
  assert.notEqual(anonProfile, userProfile, 'denied cross_device keeps the device apart');

  res = await admin(`/v1/profiles/${userProfile}/consent`, {
    method: 'PUT',
    body: { purposes: { marketing_email: 'denied', analytics: true }, source: 'preference-center' },
  });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.consent.marketing_email.state, 'denied');
  assert.equal(res.json.consent.analytics.state, 'granted');
  assert.equal(res.json.consent.analytics.source, 'api:preference-center');
  const profile = (await admin(`/v1/profiles/${userProfile}`)).json;
  assert.equal(profile.consent.marketing_email.state, 'denied');
  // A misspelt key is refused whole: `timestamp` taken at its default would have made an old
  // preference the latest.
  res = await admin(`/v1/profiles/${userProfile}/consent`, {
    method: 'PUT',
    body: { purposes: { marketing_email: 'granted' }, timestmap: '2019-01-01T00:00:00Z' },
  });
  assert.equal(res.status, 400, res.text);
  assert.equal(res.json.error.code, 'invalid_value');
  assert.equal(res.json.error.field, 'timestmap');
  assert.equal((await admin(`/v1/profiles/${userProfile}`)).json.consent.marketing_email.state, 'denied');

  // The latest statement wins, whichever way it arrives: a sync of old preferences changes
  // nothing, and a time ahead of the server's counts as when it was received.
  res = await admin(`/v1/profiles/${userProfile}/consent`, {
    method: 'PUT',
    body: { purposes: { marketing_email: 'granted' }, timestamp: '2019-01-01T00:00:00Z', source: 'old-sync' },
  });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.consent.marketing_email.state, 'denied');
  assert.equal(res.json.consent.marketing_email.source, 'api:preference-center');
  res = await admin(`/v1/profiles/${userProfile}/consent`, {
    method: 'PUT',
    body: { purposes: { marketing_email: 'granted' }, timestamp: '2099-01-01T00:00:00Z' },
  });
  assert.equal(res.json.consent.marketing_email.state, 'granted');
  assert.ok(Date.parse(res.json.consent.marketing_email.at) <= Date.now(), res.text);
  res = await post([{ type: 'track', event: 'Unsubscribed', userId: user,
    context: { consent: { marketing_email: 'denied' } } }]);
  assert.equal(res.status, 200);
  assert.equal((await admin(`/v1/profiles/${userProfile}`)).json.consent.marketing_email.state, 'denied');

  const bad = [
    [{ purposes: { telepathy: 'granted' } }, 400, 'purposes.telepathy'],
    [{ purposes: { analytics: 'maybe' } }, 400, 'purposes.analytics'],
    [{ purposes: {} }, 400, 'purposes'],
    [{ purposes: { analytics: true }, timestamp: 'yesterday' }, 400, 'timestamp'],
    [{ purposes: { analytics: true }, source: 7 }, 400, 'source', 'wrong_type'],
    ['{not json', 400, undefined],
  ];
  for (const [body, status, field, code] of bad) {
    res = await admin(`/v1/profiles/${userProfile}/consent`, { method: 'PUT', body });
    assert.equal(res.status, status, JSON.stringify(body));
    assert.equal(res.json.error.field, field, JSON.stringify(body));
    if (code) assert.equal(res.json.error.code, code, res.text);
  }
  res = await admin(`/v1/profiles/prf_fffffff/consent`, { method: 'PUT', body: { purposes: { analytics: true } } });
  assert.equal(res.status, 404);
  assert.equal(res.json.error.code, 'profile_not_found');
  // Nothing of the refused requests was applied.
  assert.deepEqual(
    Object.keys((await admin(`/v1/profiles/${userProfile}`)).json.consent).sort(),
    ['analytics', 'marketing_email'],
  );
});

test('consent from a consent manager: its categories set the purposes they map to', async (t) => {
  const cm = await startServer({
    t,
    config: `
workspaces:
  - name: default
    consent:
      categories:
        C0004: [marketing_email, marketing_sms]
        Performance: [analytics]
`,
  });
  // Segment's consent shape (context.consent.categoryPreferences, as its consent manager
  // integrations send it), with a category the workspace does not map and a purpose stated
  // with a value that is no yes or no.
  const res = await cm.request('/v1/track', {
    body: {
      userId: 'cmp-user',
      event: 'Consent Updated',
      messageId: 'cmp-1',
      context: {
        consent: {
          personalization: 'maybe',
          categoryPreferences: { C0004: false, Performance: true, C0005: true },
        },
      },
    },
    headers: { authorization: cm.basic() },
  });
  assert.equal(res.status, 200, res.text);
  const id = (await cm.request('/v1/profiles/lookup?userId=cmp-user', { headers: { authorization: cm.bearer() } }))
    .json.profileId;
  const profile = (await cm.request(`/v1/profiles/${id}`, { headers: { authorization: cm.bearer() } })).json;
  assert.deepEqual(Object.keys(profile.consent).sort(), ['analytics', 'marketing_email', 'marketing_sms']);
  assert.equal(profile.consent.marketing_email.state, 'denied');
  assert.equal(profile.consent.marketing_sms.state, 'denied');
  assert.equal(profile.consent.analytics.state, 'granted');
  assert.equal(profile.consent.analytics.source, 'event:cmp-1');
  const metrics = (await cm.request('/metrics')).text;
  assert.match(metrics, /whisperer_consent_statements_ignored_total\{reason="unknown_name"\} 1\n/);
  assert.match(metrics, /whisperer_consent_statements_ignored_total\{reason="invalid_value"\} 1\n/);
  assert.equal(await cm.stop(), 0);
});

test('identity.max_identifiers: a login used on thousands of browsers keeps its events, not every browser', async (t) => {
  const capped = await startServer({
    t,
    config: `
workspaces:
  - name: default
    identity:
      max_identifiers: 100
`,
  });
  const headers = { authorization: capped.bearer() };
  // One userId from 2,500 browsers in one batch, then a second customer sharing one of them.
  const shared = Array.from({ length: 2500 }, (_, i) => ({
    type: 'track', userId: 'office-login', anonymousId: `browser-${i}`, event: 'Report Viewed', messageId: `office-${i}`,
  }));
  const res = await capped.request('/v1/batch', { body: { batch: shared }, headers: { authorization: capped.basic() } });
  assert.equal(res.status, 200, res.text);
  const id = (await capped.request('/v1/profiles/lookup?userId=office-login', { headers })).json.profileId;
  const profile = (await capped.request(`/v1/profiles/${id}`, { headers })).json;
  assert.equal(profile.identifiers.length, 100);
  assert.equal(profile.eventCounts['Report Viewed'], 2500, 'every event still counts for the customer');
  assert.equal((await capped.request('/v1/profiles/lookup?anonymousId=browser-98', { headers })).json.profileId, id);
  assert.equal((await capped.request('/v1/profiles/lookup?anonymousId=browser-99', { headers })).status, 404);
  const metrics = (await capped.request('/metrics')).text;
  assert.match(metrics, /whisperer_identifiers_unlinked_total 2401\n/);
  // A profile merged in would take it past the cap: refused, each keeps its own.
  const visitor = await capped.request('/v1/track', {
    body: { anonymousId: 'lone-browser', event: 'Page Seen' },
    headers: { authorization: capped.basic() },
  });
  assert.equal(visitor.status, 200);
  const merge = await capped.request('/v1/alias', {
    body: { userId: 'office-login', previousId: 'lone-browser' },
    headers: { authorization: capped.basic() },
  });
  assert.equal(merge.status, 200, merge.text);
  const lone = (await capped.request('/v1/profiles/lookup?anonymousId=lone-browser', { headers })).json.profileId;
  assert.notEqual(lone, id);
  assert.match((await capped.request('/metrics')).text,
    /whisperer_profile_merges_refused_total\{reason="identifier_limit"\} 1\n/);
  assert.equal(await capped.stop(), 0);
});

test('a profile keeps no name over 256 bytes nor a trait value over 4 KiB; the events keep them', async () => {
  const write = { authorization: server.basic() };
  const longName = `Viewed ${'x'.repeat(300)}`;
  for (const body of [
    { userId: 'long-names', event: longName, messageId: 'long-name-1' },
    { userId: 'long-names', event: 'Short' },
  ]) {
    assert.equal((await server.request('/v1/track', { body, headers: write })).status, 200);
  }
  const id = await server.request('/v1/identify', {
    body: { userId: 'long-names', traits: { plan: 'pro', notes: 'n'.repeat(5000) } },
    headers: write,
  });
  assert.equal(id.status, 200, id.text);
  const profile = await profileOf('userId', 'long-names');
  assert.deepEqual(profile.eventCounts, { '(other)': 1, Short: 1, identify: 1 });
  assert.equal(profile.traits.plan.value, 'pro');
  assert.equal(profile.traits.notes.value, null, 'too large to hold: null at its time');
  const stored = (await timeline(profile.profileId, 10)).find((e) => e.messageId === 'long-name-1');
  assert.equal(stored.event, longName);
});

test('identity.max_merges: past it, a profile takes no more merged profiles, and keeps its events', async (t) => {
  const capped = await startServer({ t, config: 'workspaces:\n  - name: default\n    identity: {max_merges: 1}\n' });
  const write = { authorization: capped.basic() };
  const headers = { authorization: capped.bearer() };
  // The first browser's profile takes the userId; the second is merged into it; the third
  // would be a second merge.
  for (const browser of ['first-browser', 'second-browser', 'third-browser']) {
    const seen = await capped.request('/v1/track', { body: { anonymousId: browser, event: 'Landing Viewed' }, headers: write });
    assert.equal(seen.status, 200, seen.text);
    const login = await capped.request('/v1/identify', { body: { userId: 'merger', anonymousId: browser }, headers: write });
    assert.equal(login.status, 200, login.text);
  }
  const id = async (q) => (await capped.request(`/v1/profiles/lookup?${q}`, { headers })).json.profileId;
  const user = await id('userId=merger');
  assert.equal(await id('anonymousId=first-browser'), user);
  assert.equal(await id('anonymousId=second-browser'), user, 'the second browser was merged');
  assert.notEqual(await id('anonymousId=third-browser'), user, 'the third stays apart');
  const profile = (await capped.request(`/v1/profiles/${user}`, { headers })).json;
  assert.equal(profile.merges.length, 1);
  assert.equal(profile.eventCounts.identify, 3, 'every login counts for the user');
  assert.match((await capped.request('/metrics')).text,
    /whisperer_profile_merges_refused_total\{reason="identifier_limit"\} 1\n/);
  assert.equal(await capped.stop(), 0);
});

test('profile endpoints: admin key only, clear errors', async () => {
  const sent = await server.request('/v1/track', {
    body: { userId: 'errs-user', event: 'X' },
    headers: { authorization: server.basic() },
  });
  assert.equal(sent.status, 200);
  const id = (await lookup('userId', 'errs-user')).json.profileId;
  for (const path of [
    '/v1/profiles/lookup?userId=errs-user',
    `/v1/profiles/${id}`,
    `/v1/profiles/${id}/events`,
  ]) {
    const withWriteKey = await server.request(path, { headers: { authorization: `Bearer ${server.writeKey}` } });
    assert.equal(withWriteKey.status, 403, path);
    const anonymous = await server.request(path);
    assert.equal(anonymous.status, 401, path);
    // Keys sent as the Segment clients and curl -u send them: the write key is refused as a
    // write key, the admin key is let in.
    const basicWrite = await server.request(path, { headers: { authorization: server.basic() } });
    assert.equal(basicWrite.status, 403, path);
    assert.equal(basicWrite.json.error.code, 'forbidden');
    const basicAdmin = await server.request(path, { headers: { authorization: server.basic(server.adminKey) } });
    assert.equal(basicAdmin.status, 200, `${path}: ${basicAdmin.text}`);
  }
  const cases = [
    ['/v1/profiles/lookup', 400, 'missing_field'],
    ['/v1/profiles/lookup?userId=a&email=b', 400, 'invalid_value'],
    ['/v1/profiles/lookup?email=%zz', 400, 'invalid_value'],
    ['/v1/profiles/lookup?userId=', 400, 'invalid_value'],
    ['/v1/profiles/lookup?type=email&value=', 400, 'invalid_value'],
    ['/v1/profiles/lookup?type=&value=x', 400, 'invalid_value', 'type'],
    ['/v1/profiles/lookup?type=bogus&value=x', 400, 'invalid_value', 'type'],
    ['/v1/profiles/lookup?type=email', 400, 'missing_field', 'value'],
    ['/v1/profiles/lookup?type=userId&value=a&userId=b', 400, 'invalid_value', 'type'],
    ['/v1/profiles/lookup?userId=%C3%28', 400, 'invalid_value', 'userId'],
    // Nothing an identifier keeps once normalized: names no one, as at ingestion.
    ['/v1/profiles/lookup?phone=abc', 400, 'invalid_value', 'phone'],
    ['/v1/profiles/lookup?userId=%20%20', 400, 'invalid_value', 'userId'],
    ['/v1/profiles/lookup?userId=nobody-at-all', 404, 'profile_not_found'],
    ['/v1/profiles/not-an-id', 404, 'profile_not_found'],
    ['/v1/profiles/prf_ffffff', 404, 'profile_not_found'],
    [`/v1/profiles/${id}/events?limit=0`, 400, 'invalid_value'],
    [`/v1/profiles/${id}/events?cursor=abc`, 400, 'invalid_value'],
  ];
  for (const [path, status, code, field] of cases) {
    const res = await admin(path);
    assert.equal(res.status, status, `${path}: ${res.text}`);
    assert.equal(res.json.error.code, code, path);
    if (field) assert.equal(res.json.error.field, field, `${path}: ${res.text}`);
    // A path id that names no profile, well-formed or not, is the field `id`.
    if (code === 'profile_not_found' && !path.includes('lookup')) {
      assert.equal(res.json.error.field, 'id', `${path}: ${res.text}`);
    }
  }
  // The changes name the path's id too when it names no profile.
  for (const [method, path, body] of [
    ['PUT', '/v1/profiles/prf_ffffff/consent', { purposes: { analytics: true } }],
    ['POST', '/v1/profiles/prf_ffffff/unmerge', { identifiers: [{ type: 'userId', value: 'x' }] }],
    ['DELETE', '/v1/profiles/prf_ffffff', undefined],
  ]) {
    const res = await admin(path, { method, body });
    assert.equal(res.status, 404, `${method} ${path}: ${res.text}`);
    assert.equal(res.json.error.code, 'profile_not_found');
    assert.equal(res.json.error.field, 'id', `${method} ${path}: ${res.text}`);
  }
  const method = await admin(`/v1/profiles/${id}`, { method: 'POST', body: {} });
  assert.equal(method.status, 405);
});

test('workspaces: keys of one workspace neither read nor write the other', async (t) => {
  const two = await startServer({
    t,
    config: `
workspaces:
  - name: shop
    write_keys: [wk_shop]
    admin_keys: [ak_shop]
  - name: blog
    write_keys: [wk_blog]
    admin_keys: [ak_blog]
`,
  });
  const basic = (k) => `Basic ${Buffer.from(`${k}:`).toString('base64')}`;
  let res = await two.request('/v1/identify', {
    body: { userId: 'same-id', traits: { plan: 'shop' } },
    headers: { authorization: basic('wk_shop') },
  });
  assert.equal(res.status, 200);
  const shopId = (
    await two.request('/v1/profiles/lookup?userId=same-id', { headers: { authorization: 'Bearer ak_shop' } })
  ).json.profileId;
  assert.ok(shopId);
  res = await two.request('/v1/profiles/lookup?userId=same-id', { headers: { authorization: 'Bearer ak_blog' } });
  assert.equal(res.status, 404, 'the blog workspace does not see the shop customer');
  res = await two.request(`/v1/profiles/${shopId}`, { headers: { authorization: 'Bearer ak_blog' } });
  assert.equal(res.status, 404, 'nor by profile id');
  res = await two.request('/v1/events', { headers: { authorization: 'Bearer ak_blog' } });
  assert.equal(res.json.events.length, 0, 'nor its events');
  res = await two.request('/v1/identify', {
    body: { userId: 'same-id', traits: { plan: 'blog' } },
    headers: { authorization: basic('wk_blog') },
  });
  assert.equal(res.status, 200);
  const shop = await two.request(`/v1/profiles/${shopId}`, { headers: { authorization: 'Bearer ak_shop' } });
  assert.equal(shop.json.traits.plan.value, 'shop', 'a write to blog does not touch shop');
  assert.equal(shop.json.events, 1);
  assert.equal(await two.stop(), 0);
});

test('export, unmerge and erasure through the API', async () => {
  const run = randomUUID().slice(0, 8);
  const user = `priv-${run}`;
  const post = async (events) => {
    const res = await server.request('/v1/batch', {
      body: { batch: events },
      headers: { authorization: server.basic() },
    });
    assert.equal(res.status, 200, res.text);
  };
  await post([
    { type: 'page', anonymousId: `${user}-own` },
    { type: 'track', event: 'Order Completed', anonymousId: `${user}-stranger`, properties: { revenue: 5 } },
    { type: 'identify', userId: user, anonymousId: `${user}-own`, traits: { email: `${user}@x.io` } },
    { type: 'identify', userId: user, anonymousId: `${user}-stranger` },
  ]);
  const id = (await lookup('userId', user)).json.profileId;

  let res = await admin(`/v1/profiles/${id}/export`);
  assert.equal(res.status, 200);
  assert.equal(res.json.profile.profileId, id);
  assert.equal(res.json.events.length, 4, 'every event of the customer');
  assert.deepEqual(res.json.decisions, [], 'no decision was made for them');
  assert.equal(res.json.contactHistory, null);
  assert.equal(res.json.engagement, null);

  const absorbed = (await admin(`/v1/profiles/${id}`)).json.absorbedProfiles;
  assert.ok(absorbed.length > 0, 'the devices\' own profiles were merged into the customer\'s');
  for (const old of absorbed) assert.equal((await admin(`/v1/profiles/${old}`)).json.profileId, id);

  // Unmerge the stranger's device with the events that carried it, asked through a merged-away
  // id, which stands for the survivor: the answer names the survivor.
  res = await admin(`/v1/profiles/${absorbed[0]}/unmerge`, {
    body: { identifiers: [{ type: 'anonymousId', value: `${user}-stranger` }] },
  });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.profileId, id);
  const stranger = res.json.newProfileId;
  assert.equal((await lookup('anonymousId', `${user}-stranger`)).json.profileId, stranger);
  assert.equal((await admin(`/v1/profiles/${stranger}`)).json.orders.count, 1);
  // The ids merged in named the customer before the split, now two people: not found.
  for (const old of absorbed) {
    const gone = await admin(`/v1/profiles/${old}`, { method: 'DELETE' });
    assert.equal(gone.status, 404, `${old}: ${gone.text}`);
  }
  assert.equal((await admin(`/v1/profiles/${id}`)).json.orders.count, 0);
  for (const [body, field, code] of [
    [{ identifiers: [] }, 'identifiers'],
    [{ identifiers: [{ type: 'anonymousId' }] }, 'identifiers[0]', 'wrong_type'],
    [{ identifiers: [{ type: 'anonymousId', value: 'not-this-profiles' }] }, 'identifiers'],
    [{ identifier: [{ type: 'anonymousId', value: 'x' }] }, 'identifier', 'invalid_value'],
  ]) {
    res = await admin(`/v1/profiles/${id}/unmerge`, { body });
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.equal(res.json.error.field, field);
    if (code) assert.equal(res.json.error.code, code, res.text);
  }

  // Erase with suppression: nothing of the customer can be read, and later events are dropped.
  res = await admin(`/v1/profiles/${id}?suppress=maybe`, { method: 'DELETE' });
  assert.equal(res.status, 400);
  res = await admin(`/v1/profiles/${id}?suppress=true`, { method: 'DELETE' });
  assert.equal(res.status, 200, res.text);
  // The page and the first identify; and of the events the unmerge gave the stranger, the
  // login on their device, which carried the customer's userId.
  assert.equal(res.json.events, 3, res.text);
  assert.equal(res.json.suppressed, true);
  assert.equal((await admin(`/v1/profiles/${id}`)).status, 404);
  assert.equal((await lookup('userId', user)).status, 404);
  assert.equal((await lookup('email', `${user}@x.io`)).status, 404);
  const counter = async (name) => {
    const text = (await server.request('/metrics')).text;
    const m = text.match(new RegExp(`^${name} (\\d+)$`, 'm'));
    assert.ok(m, `${name} in /metrics`);
    return Number(m[1]);
  };
  const ingested = await counter('whisperer_events_ingested_total');
  const dropped = await counter('whisperer_events_suppressed_total');
  await post([{ type: 'track', event: 'Came Back', userId: user }]);
  assert.equal((await lookup('userId', user)).status, 404, 'suppressed: not stored again');
  assert.equal(await counter('whisperer_events_ingested_total'), ingested, 'a dropped event is not ingested');
  assert.equal(await counter('whisperer_events_suppressed_total'), dropped + 1);
  const all = await server.request('/v1/events?limit=1000', { headers: { authorization: server.bearer() } });
  assert.ok(!all.text.includes(`${user}-own`), 'no event of the erased customer is left');
  assert.ok(all.text.includes(`${user}-stranger`), 'the split-off device was not erased');
  assert.ok(!all.text.includes(`"userId":"${user}"`), 'nor any event naming the customer');
  const strangers = (await admin(`/v1/profiles/${stranger}`)).json;
  assert.equal(strangers.orders.count, 1, 'the stranger keeps their order');
  assert.equal(strangers.eventCounts.identify, undefined, 'rebuilt without the login');
  res = await admin(`/v1/profiles/${id}`, { method: 'DELETE' });
  assert.equal(res.status, 404, 'erasing twice is not found');

  // Erased without suppression, the customer's events sent again (a client's retry queue, a
  // re-import) are new events: their dedupe entries went with them.
  const again = [{ type: 'track', event: 'Kept', userId: `${user}-back`, messageId: `${user}-back-1` }];
  await post(again);
  const back = (await lookup('userId', `${user}-back`)).json.profileId;
  res = await admin(`/v1/profiles/${back}`, { method: 'DELETE' });
  assert.equal(res.status, 200, res.text);
  res = await server.request('/v1/batch', { body: { batch: again }, headers: { authorization: server.basic() } });
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.duplicates, 0, 'not taken for a retry of the erased event');
  assert.equal((await lookup('userId', `${user}-back`)).status, 200, 'a new profile');
});
