// The action catalog edited over HTTP (/v1/actions) through the real binary: list, read, create,
// replace and delete actions with the config's own rules, decisions made with the edited
// catalog at once, and edits that survive a restart.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { startServer } from './lib/server.mjs';

const CONFIG = `
workspaces:
  - name: shop
    write_keys: [wk_shop]
    admin_keys: [ak_shop]
    decisions:
      control_group: 0
      actions:
        - {id: a, issue: engage, group: content, treatments: [{id: a_web, channel: web}]}
        - {id: b, issue: engage, group: content, value: 2, treatments: [{id: b_web, channel: web}]}
      decision_points:
        - {id: home, issues: [engage], slots: 3}
        - {id: pinned, actions: [a]}
`;

test('actions: listed, created, replaced and deleted over HTTP, used at once, kept across a restart', async (t) => {
  let server = await startServer({ t, config: CONFIG });
  const dataDir = server.dataDir;
  const admin = (path, opts = {}) =>
    server.request(path, { ...opts, headers: { authorization: 'Bearer ak_shop', ...(opts.headers ?? {}) } });
  const decide = () =>
    server.request('/v1/decide', {
      body: { userId: 'u1', decisionPoint: 'home' },
      headers: { authorization: `Basic ${Buffer.from('wk_shop:').toString('base64')}` },
    });

  const list = await admin('/v1/actions');
  assert.equal(list.status, 200, list.text);
  assert.deepEqual(list.json.actions.map((a) => [a.id, a.source, a.value]), [['a', 'config', 1], ['b', 'config', 2]]);
  assert.deepEqual(list.json.actions[0].treatments, [{ id: 'a_web', channel: 'web' }]);
  assert.equal((await decide()).json.candidates, 2);

  // Created: a candidate of the decision point whose issue it joins, in the next decision.
  const flash = {
    issue: 'engage', group: 'offers', kind: 'urgency', value: 3, cost: 1,
    eligibility: 'profile.orders.count >= 0',
    contact: { max: 2, per: '7d' },
    treatments: [{ id: 'flash_push', channel: 'push' }],
    variants: [{ id: 'v1', content: 'Now' }, { id: 'v2', content: 'Today only' }],
  };
  const created = await admin('/v1/actions/flash', { method: 'PUT', body: flash });
  assert.equal(created.status, 201, created.text);
  assert.equal(created.json.source, 'api');
  assert.equal(created.json.id, 'flash');
  assert.deepEqual(created.json.contact, { max: 2, per: '7d' });
  const after = await decide();
  assert.equal(after.json.candidates, 3);
  assert.ok(after.json.slots.some((s) => s.action === 'flash'), after.text);

  // Replaced: a config action, changed.
  const replaced = await admin('/v1/actions/b', {
    method: 'PUT',
    body: { id: 'b', issue: 'engage', group: 'content', value: 5, treatments: [{ id: 'b_web', channel: 'web' }] },
  });
  assert.equal(replaced.status, 200, replaced.text);
  assert.equal((await admin('/v1/actions/b')).json.value, 5);
  assert.equal((await admin('/v1/actions/b')).json.source, 'api');
  // What GET answers, changed and sent back as it is (with its read-only `source`).
  const read = (await admin('/v1/actions/b')).json;
  const sentBack = await admin('/v1/actions/b', { method: 'PUT', body: { ...read, value: 6 } });
  assert.equal(sentBack.status, 200, sentBack.text);
  assert.equal((await admin('/v1/actions/b')).json.value, 6);

  // Refused with the config's rules, naming the field; nothing changes.
  const cases = [
    [{ issue: 'engage', group: 'g', treatments: [{ id: 't', channel: 'fax' }] }, 'treatments[0].channel', /email, sms/],
    [{ issue: 'engage', group: 'g', eligibility: 'profile.nope > 1', treatments: [{ id: 't', channel: 'web' }] }, 'eligibility', /nope/],
    // A journey the workspace does not have: the condition would never hold.
    [{ issue: 'engage', group: 'g', eligibility: "profile.journeys.onboardng == 'done'", treatments: [{ id: 't', channel: 'web' }] }, 'eligibility', /no journey `onboardng` in this workspace/],
    [{ id: 'other', issue: 'engage', group: 'g', treatments: [{ id: 't', channel: 'web' }] }, 'id', /path/],
    [{ issue: 'engage', group: 'g', colour: 'red', treatments: [{ id: 't', channel: 'web' }] }, 'colour', /unknown key/],
    [{ issue: 'engage', group: 'g' }, 'treatments', /treatments/],
  ];
  for (const [body, field, message] of cases) {
    const res = await admin('/v1/actions/bad', { method: 'PUT', body });
    assert.equal(res.status, 400, res.text);
    assert.equal(res.json.error.code, 'invalid_action', res.text);
    assert.equal(res.json.error.field, field, res.text);
    assert.match(res.json.error.message, message);
  }
  // A condition nested past the bound is refused (50,000 parentheses once overflowed the stack).
  const deep = await admin('/v1/actions/bad', {
    method: 'PUT',
    body: {
      issue: 'engage',
      group: 'g',
      eligibility: `${'('.repeat(50000)}profile.events > 0${')'.repeat(50000)}`,
      treatments: [{ id: 't', channel: 'web' }],
    },
  });
  assert.equal(deep.status, 400, deep.text.slice(0, 300));
  assert.equal(deep.json.error.code, 'invalid_action');
  assert.equal(deep.json.error.field, 'eligibility');
  assert.match(deep.json.error.message, /nested more than 64 deep/);
  const malformed = await admin('/v1/actions/bad', { method: 'PUT', body: '{"issue": ' });
  assert.equal(malformed.status, 400, malformed.text);
  // JSON that is no object is of the wrong type, as for every JSON body.
  const notObject = await admin('/v1/actions/bad', { method: 'PUT', body: '[1]' });
  assert.equal(notObject.status, 400, notObject.text);
  assert.equal(notObject.json.error.code, 'wrong_type', notObject.text);
  // A key twice is refused as in every JSON body, naming where.
  const twice = await admin('/v1/actions/bad', {
    method: 'PUT',
    body: '{"issue": "engage", "group": "g", "treatments": [{"id": "t", "channel": "web", "channel": "sms"}]}',
  });
  assert.equal(twice.status, 400, twice.text);
  assert.equal(twice.json.error.code, 'duplicate_key', twice.text);
  assert.equal(twice.json.error.field, 'treatments[0].channel', twice.text);
  assert.equal((await admin('/v1/actions/bad')).status, 404);

  // Deleted; one a decision point names stays.
  const inUse = await admin('/v1/actions/a', { method: 'DELETE' });
  assert.equal(inUse.status, 409, inUse.text);
  assert.equal(inUse.json.error.code, 'action_in_use');
  assert.match(inUse.json.error.message, /pinned/);
  const gone = await admin('/v1/actions/flash', { method: 'DELETE' });
  assert.equal(gone.status, 200, gone.text);
  assert.deepEqual(gone.json, { deleted: 'flash' });
  assert.equal((await admin('/v1/actions/flash', { method: 'DELETE' })).status, 404);
  assert.equal((await decide()).json.candidates, 2);
  const again = await admin('/v1/actions/later', {
    method: 'PUT',
    body: { issue: 'engage', group: 'content', treatments: [{ id: 'l_web', channel: 'web' }] },
  });
  assert.equal(again.status, 201, again.text);
  const writeKey = await server.request('/v1/actions', {
    headers: { authorization: `Basic ${Buffer.from('wk_shop:').toString('base64')}` },
  });
  assert.equal(writeKey.status, 403, writeKey.text);
  assert.equal(writeKey.json.error.code, 'forbidden');

  // A restart keeps every edit.
  assert.equal(await server.stop(), 0);
  server = await startServer({ t, config: CONFIG, dataDir });
  const kept = await admin('/v1/actions');
  assert.deepEqual(kept.json.actions.map((a) => [a.id, a.source, a.value]), [
    ['a', 'config', 1],
    ['b', 'api', 6],
    ['later', 'api', 1],
  ]);
  assert.equal((await decide()).json.candidates, 3);
  assert.equal(await server.stop(), 0);
});

// Creates action `id` of the `engage` issue with `applicability`; returns the answer, a decide
// for u1 at `home` with the given request properties, and the reason `id` was filtered out of a
// decide's answer (undefined when it was not).
async function putApplicable(server, id, applicability) {
  const put = await server.request(`/v1/actions/${id}`, {
    method: 'PUT',
    body: { issue: 'engage', group: 'content', applicability, treatments: [{ id: `${id}_web`, channel: 'web' }] },
    headers: { authorization: 'Bearer ak_shop' },
  });
  assert.equal(put.status, 201, put.text);
  const decide = (properties) =>
    server.request('/v1/decide', {
      body: { userId: 'u1', decisionPoint: 'home', properties },
      headers: { authorization: `Basic ${Buffer.from('wk_shop:').toString('base64')}` },
    });
  const filteredOut = (res) => res.json.filtered.find((f) => f.action === id)?.reason;
  return { put, decide, filteredOut };
}

test("decide reads the request's properties as the event's: event.properties.* in applicability", async (t) => {
  const server = await startServer({ t, config: CONFIG });
  const { decide, filteredOut } = await putApplicable(server, 'shirts', 'event.properties.category == "shirts"');
  const shirts = await decide({ category: 'shirts' });
  assert.equal(shirts.status, 200, shirts.text);
  assert.equal(filteredOut(shirts), undefined, shirts.text);
  assert.ok(shirts.json.slots.some((s) => s.action === 'shirts'), shirts.text);
  const hats = await decide({ category: 'hats' });
  assert.equal(filteredOut(hats), 'not_applicable', hats.text);
  const none = await decide(undefined);
  assert.equal(filteredOut(none), 'not_applicable', none.text);
  assert.equal(await server.stop(), 0);
});

test('conditions reach keys with blanks and array elements: event.properties[\'Plan Type\'], products[0].sku', async (t) => {
  const server = await startServer({ t, config: CONFIG });
  const condition = "event.properties['Plan Type'] == 'free' and event.properties.products[0].sku starts_with 'PRO-'";
  const { put, decide, filteredOut } = await putApplicable(server, 'upgrade', condition);
  assert.equal(put.json.applicability, condition);
  const fits = await decide({ 'Plan Type': 'free', products: [{ sku: 'PRO-1' }, { sku: 'X' }] });
  assert.equal(fits.status, 200, fits.text);
  assert.equal(filteredOut(fits), undefined, fits.text);
  assert.ok(fits.json.slots.some((s) => s.action === 'upgrade'), fits.text);
  const second = await decide({ 'Plan Type': 'free', products: [{ sku: 'X' }, { sku: 'PRO-1' }] });
  assert.equal(filteredOut(second), 'not_applicable', second.text);
  const paid = await decide({ 'Plan Type': 'paid', products: [{ sku: 'PRO-1' }] });
  assert.equal(filteredOut(paid), 'not_applicable', paid.text);
  // A subscript that is no name or index is refused, naming the column.
  const bad = await server.request('/v1/actions/upgrade', {
    method: 'PUT',
    body: { issue: 'engage', group: 'content', applicability: 'event.properties[-1] == 1', treatments: [{ id: 'u', channel: 'web' }] },
    headers: { authorization: 'Bearer ak_shop' },
  });
  assert.equal(bad.status, 400, bad.text);
  assert.equal(bad.json.error.field, 'applicability');
  assert.match(bad.json.error.message, /column 18: a subscript is a non-empty 'name' or an index from 0/);
  assert.equal(await server.stop(), 0);
});

test('an edit that would leave a decision point without candidates is refused like a deletion', async (t) => {
  const server = await startServer({
    t,
    config: `
workspaces:
  - name: shop
    write_keys: [wk_shop]
    admin_keys: [ak_shop]
    decisions:
      actions:
        - {id: only, issue: rare, group: g, treatments: [{id: only_web, channel: web}]}
        - {id: other, issue: common, group: g, treatments: [{id: other_web, channel: web}]}
      decision_points:
        - {id: rare_point, issues: [rare]}
        - {id: common_point, issues: [common]}
`,
  });
  const admin = (path, opts = {}) =>
    server.request(path, { ...opts, headers: { authorization: 'Bearer ak_shop' } });
  const moved = await admin('/v1/actions/only', {
    method: 'PUT',
    body: { issue: 'common', group: 'g', treatments: [{ id: 'only_web', channel: 'web' }] },
  });
  assert.equal(moved.status, 409, moved.text);
  assert.equal(moved.json.error.code, 'action_in_use');
  assert.equal(moved.json.error.field, 'id');
  assert.match(moved.json.error.message, /rare_point/);
  const kept = await admin('/v1/actions/only');
  assert.equal(kept.json.issue, 'rare', 'nothing changed');
  assert.equal(await server.stop(), 0);
});

test('actions: a body written with \\u escapes, as Python\'s json.dumps writes an emoji, is read as the text', async (t) => {
  const server = await startServer({ t, config: CONFIG });
  const admin = (path, opts = {}) =>
    server.request(path, { ...opts, headers: { authorization: 'Bearer ak_shop' } });
  // json.dumps({"content": "🔥 Été"}) and a string cut inside an emoji, written by hand.
  const body = '{"issue": "engage", "group": "offers", "treatments": [{"id": "hot_web", "channel": "web"}],' +
    ' "variants": [{"id": "v1", "content": "\\ud83d\\udd25 \\u00c9t\\u00e9"}, {"id": "v2", "content": "cut \\ud83d"}]}';
  const put = await admin('/v1/actions/hot', { method: 'PUT', body });
  assert.equal(put.status, 201, put.text);
  const read = await admin('/v1/actions/hot');
  assert.deepEqual(read.json.variants.map((v) => v.content), ['🔥 Été', 'cut \ufffd']);
  assert.equal(await server.stop(), 0);
});
