// POST /v1/experience and the catalog, through the real binary started with
// whisperer.example.yaml: adaptation hints by device, journey stage, persona and intent with
// the rules that won and lost; urgency triggers from catalog data and live Product Viewed
// events, only with personalization consent and within the daily cap.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { IPHONE_UA, MAC_UA } from './lib/user_agents.mjs';
import { exampleConfig, startServer } from './lib/server.mjs';

let server;

before(async () => {
  server = await startServer({ config: await exampleConfig() });
});

after(async () => {
  if (server) assert.equal(await server.stop(), 0);
});

const admin = (p, opts = {}) =>
  server.request(p, { ...opts, headers: { authorization: server.bearer(), ...opts.headers } });
const experience = (body, auth = server.basic()) =>
  server.request('/v1/experience', { body, headers: auth ? { authorization: auth } : {} });

async function track(events) {
  const res = await server.request('/v1/batch', {
    body: { batch: events },
    headers: { authorization: server.basic() },
  });
  assert.equal(res.status, 200, res.text);
}

test('catalog items: put, get, and clear errors', async () => {
  const put = await admin('/v1/catalog/items/sku-1', {
    method: 'PUT',
    body: { stock: 7, offerEndsAt: '2030-01-01T00:00:00Z', price: 19.9, name: 'Linen shirt' },
  });
  assert.equal(put.status, 200, put.text);
  assert.equal(put.json.stock, 7);
  assert.equal(put.json.offerEndsAt, '2030-01-01T00:00:00.000Z');
  const got = await admin('/v1/catalog/items/sku-1');
  assert.equal(got.status, 200);
  assert.deepEqual(got.json, put.json);
  // What GET answered goes back as it is, changed; a whole stock may be written as 1e1.
  const roundTrip = await admin('/v1/catalog/items/sku-1', {
    method: 'PUT',
    body: JSON.stringify({ ...got.json, price: 17.5 }).replace('"stock":7', '"stock":1e1'),
  });
  assert.equal(roundTrip.status, 200, roundTrip.text);
  assert.equal(roundTrip.json.stock, 10);
  assert.equal(roundTrip.json.price, 17.5);
  assert.equal(roundTrip.json.id, 'sku-1');
  assert.notEqual(roundTrip.json.updatedAt, '2000-01-01T00:00:00.000Z');
  for (const [body, field, code = 'invalid_value'] of [
    [{ stock: -1 }, 'stock'],
    [{ stock: 'many' }, 'stock', 'wrong_type'],
    [{ stock: 2.5 }, 'stock'],
    [{ offerEndsAt: 'soon' }, 'offerEndsAt', 'invalid_timestamp'],
    [{ offerEndsAt: 1700000000 }, 'offerEndsAt', 'wrong_type'],
    [{ price: '19.90' }, 'price', 'wrong_type'],
    [{ price: -1 }, 'price'],
    [{ name: 7 }, 'name', 'wrong_type'],
    [{ colour: 'red' }, 'colour'],
    [{ id: 'sku-2', stock: 1 }, 'id'],
    [{ id: 2, stock: 1 }, 'id', 'wrong_type'],
    ['{"stock":9007199254740992}', 'stock'],
    ['{"stock":1,"stock":2}', 'stock', 'duplicate_key'],
  ]) {
    const res = await admin('/v1/catalog/items/sku-1', { method: 'PUT', body });
    assert.equal(res.status, 400, JSON.stringify(body));
    assert.equal(res.json.error.field, field);
    assert.equal(res.json.error.code, code, res.text);
  }
  assert.equal((await admin('/v1/catalog/items/sku-1')).json.stock, 10, 'a refused PUT changes nothing');
  // An id that is not UTF-8 once %-decoded would make answers that are not JSON.
  const notUtf8 = await admin('/v1/catalog/items/%C3%28', { method: 'PUT', body: { stock: 3 } });
  assert.equal(notUtf8.status, 400, notUtf8.text);
  assert.equal(notUtf8.json.error.code, 'invalid_value');
  assert.equal(notUtf8.json.error.field, 'id');
  const missing = await admin('/v1/catalog/items/nope');
  assert.equal(missing.status, 404);
  assert.equal(missing.json.error.code, 'item_not_found');
  const writeKey = await server.request('/v1/catalog/items/sku-1', {
    headers: { authorization: `Bearer ${server.writeKey}` },
  });
  assert.equal(writeKey.status, 403);
});

test('catalog items: listed a page at a time in id order, and deleted', async () => {
  const tag = randomUUID().slice(0, 8);
  // Ids that sort before and after the ones other tests write, and one that needs %-encoding.
  const ids = [`list-${tag}-a`, `list-${tag}-b/c`, `list-${tag}-é`];
  for (const [i, id] of ids.entries()) {
    const put = await admin(`/v1/catalog/items/${encodeURIComponent(id)}`, { method: 'PUT', body: { stock: i } });
    assert.equal(put.status, 200, put.text);
  }
  // Walk every page of one item and keep ours: all of them, in id order, each once.
  const seen = [];
  let cursor = '';
  for (let pages = 0; pages < 100; pages += 1) {
    const page = await admin(`/v1/catalog/items?limit=1${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    assert.equal(page.status, 200, page.text);
    assert.ok(page.json.items.length <= 1);
    seen.push(...page.json.items.map((item) => item.id));
    if (!page.json.hasMore) {
      assert.equal(page.json.nextCursor, null);
      break;
    }
    cursor = page.json.nextCursor;
    assert.equal(cursor, page.json.items[0].id);
  }
  assert.deepEqual(seen.filter((id) => id.includes(tag)), ids);
  assert.deepEqual([...seen].sort(), seen, 'id order (bytes of UTF-8, as the store keeps them)');
  const all = await admin('/v1/catalog/items?limit=1000');
  assert.equal(all.json.items.find((item) => item.id === ids[1]).stock, 1);

  const deleted = await admin(`/v1/catalog/items/${encodeURIComponent(ids[1])}`, { method: 'DELETE' });
  assert.equal(deleted.status, 200, deleted.text);
  assert.deepEqual(deleted.json, { deleted: ids[1] });
  const gone = await admin(`/v1/catalog/items/${encodeURIComponent(ids[1])}`);
  assert.equal(gone.status, 404);
  assert.equal(gone.json.error.code, 'item_not_found');
  const again = await admin(`/v1/catalog/items/${encodeURIComponent(ids[1])}`, { method: 'DELETE' });
  assert.equal(again.status, 404);
  assert.equal(again.json.error.code, 'item_not_found');
  assert.equal(again.json.error.field, 'id');
  const after = (await admin('/v1/catalog/items?limit=1000')).json.items.map((item) => item.id);
  assert.deepEqual(after.filter((id) => id.includes(tag)), [ids[0], ids[2]]);
  // A deleted item's stock no longer makes a trigger.
  const lowStock = `list-${tag}-low`;
  await admin(`/v1/catalog/items/${lowStock}`, { method: 'PUT', body: { stock: 2 } });
  const ask = async () =>
    (await experience({ anonymousId: `v-${randomUUID()}`, items: [lowStock], context: { consent: { personalization: true } } }))
      .json.triggers;
  assert.deepEqual(await ask(), [{ type: 'low_stock', item: lowStock, stock: 2, source: 'catalog' }]);
  assert.equal((await admin(`/v1/catalog/items/${lowStock}`, { method: 'DELETE' })).status, 200);
  assert.deepEqual(await ask(), []);

  for (const [query, field] of [['limit=0', 'limit'], ['limit=x', 'limit'], ['cursor=%C3%28', 'cursor']]) {
    const bad = await admin(`/v1/catalog/items?${query}`);
    assert.equal(bad.status, 400, query);
    assert.equal(bad.json.error.code, 'invalid_value', bad.text);
    assert.equal(bad.json.error.field, field);
  }
  for (const [method, path] of [['GET', '/v1/catalog/items'], ['DELETE', `/v1/catalog/items/${encodeURIComponent(ids[0])}`]]) {
    const res = await server.request(path, { method, headers: { authorization: `Bearer ${server.writeKey}` } });
    assert.equal(res.status, 403, `${method} ${path}`);
  }
  assert.equal((await admin(`/v1/catalog/items/${encodeURIComponent(ids[0])}`)).status, 200, 'a refused DELETE deletes nothing');
});

test('a first-time desktop visitor gets the desktop layout and no triggers without consent', async () => {
  const res = await experience({
    anonymousId: `new-${randomUUID()}`,
    context: { userAgent: MAC_UA, page: { url: 'https://shop.example/' } },
    items: ['sku-1'],
  });
  assert.equal(res.status, 200, res.text);
  const e = res.json;
  assert.equal(e.profileId, null);
  assert.equal(e.persona, null);
  assert.equal(e.device.type, 'desktop');
  assert.deepEqual(e.adaptations, { content_density: 'high', layout: 'multi_column', navigation: 'mega_menu' });
  assert.ok(e.explanations.every((x) => x.rule === 'desktop_layout' && x.overruled.length === 0));
  assert.equal(e.intent.session.purchaseIntent.score, 0);
  assert.deepEqual(e.triggers, []);
  assert.equal(e.triggersWithheld, 'no_personalization_consent');
});

test('a mobile visitor in the short-video hook: the journey rule beats the device rule, and says so', async () => {
  const anon = `m-${randomUUID()}`;
  const ctx = { userAgent: IPHONE_UA, campaign: { source: 'tiktok', medium: 'short_video' } };
  await track([{ type: 'page', anonymousId: anon, name: 'Landing', context: ctx }]);
  // Within the hook's 3 seconds.
  const res = await experience({ anonymousId: anon, context: ctx });
  assert.equal(res.status, 200, res.text);
  const e = res.json;
  assert.equal(e.journeys.mobile_short_video.stage, 'hook');
  assert.equal(e.adaptations.loading_priority, 'hero_video_first');
  assert.equal(e.adaptations.layout, 'single_column');
  const why = e.explanations.find((x) => x.hint === 'loading_priority');
  assert.deepEqual(why, {
    hint: 'loading_priority',
    value: 'hero_video_first',
    rule: 'short_video_hook',
    priority: 30,
    overruled: [{ rule: 'mobile_layout', value: 'above_the_fold_first', priority: 10, reason: 'lower priority' }],
  });
});

test('intent and persona steer the hints: a deal seeker ready to buy', async () => {
  const user = `u-${randomUUID()}`;
  await track([
    { type: 'track', userId: user, event: 'Coupon Applied', context: { userAgent: MAC_UA } },
    { type: 'track', userId: user, event: 'Product Added', properties: { product_id: 'sku-1' } },
    { type: 'track', userId: user, event: 'Checkout Started' },
  ]);
  const res = await experience({ userId: user, context: { userAgent: MAC_UA } });
  const e = res.json;
  assert.equal(e.persona.id, 'deal_seeker');
  assert.ok(e.intent.session.purchaseIntent.score >= 0.5, JSON.stringify(e.intent.session));
  // ready_to_buy (40) over deal_seeker_offers (20) over desktop_layout (10).
  assert.equal(e.adaptations.next_content, 'cart_reminder');
  assert.equal(e.adaptations.trust_signals, 'near_checkout');
  assert.equal(e.adaptations.navigation, 'checkout_shortcut');
  const trust = e.explanations.find((x) => x.hint === 'trust_signals');
  assert.deepEqual(trust.overruled.map((o) => [o.rule, o.reason]), [['deal_seeker_offers', 'lower priority']]);

  // Denied personalization: the page adapts to the request's context only, not the profile.
  const { profileId } = (await admin(`/v1/profiles/lookup?userId=${user}`)).json;
  const denied = await admin(`/v1/profiles/${profileId}/consent`, {
    method: 'PUT',
    body: { purposes: { personalization: 'denied' } },
  });
  assert.equal(denied.status, 200, denied.text);
  const plain = (await experience({ userId: user, context: { userAgent: MAC_UA } })).json;
  // Nor does the answer describe the profile for the page to personalize with.
  assert.equal(plain.persona, null);
  assert.deepEqual(plain.journeys, {});
  assert.equal(plain.intent.profile.purchaseIntent.score, 0, JSON.stringify(plain.intent));
  assert.equal(plain.intent.session.purchaseIntent.score, 0);
  assert.equal(plain.profileId, profileId);
  const rules = plain.explanations.map((x) => x.rule);
  assert.ok(!rules.includes('ready_to_buy') && !rules.includes('deal_seeker_offers'), JSON.stringify(rules));
  assert.ok(rules.includes('desktop_layout'), 'the device still counts');
});

test('triggers come from real data, need personalization consent and stop at the daily cap', async () => {
  const sku = `sku-${randomUUID().slice(0, 8)}`;
  const endsAt = new Date(Date.now() + 2 * 3_600_000).toISOString();
  assert.equal((await admin(`/v1/catalog/items/${sku}`, { method: 'PUT', body: { stock: 3, offerEndsAt: endsAt } })).status, 200);
  // Two other customers are looking at it now.
  await track(
    ['a', 'b'].map((who) => ({
      type: 'track',
      anonymousId: `viewer-${who}-${sku}`,
      event: 'Product Viewed',
      properties: { product_id: sku },
    })),
  );
  const user = `c-${randomUUID()}`;
  await track([{ type: 'identify', userId: user, traits: { plan: 'free' } }]);
  const { profileId } = (await admin(`/v1/profiles/lookup?userId=${user}`)).json;
  let e = (await experience({ userId: user, items: [sku] })).json;
  assert.deepEqual(e.triggers, []);
  assert.equal(e.triggersWithheld, 'no_personalization_consent');

  const consent = await admin(`/v1/profiles/${profileId}/consent`, {
    method: 'PUT',
    body: { purposes: { personalization: 'granted' } },
  });
  assert.equal(consent.status, 200, consent.text);
  // The page's consent manager, in the request's context, rules over what is stored.
  e = (await experience({ userId: user, items: [sku], context: { consent: { personalization: false } } })).json;
  assert.deepEqual(e.triggers, []);
  assert.equal(e.triggersWithheld, 'no_personalization_consent');
  // An item named twice is answered once.
  e = (await experience({ userId: user, items: [sku, 'sku-unknown', sku] })).json;
  assert.equal(e.triggersWithheld, null);
  assert.deepEqual(e.triggers, [
    { type: 'low_stock', item: sku, stock: 3, source: 'catalog' },
    { type: 'offer_ending', item: sku, endsAt: new Date(Date.parse(endsAt)).toISOString(), source: 'catalog' },
    { type: 'viewing_now', item: sku, viewers: 2, source: 'Product Viewed events in the last 15 minutes' },
  ]);
  // Three answers with triggers a day (this was the first).
  for (let i = 0; i < 2; i += 1) assert.equal((await experience({ userId: user, items: [sku] })).json.triggers.length, 3);
  e = (await experience({ userId: user, items: [sku] })).json;
  assert.deepEqual(e.triggers, []);
  assert.equal(e.triggersWithheld, 'daily_cap_reached');
  // First-time visitors (no profile yet) each have a cap of their own.
  const visitors = [`v-${randomUUID()}`, `v-${randomUUID()}`];
  for (const [i, anonymousId] of [visitors[0], visitors[0], visitors[0], visitors[0], visitors[1]].entries()) {
    const v = (await experience({ anonymousId, items: [sku], context: { consent: { personalization: true } } })).json;
    assert.equal(v.triggersWithheld, i === 3 ? 'daily_cap_reached' : null, `answer ${i}: ${JSON.stringify(v)}`);
  }
  // The count survives a restart.
  const { dataDir } = server;
  assert.equal(await server.stop(), 0);
  server = await startServer({ config: await exampleConfig(), dataDir });
  e = (await experience({ userId: user, items: [sku] })).json;
  assert.equal(e.triggersWithheld, 'daily_cap_reached');

  // Erasing a customer erases their count, kept in the store (visitors[0], read from it after
  // the restart) or held in memory (a visitor capped since).
  const capped = [visitors[0], `v-${randomUUID()}`];
  const ask = async (anonymousId) =>
    (await experience({ anonymousId, items: [sku], context: { consent: { personalization: true } } })).json;
  for (let i = 0; i < 3; i += 1) assert.equal((await ask(capped[1])).triggersWithheld, null);
  for (const anonymousId of capped) {
    assert.equal((await ask(anonymousId)).triggersWithheld, 'daily_cap_reached');
    await track([{ type: 'identify', anonymousId, traits: { plan: 'free' } }]);
    const found = await admin(`/v1/profiles/lookup?anonymousId=${anonymousId}`);
    assert.equal(found.status, 200, found.text);
    assert.equal((await admin(`/v1/profiles/${found.json.profileId}`, { method: 'DELETE' })).status, 200);
    assert.equal((await ask(anonymousId)).triggersWithheld, null, anonymousId);
  }
});

test('bad experience requests get clear errors', async () => {
  for (const [body, status, code, field] of [
    [{ context: {} }, 400, 'missing_field', 'userId'],
    [{ userId: true }, 400, 'wrong_type', 'userId'],
    [{ anonymousId: { id: 'a' } }, 400, 'wrong_type', 'anonymousId'],
    [{ anonymousId: 'a', items: 'sku' }, 400, 'wrong_type', 'items'],
    [{ anonymousId: 'a', items: ['sku-1', 7] }, 400, 'wrong_type', 'items[1]'],
    [{ anonymousId: 'a', items: ['sku-1', 'x'.repeat(257)] }, 400, 'invalid_value', 'items[1]'],
    [{ anonymousId: 'a', items: Array.from({ length: 51 }, (_, i) => `s${i}`) }, 400, 'invalid_value', 'items'],
    [{ anonymousId: 'a', context: 'mobile' }, 400, 'wrong_type', 'context'],
    [{ anonymousId: 'a', properties: ['shirts'] }, 400, 'wrong_type', 'properties'],
    [{ anonymousId: 'a', item: 'sku-1' }, 400, 'invalid_value', 'item'],
  ]) {
    const res = await experience(body);
    assert.equal(res.status, status, JSON.stringify(body));
    assert.equal(res.json.error.code, code, JSON.stringify(body));
    assert.equal(res.json.error.field, field, JSON.stringify(body));
  }
  // null is absent, and an integer id is its digits, as in collection.
  const nulls = await experience({ anonymousId: 'a', context: null, properties: null });
  assert.equal(nulls.status, 200, nulls.text);
  const numeric = await experience({ userId: 7 });
  assert.equal(numeric.status, 200, numeric.text);
  // Built like a page event, with the Segment envelope's fields: they are ignored.
  const pageLike = await experience({ type: 'page', anonymousId: 'a', messageId: 'm1', name: 'Home', timestamp: new Date().toISOString() });
  assert.equal(pageLike.status, 200, pageLike.text);
  const noKey = await experience({ anonymousId: 'a' }, null);
  assert.equal(noKey.status, 401);
  const text = await server.request('/v1/experience', {
    body: 'not json',
    headers: { authorization: server.basic(), 'content-type': 'application/json' },
  });
  assert.equal(text.status, 400);
  assert.equal(text.json.error.code, 'malformed_json');
});
