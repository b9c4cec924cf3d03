// Offline evaluation of a decision log, run by the real binary: `whisperer eval ope --log FILE
// --policy NAME` on NDJSON logs written here in the shape of the server's decision export
// (GET /v1/decisions/export), one logged slot per line.
//
// A log whose three actions were chosen uniformly, in which a0 pays far more: the uniform
// policy's IPW estimate is exactly the mean reward of the evaluated lines, and the greedy and
// Thompson policies learned on the first half find a0. A broken log exits non-zero, naming the
// line and the field on stderr and printing nothing on stdout.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fsp from 'node:fs/promises';
import path from 'node:path';
import { makeTempDir, runCli } from './lib/server.mjs';
import { random } from './lib/random.mjs';

const ACTIONS = ['a0', 'a1', 'a2'];
const PAYS = { a0: 0.6, a1: 0.1, a2: 0.1 };

// A deterministic generator (mulberry32), so the log is the same at every run.

function uniformLog(n, seed) {
  const rand = random(seed);
  const lines = [];
  for (let i = 0; i < n; i++) {
    const action = ACTIONS[Math.floor(rand() * 3)];
    const slot = {
      decisionId: `dec_${i.toString(16).padStart(16, '0')}`,
      at: new Date(Date.UTC(2026, 10, 22, 15, 0, i)).toISOString(),
      decisionPoint: 'home',
      group: 'engine',
      position: 1,
      action,
      candidates: ACTIONS,
      propensity: 1 / 3,
      // Two slots in ten have no reward yet: null or absent, counted as 0.
      context: i % 2 === 0 ? [[12345, 1.0], [678 + (i % 4), 0.5]] : { plan: `p${i % 4}`, visits: i % 7, vip: i % 3 === 0 },
    };
    if (i % 10 === 3) slot.reward = null;
    else if (i % 10 !== 7) slot.reward = rand() < PAYS[action] ? 1 : 0;
    lines.push(JSON.stringify(slot));
  }
  return lines;
}

async function evalOpe(args) {
  return runCli(['eval', 'ope', ...args], { timeoutMs: 120_000 });
}

test('eval ope: uniform, greedy and thompson on a uniformly logged decision log', async (t) => {
  const dir = await makeTempDir(t);
  const log = path.join(dir, 'decisions.ndjson');
  const lines = uniformLog(3000, 7);
  await fsp.writeFile(log, lines.join('\n') + '\n');
  // The mean reward of the evaluated half, missing rewards as 0.
  const evaluated = lines.slice(1500).map((l) => JSON.parse(l));
  const mean = evaluated.reduce((s, l) => s + (l.reward ?? 0), 0) / evaluated.length;

  const results = {};
  for (const policy of ['uniform', 'greedy', 'thompson', 'logged']) {
    const { code, stdout, stderr } = await evalOpe(['--log', log, '--policy', policy, '--bootstrap', '100']);
    assert.equal(code, 0, stderr);
    const r = JSON.parse(stdout);
    assert.equal(r.policy, policy);
    assert.equal(r.log, log);
    assert.equal(r.lines, 3000);
    assert.equal(r.trainLines, 1500);
    assert.equal(r.evaluatedLines, 1500);
    assert.equal(r.rewardModelLines, 1500);
    assert.equal(r.missingRewards, 600);
    assert.ok(Math.abs(r.loggedValue - mean) < 1e-12, `loggedValue ${r.loggedValue} vs ${mean}`);
    for (const k of ['dm', 'ipw', 'snipw', 'dr']) {
      for (const f of ['value', 'low', 'high']) assert.equal(typeof r[k][f], 'number', `${k}.${f}`);
      assert.ok(r[k].low <= r[k].value && r[k].value <= r[k].high, `${policy} ${k} interval`);
    }
    results[policy] = r;
  }
  // The logging policy evaluated as itself: IPW and SNIPW are the mean reward.
  assert.ok(Math.abs(results.uniform.ipw.value - mean) < 1e-12);
  assert.ok(Math.abs(results.uniform.snipw.value - mean) < 1e-12);
  assert.ok(Math.abs(results.logged.ipw.value - mean) < 1e-12);
  // Always a0 is worth 0.6 x 0.8 (a fifth of the rewards are missing), uniform 0.8 x 0.8 / 3.
  assert.ok(Math.abs(results.greedy.ipw.value - 0.48) < 0.06, `greedy ${results.greedy.ipw.value}`);
  assert.ok(results.thompson.ipw.value > results.uniform.ipw.value + 0.15);
  assert.ok(results.thompson.dr.value > results.uniform.dr.value + 0.15);

  // --train 0: the reward model learns from every line, and every line is evaluated.
  const all = await evalOpe(['--log', log, '--policy', 'uniform', '--train', '0', '--bootstrap', '0']);
  assert.equal(all.code, 0, all.stderr);
  const r = JSON.parse(all.stdout);
  assert.equal(r.trainLines, 0);
  assert.equal(r.evaluatedLines, 3000);
  assert.equal(r.rewardModelLines, 3000);
  assert.equal(r.ipw.low, r.ipw.value);
});

test('eval ope: a broken log, an unknown policy and bts without priors are refused', async (t) => {
  const dir = await makeTempDir(t);
  const log = path.join(dir, 'broken.ndjson');
  const lines = uniformLog(20, 3);
  const bad = JSON.parse(lines[11]);
  bad.propensity = 0;
  lines[11] = JSON.stringify(bad);
  await fsp.writeFile(log, lines.join('\n') + '\n');
  let r = await evalOpe(['--log', log, '--policy', 'uniform']);
  assert.notEqual(r.code, 0);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /line 12: propensity must be in \(0, 1\]/);

  lines[11] = '{"position": 1, "action": "a0", "candidates": ["a1"], "propensity": 0.5}';
  await fsp.writeFile(log, lines.join('\n') + '\n');
  r = await evalOpe(['--log', log, '--policy', 'uniform']);
  assert.notEqual(r.code, 0);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /line 12: candidates must include the action 'a0'/);

  const good = path.join(dir, 'good.ndjson');
  await fsp.writeFile(good, uniformLog(20, 3).join('\n'));
  r = await evalOpe(['--log', good, '--policy', 'best']);
  assert.notEqual(r.code, 0);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /unknown policy 'best' \(expected uniform, logged, greedy, thompson or bts\)/);

  r = await evalOpe(['--log', good, '--policy', 'bts']);
  assert.notEqual(r.code, 0);
  assert.match(r.stderr, /--priors/);

  r = await evalOpe(['--log', path.join(dir, 'missing.ndjson'), '--policy', 'uniform']);
  assert.notEqual(r.code, 0);
  assert.equal(r.stdout, '');
  assert.match(r.stderr, /missing\.ndjson/);

  r = await evalOpe(['--policy', 'uniform']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /^whisperer: eval ope needs --log FILE and --policy NAME .* \[bad_usage\]\n$/);
});

test('eval ope: bts with Beta priors on a log whose actions are named by index', async (t) => {
  const dir = await makeTempDir(t);
  const rand = random(11);
  const lines = [];
  for (let i = 0; i < 3000; i++) {
    const action = String(Math.floor(rand() * 3));
    const reward = rand() < (action === '1' ? 0.4 : 0.05) ? 1 : 0;
    lines.push(JSON.stringify({ position: 1, action, candidates: ['0', '1', '2'], propensity: 1 / 3, reward, context: {} }));
  }
  const log = path.join(dir, 'indexed.ndjson');
  await fsp.writeFile(log, lines.join('\n') + '\n');
  const priors = path.join(dir, 'prior_bts.yaml');
  await fsp.writeFile(priors, 'shop:\n  alpha: [5.0, 400.0, 5.0]\n  beta: [995.0, 600.0, 995.0]\n');
  const { code, stdout, stderr } = await evalOpe([
    '--log', log, '--policy', 'bts', '--priors', priors, '--campaign', 'shop',
    '--simulations', '2000', '--train', '0', '--seed', '5',
  ]);
  assert.equal(code, 0, stderr);
  const r = JSON.parse(stdout);
  assert.ok(Math.abs(r.ipw.value - 0.4) < 0.06, `bts ipw ${r.ipw.value}`);

  const other = await evalOpe(['--log', log, '--policy', 'bts', '--priors', priors, '--campaign', 'men']);
  assert.notEqual(other.code, 0);
  assert.match(other.stderr, /no campaign 'men' \(the file has shop\)/);
});
