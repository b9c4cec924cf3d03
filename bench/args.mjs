// What the bench scripts on real data share: the repository root and their command line,
// `--name value` pairs, with the datasets folder (`--data`, else $WHISPERER_DATA, else
// ../shared/data) and the whisperer binary (`--bin`, default build/whisperer) resolved.
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
export const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []),
);
export const dataDir = args.data ?? process.env.WHISPERER_DATA ?? path.resolve(repo, '../shared/data');
export const bin = path.resolve(repo, args.bin ?? 'build/whisperer');
