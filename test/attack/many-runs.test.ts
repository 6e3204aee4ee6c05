import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../../src/sandbox/server.js';
import { closeAfter, tempDir, toSandbox } from '../helpers.js';
import { expectAccountedFor, pdfs, startBin, timesStored } from './attack-helpers.js';

/**
 * Runs a command in a PID namespace of its own, as a container does: as a child of a shell
 * there, after 40 other processes, so that its pid (about 42) is one no other container's
 * process or thread has in its own namespace.
 */
const CONTAINER = [
  'unshare',
  '-pf',
  '--mount-proc',
  'sh',
  '-c',
  'for i in $(seq 40); do /bin/true; done; "$@"; exit $?',
  'sh',
];

/** Whether this machine lets a test make PID namespaces. */
function canMakeContainers(): boolean {
  try {
    execFileSync('unshare', ['-pf', '--mount-proc', 'true'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function args(dir: string, server: Sandbox, extra: string[]) {
  return ['upload', dir, '--entity', 'cust-7', ...toSandbox(server), '--concurrency', '2', '--json', ...extra];
}

describe('runs in containers of one host', () => {
  it('a second run on the same journal from another PID namespace is refused while the first lives: every file stored once', async (context) => {
    if (!canMakeContainers()) return context.skip();
    const dir = await pdfs(20);
    const journal = join(await tempDir(), 'journal.jsonl');
    const server = closeAfter(await startSandbox({ faults: { latencyMs: 100 } }));
    const env = { U21_API_KEY: server.apiKey };
    const first = startBin(args(dir, server, ['--journal', journal]), { cwd: dir, env, prefix: CONTAINER });
    const second = await new Promise<ReturnType<typeof startBin>>((resolve) => {
      first.after('uploaded', 1, () =>
        resolve(startBin(args(dir, server, ['--journal', journal]), { cwd: dir, env, prefix: CONTAINER })),
      );
    });
    const [firstEnd, secondEnd] = await Promise.all([first.done, second.done]);
    expect(firstEnd.code, firstEnd.stderr).toBe(0);
    expect(secondEnd.code).toBe(2);
    // Both have the same pid in their own namespace: the refusal says the holder is in another container.
    expect(secondEnd.stderr).toMatch(
      new RegExp(`--journal: ${journal} is in use by another run \\(pid \\d+ on .+ \\(another container\\), since `),
    );
    expect(second.events.filter((e) => e.event === 'uploaded')).toHaveLength(0);
    expect([...timesStored(server).values()]).toEqual(Array(20).fill(1));
    expectAccountedFor(first.events, 20);
  }, 60_000);

  it("a run in one PID namespace never removes a live run's working folder in a shared $TMPDIR", async (context) => {
    if (!canMakeContainers()) return context.skip();
    const shared = join(await tempDir(), 'tmp');
    await mkdir(shared);
    const server = closeAfter(await startSandbox({ faults: { latencyMs: 100 } }));
    const env = { U21_API_KEY: server.apiKey, TMPDIR: shared };
    const slowDir = await pdfs(20);
    const slow = startBin(args(slowDir, server, ['--no-journal', '--entity', 'slow']), {
      cwd: slowDir,
      env,
      prefix: CONTAINER,
    });
    // Where each run keeps its working folder: the user's folder under $TMPDIR (or, before, $TMPDIR itself).
    const runs = () =>
      ['', `u21-media-${process.getuid!()}`].flatMap((sub) =>
        existsSync(join(shared, sub)) ? readdirSync(join(shared, sub)).map((n) => join(sub, n)) : [],
      );
    const working = (names: string[]) =>
      names.filter(
        (n) => /(^|\/)(u21-media-|run-)\w+(-\w+)?$/.test(n) && !n.endsWith(`u21-media-${process.getuid!()}`),
      );
    const folders = await new Promise<string[]>((resolve) => slow.after('uploaded', 1, () => resolve(working(runs()))));
    expect(folders).toHaveLength(1);
    // Another container's run starts meanwhile, in the same $TMPDIR, as its pid 1 (there is no pid 2 there):
    // it cleans up only what is abandoned.
    const otherDir = await pdfs(3, (i) => `other_${i}.pdf`);
    const other = startBin(args(otherDir, server, ['--no-journal', '--entity', 'other']), {
      cwd: otherDir,
      env,
      prefix: ['unshare', '-pf', '--mount-proc'],
    });
    expect((await other.done).code).toBe(0);
    expect(runs()).toContain(folders[0]);
    const slowEnd = await slow.done;
    expect(slowEnd.code, slowEnd.stderr).toBe(0);
    expect(slow.events.at(-1)).toMatchObject({ uploaded: 20, failed: 0 });
    // Each run removed its own folder, lock and owner file at its end.
    expect(working(runs())).toEqual([]);
    expect(runs().filter((n) => n.includes('.lock'))).toEqual([]);
  }, 60_000);
});
