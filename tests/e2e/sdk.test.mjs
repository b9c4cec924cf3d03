// The official Segment and RudderStack Node clients, pointed at a whisperer server: every call
// of every event type arrives exactly once, with its fields intact.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { Analytics as SegmentAnalytics } from '@segment/analytics-node';
import RudderAnalytics from '@rudderstack/rudder-sdk-node';
import { startServer, exportEvents, countByMessageId } from './lib/server.mjs';

let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  if (server) assert.equal(await server.stop(), 0, 'whisperer exits 0 on SIGTERM');
});

/** The calls one client makes: method name and argument, with a fixed messageId each. */
function scenario(prefix) {
  const run = randomUUID().slice(0, 8);
  const user = `${prefix}-user-${run}`;
  const id = (name) => `${prefix}-${name}-${run}`;
  return {
    user,
    calls: [
      [
        'identify',
        {
          messageId: id('identify'),
          userId: user,
          traits: { email: `${user}@example.com`, plan: 'pro', seats: 3, nested: { a: [1, 2] } },
        },
      ],
      [
        'track',
        {
          messageId: id('track'),
          userId: user,
          event: 'Order Completed',
          properties: { orderId: 'o-1', revenue: 99.5, items: [{ sku: 'A', qty: 2 }], gift: false },
        },
      ],
      [
        'page',
        {
          messageId: id('page'),
          userId: user,
          category: 'Docs',
          name: 'Getting Started',
          properties: { path: '/docs/start', title: 'Start', unicode: 'héllo ✓ 日本' },
        },
      ],
      [
        'screen',
        {
          messageId: id('screen'),
          userId: user,
          name: 'Home',
          properties: { variant: 'B' },
        },
      ],
      [
        'group',
        {
          messageId: id('group'),
          userId: user,
          groupId: `${prefix}-org-${run}`,
          traits: { name: 'Acme', employees: 42 },
        },
      ],
      [
        'alias',
        {
          messageId: id('alias'),
          userId: user,
          previousId: `${prefix}-anon-${run}`,
        },
      ],
      [
        'track',
        {
          messageId: id('track-anon'),
          anonymousId: `${prefix}-anon-${run}`,
          event: 'Signed Up',
          properties: { source: 'ad' },
        },
      ],
    ],
  };
}

function assertIncludes(actual, expected, what) {
  assert.equal(typeof actual, 'object', `${what} is an object`);
  for (const [k, v] of Object.entries(expected)) assert.deepEqual(actual[k], v, `${what}.${k}`);
}

/** Checks that each sent call is stored exactly once with its type and fields. */
function assertStoredExactlyOnce(events, calls) {
  const counts = countByMessageId(events);
  for (const [type, msg] of calls) {
    assert.equal(counts.get(msg.messageId), 1, `${type} ${msg.messageId} stored exactly once`);
    const e = events.find((x) => x.messageId === msg.messageId);
    assert.equal(e.type, type);
    if (msg.userId !== undefined) assert.equal(e.userId, msg.userId);
    if (msg.anonymousId !== undefined) assert.equal(e.anonymousId, msg.anonymousId);
    for (const field of ['event', 'name', 'category', 'groupId', 'previousId']) {
      if (msg[field] !== undefined) assert.equal(e[field], msg[field], `${type}.${field}`);
    }
    // Clients may add keys (Segment copies a page's name and category into its properties).
    if (msg.properties) assertIncludes(e.properties, msg.properties, `${type}.properties`);
    if (msg.traits) assert.deepEqual(e.traits, msg.traits, `${type}.traits`);
    // Set by the server on every event.
    assert.match(e.receivedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.match(e.timestamp, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(
      Math.abs(Date.parse(e.timestamp) - Date.now()) < 10 * 60_000,
      `timestamp ${e.timestamp} is about now`,
    );
    assert.equal(e.context?.ip, '127.0.0.1');
  }
}

test(
  '@segment/analytics-node: every call arrives exactly once, fields intact',
  { timeout: 60_000 },
  async () => {
    const { user, calls } = scenario('seg');
    const analytics = new SegmentAnalytics({
      writeKey: server.writeKey,
      host: server.url,
      path: '/v1/batch',
      flushAt: 3, // several batches for 7 calls
      flushInterval: 200,
      maxRetries: 2,
      httpRequestTimeout: 10_000,
    });
    const responses = [];
    const errors = [];
    analytics.on('http_response', (r) => responses.push(r.status));
    analytics.on('error', (err) => errors.push(err));

    const delivered = calls.map(
      ([method, msg]) =>
        new Promise((resolve) => {
          analytics[method](msg, (err, ctx) => resolve({ method, err, ctx }));
        }),
    );
    // No SDK timeout (its timer would hold the process open); the test's own timeout applies.
    await analytics.closeAndFlush({ timeout: 0 });
    const results = await Promise.all(delivered);
    for (const r of results) assert.equal(r.err, undefined, `${r.method} delivered: ${r.err}`);
    assert.deepEqual(errors, []);
    assert.ok(responses.length >= 3, `7 calls with flushAt 3 make >= 3 requests (${responses})`);
    assert.ok(
      responses.every((s) => s === 200),
      `every batch request answered 200: ${responses}`,
    );

    const events = (await exportEvents(server.dataDir)).filter((e) =>
      calls.some(([, msg]) => msg.messageId === e.messageId),
    );
    assert.equal(events.length, calls.length);
    assertStoredExactlyOnce(events, calls);
    const track = events.find((e) => e.event === 'Order Completed');
    assert.equal(track.context.library.name, '@segment/analytics-node');
    assert.equal(track.userId, user);
  },
);

test(
  '@rudderstack/rudder-sdk-node: every call arrives exactly once, gzip on and off',
  { timeout: 60_000 },
  async () => {
    for (const gzip of [true, false]) {
      const { calls } = scenario(gzip ? 'rudder-gz' : 'rudder-plain');
      const errors = [];
      const client = new RudderAnalytics(server.writeKey, {
        dataPlaneUrl: server.url,
        path: '/v1/batch',
        flushAt: 3,
        flushInterval: 200,
        retryCount: 1,
        gzip,
        logLevel: 'error',
        errorHandler: (err) => errors.push(err),
      });
      const responses = [];
      client.axiosInstance.interceptors.response.use((res) => {
        responses.push(res);
        return res;
      });
      const delivered = calls.map(
        ([method, msg]) =>
          new Promise((resolve) => {
            client[method](msg, (err) => resolve({ method, err }));
          }),
      );
      // flush() sends at most flushAt events per call: flush until the queue is empty, then wait
      // for every call's callback.
      while (client.queue.length > 0) await client.flush();
      const results = await Promise.all(delivered);
      await client.flush();
      for (const r of results) assert.equal(r.err, undefined, `${r.method} delivered: ${r.err}`);
      assert.deepEqual(errors, []);
      const statuses = responses.map((r) => r.status);
      assert.ok(statuses.length >= 3 && statuses.every((s) => s === 200), `statuses ${statuses}`);
      for (const res of responses) {
        assert.equal(res.data?.success, true);
        assert.equal(res.data?.rejected?.length, 0);
        // The client really compressed the bodies (or really did not).
        assert.equal(res.config.headers['Content-Encoding'], gzip ? 'gzip' : undefined);
      }

      const events = (await exportEvents(server.dataDir)).filter((e) =>
        calls.some(([, msg]) => msg.messageId === e.messageId),
      );
      assert.equal(events.length, calls.length);
      assertStoredExactlyOnce(events, calls);
      const identify = events.find((e) => e.type === 'identify');
      // The Rudder client copies identify traits into context.traits and adds its own fields.
      assert.deepEqual(identify.context.traits, calls[0][1].traits);
      assert.equal(identify.channel, 'server');
      assert.equal(identify.context.library.name, 'analytics-node');
    }
  },
);

/**
 * Tracks the two messages `sent` through the Segment client as one batch (flushAt 2, no
 * retries); resolves to each message's callback error and the HTTP statuses of the requests.
 */
async function trackInOneBatch(sent) {
  const analytics = new SegmentAnalytics({
    writeKey: server.writeKey,
    host: server.url,
    path: '/v1/batch',
    flushAt: 2,
    maxRetries: 0,
  });
  const responses = [];
  analytics.on('http_response', (r) => responses.push(r.status));
  const delivered = sent.map((msg) => new Promise((resolve) => analytics.track(msg, (err) => resolve(err))));
  await analytics.closeAndFlush({ timeout: 0 });
  return { errors: await Promise.all(delivered), responses };
}

test('a string cut inside an emoji (a lone surrogate) is stored with U+FFFD; its batch is not refused', async () => {
  const run = randomUUID().slice(0, 8);
  const cut = 'Great product 😀'.slice(0, 15); // ends with half of the emoji
  const sent = [
    { messageId: `cut-${run}`, userId: `cut-${run}`, event: 'Review Written', properties: { review: cut } },
    { messageId: `whole-${run}`, userId: `cut-${run}`, event: 'Review Read', properties: { review: 'fine 😀' } },
  ];
  const { errors, responses } = await trackInOneBatch(sent);
  assert.deepEqual(errors, [undefined, undefined]);
  assert.deepEqual(responses, [200]);
  const events = (await exportEvents(server.dataDir)).filter((e) => e.userId === `cut-${run}`);
  const review = Object.fromEntries(events.map((e) => [e.messageId, e.properties.review]));
  assert.deepEqual(review, { [`cut-${run}`]: 'Great product \uFFFD', [`whole-${run}`]: 'fine 😀' });
});

test('an event the SDK measured under 32 KiB is stored, whatever the server adds to it', async () => {
  const run = randomUUID().slice(0, 8);
  const base = { messageId: `big-${run}`, userId: `big-${run}`, event: 'Note Written', properties: { note: '' } };
  // What the SDK checks against its 32 KiB limit: the event serialized, with the fields it adds
  // itself (context.library, type, timestamp, _metadata): a few hundred bytes; 32,500 bytes of
  // the event are the note, so the event is just under the limit as sent and over it once the
  // server has added receivedAt, timestamp, ip and userAgent.
  const note = 'n'.repeat(32_500 - JSON.stringify(base).length);
  const sent = [
    { ...base, properties: { note } },
    { messageId: `small-${run}`, userId: `big-${run}`, event: 'Note Read' },
  ];
  const { errors, responses } = await trackInOneBatch(sent);
  assert.deepEqual(errors, [undefined, undefined]);
  assert.deepEqual(responses, [200]);
  const events = (await exportEvents(server.dataDir)).filter((e) => e.userId === `big-${run}`);
  assert.deepEqual(events.map((e) => e.messageId).sort(), [`big-${run}`, `small-${run}`]);
  const big = events.find((e) => e.messageId === `big-${run}`);
  assert.equal(big.properties.note.length, note.length);
  assert.ok(JSON.stringify(big).length > 32_768, `stored ${JSON.stringify(big).length} bytes`);
});

test('browser clients: analytics.js paths and bodies, and CORS for pages on other origins', async () => {
  // What Segment's analytics.js (analytics-next, its segmentio plugin) sends from a page: each
  // call to /v1/<first letter of its type> as text/plain (no preflight) with the writeKey in
  // the body, or with batching delivery to /v1/b; the page reads the answer only with CORS.
  const run = randomUUID().slice(0, 8);
  const page = { Origin: 'https://shop.example', 'Content-Type': 'text/plain' };
  const calls = [
    ['t', { type: 'track', event: 'Viewed', anonymousId: `web-${run}`, messageId: `web-t-${run}` }],
    ['p', { type: 'page', name: 'Home', anonymousId: `web-${run}`, messageId: `web-p-${run}` }],
    ['i', { type: 'identify', userId: `web-user-${run}`, anonymousId: `web-${run}`, messageId: `web-i-${run}` }],
    ['g', { type: 'group', groupId: 'g1', anonymousId: `web-${run}`, messageId: `web-g-${run}` }],
    ['s', { type: 'screen', name: 'S', anonymousId: `web-${run}`, messageId: `web-s-${run}` }],
    ['a', { type: 'alias', previousId: `web-${run}`, userId: `web-user-${run}`, messageId: `web-a-${run}` }],
  ];
  for (const [letter, event] of calls) {
    const res = await server.request(`/v1/${letter}`, {
      body: { ...event, writeKey: server.writeKey, sentAt: new Date().toISOString() },
      headers: page,
    });
    assert.equal(res.status, 200, `/v1/${letter}: ${res.text}`);
    assert.equal(res.headers['access-control-allow-origin'], '*', `/v1/${letter}`);
  }
  const batched = await server.request('/v1/b', {
    body: {
      writeKey: server.writeKey,
      sentAt: new Date().toISOString(),
      batch: [{ type: 'track', event: 'Batched', anonymousId: `web-${run}`, messageId: `web-b-${run}` }],
    },
    headers: page,
  });
  assert.equal(batched.status, 200, batched.text);
  assert.equal(batched.json.accepted, 1);
  assert.equal(batched.headers['access-control-allow-origin'], '*');
  // An error is readable by the page too.
  const bad = await server.request('/v1/t', { body: { writeKey: server.writeKey, event: 'x' }, headers: page });
  assert.equal(bad.status, 400, bad.text);
  assert.equal(bad.headers['access-control-allow-origin'], '*');
  // A client that puts the key in an Authorization header (RudderStack's JavaScript SDK) is
  // preflighted first.
  const preflight = await server.request('/v1/batch', {
    method: 'OPTIONS',
    headers: {
      Origin: 'https://shop.example',
      'Access-Control-Request-Method': 'POST',
      'Access-Control-Request-Headers': 'authorization,content-type',
    },
  });
  assert.equal(preflight.status, 204, preflight.text);
  assert.equal(preflight.headers['access-control-allow-origin'], '*');
  assert.equal(preflight.headers['access-control-allow-methods'], 'POST');
  assert.equal(preflight.headers['access-control-allow-headers'], 'authorization,content-type');
  // Admin endpoints are not for pages.
  const admin = await server.request('/v1/events', { method: 'OPTIONS', headers: { Origin: 'https://shop.example' } });
  assert.equal(admin.status, 405);
  assert.equal(admin.headers['access-control-allow-origin'], undefined);

  const events = (await exportEvents(server.dataDir)).filter((e) => e.messageId?.endsWith(run));
  assert.deepEqual(
    events.map((e) => e.type).sort(),
    ['alias', 'group', 'identify', 'page', 'screen', 'track', 'track'],
  );
  assert.ok(events.every((e) => e.writeKey === undefined), 'the key is not stored');
});

test('a client retrying the same batch (same messageIds) stores nothing new', async () => {
  // What an SDK does when a response is lost: it sends the same batch again.
  const { calls } = scenario('retry');
  const batch = calls.map(([type, msg]) => ({ type, ...msg }));
  const auth = { Authorization: server.basic() };
  const first = await server.request('/v1/batch', { body: { batch }, headers: auth });
  assert.equal(first.status, 200, first.text);
  assert.deepEqual(first.json, {
    success: true,
    accepted: calls.length,
    duplicates: 0,
    rejected: [],
  });
  for (let i = 0; i < 2; i++) {
    const again = await server.request('/v1/batch', { body: { batch }, headers: auth });
    assert.equal(again.status, 200, again.text);
    assert.equal(again.json.duplicates, calls.length);
  }
  // One event alone through its own endpoint is deduplicated the same way.
  const [, track] = calls[1];
  const single = await server.request('/v1/track', { body: track, headers: auth });
  assert.equal(single.status, 200);
  assert.deepEqual(single.json, { success: true });

  const events = (await exportEvents(server.dataDir)).filter((e) =>
    calls.some(([, msg]) => msg.messageId === e.messageId),
  );
  assertStoredExactlyOnce(events, calls);
});

test('the export of a running server is readable NDJSON of every stored event', async (t) => {
  // Independent of the tests above: a fresh server, a known number of events.
  const own = await startServer({ t });
  const n = 25;
  const batch = Array.from({ length: n }, (_, i) => ({
    type: 'track',
    userId: `exp-${i % 4}`,
    event: 'Exported',
    messageId: `exp-${i}`,
    properties: { i },
  }));
  const res = await own.request('/v1/batch', {
    body: { batch },
    headers: { Authorization: own.basic() },
  });
  assert.equal(res.status, 200);
  const events = await exportEvents(own.dataDir);
  assert.equal(events.length, n);
  assert.deepEqual(events.map((e) => e.messageId).sort(), batch.map((e) => e.messageId).sort());
  // The admin API lists the same events.
  const listed = await own.request(`/v1/events?limit=1000`, {
    headers: { Authorization: own.bearer() },
  });
  assert.equal(listed.status, 200);
  assert.deepEqual(listed.json.events, events);
  assert.equal(listed.json.hasMore, false);
  assert.equal(typeof listed.json.nextCursor, 'string');
  // Paging with a cursor walks the same events in the same order.
  const paged = [];
  let cursor = '';
  for (let pages = 0; pages < 10; pages++) {
    const page = await own.request(`/v1/events?limit=10${cursor ? `&cursor=${cursor}` : ''}`, {
      headers: { Authorization: own.bearer() },
    });
    assert.equal(page.status, 200, page.text);
    assert.ok(page.json.events.length <= 10);
    paged.push(...page.json.events);
    assert.equal(typeof page.json.nextCursor, 'string');
    cursor = page.json.nextCursor;
    if (!page.json.hasMore) break;
  }
  assert.deepEqual(paged, events);
});

test('behind a trusted proxy, context.ip is the first X-Forwarded-For address (a port dropped); what is no address is not taken', async (t) => {
  const proxied = await startServer({ t, config: 'server:\n  trust_forwarded_for: true\n' });
  const cases = [
    ['203.0.113.9, 10.0.0.1', '203.0.113.9'],
    ['198.51.100.4:4711', '198.51.100.4'],
    ['[2001:db8::1]:80', '2001:db8::1'],
    ['unknown', '127.0.0.1'],
  ];
  for (const [i, [header]] of cases.entries()) {
    const res = await proxied.request('/v1/track', {
      body: { userId: 'via-proxy', event: 'Seen', messageId: `xff-${i}` },
      headers: { Authorization: proxied.basic(), 'X-Forwarded-For': header },
    });
    assert.equal(res.status, 200, res.text);
  }
  assert.equal(await proxied.stop(), 0);
  const stored = Object.fromEntries((await exportEvents(proxied.dataDir)).map((e) => [e.messageId, e.context.ip]));
  assert.deepEqual(stored, Object.fromEntries(cases.map(([, ip], i) => [`xff-${i}`, ip])));
});

test('events are stored in the documented normalized form', async () => {
  const auth = {
    Authorization: server.basic(),
    'User-Agent': 'e2e-agent/1.0',
    'X-Forwarded-For': '203.0.113.7',
  };
  const before = Date.now();
  let res = await server.request('/v1/track', {
    body: {
      userId: 'norm-user',
      event: 'Order Completed',
      properties: { revenue: 9.5, nothing: null },
      messageId: 'norm-1',
      // The device clock is one hour fast and sent the event 5 s after it happened.
      timestamp: '2024-06-01T13:00:00Z',
      sentAt: '2024-06-01T13:00:05Z',
      receivedAt: '1999-01-01T00:00:00Z',
      writeKey: server.writeKey,
      type: 'identify', // the path decides the type
      extra: [1, 'two'],
    },
    headers: auth,
  });
  assert.equal(res.status, 200, res.text);
  // Batch-level context and sentAt fill in what an event lacks; integer ids become strings.
  res = await server.request('/v1/batch', {
    body: {
      sentAt: '2024-06-01T12:00:10.000Z',
      context: { library: { name: 'e2e', version: '1' }, locale: 'fr-FR' },
      integrations: { All: false },
      batch: [
        {
          type: 'group',
          userId: 42,
          groupId: 7,
          messageId: 'norm-2',
          context: { locale: 'de-DE' },
          timestamp: '2024-06-01T12:00:00.000Z',
        },
        { type: 'page', anonymousId: 'anon-norm', name: 'Pricing', messageId: 'norm-3' },
      ],
    },
    headers: auth,
  });
  assert.equal(res.status, 200, res.text);
  const after = Date.now();

  const events = await exportEvents(server.dataDir);
  const track = events.find((e) => e.messageId === 'norm-1');
  assert.deepEqual(Object.keys(track), [
    'type',
    'messageId',
    'userId',
    'event',
    'properties',
    'extra',
    'context',
    'originalTimestamp',
    'sentAt',
    'receivedAt',
    'timestamp',
  ]);
  assert.equal(track.type, 'track');
  assert.deepEqual(track.properties, { revenue: 9.5, nothing: null });
  assert.deepEqual(track.extra, [1, 'two']);
  // X-Forwarded-For is not trusted by default.
  assert.deepEqual(track.context, { ip: '127.0.0.1', userAgent: 'e2e-agent/1.0' });
  assert.equal(track.originalTimestamp, '2024-06-01T13:00:00.000Z');
  assert.equal(track.sentAt, '2024-06-01T13:00:05.000Z');
  const received = Date.parse(track.receivedAt);
  assert.ok(
    received >= before - 1000 && received <= after + 1000,
    'receivedAt is the server clock',
  );
  assert.equal(
    Date.parse(track.timestamp),
    received - 5000,
    'timestamp = receivedAt - (sentAt - originalTimestamp)',
  );

  const group = events.find((e) => e.messageId === 'norm-2');
  assert.equal(group.userId, '42');
  assert.equal(group.groupId, '7');
  assert.deepEqual(group.context, {
    locale: 'de-DE',
    library: { name: 'e2e', version: '1' },
    ip: '127.0.0.1',
    userAgent: 'e2e-agent/1.0',
  });
  assert.deepEqual(group.integrations, { All: false });
  assert.equal(group.sentAt, '2024-06-01T12:00:10.000Z');
  assert.equal(Date.parse(group.timestamp), Date.parse(group.receivedAt) - 10_000);
  const page = events.find((e) => e.messageId === 'norm-3');
  assert.equal(page.anonymousId, 'anon-norm');
  assert.equal(page.userId, undefined);
  assert.equal(page.originalTimestamp, undefined, 'no client event time: none is invented');
  assert.equal(page.timestamp, page.receivedAt, 'no client time: timestamp = receivedAt');
});

test('accepted timestamp formats, and impossible dates refused', async () => {
  const auth = { Authorization: server.basic() };
  const accepted = [
    ['2024-06-01', '2024-06-01T00:00:00.000Z'],
    ['2024-06-01T12:30', '2024-06-01T12:30:00.000Z'],
    ['2024-06-01 12:30:15', '2024-06-01T12:30:15.000Z'],
    ['2024-06-01T12:30:15.123456Z', '2024-06-01T12:30:15.123Z'],
    ['2024-06-01T12:30:15+02:00', '2024-06-01T10:30:15.000Z'],
    ['2024-06-01T12:30:15-0130', '2024-06-01T14:00:15.000Z'],
    ['2024-02-29T00:00:00Z', '2024-02-29T00:00:00.000Z'],
  ];
  for (const [i, [sent, stored]] of accepted.entries()) {
    const res = await server.request('/v1/track', {
      body: { userId: 'ts', event: 'ts', timestamp: sent, messageId: `ts-ok-${i}-${sent}` },
      headers: auth,
    });
    assert.equal(res.status, 200, `${sent}: ${res.text}`);
  }
  for (const bad of [
    '2023-02-29',
    '2024-02-30T00:00:00Z',
    '2024-06-01T24:61:00Z',
    '01/06/2024',
    '2024-06-01T12:00:00 UTC',
  ]) {
    const res = await server.request('/v1/track', {
      body: { userId: 'ts', event: 'ts', timestamp: bad },
      headers: auth,
    });
    assert.equal(res.status, 400, `${bad} is refused: ${res.text}`);
    assert.equal(res.json.error.code, 'invalid_timestamp');
    assert.equal(res.json.error.field, 'timestamp');
  }
  const events = await exportEvents(server.dataDir);
  for (const [i, [sent, stored]] of accepted.entries()) {
    const e = events.find((x) => x.messageId === `ts-ok-${i}-${sent}`);
    assert.equal(e?.timestamp, stored, `${sent} is stored as ${stored}`);
  }
});
