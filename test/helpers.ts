import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync } from 'node:fs';
import { cp, mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { PassThrough } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterEach } from 'vitest';
import { run } from '../src/cli/cli.js';
import { plan, type PlanEvent, type PlanOptions } from '../src/index.js';
import { Scratch } from '../src/core/disk/scratch.js';
import type { Sandbox } from '../src/sandbox/server.js';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
export const FIXTURES = join(ROOT, 'fixtures');
export const BIN = join(ROOT, 'bin', 'u21-media.js');

const cleanups: Array<() => Promise<void>> = [];
afterEach(async () => {
  await Promise.all(cleanups.splice(0).map((fn) => fn()));
});

/** A fresh temporary folder, removed after the test. */
export async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'u21-media-test-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A run's working files, removed after the test. */
export async function scratch(): Promise<Scratch> {
  const made = await Scratch.create();
  cleanups.push(() => made.remove());
  return made;
}

/** A temporary copy of fixtures/, so a test may add broken files beside them. */
export async function fixtureCopy(): Promise<string> {
  const dir = await tempDir();
  await cp(FIXTURES, join(dir, 'kyc'), { recursive: true });
  return join(dir, 'kyc');
}

/** Registers something to close after the test (a sandbox, say). */
export function closeAfter<T extends { close(): Promise<void> }>(thing: T): T {
  cleanups.push(() => thing.close());
  return thing;
}

/** How each kind with a signature opens and ends, for the smallest file the content check passes. */
const VALID_FRAME: Record<string, [start: Buffer, end: Buffer]> = {
  jpg: [Buffer.from('ffd8ffe0', 'hex'), Buffer.from('ffd9', 'hex')],
  png: [Buffer.from('89504e470d0a1a0a', 'hex'), Buffer.from('0000000049454e44ae426082', 'hex')],
  gif: [Buffer.from('GIF89a'), Buffer.from(';')],
  tif: [Buffer.from('49492a00', 'hex'), Buffer.alloc(0)],
  pdf: [Buffer.from('%PDF-1.4\n'), Buffer.from('\n%%EOF\n')],
};
VALID_FRAME.jpeg = VALID_FRAME.jpg!;
VALID_FRAME.tiff = VALID_FRAME.tif!;

/**
 * Content a file named `name` passes the content check with: `body` framed by its kind's
 * signature and end marker (a .jpg opens with FF D8 FF and ends with FF D9), so each test file
 * can still hold bytes of its own. Other extensions get `body` as it is.
 */
export function validContent(name: string, body: string | Buffer = ''): Buffer {
  const frame = VALID_FRAME[name.slice(name.lastIndexOf('.') + 1).toLowerCase()];
  const bytes = Buffer.from(body);
  return frame ? Buffer.concat([frame[0], bytes, frame[1]]) : bytes;
}

/** The same, exactly `size` bytes long: the body is `fill` repeated (a test that asserts sizes keeps its sizes). */
export function validContentOfSize(name: string, size: number, fill: number): Buffer {
  const overhead = validContent(name).length;
  return validContent(name, Buffer.alloc(size - overhead, fill));
}

export const sha256 = async (path: string) =>
  createHash('sha256')
    .update(await readFile(path))
    .digest('hex');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  /** stdout parsed as JSON lines (only meaningful with --json). */
  events: Array<Record<string, unknown>>;
}

/** An environment with nothing from the developer's own shell. */
export function cleanEnv(extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  // A reader thread count forced for the suite reaches the built binary too.
  const threads = process.env.U21_READER_THREADS ? { U21_READER_THREADS: process.env.U21_READER_THREADS } : {};
  // A state folder of its own, so no run meets the default journal of another (or the user's).
  const state = { XDG_STATE_HOME: mkdtempSync(join(tmpdir(), 'u21-state-')) };
  // HOME and TMPDIR are the suite's own (test/global-setup.ts): a run's working files stay in its space.
  return {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    TMPDIR: process.env.TMPDIR,
    NO_COLOR: '1',
    ...state,
    ...threads,
    ...extra,
  };
}

const parseEvents = (stdout: string) =>
  stdout
    .split('\n')
    .filter((line) => line.startsWith('{'))
    .map((line) => JSON.parse(line) as Record<string, unknown>);

/** Runs the CLI in this process (fast), with its own streams, env and working folder. */
export async function runCli(
  args: string[],
  options: { cwd: string; env?: Record<string, string> },
): Promise<CliResult> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (c) => (out += c));
  stderr.on('data', (c) => (err += c));
  const code = await run(args, { stdout, stderr, env: cleanEnv(options.env), cwd: options.cwd });
  return { code, stdout: out, stderr: err, events: parseEvents(out) };
}

/** A run's --json events of one kind. */
export const of = (events: Array<Record<string, unknown>>, kind: string) => events.filter((e) => e.event === kind);

/** The flags that send to the sandbox `server` without pacing: its org, its URL, --rate 0. */
export const toSandbox = (server: Pick<Sandbox, 'org' | 'url'>) => [
  '--org',
  server.org,
  '--base-url',
  server.url,
  '--rate',
  '0',
];

/** A resumable upload of `source` to cust-7 on `server`, journalled in `journal`, `concurrency` at a time, with --json. */
export const journalledUpload = (source: string, server: Sandbox, journal: string, concurrency: number) => [
  'upload',
  source,
  '--entity',
  'cust-7',
  ...toSandbox(server),
  '--journal',
  journal,
  '--concurrency',
  String(concurrency),
  '--json',
];

/** Spawns the built bin/u21-media.js, as a user or a CI job would. */
export function runBin(args: string[], options: { cwd: string; env?: Record<string, string> }): Promise<CliResult> {
  if (!existsSync(join(ROOT, 'dist', 'cli', 'main.js')))
    throw new Error('dist/ is missing: run `npm run build` (npm test does it)');
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { cwd: options.cwd, env: cleanEnv(options.env) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr += c));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr, events: parseEvents(stdout) }));
  });
}

/** Starts an upload and stops it with `signal` once `after` files were reported uploaded. */
export function interruptedRun(
  args: string[],
  apiKey: string,
  signal: NodeJS.Signals,
  after: number,
  env: Record<string, string> = {},
) {
  const child = spawn(process.execPath, [BIN, ...args], { env: cleanEnv({ U21_API_KEY: apiKey, ...env }) });
  let stderr = '';
  child.stderr.on('data', (c) => (stderr += c));
  const events: Array<Record<string, unknown>> = [];
  let uploaded = 0;
  createInterface({ input: child.stdout }).on('line', (line) => {
    const event = JSON.parse(line) as Record<string, unknown>;
    events.push(event);
    if (event.event === 'uploaded' && ++uploaded === after) child.kill(signal);
  });
  return new Promise<{ code: number | null; signal: NodeJS.Signals | null; events: typeof events; stderr: string }>(
    (resolve) => {
      child.on('close', (code, killedBy) => resolve({ code, signal: killedBy, events, stderr }));
    },
  );
}

/** A dry run's events by kind; invalid inputs come back as `invalid` rather than thrown. */
export async function planned(options: PlanOptions) {
  const events: PlanEvent[] = [];
  const summary = await plan({ ...options, skipInvalid: true, onEvent: (e) => events.push(e) });
  const of = <K extends PlanEvent['event']>(kind: K) =>
    events.filter((e): e is Extract<PlanEvent, { event: K }> => e.event === kind);
  const skipped = of('skipped');
  return {
    summary,
    files: of('planned'),
    skipped: skipped.filter((e) => e.reason !== 'invalid'),
    invalid: skipped.filter((e) => e.reason === 'invalid').map((e) => ({ path: e.path, message: e.message })),
  };
}

/**
 * Starts `u21-media sandbox` (the built binary, or `command` such as an installed copy) and
 * resolves once it listens, with its base URL, its banner so far and its request log.
 */
export async function startSandboxCommand(
  args: string[],
  options: { command?: string; cwd?: string; env?: Record<string, string> } = {},
) {
  const [file, before] = options.command ? [options.command, []] : [process.execPath, [BIN]];
  const child = spawn(file, [...before, 'sandbox', '--port', '0', ...args], {
    cwd: options.cwd ?? ROOT,
    env: cleanEnv(options.env),
  });
  let stderr = '';
  const log: string[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => log.push(line));
  const url = await new Promise<string>((resolve, reject) => {
    child.stderr.on('data', (chunk) => {
      stderr += chunk;
      // The whole banner, not only its first line: tests read the commands it suggests.
      const match = /at (http:\/\/\S+)[\s\S]*Ctrl-C/.exec(stderr);
      if (match) resolve(match[1]!);
    });
    child.on('close', () => reject(new Error(stderr)));
  });
  const stop = () => {
    child.kill('SIGINT');
    return new Promise<{ code: number | null; stderr: string }>((resolve) =>
      child.on('close', (code) => resolve({ code, stderr })),
    );
  };
  cleanups.push(async () => {
    if (child.exitCode === null && child.signalCode === null) await stop();
  });
  return { url, log, stop, banner: stderr };
}

/** How often the sandbox stored each name. */
export function timesStored(server: Pick<Sandbox, 'stored'>): Map<string, number> {
  const counts = new Map<string, number>();
  for (const m of server.stored) counts.set(m.name, (counts.get(m.name) ?? 0) + 1);
  return counts;
}
