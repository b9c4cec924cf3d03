#!/usr/bin/env node
// Checks journeys against real behaviour: the Google Analytics sample of the Google Merchandise
// Store (one whole day, ../shared/data/ga_merch_store_20170801, see its README) is turned into
// Segment track events, replayed through a detail view -> add to cart -> purchase journey with
// `whisperer replay`, and the funnel is compared with the same funnel computed here directly
// from the raw rows. The numbers must agree exactly; the exit code is 1 when they do not.
//
// Usage: node bench/ga_funnel.mjs [--data DIR] [--bin PATH] [--report FILE]
//   --data    the datasets folder (default $WHISPERER_DATA or ../shared/data)
//   --bin     the whisperer binary (default build/whisperer)
//   --report  also write the result as Markdown to FILE (docs/ga_funnel_check.md)
//
// The adapter: one event per distinct hit (fullVisitorId, visitNumber, hitNumber) whose
// action_type is 2 (product detail view -> "Product Viewed"), 3 (add to cart -> "Product
// Added") or 6 (completed purchase -> "Order Completed"); the file is one row per (hit, product),
// so a hit with several products is one event. anonymousId is the visitor id (kept as a string).
// The file has no absolute times: a visitor's sessions are placed 4 hours apart
// (visitNumber - 1) from 2017-08-01T00:00Z, plus the hit's time within its session, which keeps
// every visitor's own order (visitNumber, time, hitNumber); events are replayed in time order.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { args, bin, dataDir, repo } from './args.mjs';
const csv = path.join(dataDir, 'ga_merch_store_20170801', 'ga_sessions_20170801.csv');

const NAMES = { 2: 'Product Viewed', 3: 'Product Added', 6: 'Order Completed' };
const DAY = Date.parse('2017-08-01T00:00:00Z');
const SESSION_GAP_MS = 4 * 3600 * 1000;

// --- The adapter: rows -> events.
const lines = fs.readFileSync(csv, 'utf8').split('\n').filter((l) => l.length > 0);
const header = lines.shift().split(',');
const col = Object.fromEntries(header.map((h, i) => [h, i]));
const hits = new Map(); // (visitor, visit, hit) -> event
for (const line of lines) {
  const f = line.split(',');
  const action = Number(f[col.action_type]);
  if (!NAMES[action]) continue;
  const visitor = f[col.fullVisitorId];
  const visit = Number(f[col.visitNumber]);
  const hit = Number(f[col.hitNumber]);
  const key = `${visitor}-${visit}-${hit}`;
  if (hits.has(key)) continue; // the same hit, another product
  const ms = DAY + (visit - 1) * SESSION_GAP_MS + Number(f[col.time]);
  hits.set(key, { visitor, visit, hit, action, ms });
}
const events = [...hits.values()].sort(
  (a, b) => a.ms - b.ms || a.visitor.localeCompare(b.visitor) || a.hit - b.hit,
);

// --- The funnel computed directly: per visitor, in order, entered at the first detail view,
// into the cart at the first add-to-cart after that (unless already converted), converted at
// the first purchase after entering. No re-entry.
const state = new Map();
for (const e of events) {
  let s = state.get(e.visitor);
  if (!s) {
    if (e.action !== 2) continue;
    state.set(e.visitor, { stage: 'detail', cart: false, converted: false });
    continue;
  }
  if (s.converted) continue;
  if (e.action === 6) s.converted = true;
  else if (e.action === 3 && !s.cart) s.cart = true;
}
const direct = {
  detail: state.size,
  cart: [...state.values()].filter((s) => s.cart).length,
  converted: [...state.values()].filter((s) => s.converted).length,
};

// --- The same through whisperer replay.
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'whisperer-ga-'));
try {
  const ndjson = path.join(tmp, 'ga.ndjson');
  fs.writeFileSync(
    ndjson,
    events
      .map((e) =>
        JSON.stringify({
          type: 'track',
          event: NAMES[e.action],
          anonymousId: e.visitor,
          messageId: `ga-${e.visitor}-${e.visit}-${e.hit}`,
          timestamp: new Date(e.ms).toISOString(),
        }),
      )
      .join('\n') + '\n',
  );
  const config = path.join(tmp, 'ga.yaml');
  fs.writeFileSync(
    config,
    `workspaces:
  - name: default
    journeys:
      - id: ga_funnel
        stages:
          - id: detail
            entry: "event.name == 'Product Viewed'"
          - id: cart
            entry: "event.name == 'Product Added'"
        goal: "event.name == 'Order Completed'"
`,
  );
  const out = execFileSync(bin, ['replay', ndjson, '--config', config], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    maxBuffer: 64 << 20,
  });
  const funnel = JSON.parse(out).journeys.find((j) => j.journey === 'ga_funnel').groups[0];
  const replayed = {
    detail: funnel.stages[0].entered,
    cart: funnel.stages[1].entered,
    converted: funnel.converted,
  };
  const agree = ['detail', 'cart', 'converted'].every((k) => direct[k] === replayed[k]);
  const report = `# Journeys on real data: the Google Merchandise Store day

Written by \`node bench/ga_funnel.mjs --report docs/ga_funnel_check.md\`; not edited by hand.

The Google Analytics 360 sample of 2017-08-01 (\`ga_merch_store_20170801\`: ${lines.length} rows of
hit x product) becomes ${events.length} track events (one per product detail view, add to cart
and purchase hit; the adapter is described in \`bench/ga_funnel.mjs\`). \`whisperer replay\` runs
them through the journey detail view -> add to cart -> purchase; the script computes the same
funnel directly from the rows.

| | whisperer replay | computed from the rows |
|---|---|---|
| entered: product detail view | ${replayed.detail} | ${direct.detail} |
| entered: cart | ${replayed.cart} | ${direct.cart} |
| converted: purchase | ${replayed.converted} | ${direct.converted} |

${agree ? 'The numbers agree exactly.' : '**The numbers differ.**'} Time in stage from the replay: median
${funnel.stages[0].medianMsInStage} ms and p90 ${funnel.stages[0].p90MsInStage} ms in the detail stage before
moving on (the adapter's synthetic 4-hour gaps between a visitor's sessions are part of these).
A journey counts customers (visitors), not sessions, and only purchases after a detail view: of
the 43 sessions with a purchase, those without an earlier detail view are not conversions here.
`;
  process.stdout.write(report);
  if (args.report) fs.writeFileSync(path.resolve(repo, args.report), report);
  process.exit(agree ? 0 : 1);
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
