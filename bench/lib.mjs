// Shared by the benchmark scripts: run the built CLI, time it, read its peak memory.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
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

const noJournal = new Map();
function supportsNoJournal(bin) {
  if (!noJournal.has(bin))
    noJournal.set(
      bin,
      spawnSync(process.execPath, [bin, 'upload', '--help'], { encoding: 'utf8' }).stdout.includes('--no-journal'),
    );
  return noJournal.get(bin);
}

/** `after/before` of one figure for each row that ran on both builds, for a closing line. */
export function beforeAfter(figures, higherIsBetter = true) {
  if (!BEFORE) return '';
  const pairs = Object.keys(figures).filter((name) => figures[`${name} (before)`] !== undefined);
  return pairs
    .map(
      (name) =>
        `${name} ${fmt(higherIsBetter ? figures[name] / figures[`${name} (before)`] : figures[`${name} (before)`] / figures[name], 2)}×`,
    )
    .join(', ');
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
  // A build from before the default journal keeps none without being told, and knows no --no-journal.
  const argv = bin === BEFORE && !supportsNoJournal(bin) ? args.filter((a) => a !== '--no-journal') : args;
  const child = spawn(process.execPath, ['--require', PEAK_RSS, bin, ...argv], {
    cwd: tmpdir(),
    // Any default journal goes to the scratch folder, not the user's state folder.
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      XDG_STATE_HOME: scratch,
      NO_COLOR: '1',
      PEAK_RSS_FILE: rssFile,
      ...env,
    },
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
  const child = spawn(process.execPath, [join(ROOT, 'bench', 'server.mjs'), JSON.stringify(options)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  const url = await new Promise((resolve) => lines.once('line', resolve));
  return {
    url,
    stop: () =>
      new Promise((resolve) => {
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

const JPEG_START = Buffer.from('ffd8ffe000104a46494600', 'hex');
const JPEG_END = Buffer.from('ffd9', 'hex');
/** `body` between a JPEG's start (FF D8 FF E0, JFIF) and end (FF D9): what the content check takes for a whole JPEG. */
export const jpegShaped = (body) => Buffer.concat([JPEG_START, Buffer.from(body), JPEG_END]);
/** `size` bytes, random between a JPEG's start and end. */
const randomJpeg = (size) => jpegShaped(randomBytes(size - JPEG_START.length - JPEG_END.length));

/**
 * Marks a folder of generated .jpg files complete. Named anew when what they hold changed: files
 * that are not JPEG-shaped (made before the content check refused them) are generated again.
 */
export const JPEGS_DONE = 'done-jpeg-shaped';

/**
 * A tree of `folders` folders (SCALE_FOLDERS, else 3,000) of `perFolder` files (SCALE_PER_FOLDER,
 * else 100) under .bench/<name>-<folders>x<per folder>, generated once: `contentOf(n, i)` gives
 * the body of file i of folder-major number n, a JPEG-shaped scan_*.jpg. Returns its folder and file count.
 */
export function generateTree(
  name,
  contentOf,
  { folders = Number(process.env.SCALE_FOLDERS ?? 3000), perFolder = Number(process.env.SCALE_PER_FOLDER ?? 100) } = {},
) {
  const total = folders * perFolder;
  const dir = join(ROOT, '.bench', `${name}-${folders}x${perFolder}`);
  if (!existsSync(join(dir, JPEGS_DONE))) {
    console.log(`generating ${total} files in ${folders} folders under ${dir} …`);
    for (let f = 0; f < folders; f++) {
      const folder = join(dir, `cust-${String(f).padStart(5, '0')}`);
      mkdirSync(folder, { recursive: true });
      for (let i = 0; i < perFolder; i++)
        writeFileSync(
          join(folder, `scan_${String(i).padStart(3, '0')}.jpg`),
          jpegShaped(contentOf(f * perFolder + i, i)),
        );
    }
    writeFileSync(join(dir, JPEGS_DONE), '');
  }
  return { dir, folders, total };
}

/** `count` PDFs of `bytes` bytes each (a header, random bytes, %%EOF) named doc_*.pdf in `dir`, generated once; returns the folder and their paths. */
export function documents(dir, count, bytes) {
  if (!existsSync(join(dir, 'done'))) {
    mkdirSync(dir, { recursive: true });
    const head = Buffer.from('%PDF-1.4\n');
    const tail = Buffer.from('\n%%EOF\n');
    for (let i = 0; i < count; i++)
      writeFileSync(
        join(dir, `doc_${String(i).padStart(4, '0')}.pdf`),
        Buffer.concat([head, randomBytes(bytes - head.length - tail.length), tail]),
      );
    writeFileSync(join(dir, 'done'), '');
  }
  return {
    dir,
    paths: readdirSync(dir)
      .filter((n) => n.endsWith('.pdf'))
      .map((n) => join(dir, n)),
  };
}

/** `count` files of `bytes` bytes, random between a JPEG's start and end, named scan_*.jpg in `dir`, generated once; returns the folder and their paths. */
export function randomFiles(dir, count, bytes) {
  if (!existsSync(join(dir, JPEGS_DONE))) {
    mkdirSync(dir, { recursive: true });
    for (let i = 0; i < count; i++)
      writeFileSync(join(dir, `scan_${String(i).padStart(6, '0')}.jpg`), randomJpeg(bytes));
    writeFileSync(join(dir, JPEGS_DONE), '');
  }
  return {
    dir,
    paths: readdirSync(dir)
      .filter((n) => n.endsWith('.jpg'))
      .map((n) => join(dir, n)),
  };
}
