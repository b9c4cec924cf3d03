// Malformed and hostile requests: each gets its documented status and JSON error, the server
// keeps serving, and nothing of a refused request is stored.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import zlib from 'node:zlib';
import { startServer, exportEvents, withTimeout } from './lib/server.mjs';

let server;

before(async () => {
  server = await startServer();
});

after(async () => {
  if (server) assert.equal(await server.stop(), 0);
});

const auth = () => ({ Authorization: server.basic() });
const track = (extra = {}) => ({ userId: 'u1', event: 'Bad Input', ...extra });
const post = (path, body, headers = auth()) => server.request(path, { body, headers });
const gzipPost = (path, body, headers = auth()) =>
  server.request(path, { body, headers: { ...headers, 'Content-Encoding': 'gzip' } });

/**
 * Writes `bytes` on a fresh TCP connection and reads until the server closes it (or `ms` pass).
 * Returns { status, headers, json, raw }.
 */
function rawHttp(bytes, ms = 5000) {
  return withTimeout(
    new Promise((resolve, reject) => {
      const socket = net.connect(server.port, '127.0.0.1');
      const chunks = [];
      socket.on('data', (c) => chunks.push(c));
      socket.on('error', reject);
      socket.on('close', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const [head, ...rest] = raw.split('\r\n\r\n');
        const [statusLine, ...headerLines] = head.split('\r\n');
        const headers = {};
        for (const l of headerLines) {
          const i = l.indexOf(':');
          headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
        }
        let json;
        try {
          json = JSON.parse(rest.join('\r\n\r\n'));
        } catch {}
        resolve({ status: Number(statusLine.split(' ')[1]), headers, json, raw });
      });
      socket.end(bytes);
    }),
    ms,
    () => {
      throw new Error(`no complete answer to ${JSON.stringify(String(bytes).slice(0, 60))}`);
    },
  );
}

/**
 * A request whose Content-Length is over the limit, sent with `Expect: 100-continue`: the body
 * is only sent if the server asks for it, so the client never writes into a closed connection
 * (which would make the outcome racy).
 */
function oversizedRequest(path, size, headers = auth()) {
  return expectContinue(path, Buffer.alloc(size, 0x20), headers);
}

// POSTs `body` with `Expect: 100-continue`: the body goes only after the interim answer
// (`continued` says whether it came).
function expectContinue(path, body, headers = auth()) {
  return new Promise((resolve, reject) => {
    let continued = false;
    const req = http.request({
      host: '127.0.0.1',
      port: server.port,
      path,
      method: 'POST',
      agent: false,
      headers: {
        ...headers,
        'Content-Type': 'application/json',
        'Content-Length': body.length,
        Expect: '100-continue',
      },
    });
    req.on('continue', () => {
      continued = true;
      req.end(body);
    });
    req.on('response', (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (text += c));
      res.on('end', () => {
        req.destroy();
        let json;
        try {
          json = JSON.parse(text);
        } catch {}
        resolve({ status: res.statusCode, headers: res.headers, text, json, continued });
      });
    });
    req.on('error', reject);
    req.flushHeaders();
  });
}

const minimalBatch = (n) =>
  Array.from({ length: n }, (_, i) => ({
    type: 'track',
    userId: 'u',
    event: 'e',
    messageId: `big-${i}`,
  }));

// name, request, expected status, error code, field (null: the error must have no field).
const cases = [
  [
    'malformed JSON',
    () => post('/v1/track', '{"userId":"u1","event":'),
    400,
    'malformed_json',
    null,
  ],
  ['empty body', () => post('/v1/track', ''), 400, 'malformed_json', null],
  [
    'invalid UTF-8 bytes in a string',
    () =>
      post(
        '/v1/track',
        Buffer.concat([
          Buffer.from('{"userId":"u'),
          Buffer.from([0xff, 0xfe, 0xc3]),
          Buffer.from('","event":"x"}'),
        ]),
      ),
    400,
    'invalid_utf8',
    null,
  ],
  ['a JSON array instead of an event', () => post('/v1/track', [track()]), 400, 'wrong_type', null],
  [
    'a key twice in one object',
    () =>
      post('/v1/track', '{"userId":"u1","event":"Order Completed","properties":{"revenue":10,"revenue":1000}}'),
    400,
    'duplicate_key',
    'properties.revenue',
  ],
  [
    'a key twice in a decide body (every JSON body is checked)',
    () => post('/v1/decide', '{"userId":"u1","decisionPoint":"home","context":{"locale":"en","locale":"fr"}}'),
    400,
    'duplicate_key',
    'context.locale',
  ],
  [
    'neither userId nor anonymousId',
    () => post('/v1/track', { event: 'x', properties: {} }),
    400,
    'missing_field',
    'userId',
  ],
  ['userId: true', () => post('/v1/track', track({ userId: true })), 400, 'wrong_type', 'userId'],
  [
    'anonymousId: {}',
    () => post('/v1/track', { anonymousId: {}, event: 'x' }),
    400,
    'wrong_type',
    'anonymousId',
  ],
  [
    'properties: [1]',
    () => post('/v1/track', track({ properties: [1] })),
    400,
    'wrong_type',
    'properties',
  ],
  [
    'traits: "x" on identify',
    () => post('/v1/identify', { userId: 'u1', traits: 'x' }),
    400,
    'wrong_type',
    'traits',
  ],
  [
    'context: 5',
    () => post('/v1/page', { userId: 'u1', context: 5 }),
    400,
    'wrong_type',
    'context',
  ],
  [
    'timestamp that is not ISO-8601',
    () => post('/v1/track', track({ timestamp: 'yesterday at noon' })),
    400,
    'invalid_timestamp',
    'timestamp',
  ],
  [
    'timestamp as a number',
    () => post('/v1/track', track({ timestamp: 1714564800000 })),
    400,
    'wrong_type',
    'timestamp',
  ],
  [
    'impossible date',
    () => post('/v1/track', track({ originalTimestamp: '2024-13-45T25:61:00Z' })),
    400,
    'invalid_timestamp',
    'originalTimestamp',
  ],
  [
    'batch sentAt that is not a timestamp',
    () => post('/v1/batch', { batch: [{ type: 'track', ...track() }], sentAt: 'soon' }),
    400,
    'invalid_timestamp',
    'sentAt',
  ],
  ['track without event', () => post('/v1/track', { userId: 'u1' }), 400, 'missing_field', 'event'],
  [
    'track with event ""',
    () => post('/v1/track', track({ event: '' })),
    400,
    'missing_field',
    'event',
  ],
  [
    'group without groupId',
    () => post('/v1/group', { userId: 'u1' }),
    400,
    'missing_field',
    'groupId',
  ],
  [
    'alias without previousId',
    () => post('/v1/alias', { userId: 'u1' }),
    400,
    'missing_field',
    'previousId',
  ],
  [
    'alias with only anonymousId',
    () => post('/v1/alias', { anonymousId: 'a1', previousId: 'p1' }),
    400,
    'missing_field',
    'userId',
  ],
  [
    'messageId over 256 bytes',
    () => post('/v1/track', track({ messageId: 'm'.repeat(300) })),
    400,
    'invalid_value',
    'messageId',
  ],
  [
    'single event over 32 KiB',
    () => post('/v1/track', track({ properties: { pad: 'x'.repeat(33 * 1024) } })),
    413,
    'event_too_large',
    null,
  ],
  [
    'request over 500 KiB (Content-Length)',
    async () => {
      const res = await oversizedRequest('/v1/batch', 600 * 1024);
      assert.equal(res.headers.connection, 'close', 'the connection is closed after a 413');
      return res;
    },
    413,
    'request_too_large',
    null,
  ],
  [
    'batch of 2501 events',
    () => post('/v1/batch', { batch: minimalBatch(2501) }),
    413,
    'batch_too_large',
    'batch',
  ],
  [
    'batch that is not an array',
    () => post('/v1/batch', { batch: 'x' }),
    400,
    'wrong_type',
    'batch',
  ],
  ['batch missing', () => post('/v1/batch', { events: [] }), 400, 'missing_field', 'batch'],
  [
    'batch whose events are all invalid',
    async () => {
      const res = await post('/v1/batch', {
        batch: [{ type: 'track', userId: 'u1' }, { type: 'bogus', userId: 'u1' }, 7],
      });
      assert.deepEqual(
        res.json.rejected?.map((r) => [r.index, r.code, r.field]),
        [
          [0, 'missing_field', 'batch[0].event'],
          [1, 'invalid_value', 'batch[1].type'],
          [2, 'wrong_type', 'batch[2]'],
        ],
      );
      for (const r of res.json.rejected) assert.equal(typeof r.message, 'string');
      return res;
    },
    400,
    'no_valid_events',
    'batch',
  ],
  [
    'corrupt gzip',
    () => gzipPost('/v1/batch', Buffer.from('this is not gzip data at all')),
    400,
    'invalid_gzip',
    null,
  ],
  [
    'truncated gzip',
    () => {
      const gz = zlib.gzipSync(JSON.stringify({ batch: [{ type: 'track', ...track() }] }));
      return gzipPost('/v1/batch', gz.subarray(0, gz.length - 8));
    },
    400,
    'invalid_gzip',
    null,
  ],
  [
    'gzip bomb inflating past 500 KiB',
    () => {
      const bomb = zlib.gzipSync(Buffer.alloc(20 * 1024 * 1024, 0x20), { level: 9 });
      assert.ok(bomb.length < 64 * 1024, `the bomb is small on the wire (${bomb.length} bytes)`);
      return gzipPost('/v1/batch', bomb);
    },
    413,
    'request_too_large',
    null,
  ],
  [
    'Content-Encoding br',
    () =>
      server.request('/v1/track', {
        body: track(),
        headers: { ...auth(), 'Content-Encoding': 'br' },
      }),
    400,
    'unsupported_encoding',
    null,
  ],
  ['unknown path', () => post('/v2/track', track()), 404, 'not_found', null],
  [
    'GET on /v1/track',
    () => server.request('/v1/track', { headers: auth() }),
    405,
    'method_not_allowed',
    null,
  ],
  [
    'DELETE on /v1/events',
    () =>
      server.request('/v1/events', {
        method: 'DELETE',
        headers: { Authorization: server.bearer() },
      }),
    405,
    'method_not_allowed',
    null,
  ],
  ['missing key', () => post('/v1/track', track(), {}), 401, 'unauthenticated', null],
  [
    'wrong key (Basic)',
    () => post('/v1/track', track(), { Authorization: server.basic('wk_not_a_real_key') }),
    401,
    'unauthenticated',
    null,
  ],
  [
    'wrong writeKey in the body',
    () => post('/v1/batch', { writeKey: 'wk_nope', batch: [{ type: 'track', ...track() }] }, {}),
    401,
    'unauthenticated',
    null,
  ],
  [
    'a writeKey in the body that is a number, not a string',
    () => post('/v1/batch', { writeKey: 123, batch: [{ type: 'track', ...track() }] }, {}),
    400,
    'wrong_type',
    'writeKey',
  ],
  [
    'a writeKey that is a number in a decision request',
    () => post('/v1/decide', { writeKey: 123, userId: 'u-1', decisionPoint: 'home' }, {}),
    400,
    'wrong_type',
    'writeKey',
  ],
  [
    'unknown key in a Bearer header on a collection endpoint wins over a valid writeKey in the body',
    () =>
      post(
        '/v1/track',
        { ...track(), writeKey: server.writeKey },
        { Authorization: 'Bearer wk_not_a_key' },
      ),
    401,
    'unauthenticated',
    null,
  ],
  [
    'Basic credentials that are not base64',
    () => post('/v1/track', track(), { Authorization: 'Basic !!!not-base64!!!' }),
    401,
    'unauthenticated',
    null,
  ],
  [
    'write key on GET /v1/events',
    () =>
      server.request('/v1/events', { headers: { Authorization: server.bearer(server.writeKey) } }),
    403,
    'forbidden',
    null,
  ],
  ['no key on GET /v1/events', () => server.request('/v1/events'), 401, 'unauthenticated', null],
  [
    'GET /v1/events?limit=0',
    () => server.request('/v1/events?limit=0', { headers: { Authorization: server.bearer() } }),
    400,
    'invalid_value',
    'limit',
  ],
  [
    'GET /v1/events?limit=1001',
    () => server.request('/v1/events?limit=1001', { headers: { Authorization: server.bearer() } }),
    400,
    'invalid_value',
    'limit',
  ],
  [
    'GET /v1/events?cursor=abc',
    () => server.request('/v1/events?cursor=abc', { headers: { Authorization: server.bearer() } }),
    400,
    'invalid_value',
    'cursor',
  ],
  ['raw HTTP: garbage request line', () => rawHttp('GARBAGE\r\n\r\n'), 400, 'malformed_http', null],
  [
    'raw HTTP: HTTP/9.9',
    () => rawHttp('GET /healthz HTTP/9.9\r\n\r\n'),
    400,
    'malformed_http',
    null,
  ],
  [
    'raw HTTP: Content-Length: abc',
    () => rawHttp('POST /v1/track HTTP/1.1\r\nHost: x\r\nContent-Length: abc\r\n\r\n{}'),
    400,
    'malformed_http',
    null,
  ],
  [
    'raw HTTP: HTTP/1.1 without Host',
    () => rawHttp('GET /healthz HTTP/1.1\r\n\r\n'),
    400,
    'malformed_http',
    null,
  ],
  [
    'raw HTTP: HTTP/1.1 with two Host headers',
    () => rawHttp('GET /healthz HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n'),
    400,
    'malformed_http',
    null,
  ],
  [
    'raw HTTP: header line without a colon',
    () => rawHttp('GET /healthz HTTP/1.1\r\nHost: x\r\nNot A Header\r\n\r\n'),
    400,
    'malformed_http',
    null,
  ],
  [
    'raw HTTP: headers over 16 KiB',
    () => rawHttp(`GET /healthz HTTP/1.1\r\nHost: x\r\nX-Pad: ${'p'.repeat(20 * 1024)}\r\n\r\n`),
    400,
    'headers_too_large',
    null,
  ],
  [
    'raw HTTP: body shorter than Content-Length, then EOF',
    () =>
      rawHttp(
        'POST /v1/track HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n' +
          'Content-Length: 100\r\n\r\n{"userId":"u1"',
      ),
    400,
    'malformed_http',
    null,
  ],
];

for (const [name, send, status, code, field] of cases) {
  test(`${name} -> ${status}${code ? ` ${code}` : ''}`, async () => {
    const res = await send();
    assert.equal(res.status, status, `status of ${name}: ${res.text ?? res.raw}`);
    assert.ok(res.json, `a JSON body: ${res.text ?? res.raw}`);
    assert.equal(res.json.error?.code, code, JSON.stringify(res.json));
    assert.equal(typeof res.json.error.message, 'string');
    assert.ok(res.json.error.message.length > 0);
    if (field === null) {
      assert.equal(res.json.error.field, undefined, `no field: ${JSON.stringify(res.json)}`);
    } else {
      assert.equal(res.json.error.field, field, JSON.stringify(res.json));
    }
    assert.match(String(res.headers['content-type']), /^application\/json/);
    // The server is still up and serving.
    const health = await server.request('/healthz');
    assert.equal(health.status, 200);
    assert.deepEqual(health.json, { status: 'ok' });
  });
}

test('a bad key in the header is refused before the body is read: instead of 100 Continue, and of 413', async () => {
  const bad = { Authorization: 'Bearer wk_not_a_key' };
  const small = Buffer.from(JSON.stringify({ batch: [{ type: 'track', ...track() }] }));
  const refused = await expectContinue('/v1/batch', small, bad);
  assert.equal(refused.status, 401, refused.text);
  assert.equal(refused.json.error.code, 'unauthenticated');
  assert.equal(refused.continued, false, 'the body was never asked for');
  assert.equal(refused.headers.connection, 'close');
  // A good key gets the interim answer and its body read (here one that stores nothing).
  const good = await expectContinue('/v1/batch', Buffer.from('{"batch": 7}'));
  assert.equal(good.status, 400, good.text);
  assert.equal(good.json.error.field, 'batch');
  assert.equal(good.continued, true);
  // Over the size limit: the key first.
  const big = await oversizedRequest('/v1/batch', 600 * 1024, bad);
  assert.equal(big.status, 401, big.text);
  const decide = await expectContinue('/v1/decide', Buffer.from('{}'), bad);
  assert.equal(decide.status, 401, decide.text);
  assert.equal(decide.continued, false);
});

test('requests refused whole before the body is parsed count as rejected, under their route', async () => {
  const before = await server.request('/metrics');
  const count = (text, line) => {
    const found = text.split('\n').find((l) => l.startsWith(line + ' '));
    return found ? Number(found.slice(line.length + 1)) : 0;
  };
  const tooLarge = 'whisperer_events_rejected_total{reason="request_too_large"}';
  const unsupported = 'whisperer_events_rejected_total{reason="unsupported_encoding"}';
  const route413 = 'whisperer_http_requests_total{route="/v1/batch",code="413"}';
  assert.equal((await oversizedRequest('/v1/batch', 600 * 1024)).status, 413);
  const br = await server.request('/v1/batch', {
    body: { batch: [] },
    headers: { ...auth(), 'Content-Encoding': 'br' },
  });
  assert.equal(br.status, 400, br.text);
  const after = await server.request('/metrics');
  assert.equal(count(after.text, tooLarge), count(before.text, tooLarge) + 1, after.text);
  assert.equal(count(after.text, unsupported), count(before.text, unsupported) + 1);
  assert.equal(count(after.text, route413), count(before.text, route413) + 1);
});

test('a batch with some invalid items stores the valid ones and lists the others', async () => {
  const batch = [
    { type: 'track', userId: 'mixed', event: 'Good 1', messageId: 'mixed-0' },
    { type: 'track', event: 'No user', messageId: 'mixed-1' },
    { type: 'identify', anonymousId: 'anon-mixed', traits: { a: 1 }, messageId: 'mixed-2' },
    { type: 'page', userId: 'mixed', properties: [1], messageId: 'mixed-3' },
    { type: 'alias', userId: 'mixed', previousId: 'anon-mixed', messageId: 'mixed-4' },
    {
      type: 'track',
      userId: 'mixed',
      event: 'Late',
      timestamp: 'not a time',
      messageId: 'mixed-5',
    },
    { type: 'group', userId: 'mixed', groupId: 42, messageId: 'mixed-6' },
  ];
  // The key in the body instead of a header, as some Segment clients send it.
  const res = await post('/v1/batch', { writeKey: server.writeKey, batch }, {});
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.success, true);
  assert.equal(res.json.accepted, 4);
  assert.equal(res.json.duplicates, 0);
  assert.deepEqual(
    res.json.rejected.map(({ index, code, field }) => ({ index, code, field })),
    [
      { index: 1, code: 'missing_field', field: 'batch[1].userId' },
      { index: 3, code: 'wrong_type', field: 'batch[3].properties' },
      { index: 5, code: 'invalid_timestamp', field: 'batch[5].timestamp' },
    ],
  );

  // An empty batch is fine; /v1/import is the same handler as /v1/batch.
  const empty = await post('/v1/batch', { batch: [] });
  assert.equal(empty.status, 200, empty.text);
  assert.deepEqual(empty.json, { success: true, accepted: 0, duplicates: 0, rejected: [] });
  const imported = await post('/v1/import', {
    batch: [
      { type: 'track', userId: 'mixed', event: 'Imported', messageId: 'mixed-7' },
      { type: 'track', userId: 'mixed', messageId: 'mixed-8' },
    ],
  });
  assert.equal(imported.status, 200, imported.text);
  assert.equal(imported.json.accepted, 1);
  assert.deepEqual(
    imported.json.rejected.map((r) => r.field),
    ['batch[1].event'],
  );

  // Exactly the valid items are stored, and nothing of any refused request above.
  const events = await exportEvents(server.dataDir);
  assert.deepEqual(events.map((e) => e.messageId).sort(), [
    'mixed-0',
    'mixed-2',
    'mixed-4',
    'mixed-6',
    'mixed-7',
  ]);
  const group = events.find((e) => e.messageId === 'mixed-6');
  assert.equal(group.groupId, '42', 'an integer groupId is stored as a string');
  const identify = events.find((e) => e.messageId === 'mixed-2');
  assert.deepEqual(identify.traits, { a: 1 });
  assert.equal(identify.anonymousId, 'anon-mixed');
});

test('a number JavaScript writes without an exponent past 64 bits does not cost the batch', async () => {
  // JSON.stringify writes 2e19 as 20000000000000000000, an integer simdjson cannot hold.
  const body = JSON.stringify({
    batch: [{ type: 'track', userId: 'big-number', event: 'Big', messageId: 'big-1', properties: { n: 2e19 } }],
  });
  assert.match(body, /"n":20000000000000000000}/);
  const res = await post('/v1/batch', body);
  assert.equal(res.status, 200, res.text);
  assert.equal(res.json.accepted, 1);
  const stored = (await exportEvents(server.dataDir)).find((e) => e.messageId === 'big-1');
  assert.equal(stored.properties.n, 2e19);
});

test('an event the intent signals look into, without properties, is stored and the server lives on', async () => {
  // A list filtered or sorted may sort by price: its properties are read, and their absence
  // (or null) crashed the server.
  for (const [i, event] of ['Product List Filtered', 'Product List Sorted', 'Products Sorted', 'Product List Viewed'].entries()) {
    const single = await post('/v1/track', track({ event, messageId: `no-props-${i}` }));
    assert.equal(single.status, 200, single.text);
    const batch = await post('/v1/batch', { batch: [{ type: 'track', ...track({ event, properties: null, messageId: `null-props-${i}` }) }] });
    assert.equal(batch.status, 200, batch.text);
  }
  assert.equal((await server.request('/healthz')).status, 200);
  const stored = (await exportEvents(server.dataDir)).filter((e) => /^(no|null)-props-/.test(e.messageId));
  assert.equal(stored.length, 8);
});

test('a Transfer-Encoding other than chunked is refused: its body is never taken for a request', async () => {
  const inner = JSON.stringify({ userId: 'smuggled', event: 'Smuggled', messageId: 'smuggled-1' });
  const innerRequest =
    `POST /v1/track HTTP/1.1\r\nHost: x\r\nAuthorization: ${server.basic()}\r\n` +
    `Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(inner)}\r\n\r\n${inner}`;
  for (const te of ['xchunked', 'gzip', 'chunked, chunked', 'chunked, gzip', 'gzip, chunked', 'identity']) {
    const res = await rawHttp(
      `POST /v1/track HTTP/1.1\r\nHost: x\r\nAuthorization: Basic eDo=\r\nTransfer-Encoding: ${te}\r\n\r\n${innerRequest}`,
    );
    assert.equal(res.status, 400, `${te}: ${res.raw}`);
    assert.equal(res.json.error.code, 'malformed_http', te);
    assert.equal(res.raw.match(/HTTP\/1\.1 \d{3}/g).length, 1, `${te}: one answer, then the connection closed`);
  }
  // chunked is read (as `Chunked`, in any case).
  const body = JSON.stringify({ userId: 'chunked', event: 'Chunked', messageId: 'chunked-1' });
  const ok = await rawHttp(
    `POST /v1/track HTTP/1.1\r\nHost: x\r\nAuthorization: ${server.basic()}\r\nContent-Type: application/json\r\n` +
      `Transfer-Encoding: Chunked\r\nConnection: close\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n0\r\n\r\n`,
  );
  assert.equal(ok.status, 200, ok.raw);
  const stored = (await exportEvents(server.dataDir)).filter((e) => e.messageId === 'smuggled-1');
  assert.equal(stored.length, 0, 'the body of a refused request was not stored as a request');
});

test('a bad key in the header is 401 whatever the body\'s encoding; several Content-Encoding lines are one list', async () => {
  const bad = { Authorization: 'Basic eDo=' };  // the key "x"
  for (const [encoding, body] of [['gzip', 'not gzip at all'], ['br', '{}'], ['gzip', zlib.gzipSync('x'.repeat(600 * 1024))]]) {
    const res = await server.request('/v1/track', { body, headers: { ...bad, 'Content-Encoding': encoding } });
    assert.equal(res.status, 401, `${encoding}: ${res.text}`);
    assert.equal(res.json.error.code, 'unauthenticated');
  }
  // identity then gzip, on two lines: a list, refused like `identity, gzip` (the first line alone
  // was read, and the gzip body taken as plain).
  const gz = zlib.gzipSync(JSON.stringify(track({ messageId: 'two-lines' })));
  const res = await rawHttp(Buffer.concat([
    Buffer.from(`POST /v1/track HTTP/1.1\r\nHost: x\r\nAuthorization: ${server.basic()}\r\n` +
      `Content-Encoding: identity\r\nContent-Encoding: gzip\r\nContent-Length: ${gz.length}\r\n` +
      'Connection: close\r\n\r\n'),
    gz,
  ]));
  assert.equal(res.status, 400, res.raw);
  assert.equal(res.json.error.code, 'unsupported_encoding');
});

test('an admin route refuses a key that is no admin key from the header alone, whatever else is wrong', async () => {
  // A write key with a body over the limit: 403, not 413; no key at all: 401 instead of 100 Continue.
  const big = await oversizedRequest('/v1/models/clv/fit', 600 * 1024, auth());
  assert.equal(big.status, 403, big.text);
  assert.equal(big.json.error.code, 'forbidden');
  const none = await expectContinue('/v1/profiles/prf_1/unmerge', Buffer.from('{}'), {});
  assert.equal(none.status, 401, none.text);
  assert.equal(none.continued, false);
  const admin = { Authorization: server.bearer() };
  const fit = await expectContinue('/v1/models/clv/fit', Buffer.from('{}'), admin);
  assert.equal(fit.continued, true, fit.text);
});

test('a query parameter given twice is refused, naming it, after the key', async () => {
  const admin = { Authorization: server.bearer() };
  const twice = await server.request('/v1/decisions?limit=1&limit=50', { headers: admin });
  assert.equal(twice.status, 400, twice.text);
  assert.equal(twice.json.error.code, 'invalid_value');
  assert.equal(twice.json.error.field, 'limit');
  assert.match(twice.json.error.message, /'limit' is given more than once/);
  assert.equal((await server.request('/v1/decisions?limit=1', { headers: admin })).status, 200);
  // The key speaks first: a write key on an admin route is 403 whatever its query.
  const write = await server.request('/v1/decisions?limit=1&limit=2', { headers: auth() });
  assert.equal(write.status, 403, write.text);
  // A collection route reads no query: its events are not refused for one, given twice or not.
  const tracked = await post('/v1/track?v=1&v=2', track({ messageId: 'twice-query' }));
  assert.equal(tracked.status, 200, tracked.text);
  const stored = await exportEvents(server.dataDir);
  assert.equal(stored.filter((e) => e.messageId === 'twice-query').length, 1);
  // Nor are probes and scrapers.
  for (const p of ['/healthz?verbose', '/readyz?x=1&x=2', '/metrics?name[]=up']) {
    assert.equal((await server.request(p)).status, 200, p);
  }
});

test('a query parameter the endpoint does not take is refused, naming it; Segment endpoints ignore one', async () => {
  const admin = { Authorization: server.bearer() };
  const misspelt = await server.request('/v1/decisions?limt=5', { headers: admin });
  assert.equal(misspelt.status, 400, misspelt.text);
  assert.equal(misspelt.json.error.code, 'invalid_value');
  assert.equal(misspelt.json.error.field, 'limt');
  assert.match(misspelt.json.error.message, /unknown query parameter 'limt'; expected .*limit/);
  // A %-escaped name is never read, so it is unknown too.
  const escaped = await server.request('/v1/decisions?li%6dit=5', { headers: admin });
  assert.equal(escaped.status, 400, escaped.text);
  // The key speaks first.
  assert.equal((await server.request('/v1/decisions?limt=5', { headers: auth() })).status, 403);
  assert.equal((await server.request('/v1/decisions?limt=5')).status, 401);
  // An event sent with a cache-buster, as a client built for Segment may add, is stored; on
  // Whisperer's own /v1/import the parameter is refused and nothing is stored.
  const busted = await post('/v1/track?_=1732500000000', track({ messageId: 'cache-buster' }));
  assert.equal(busted.status, 200, busted.text);
  const imported = await post('/v1/import?dryRun=true', { batch: [track({ type: 'track', messageId: 'import-query' })] });
  assert.equal(imported.status, 400, imported.text);
  assert.equal(imported.json.error.field, 'dryRun');
  const stored = await exportEvents(server.dataDir);
  assert.equal(stored.filter((e) => e.messageId === 'cache-buster').length, 1);
  assert.equal(stored.find((e) => e.messageId === 'import-query'), undefined);
});
