#!/usr/bin/env node
// Sessions and persona discovery on a real clickstream: the UCI e-shop clothing 2008 data
// (../shared/data/eshop_clothing_2008, see its README: 165,474 clicks in 24,026 sessions of an
// online shop, no purchases) is turned into Segment track events, loaded with `whisperer import`
// (profiles and server-side sessions on, the default), and `whisperer personas discover`
// clusters the resulting profiles. The script checks that whisperer counted every click and
// sessionized them into exactly the file's sessions (exit code 1 when not), and shows what the
// clustering found.
//
// Usage: node bench/eshop_personas.mjs [--data DIR] [--bin PATH] [--report FILE]
//   --data    the datasets folder (default $WHISPERER_DATA or ../shared/data)
//   --bin     the whisperer binary (default build/whisperer)
//   --report  also write the result as Markdown to FILE (docs/eshop_personas.md)
//
// The adapter: one track event per row (a click on a product photo). The file has no visitor
// ids, so a session is a visitor: anonymousId `s<session ID>`. The event is named after the
// shop's main category of the page (1 trousers, 2 skirts, 3 blouses, 4 sale: "Trousers Viewed",
// "Skirts Viewed", "Blouses Viewed", "Sale Viewed"), as a shop that instruments a view event per
// category would, so that the category mix is a profile feature (profile.counts.*); the
// properties carry the rest of the row (product code, colour, photo location and angle, price,
// whether the price is above its category's average, page number). The file has no time of
// day: a session's clicks are placed 30 seconds apart from midnight UTC of its date, in `order`.
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { args, bin, dataDir, repo } from './args.mjs';
const gz = path.join(dataDir, 'eshop_clothing_2008', 'e-shop_clothing_2008.csv.gz');

const CATEGORY = { 1: 'Trousers', 2: 'Skirts', 3: 'Blouses', 4: 'Sale' };
const CLICK_GAP_MS = 30_000;

// --- The adapter: rows -> events.
const lines = zlib.gunzipSync(fs.readFileSync(gz)).toString('latin1').split(/\r?\n/).filter((l) => l.length > 0);
const header = lines.shift().split(';');
const col = Object.fromEntries(header.map((h, i) => [h, i]));
const sessions = new Set();
const events = lines.map((line) => {
  const f = line.split(';');
  const session = f[col['session ID']];
  sessions.add(session);
  const day = Date.UTC(Number(f[col.year]), Number(f[col.month]) - 1, Number(f[col.day]));
  const order = Number(f[col.order]);
  const category = CATEGORY[f[col['page 1 (main category)']]];
  return JSON.stringify({
    type: 'track',
    event: `${category} Viewed`,
    anonymousId: `s${session}`,
    messageId: `eshop-${session}-${order}`,
    timestamp: new Date(day + (order - 1) * CLICK_GAP_MS).toISOString(),
    properties: {
      category: category.toLowerCase(),
      product: f[col['page 2 (clothing model)']],
      colour: Number(f[col.colour]),
      location: Number(f[col.location]),
      photo: Number(f[col['model photography']]) === 1 ? 'en face' : 'profile',
      price: Number(f[col.price]),
      priceAboveAverage: Number(f[col['price 2']]) === 1,
      page: Number(f[col.page]),
    },
  });
});

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'whisperer-eshop-'));
try {
  const ndjson = path.join(tmp, 'eshop.ndjson');
  fs.writeFileSync(ndjson, events.join('\n') + '\n');
  const data = path.join(tmp, 'data');
  const env = { ...process.env, WHISPERER_LOG_LEVEL: 'warn' };
  execFileSync(bin, ['import', ndjson, '--data', data], { env, stdio: ['ignore', 'ignore', 'inherit'] });
  const run = (extra) =>
    execFileSync(bin, ['personas', 'discover', '--data', data, ...extra], {
      env,
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'ignore'],
      maxBuffer: 64 << 20,
    });
  const found = JSON.parse(run(['--json']));
  const text = run([]);
  const mean = (name) => found.means[found.features.indexOf(name)];
  const counted = {
    profiles: found.profiles,
    events: Math.round(mean('profile.events') * found.profiles),
    sessions: Math.round(mean('profile.sessions.count') * found.profiles),
  };
  const agree =
    counted.profiles === sessions.size && counted.events === events.length && counted.sessions === sessions.size;
  const report = `# Sessions and personas on a real clickstream: e-shop clothing 2008

Written by \`node bench/eshop_personas.mjs --report docs/eshop_personas.md\`; not edited by hand.

The UCI e-shop clothing 2008 clickstream (\`eshop_clothing_2008\`: ${lines.length} clicks in
${sessions.size} sessions, April to August 2008, no purchases) becomes ${events.length} track
events, one per click, named by the page's main category (the adapter is described in
\`bench/eshop_personas.mjs\`), loaded with \`whisperer import\` with profiles and server-side
sessions on.

| | whisperer | the file |
|---|---|---|
| profiles (visitors) | ${counted.profiles} | ${sessions.size} session ids |
| events folded into profiles | ${counted.events} | ${events.length} clicks |
| sessions (30-minute inactivity timeout) | ${counted.sessions} | ${sessions.size} |

${agree ? 'Every click was counted and the sessions agree exactly.' : '**The counts differ.**'}
(The file has no time of day, so the adapter places a session's clicks 30 seconds apart and no
session can split; the check is that nothing is lost or merged across visitors.)

## \`whisperer personas discover\`

k-means on the standardized log(1 + x) of each profile's features, k from 2 to 8 chosen by the
mean silhouette (computed on a sample of 2,000 profiles). Features that are the same for every
profile here (one session, no orders, no page views) carry no information and standardize to 0.
For each cluster, the features whose centre is at least half a standard deviation from the
whole's, and a condition that holds for three quarters of the cluster, to start a persona rule:

\`\`\`
${text.trimEnd()}
\`\`\`

What comes out: the silhouette picks k = ${found.k} (${found.silhouette.toFixed(3)}; by k:
${Object.entries(found.silhouetteByK)
  .map(([k, s]) => `${k}: ${s.toFixed(3)}`)
  .join(', ')}). Each cluster by its most distinctive feature:

${found.clusters
  .map((c, i) => {
    const d = c.defining[0];
    const what = d ? `\`${d.feature}\` ${d.mean.toPrecision(3)} against ${d.allMean.toPrecision(3)} overall` : 'close to the whole';
    return `- cluster ${i + 1}, ${c.profiles} profiles (${(100 * c.share).toFixed(1)}%): ${what}`;
  })
  .join('\n')}
`;
  process.stdout.write(report);
  if (args.report) fs.writeFileSync(path.resolve(repo, args.report), report);
  process.exit(agree ? 0 : 1);
} finally {
  fs.rmSync(tmp, { recursive: true, force: true });
}
