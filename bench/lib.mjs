// Shared by the benchmark scripts: run the built CLI, time it, read its peak memory.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const BIN = join(ROOT, 'bin', 'u21-media.js');
const PEAK_RSS = join(ROOT, 'bench', 'peak-rss.cjs');

// BENCH_BEFORE=<another checkout, built>: its CLI runs beside this one, row by row, in the same run.
const BEFORE = process.env.BENCH_BEFORE ? join(resolve(process.env.BENCH_BEFORE), 'bin', 'u21-media.js') : undefined;
/** The builds each u21-media row runs: [name suffix, CLI], this one and then any BENCH_BEFORE one. */
export const BUILDS = [['', BIN], ...(BEFORE ? [[' (before)', BEFORE]] : [])];

/** `after/before` of one figure for each row that ran on both builds, for a closing line. */
export function beforeAfter(figures, higherIsBetter = true) {
  if (!BEFORE) return '';
  const pairs = Object.keys(figures).filter((name) => figures[`${name} (before)`] !== undefined);
  return pairs.map((name) => `${name} ${fmt(higherIsBetter ? figures[name] / figures[`${name} (before)`] : figures[`${name} (before)`] / figures[name], 2)}×`).join(', ');
}

/**
 * Runs the CLI with --json, discarding its events but noting when the first one of `firstEvent`
 * came. Returns wall time, time to that first event, the summary and peak RSS in MB.
 */
export async function runCli(args, { env = {}, firstEvent = 'uploaded', bin = BIN } = {}) {
  const scratch = mkdtempSync(join(tmpdir(), 'u21-bench-'));
  const rssFile = join(scratch, 'rss');
  const started = performance.now();
  // From a neutral folder: the data lives under .bench/, which a run from the repository would treat as a dot-folder.
  const child = spawn(process.execPath, ['--require', PEAK_RSS, bin, ...args], {
    cwd: tmpdir(),
    env: { PATH: process.env.PATH, HOME: process.env.HOME, NO_COLOR: '1', PEAK_RSS_FILE: rssFile, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let first;
  let summary;
  let stderr = '';
  child.stderr.on('data', (c) => (stderr += c).length > 20_000 && (stderr = stderr.slice(-10_000)));
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (first === undefined && line.includes(`"event":"${firstEvent}"`)) first = performance.now() - started;
    if (line.startsWith('{"event":"summary"')) summary = JSON.parse(line);
  });
  const code = await new Promise((resolve) => child.on('close', resolve));
  const wall = performance.now() - started;
  const peakRssMb = Number(readFileSync(rssFile, 'utf8')) / 1024;
  rmSync(scratch, { recursive: true, force: true });
  if (code !== 0) throw new Error(`u21-media exited ${code}: ${stderr.slice(-2000)}`);
  return { wallMs: wall, firstMs: first, summary, peakRssMb };
}

/** Starts bench/server.mjs with these sandbox options; `stop()` resolves with the answers it gave. */
export async function startServer(options) {
  const child = spawn(process.execPath, [join(ROOT, 'bench', 'server.mjs'), JSON.stringify(options)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  const url = await new Promise((resolve) => lines.once('line', resolve));
  return {
    url,
    stop: () => new Promise((resolve) => {
      lines.once('line', (line) => resolve(JSON.parse(line)));
      child.kill('SIGTERM');
    }),
  };
}

export const fmt = (n, digits = 1) => (n === undefined ? '-' : n.toFixed(digits));

/** Prints rows as an aligned table. */
export function table(rows) {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  for (const row of rows) console.log(row.map((cell, i) => String(cell).padEnd(widths[i])).join('  '));
}
