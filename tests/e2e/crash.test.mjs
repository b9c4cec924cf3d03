// kill -9 in the middle of a stream of batches: every acknowledged event survives, and
// re-sending what was not acknowledged (and some of what was) stores every event exactly once,
// and counts it exactly once in its customer's profile.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import path from 'node:path';
import {
  startServer,
  exportEvents,
  countByMessageId,
  duplicatedIds,
  makeTempDir,
  request,
} from './lib/server.mjs';

const BATCHES = 200;
const EVENTS_PER_BATCH = 50;
const SENDERS = 4;
const TYPES = ['track', 'identify', 'page', 'screen', 'group'];

function makeBatch(b) {
  return Array.from({ length: EVENTS_PER_BATCH }, (_, i) => {
    const n = b * EVENTS_PER_BATCH + i;
    const type = TYPES[n % TYPES.length];
    const event = {
      type,
      messageId: `crash-${b}-${i}`,
      userId: `user-${n % 97}`,
      properties: { b, i, text: `event ${n} ✓` },
    };
    if (type === 'track') event.event = 'Crash Test';
    if (type === 'page' || type === 'screen') event.name = 'Crash Screen';
    if (type === 'group') event.groupId = `group-${n % 7}`;
    return event;
  });
}

function post(server, agent, body) {
  return request(server.port, '/v1/batch', {
    body,
    agent,
    headers: { Authorization: server.basic() },
    timeoutMs: 20_000,
  });
}

/**
 * Sends the batches `indices` from SENDERS concurrent keep-alive connections. With `killAfter`,
 * kills the server with SIGKILL once that many batches were acknowledged in this phase, while
 * the other senders have requests in flight. Returns the acknowledged batch indices with their
 * responses, and the indices whose request failed.
 */
async function sendPhase(server, indices, bodies, { killAfter } = {}) {
  const queue = [...indices];
  const acked = new Map();
  const failed = new Set();
  let killed = null;
  const sender = async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    try {
      for (let b = queue.shift(); b !== undefined; b = queue.shift()) {
        let res;
        try {
          res = await post(server, agent, bodies[b]);
        } catch {
          failed.add(b);
          continue; // connection refused or reset: the server is gone; keep recording
        }
        if (res.status !== 200) {
          failed.add(b);
          continue;
        }
        acked.set(b, JSON.parse(res.text));
        if (killAfter !== undefined && acked.size >= killAfter && !killed) {
          killed = server.kill9();
        }
      }
    } finally {
      agent.destroy();
    }
  };
  await Promise.all(Array.from({ length: SENDERS }, sender));
  return { acked, failed, killed };
}

test(
  'kill -9 mid-stream loses no acknowledged event and duplicates none',
  { timeout: 120_000 },
  async (t) => {
    const dataDir = path.join(await makeTempDir(t), 'data');
    const bodies = Array.from({ length: BATCHES }, (_, b) =>
      JSON.stringify({ batch: makeBatch(b) }),
    );
    const everAcked = new Set();

    // Phase 1: stream everything, kill -9 after 60 acknowledged batches.
    let server = await startServer({ dataDir, t });
    const firstKeys = [server.writeKey, server.adminKey];
    const p1 = await sendPhase(server, [...Array(BATCHES).keys()], bodies, { killAfter: 60 });
    assert.ok(p1.killed, 'the server was killed during phase 1');
    assert.deepEqual(await p1.killed, { code: null, signal: 'SIGKILL' });
    for (const [b, r] of p1.acked) {
      assert.equal(r.accepted, EVENTS_PER_BATCH, `batch ${b}: ${JSON.stringify(r)}`);
      assert.equal(r.duplicates, 0);
      assert.deepEqual(r.rejected, []);
      everAcked.add(b);
    }
    assert.ok(p1.acked.size >= 60 && p1.acked.size < BATCHES, `acked ${p1.acked.size}`);
    assert.ok(p1.failed.size > 0, 'some batches were not acknowledged');

    // What was acknowledged is on disk, before any re-send.
    const afterCrash = await exportEvents(dataDir);
    const storedIds = new Set(afterCrash.map((e) => e.messageId));
    for (const b of p1.acked.keys()) {
      for (let i = 0; i < EVENTS_PER_BATCH; i++) {
        assert.ok(
          storedIds.has(`crash-${b}-${i}`),
          `acknowledged crash-${b}-${i} survived kill -9`,
        );
      }
    }
    assert.deepEqual(duplicatedIds(afterCrash), [], 'no event stored twice');

    const storedUnacked = [...p1.failed].filter((b) => storedIds.has(`crash-${b}-0`)).length;
    t.diagnostic(
      `phase 1: ${p1.acked.size} batches acknowledged, ${p1.failed.size} not ` +
        `(${storedUnacked} of those stored anyway); ${afterCrash.length} events on disk`,
    );

    // Phase 2: restart on the same data, re-send the unacknowledged batches and five acknowledged
    // ones, and kill -9 again part way.
    server = await startServer({ dataDir, t });
    assert.deepEqual([server.writeKey, server.adminKey], firstKeys, 'generated keys persist');
    const ackedList = [...p1.acked.keys()];
    const replayed = ackedList.slice(0, 5);
    const pending = [...Array(BATCHES).keys()].filter((b) => !p1.acked.has(b));
    const p2 = await sendPhase(server, [...replayed, ...pending], bodies, { killAfter: 40 });
    assert.ok(p2.killed, 'the server was killed during phase 2');
    await p2.killed;
    for (const [b, r] of p2.acked) {
      assert.equal(r.accepted, EVENTS_PER_BATCH);
      if (everAcked.has(b)) assert.equal(r.duplicates, EVENTS_PER_BATCH, `replayed batch ${b}`);
      everAcked.add(b);
    }

    t.diagnostic(`phase 2: ${p2.acked.size} batches acknowledged, ${p2.failed.size} not`);

    // Phase 3: restart, re-send everything still unacknowledged plus five acknowledged batches.
    server = await startServer({ dataDir, t });
    const stillPending = [...Array(BATCHES).keys()].filter((b) => !everAcked.has(b));
    const replayed3 = [...everAcked].slice(-5);
    const p3 = await sendPhase(server, [...replayed3, ...stillPending], bodies);
    assert.deepEqual([...p3.failed], [], 'with no crash every batch is acknowledged');
    for (const [b, r] of p3.acked) {
      assert.equal(r.accepted, EVENTS_PER_BATCH);
      if (everAcked.has(b)) assert.equal(r.duplicates, EVENTS_PER_BATCH, `replayed batch ${b}`);
      everAcked.add(b);
    }
    assert.equal(everAcked.size, BATCHES);

    // Every event exactly once, with its content, while the server runs; then a clean stop.
    const events = await exportEvents(dataDir);
    const counts = countByMessageId(events);
    assert.deepEqual(duplicatedIds(events), [], 'no messageId stored twice');
    assert.equal(events.length, BATCHES * EVENTS_PER_BATCH);
    for (let b = 0; b < BATCHES; b++) {
      for (let i = 0; i < EVENTS_PER_BATCH; i++) {
        assert.equal(counts.get(`crash-${b}-${i}`), 1, `crash-${b}-${i} stored once`);
      }
    }
    for (const e of events) {
      const [, b, i] = /^crash-(\d+)-(\d+)$/.exec(e.messageId).map(Number);
      assert.equal(e.properties.b, b);
      assert.equal(e.properties.i, i);
      assert.equal(e.type, TYPES[(b * EVENTS_PER_BATCH + i) % TYPES.length]);
    }
    // Profiles were written in the same batches as the events: across both crashes and the
    // re-sends, each customer's profile counts exactly the events stored for them.
    const perUser = new Map();
    for (const e of events) perUser.set(e.userId, (perUser.get(e.userId) ?? 0) + 1);
    const admin = { Authorization: server.bearer() };
    for (const [userId, stored] of perUser) {
      const found = await request(server.port, `/v1/profiles/lookup?userId=${userId}`, {
        headers: admin,
      });
      assert.equal(found.status, 200, `${userId}: ${found.text}`);
      const id = JSON.parse(found.text).profileId;
      const profile = JSON.parse(
        (await request(server.port, `/v1/profiles/${id}`, { headers: admin })).text,
      );
      assert.equal(profile.events, stored, `${userId}: profile counts its stored events`);
      const page = JSON.parse(
        (await request(server.port, `/v1/profiles/${id}/events?limit=1000`, { headers: admin }))
          .text,
      );
      assert.equal(page.events.length, stored, `${userId}: timeline lists its stored events`);
    }

    assert.equal(await server.stop(), 0);
    assert.equal((await exportEvents(dataDir)).length, BATCHES * EVENTS_PER_BATCH);
  },
);
