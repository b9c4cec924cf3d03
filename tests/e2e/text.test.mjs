// What customers write: the event properties a workspace names in models.text.properties are
// scored on ingest, run by the real binary.
//
// Sentiment: events sent through the official Segment client carry texts in `message` and in
// the nested `review.body`; the profile's `sentiment` shows the latest text's VADER compound,
// the mean and the counts; a property not named is not scored; journeys and personas act on
// event.sentiment and profile.sentiment.average.
//
// Intent: `whisperer models train intent` trains fastText on a small CSV written here into a
// stopped server's directory (server_running while a server holds it); the server started
// afterwards predicts the intent of each message into the profile's `textIntent`, and
// GET /v1/models/intent shows the version with its held-out accuracy; rollback is refused.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { Analytics as SegmentAnalytics } from '@segment/analytics-node';
import { MAC_UA } from './lib/user_agents.mjs';
import { startServer, makeTempDir, runCli } from './lib/server.mjs';

const MIN = 60_000;
const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

// support: texts scored, a journey stage entered on a very negative message and a persona for
// customers unhappy on average. plain: nothing configured, nothing scored.
const CONFIG = `
log: {level: warn}
ingest: {shards: 1}
workspaces:
  - name: support
    write_keys: [wk_support]
    admin_keys: [ak_support]
    models:
      text: {properties: [message, review.body]}
    journeys:
      - id: rescue
        stages:
          - id: upset
            entry: "event.sentiment <= -0.5"
          - id: soothed
            entry: "event.sentiment >= 0.5 and profile.sentiment.count >= 2"
        goal: "event.name == 'Order Completed'"
    personas:
      - id: unhappy
        rules:
          - {when: "profile.sentiment.average < -0.3", weight: 1}
  - name: plain
    write_keys: [wk_plain]
    admin_keys: [ak_plain]
`;

let server;

before(async () => {
  server = await startServer({ config: CONFIG });
});

after(async () => {
  if (server?.running !== false && server) assert.equal(await server.stop(), 0);
});

function get(p, key, target = server) {
  return target.request(p, { headers: { authorization: `Bearer ${key}` } });
}

async function getOk(p, key, target = server) {
  const res = await get(p, key, target);
  assert.equal(res.status, 200, `${p}: ${res.text}`);
  return res.json;
}

async function profileOf(userId, key, target = server) {
  const { profileId } = await getOk(
    `/v1/profiles/lookup?userId=${encodeURIComponent(userId)}`,
    key,
    target,
  );
  return getOk(`/v1/profiles/${profileId}`, key, target);
}

/** Sends track calls through the Segment client as one batch, in the order given. */
async function send(writeKey, calls, target = server) {
  const analytics = new SegmentAnalytics({
    writeKey,
    host: target.url,
    path: '/v1/batch',
    flushAt: calls.length,
    flushInterval: 60_000,
    maxRetries: 2,
    httpRequestTimeout: 10_000,
  });
  const statuses = [];
  analytics.on('http_response', (r) => statuses.push(r.status));
  const delivered = calls.map(
    (msg) => new Promise((resolve) => analytics.track(msg, (err) => resolve(err))),
  );
  await analytics.closeAndFlush({ timeout: 0 });
  for (const err of await Promise.all(delivered)) assert.equal(err, undefined, `delivered: ${err}`);
  assert.deepEqual(statuses, [200], 'one batch request, answered 200');
}

function track(userId, event, atMs, properties, messageId) {
  return {
    userId,
    event,
    properties,
    timestamp: new Date(atMs).toISOString(),
    context: { userAgent: MAC_UA },
    ...(messageId ? { messageId } : {}),
  };
}

const NEGATIVE = 'This is terrible. The package arrived broken and support was useless and rude!';
const POSITIVE = 'Wonderful service, thank you so much! I love it, great job.';
const NEUTRAL = 'I placed the order on Tuesday.'; // no word of the VADER lexicon

test('sentiment: the configured properties are scored into the profile; nested paths; others ignored', async () => {
  const t0 = Date.now() - 30 * MIN;
  // Not scored: no configured property, a property not named, a number, an empty string.
  await send('wk_support', [
    track('ann', 'Page Viewed', t0, { title: NEGATIVE }),
    track('ann', 'Feedback', t0 + 1000, { comment: NEGATIVE, message: 42, review: { body: '' } }),
  ]);
  let profile = await profileOf('ann', 'ak_support');
  assert.equal(profile.events, 2);
  assert.equal(profile.sentiment, null, 'nothing scored yet');
  assert.equal(profile.textIntent, null, 'no intent model');

  await send('wk_support', [
    track('ann', 'Message Sent', t0 + 2 * MIN, { message: NEGATIVE, comment: POSITIVE }, 'ann-neg'),
  ]);
  profile = await profileOf('ann', 'ak_support');
  let s = profile.sentiment;
  assert.ok(s, 'sentiment after a message');
  assert.equal(s.count, 1);
  assert.equal(s.negative, 1);
  assert.equal(s.positive, 0);
  assert.ok(s.latest.compound < -0.05, `negative text: compound ${s.latest.compound}`);
  assert.ok(s.latest.compound >= -1);
  assert.equal(s.latest.property, 'message');
  assert.equal(s.latest.messageId, 'ann-neg');
  // The event's timestamp, give or take the server's clock-skew correction (sentAt).
  assert.match(s.latest.at, ISO);
  assert.ok(Math.abs(Date.parse(s.latest.at) - (t0 + 2 * MIN)) < 5000, s.latest.at);
  assert.equal(s.average, s.latest.compound);
  const negative = s.latest.compound;

  // The nested path review.body, a positive text.
  await send('wk_support', [
    track('ann', 'Review Written', t0 + 3 * MIN, { review: { body: POSITIVE, stars: 5 } }, 'ann-pos'),
  ]);
  profile = await profileOf('ann', 'ak_support');
  s = profile.sentiment;
  assert.equal(s.count, 2);
  assert.equal(s.positive, 1);
  assert.equal(s.negative, 1);
  assert.ok(s.latest.compound > 0.05, `positive text: compound ${s.latest.compound}`);
  assert.equal(s.latest.property, 'review.body');
  assert.equal(s.latest.messageId, 'ann-pos');
  const positive = s.latest.compound;
  assert.ok(Math.abs(s.average - (negative + positive) / 2) < 1e-9, `average ${s.average}`);

  // Both properties in one event: two texts; the first in config order (message) is the latest.
  // A neutral text counts in neither positive nor negative.
  await send('wk_support', [
    track('ann', 'Message Sent', t0 + 4 * MIN, { message: NEUTRAL, review: { body: NEGATIVE } }, 'ann-both'),
  ]);
  profile = await profileOf('ann', 'ak_support');
  s = profile.sentiment;
  assert.equal(s.count, 4);
  assert.equal(s.negative, 2);
  assert.equal(s.positive, 1);
  assert.equal(s.latest.property, 'message');
  assert.equal(s.latest.messageId, 'ann-both');
  assert.equal(s.latest.compound, 0, 'a neutral text');
  assert.ok(
    Math.abs(s.average - (2 * negative + positive + s.latest.compound) / 4) < 1e-9,
    `average ${s.average}`,
  );

  // An earlier event (in event time) adds to the counts but does not replace the latest text.
  await send('wk_support', [track('ann', 'Message Sent', t0 + MIN, { message: POSITIVE }, 'ann-early')]);
  profile = await profileOf('ann', 'ak_support');
  assert.equal(profile.sentiment.count, 5);
  assert.equal(profile.sentiment.positive, 2);
  assert.equal(profile.sentiment.latest.messageId, 'ann-both');

  // A workspace without models.text.properties scores nothing.
  await send('wk_plain', [track('bob', 'Message Sent', t0, { message: NEGATIVE })]);
  profile = await profileOf('bob', 'ak_plain');
  assert.equal(profile.sentiment, null);
  assert.equal(profile.textIntent, null);
});

test('conditions on event.sentiment and profile.sentiment.average: a journey and a persona act on them', async () => {
  const t0 = Date.now() - 20 * MIN;
  await send('wk_support', [track('cid', 'Message Sent', t0, { message: NEUTRAL })]);
  let profile = await profileOf('cid', 'ak_support');
  assert.equal(profile.journeys.rescue, undefined, 'a neutral message enters no stage');
  assert.equal(profile.persona, null);

  await send('wk_support', [track('cid', 'Message Sent', t0 + MIN, { message: NEGATIVE })]);
  profile = await profileOf('cid', 'ak_support');
  assert.ok(profile.sentiment.latest.compound <= -0.5, `${profile.sentiment.latest.compound}`);
  assert.equal(profile.journeys.rescue?.stage, 'upset', 'event.sentiment <= -0.5');
  assert.equal(profile.journeys.rescue.status, 'active');

  // The average is now below -0.3: the persona is assigned (at this event or, if personas see
  // the profile before the event, at the next one).
  await send('wk_support', [track('cid', 'Page Viewed', t0 + 2 * MIN, {})]);
  profile = await profileOf('cid', 'ak_support');
  assert.ok(profile.sentiment.average < -0.3, `average ${profile.sentiment.average}`);
  assert.equal(profile.persona?.id, 'unhappy');
  assert.equal(profile.journeys.rescue.stage, 'upset', 'an event without text is no sentiment');

  await send('wk_support', [track('cid', 'Message Sent', t0 + 3 * MIN, { message: POSITIVE })]);
  profile = await profileOf('cid', 'ak_support');
  assert.equal(profile.journeys.rescue.stage, 'soothed', 'a positive message after two texts');

  // A condition that does not type-check keeps the server from starting.
  const bad = CONFIG.replace('event.sentiment <= -0.5"', "event.sentiment == 'bad'\"");
  await assert.rejects(startServer({ config: bad }), /workspaces\[0\]\.journeys\[0\]\.stages\[0\]\.entry/);
});

// ---------------------------------------------------------------------------------------------
// Intent: a handful of intents, ten phrasings each, written for this test.

const INTENTS = {
  refund: [
    'I want a refund for my order',
    'please refund my money',
    'how do I get my money back',
    'can I get a refund',
    'I would like a refund please',
    'refund the charge on my card',
    'when will my refund arrive',
    'I am still waiting for my refund',
    'give me my money back',
    'I need a refund for this purchase',
  ],
  shipping: [
    'where is my package',
    'my parcel has not arrived yet',
    'when will my order be delivered',
    'track my shipment',
    'the delivery is late',
    'has my package shipped',
    'what is the shipping status of my parcel',
    'my delivery still has not come',
    'how long does shipping take',
    'where is my delivery',
  ],
  password: [
    'I forgot my password',
    'reset my password please',
    'I cannot log in to my account',
    'how do I change my password',
    'my login does not work',
    'password reset link is not working',
    'I am locked out of my account',
    'help me sign in, wrong password',
    'I need a new password',
    'cannot sign in to my account',
  ],
  cancel: [
    'cancel my subscription',
    'I want to cancel my plan',
    'please stop my membership',
    'how do I cancel my account subscription',
    'end my subscription now',
    'I would like to unsubscribe from the plan',
    'stop billing me, cancel the plan',
    'terminate my membership please',
    'cancel the monthly subscription',
    'I no longer want the subscription',
  ],
};

function intentCsv() {
  const quote = (s) => (/[",\n]/.test(s) ? `"${s.replaceAll('"', '""')}"` : s);
  const lines = ['id,utterance,intent'];
  let id = 0;
  // Interleaved, as a real export would be.
  for (let i = 0; i < 10; i++) {
    for (const [label, texts] of Object.entries(INTENTS)) {
      lines.push(`${++id},${quote(texts[i])},${label}`);
    }
  }
  return `${lines.join('\n')}\n`;
}

const INTENT_CONFIG = `
log: {level: warn}
ingest: {shards: 1}
workspaces:
  - name: helpdesk
    write_keys: [wk_help]
    admin_keys: [ak_help]
    models:
      text: {properties: [message]}
`;

test('whisperer models train intent: server_running while a server runs; a server started afterwards predicts textIntent', async (t) => {
  const dir = await makeTempDir(t);
  const data = path.join(dir, 'data');
  const csv = path.join(dir, 'intents.csv');
  await fsp.writeFile(csv, intentCsv());
  const train = (extra = []) =>
    runCli([
      'models', 'train', 'intent', csv, '--data', data, '--workspace', 'helpdesk',
      '--text-column', 'utterance', '--label-column', 'intent', ...extra,
    ]);

  let help = await startServer({ t, config: INTENT_CONFIG, dataDir: data });
  let model = await getOk('/v1/models/intent', 'ak_help', help);
  assert.equal(model.name, 'intent');
  assert.equal(model.version, 0);
  assert.equal(model.latest, null);
  assert.deepEqual(model.versions, []);
  const list = await getOk('/v1/models', 'ak_help', help);
  assert.deepEqual(
    list.models.map((m) => m.name),
    ['conversion', 'churn', 'clv', 'intent'],
  );
  assert.deepEqual(list.models[3], {
    name: 'intent',
    algorithm: 'fastText supervised classifier (word and character n-grams, softmax)',
    version: 0,
    latest: null,
  });

  const refused = await train();
  assert.equal(refused.code, 1, refused.stderr);
  assert.match(refused.stderr, /\[server_running\]/);
  // Intent has no online training to point to (lifetime value's answer names its endpoint).
  assert.doesNotMatch(refused.stderr, /POST/);
  assert.equal(refused.stdout, '');
  assert.equal((await getOk('/v1/models/intent', 'ak_help', help)).version, 0, 'nothing trained');

  // Before training, messages are scored for sentiment only.
  await send('wk_help', [track('dan', 'Message Sent', Date.now() - MIN, { message: 'where is my parcel' })], help);
  assert.equal((await profileOf('dan', 'ak_help', help)).textIntent, null);
  assert.equal(await help.stop(), 0);

  const trained = await train();
  assert.equal(trained.code, 0, trained.stderr);
  assert.match(trained.stderr, /training on 36 examples, 4 held out/);
  const m = /^intent version 1 of workspace helpdesk: 4 intents from 36 examples; accuracy ([\d.e+-]+) on 4 held-out examples\n$/.exec(
    trained.stdout,
  );
  assert.ok(m, trained.stdout);

  help = await startServer({ t, config: INTENT_CONFIG, dataDir: data });
  model = await getOk('/v1/models/intent', 'ak_help', help);
  assert.equal(model.version, 1);
  assert.equal(model.versions.length, 1);
  const v1 = model.latest;
  assert.deepEqual(model.versions[0], v1);
  assert.equal(v1.version, 1);
  assert.equal(v1.reason, 'train');
  assert.match(v1.trainedAt, ISO);
  assert.equal(v1.examples, 36);
  assert.equal(v1.labels, 4);
  assert.equal(v1.metrics.heldOut, 4);
  assert.ok(v1.metrics.accuracy >= 0 && v1.metrics.accuracy <= 1, `accuracy ${v1.metrics.accuracy}`);
  assert.ok(Math.abs(v1.metrics.accuracy - Number(m[1])) < 1e-5, 'the CLI printed the same');
  const listed = (await getOk('/v1/models', 'ak_help', help)).models[3];
  assert.deepEqual(listed.latest, v1);
  assert.equal(listed.versions, undefined);

  // Messages the model never saw, each in the words of its intent.
  const at = Date.now() - 10 * MIN;
  const cases = [
    ['eve', 'I want a refund, give me my money back', 'refund'],
    ['fay', 'where is my package? the delivery is late', 'shipping'],
    ['gus', 'I forgot my password and cannot log in', 'password'],
    ['hal', 'please cancel my subscription', 'cancel'],
  ];
  await send(
    'wk_help',
    cases.map(([user, message], i) => track(user, 'Message Sent', at + i * 1000, { message })),
    help,
  );
  for (const [user, message, label] of cases) {
    const profile = await profileOf(user, 'ak_help', help);
    assert.equal(profile.textIntent?.label, label, `${message}: ${JSON.stringify(profile.textIntent)}`);
    assert.ok(profile.textIntent.probability > 0 && profile.textIntent.probability <= 1);
    assert.equal(profile.textIntent.at, profile.sentiment.latest.at);
    assert.equal(profile.sentiment.count, 1);
  }
  // An event without text keeps the intent.
  await send('wk_help', [track('eve', 'Page Viewed', at + 60_000, {})], help);
  assert.equal((await profileOf('eve', 'ak_help', help)).textIntent.label, 'refund');

  const rollback = (version) =>
    help.request('/v1/models/intent/rollback', {
      body: { version },
      headers: { authorization: 'Bearer ak_help' },
    });
  const unknown = await rollback(7);
  assert.equal(unknown.status, 404, unknown.text);
  assert.equal(unknown.json.error.code, 'unknown_version');
  assert.equal((await getOk('/v1/models/intent', 'ak_help', help)).version, 1, 'refused: unchanged');
  assert.equal(await help.stop(), 0);

  // A second training, where refunds are called money_back, is version 2.
  await fsp.writeFile(csv, intentCsv().replaceAll(',refund\n', ',money_back\n'));
  const again = await train();
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stdout, /^intent version 2 of workspace helpdesk: /);
  help = await startServer({ t, config: INTENT_CONFIG, dataDir: data });
  model = await getOk('/v1/models/intent', 'ak_help', help);
  assert.equal(model.version, 2);
  assert.deepEqual(model.versions.map((v) => [v.version, v.stored]), [[1, true], [2, true]]);
  assert.equal(model.latest.version, 2);
  const refund = async (user, i) => {
    await send('wk_help', [track(user, 'Message Sent', Date.now() - MIN + i, { message: 'I want my money back, refund me' })], help);
    return (await profileOf(user, 'ak_help', help)).textIntent.label;
  };
  assert.equal(await refund('ivy', 1), 'money_back');

  // Back to version 1: new messages are labelled by its model, as version 3.
  const back = await rollback(1);
  assert.equal(back.status, 200, back.text);
  assert.equal(back.json.version, 3);
  assert.equal(back.json.latest.reason, 'rollback');
  assert.equal(back.json.latest.restoredVersion, 1);
  assert.equal(back.json.latest.examples, v1.examples);
  assert.equal(back.json.latest.metrics.accuracy, v1.metrics.accuracy);
  assert.equal(await refund('jon', 2), 'refund');
  assert.equal((await profileOf('ivy', 'ak_help', help)).textIntent.label, 'money_back', 'kept');
  assert.equal(await help.stop(), 0);

  // After a restart version 3, version 1's model, still answers.
  help = await startServer({ t, config: INTENT_CONFIG, dataDir: data });
  model = await getOk('/v1/models/intent', 'ak_help', help);
  assert.deepEqual(model.versions.map((v) => [v.version, v.reason, v.restoredVersion]), [
    [1, 'train', undefined],
    [2, 'train', undefined],
    [3, 'rollback', 1],
  ]);
  assert.equal(await refund('kim', 3), 'refund');
  assert.equal(await help.stop(), 0);
});

test('whisperer models train intent: the errors', async (t) => {
  const dir = await makeTempDir(t);
  const data = path.join(dir, 'data');
  const csv = path.join(dir, 'intents.csv');
  await fsp.writeFile(csv, intentCsv());
  const help = await startServer({ t, config: INTENT_CONFIG, dataDir: data });
  assert.equal(await help.stop(), 0);

  const unknown = await runCli([
    'models', 'train', 'intent', csv, '--data', data, '--workspace', 'nope',
    '--text-column', 'utterance', '--label-column', 'intent',
  ]);
  assert.equal(unknown.code, 1, unknown.stderr);
  assert.match(unknown.stderr, /\[unknown_workspace\]/);

  // The default columns (text, label) are not in this file.
  const columns = await runCli(['models', 'train', 'intent', csv, '--data', data, '--workspace', 'helpdesk']);
  assert.equal(columns.code, 2, columns.stderr);
  assert.equal(columns.stdout, '');
  // One column for both is a slip: the texts would be their own intents.
  const same = await runCli([
    'models', 'train', 'intent', csv, '--data', data, '--workspace', 'helpdesk',
    '--text-column', 'utterance', '--label-column', 'utterance',
  ]);
  assert.equal(same.code, 2, same.stderr);
  assert.match(same.stderr, /both name 'utterance'.* \[bad_usage\]\n$/);
  // Bytes that are not UTF-8 would be stored as intents and answered as JSON: refused.
  const latin1 = path.join(dir, 'latin1.csv');
  await fsp.writeFile(latin1, Buffer.concat([
    Buffer.from('utterance,intent\nwhere is my order,track\n'),
    Buffer.from([0x72, 0xe9, 0x73, 0x75, 0x6d, 0xe9]),  // "résumé" in Latin-1
    Buffer.from(',refund\n'),
  ]));
  const bytes = await runCli([
    'models', 'train', 'intent', latin1, '--data', data, '--workspace', 'helpdesk',
    '--text-column', 'utterance', '--label-column', 'intent',
  ]);
  assert.equal(bytes.code, 2, bytes.stderr);
  assert.match(bytes.stderr, /line 3: the utterance field is not valid UTF-8/);
  // A bad example is named by its line (a quoted text over two lines counts as both), whether
  // it would be trained on or held out; behind a byte order mark, quoted column names read.
  const rows = intentCsv().split('\n').slice(1, 31);
  for (const [bad, why] of [
    ['"two\nlines",', /line 34: empty label \[invalid_argument\]/],
    ['hello,good bye', /line 34: label 'good bye' contains whitespace/],
    [`hello,${'x'.repeat(257)}`, /line 34: label 'x+\.\.\.' is over 256 bytes/],
  ]) {
    const file = path.join(dir, 'bad.csv');
    await fsp.writeFile(file, `\ufeff"id","utterance","intent"\n${rows.join('\n')}\n98,"a\nb",track\n99,${bad}\n`);
    const refused = await runCli([
      'models', 'train', 'intent', file, '--data', data, '--workspace', 'helpdesk',
      '--text-column', 'utterance', '--label-column', 'intent',
    ]);
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, why);
  }
  // Fewer than ten examples per intent: none is held out, so no accuracy is claimed.
  const small = path.join(dir, 'small.csv');
  await fsp.writeFile(small, intentCsv().split('\n').slice(0, 13).join('\n') + '\n');
  const unmeasured = await runCli([
    'models', 'train', 'intent', small, '--data', data, '--workspace', 'helpdesk',
    '--text-column', 'utterance', '--label-column', 'intent',
  ]);
  assert.equal(unmeasured.code, 0, unmeasured.stderr);
  assert.match(unmeasured.stdout, /accuracy not measured/);

  const missing = path.join(dir, 'no-such-data');
  const noData = await runCli(['models', 'train', 'intent', csv, '--data', missing]);
  assert.equal(noData.code, 1, noData.stderr);
  assert.match(noData.stderr, /\[no_data\]/);
  await assert.rejects(fsp.stat(missing), /ENOENT/);
});
