// Shared helpers of the end-to-end tests: find the whisperer binary, run `whisperer serve` on a
// temporary data directory, talk HTTP to it, and run the `export` / `import` commands.
//
// Every process and temporary directory made here is cleaned up: by the test's `t.after` hook
// when a test context is passed, and in any case when the test process exits.
import { spawn, execFile } from 'node:child_process';
import fs from 'node:fs';
import fsp from 'node:fs/promises';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

export const E2E_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const REPO_ROOT = path.resolve(E2E_DIR, '../..');
export const SOURCE_BIN = process.env.WHISPERER_BIN
  ? path.resolve(process.env.WHISPERER_BIN)
  : path.resolve(E2E_DIR, '../../build/release/whisperer');

const LISTEN_TIMEOUT_MS = 20_000;
// The binary may be rebuilt while the tests run (it vanishes or is half written for a while).
const BINARY_WAIT_MS = 180_000;

// ---------------------------------------------------------------------------------------------
// Cleanup of everything started here, also when a test fails or the runner stops the process.

const liveProcesses = new Set();
const tempDirs = new Set();

process.on('exit', () => {
  for (const child of liveProcesses) {
    try {
      child.kill('SIGKILL');
    } catch {}
  }
  for (const dir of tempDirs) {
    try {
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {}
  }
});

/** A new empty directory under os.tmpdir(), removed after the test (or at exit at the latest). */
export async function makeTempDir(t, prefix = 'whisperer-e2e-') {
  const dir = await fsp.mkdtemp(path.join(os.tmpdir(), prefix));
  tempDirs.add(dir);
  if (t) t.after(() => removeTempDir(dir));
  return dir;
}

export async function removeTempDir(dir) {
  await fsp.rm(dir, { recursive: true, force: true });
  tempDirs.delete(dir);
}

// ---------------------------------------------------------------------------------------------
// The binary. A private copy is taken once per test process so that a rebuild under the tests
// (which rewrites build/release/whisperer in place) cannot swap or truncate it between the
// steps of one test.

let binaryPromise;

export function binary() {
  binaryPromise ??= snapshotBinary();
  return binaryPromise;
}

async function snapshotBinary() {
  const deadline = Date.now() + BINARY_WAIT_MS;
  let lastProblem = 'not checked';
  while (Date.now() < deadline) {
    try {
      const before = await fsp.stat(SOURCE_BIN);
      if (!before.isFile() || before.size === 0) throw new Error('not a regular non-empty file');
      // A linker writes the file over some time: take it only once it has been still for 2 s.
      if (Date.now() - before.mtimeMs < 2000) throw new Error('being written');
      const dir = await makeTempDir(null, 'whisperer-e2e-bin-');
      const copy = path.join(dir, 'whisperer');
      await fsp.copyFile(SOURCE_BIN, copy);
      await fsp.chmod(copy, 0o755);
      const after = await fsp.stat(SOURCE_BIN);
      if (after.size !== before.size || after.mtimeMs !== before.mtimeMs) {
        await removeTempDir(dir);
        throw new Error('changed while copied');
      }
      return copy;
    } catch (err) {
      lastProblem = err.code ?? err.message;
    }
    await sleep(1000);
  }
  throw new Error(
    `whisperer binary ${SOURCE_BIN} is not usable (${lastProblem}); build it or set WHISPERER_BIN`,
  );
}

/** The environment for a child: ours minus WHISPERER_* (so a developer's shell cannot leak in). */
function childEnv(extra = {}, tmpdir) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!k.startsWith('WHISPERER_')) env[k] = v;
  }
  // Scratch directories of `export` (RocksDB secondary instances) go with the test's files.
  if (tmpdir) env.TMPDIR = tmpdir;
  return { ...env, ...extra };
}

// ---------------------------------------------------------------------------------------------
// `whisperer serve`

/**
 * Starts `whisperer serve --data DIR --port 0 --host 127.0.0.1` and waits for it to listen.
 *
 * options: dataDir (default: a new temp dir), env (extra variables), config (a YAML string,
 * written to a file and passed with --config), args (extra arguments), t (test context: the
 * server is killed and its temp dir removed after the test).
 */
export async function startServer(options = {}) {
  const { t, env = {}, config, args = [] } = options;
  const bin = await binary();
  const dataDir = options.dataDir ?? path.join(await makeTempDir(t), 'data');
  const argv = ['serve', '--data', dataDir, '--port', '0', '--host', '127.0.0.1', ...args];
  if (config !== undefined) {
    const configFile = path.join(await makeTempDir(t, 'whisperer-e2e-config-'), 'whisperer.yaml');
    await fsp.writeFile(configFile, config);
    argv.push('--config', configFile);
  }
  const child = spawn(bin, argv, {
    env: childEnv(env, path.dirname(bin)),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  liveProcesses.add(child);

  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  const exited = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      liveProcesses.delete(child);
      resolve({ code, signal });
    });
  });
  const spawnError = new Promise((_, reject) => child.on('error', reject));
  spawnError.catch(() => {});

  const ready = new Promise((resolve, reject) => {
    const check = () => {
      const lines = stdout.split('\n');
      const listening = lines.find((l) => l.startsWith('whisperer listening on '));
      // The server prints its banner (listening line, workspaces and keys, a `try:` line) and
      // flushes once after the last line.
      if (listening && lines.some((l) => l.startsWith('try:'))) resolve(parseBanner(stdout));
    };
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      check();
    });
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
    });
    exited.then(({ code, signal }) =>
      reject(
        new Error(
          `whisperer serve exited (code ${code}, signal ${signal}) before listening\n` +
            `stdout:\n${stdout}\nstderr:\n${stderr}`,
        ),
      ),
    );
  });
  let banner;
  try {
    banner = await withTimeout(Promise.race([ready, spawnError]), LISTEN_TIMEOUT_MS, () => {
      throw new Error(
        `whisperer serve did not print "listening on" within ${LISTEN_TIMEOUT_MS} ms\n` +
          `stdout:\n${stdout}\nstderr:\n${stderr}`,
      );
    });
  } catch (err) {
    child.kill('SIGKILL');
    await exited;
    throw err;
  }

  const server = {
    child,
    pid: child.pid,
    dataDir,
    port: banner.port,
    url: `http://127.0.0.1:${banner.port}`,
    workspaces: banner.workspaces,
    writeKey:
      banner.workspaces.default?.writeKeys[0] ?? Object.values(banner.workspaces)[0].writeKeys[0],
    adminKey:
      banner.workspaces.default?.adminKeys[0] ?? Object.values(banner.workspaces)[0].adminKeys[0],
    exited,
    get stdout() {
      return stdout;
    },
    get stderr() {
      return stderr;
    },
    get running() {
      return child.exitCode === null && child.signalCode === null;
    },
    /** SIGTERM, then waits for the exit; returns the exit code (null when killed by a signal). */
    async stop(timeoutMs = 20_000) {
      if (server.running) child.kill('SIGTERM');
      const result = await withTimeout(exited, timeoutMs, () => null);
      if (result === null) {
        child.kill('SIGKILL');
        await exited;
        throw new Error(`whisperer did not exit within ${timeoutMs} ms of SIGTERM\n${stderr}`);
      }
      return result.code;
    },
    /** kill -9; resolves once the process is gone. */
    async kill9() {
      if (server.running) child.kill('SIGKILL');
      return exited;
    },
    /** An HTTP request to this server (see request()). */
    request(pathname, opts = {}) {
      return request(server.port, pathname, opts);
    },
    basic(key = server.writeKey) {
      return basicAuth(key);
    },
    bearer(key = server.adminKey) {
      return `Bearer ${key}`;
    },
  };
  if (t) t.after(() => server.kill9());
  return server;
}

/** `promise`, or what `onTimeout()` returns (or throws) after `ms`; the timer is cleared. */
export async function withTimeout(promise, ms, onTimeout) {
  let timer;
  const timeout = new Promise((resolve, reject) => {
    timer = setTimeout(() => {
      try {
        resolve(onTimeout());
      } catch (err) {
        reject(err);
      }
    }, ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

function parseBanner(text) {
  const workspaces = {};
  let port;
  let current;
  for (const line of text.split('\n')) {
    let m;
    if ((m = /^whisperer listening on http:\/\/[^:]+:(\d+) /.exec(line))) {
      port = Number(m[1]);
    } else if ((m = /^workspace (\S+)$/.exec(line))) {
      current = workspaces[m[1]] = { writeKeys: [], adminKeys: [] };
    } else if ((m = /^ {2}write key: (\S+)$/.exec(line)) && current) {
      current.writeKeys.push(m[1]);
    } else if ((m = /^ {2}admin key: (\S+)$/.exec(line)) && current) {
      current.adminKeys.push(m[1]);
    }
  }
  if (!port) throw new Error(`no port in the banner:\n${text}`);
  return { port, workspaces };
}

// ---------------------------------------------------------------------------------------------
// HTTP

export function basicAuth(key) {
  return `Basic ${Buffer.from(`${key}:`).toString('base64')}`;
}

/**
 * One HTTP request to 127.0.0.1:port with node:http. `body` may be an object (sent as JSON), a
 * string or a Buffer. Resolves to { status, headers, text, json } (json: parsed body or
 * undefined). opts: method (default POST with a body, else GET), headers, body, agent (default:
 * a fresh connection per request), timeoutMs.
 */
export function request(port, pathname, opts = {}) {
  const { headers = {}, agent = false, timeoutMs = 30_000 } = opts;
  let body = opts.body;
  if (body !== undefined && !Buffer.isBuffer(body) && typeof body !== 'string') {
    body = JSON.stringify(body);
  }
  const method = opts.method ?? (body === undefined ? 'GET' : 'POST');
  const hdrs = { ...headers };
  if (body !== undefined) {
    hdrs['Content-Length'] = Buffer.byteLength(body);
    if (!Object.keys(hdrs).some((k) => k.toLowerCase() === 'content-type')) {
      hdrs['Content-Type'] = 'application/json';
    }
  }
  return new Promise((resolve, reject) => {
    const req = http.request(
      { host: '127.0.0.1', port, path: pathname, method, headers: hdrs, agent },
      (res) => {
        const chunks = [];
        res.on('data', (c) => chunks.push(c));
        res.on('error', reject);
        res.on('end', () => {
          const text = Buffer.concat(chunks).toString('utf8');
          let json;
          try {
            json = JSON.parse(text);
          } catch {}
          resolve({ status: res.statusCode, headers: res.headers, text, json });
        });
      },
    );
    req.setTimeout(timeoutMs, () => req.destroy(new Error(`${method} ${pathname} timed out`)));
    req.on('error', reject);
    req.end(body);
  });
}

// ---------------------------------------------------------------------------------------------
// The other commands

/** Runs `whisperer ARGS`; resolves to { code, stdout, stderr } (never rejects on exit codes). */
export async function runCli(args, { env = {}, timeoutMs = 60_000, stdoutTo, closedPipe } = {}) {
  const bin = await binary();
  // stdoutTo: a file the command's standard output goes to (through sh) instead of `stdout`.
  // closedPipe: its output goes to a reader that stops after one byte (`| head -c 1`); the code
  // is the command's.
  const [file, argv] = stdoutTo
    ? ['sh', ['-c', 'exec "$0" "$@" >"$E2E_STDOUT"', bin, ...args]]
    : closedPipe
      ? ['bash', ['-c', '"$0" "$@" | head -c 1 >/dev/null; exit "${PIPESTATUS[0]}"', bin, ...args]]
      : [bin, args];
  return new Promise((resolve, reject) => {
    execFile(
      file,
      argv,
      {
        env: { ...childEnv(env, path.dirname(bin)), ...(stdoutTo ? { E2E_STDOUT: stdoutTo } : {}) },
        maxBuffer: 512 * 1024 * 1024,
        timeout: timeoutMs,
        killSignal: 'SIGKILL',
      },
      (err, stdout, stderr) => {
        if (err && typeof err.code !== 'number') {
          reject(new Error(`whisperer ${args.join(' ')} failed: ${err.message}\n${stderr}`));
          return;
        }
        resolve({ code: err ? err.code : 0, stdout, stderr });
      },
    );
  });
}

/**
 * `whisperer export --data DIR [--workspace W]`: the stored events, parsed, in log order.
 * Works while a server runs on DIR (it opens the data read-only as a follower).
 */
export async function exportEvents(dataDir, { workspace } = {}) {
  const args = ['export', '--data', dataDir];
  if (workspace) args.push('--workspace', workspace);
  const { code, stdout, stderr } = await runCli(args);
  if (code !== 0) throw new Error(`whisperer export exited ${code}: ${stderr}`);
  const lines = stdout.split('\n').filter((l) => l.length > 0);
  const m = /exported (\d+) events/.exec(stderr);
  if (!m || Number(m[1]) !== lines.length) {
    throw new Error(`export printed ${lines.length} lines but reported: ${stderr}`);
  }
  return lines.map((l) => JSON.parse(l));
}

/** messageId -> how many times it occurs in `events`. */
export function countByMessageId(events) {
  const counts = new Map();
  for (const e of events) counts.set(e.messageId, (counts.get(e.messageId) ?? 0) + 1);
  return counts;
}

/** The messageIds that occur more than once. */
export function duplicatedIds(events) {
  return [...countByMessageId(events)].filter(([, n]) => n > 1).map(([id]) => id);
}

/** The repository's commented example config, as the tests that start a server with it use it. */
export async function exampleConfig() {
  return fsp.readFile(path.join(REPO_ROOT, 'whisperer.example.yaml'), 'utf8');
}
