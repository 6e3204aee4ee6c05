import { execFileSync } from 'node:child_process';
import { mkdir, readFile, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../../src/sandbox/server.js';
import { closeAfter, runBin, tempDir, toSandbox } from '../helpers.js';
import { expectAccountedFor, pdfs, startBin, timesStored } from './attack-helpers.js';

const FILES = 200;

function args(dir: string, server: Sandbox, extra: string[]) {
  return ['upload', dir, '--entity', 'cust-7', ...toSandbox(server), '--concurrency', '8', '--json', ...extra];
}

/** Every file stored once or more, and each stored more than once flagged possibly_duplicated in `events`. */
function expectNoSilentDuplicate(server: Sandbox, events: Array<Record<string, unknown>>, files: number) {
  const counts = timesStored(server);
  expect(counts.size).toBe(files);
  const flagged = new Set(
    events.filter((e) => e.event === 'uploaded' && e.possibly_duplicated).map((e) => String(e.path).split('/').at(-1)),
  );
  for (const [name, times] of counts) if (times > 1) expect(flagged, `${name} stored ${times} times`).toContain(name);
}

/** A tmpfs of `kb` KB where this machine lets a test mount one; undefined elsewhere. */
function smallDisk(dir: string, kb: number): { grow: () => void; unmount: () => void } | undefined {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${kb}k`, 'tmpfs', dir], { stdio: 'ignore' });
  } catch {
    return undefined;
  }
  return {
    grow: () => execFileSync('mount', ['-o', 'remount,size=4m', dir]),
    unmount: () => execFileSync('umount', [dir]),
  };
}

describe('two runs on one journal', () => {
  it('started at once: one sends every file, the other is refused naming the journal and the run holding it', async () => {
    const dir = await pdfs(60);
    const journal = join(await tempDir(), 'journal.jsonl');
    const server = closeAfter(await startSandbox({ faults: { latencyMs: 40 } }));
    const env = { U21_API_KEY: server.apiKey };
    const runs = [
      startBin(args(dir, server, ['--journal', journal, '--concurrency', '2']), { cwd: dir, env }),
      startBin(args(dir, server, ['--journal', journal, '--concurrency', '2']), { cwd: dir, env }),
    ];
    const ended = await Promise.all(runs.map((r) => r.done));
    const codes = ended.map((e) => e.code).sort();
    expect(codes).toEqual([0, 2]);
    const refused = ended.findIndex((e) => e.code === 2);
    const holder = runs[1 - refused]!;
    expect(ended[refused]!.stderr).toContain(
      `u21-media: error: --journal: ${journal} is in use by another run (pid ${holder.pid} on this machine, since `,
    );
    expect(runs[refused]!.events.filter((e) => e.event === 'uploaded')).toHaveLength(0);
    expect([...timesStored(server).values()]).toEqual(Array(60).fill(1));
    expectAccountedFor(holder.events, 60);
  }, 60_000);
});

describe('kill -9 and a second Ctrl-C', () => {
  it('after kill -9, --no-resend-unknown skips what was in flight as unknown_outcome: nothing is stored twice', async () => {
    const dir = await pdfs(FILES);
    const journal = join(await tempDir(), 'journal.jsonl');
    const server = closeAfter(await startSandbox({ faults: { latencyMs: 20 } }));
    const env = { U21_API_KEY: server.apiKey };
    const killed = startBin(args(dir, server, ['--journal', journal]), { cwd: dir, env });
    killed.after('uploaded', 40, (child) => child.kill('SIGKILL'));
    expect((await killed.done).signal).toBe('SIGKILL');

    const resumed = await runBin(args(dir, server, ['--journal', journal, '--no-resend-unknown']), { cwd: dir, env });
    expect(resumed.code).toBe(1);
    const unknown = resumed.events.filter((e) => e.event === 'skipped' && e.reason === 'unknown_outcome');
    expect(unknown.length).toBeGreaterThan(0);
    expect(unknown[0]!.message).toMatch(/^an earlier run sent it and got no answer/);
    expect(resumed.stderr).toMatch(
      /sent by an earlier run without an answer (was|were) not sent again \(--no-resend-unknown\)/,
    );
    expect(resumed.events.at(-1)).toMatchObject({ unknown_outcome: unknown.length, possibly_duplicated: 0 });
    expectAccountedFor(resumed.events, FILES);
    expect([...timesStored(server).values()].every((n) => n === 1)).toBe(true);
    // Those left out are exactly the ones the server may or may not have: the rest are all there.
    const stored = new Set(server.stored.map((m) => m.name));
    const missing = Array.from({ length: FILES }, (_, i) => `doc_${String(i).padStart(3, '0')}.pdf`).filter(
      (n) => !stored.has(n),
    );
    for (const name of missing) expect(unknown.map((e) => String(e.path).split('/').at(-1))).toContain(name);
  }, 60_000);

  it('a second Ctrl-C cuts the uploads in flight: the summary still adds up, and a resume flags what was cut', async () => {
    const dir = await pdfs(50);
    const journal = join(await tempDir(), 'journal.jsonl');
    const server = closeAfter(await startSandbox({ faults: { latencyMs: 300 } }));
    const env = { U21_API_KEY: server.apiKey };
    const run = startBin(args(dir, server, ['--journal', journal, '--concurrency', '4']), { cwd: dir, env });
    run.after('uploaded', 4, (child) => {
      child.kill('SIGINT');
      setTimeout(() => child.kill('SIGINT'), 50);
    });
    const ended = await run.done;
    expect(ended.code).toBe(130);
    expectAccountedFor(run.events, 50);
    const summary = run.events.at(-1)!;
    expect(summary).toMatchObject({ stopped: 'interrupted' });
    expect(Number(summary.not_sent)).toBeGreaterThan(0);
    const cut = run.events.filter((e) => e.event === 'failed' && e.error_code === 'interrupted');
    expect(cut.length).toBeGreaterThan(0);

    const resumed = await runBin(args(dir, server, ['--journal', journal]), { cwd: dir, env });
    expect(resumed.code).toBe(0);
    expectAccountedFor(resumed.events, 50);
    expectNoSilentDuplicate(server, resumed.events, 50);
  }, 60_000);
});

describe('a journal or report that cannot be written', () => {
  it('a full disk under the journal stops new uploads, says which file and why, exits 1 with a summary; the resume flags what was unjournaled', async () => {
    const dir = await pdfs(FILES);
    const disk = join(await tempDir(), 'disk');
    await mkdir(disk);
    const tmpfs = smallDisk(disk, 16);
    const journal = join(disk, 'journal.jsonl');
    const server = closeAfter(await startSandbox({ faults: { latencyMs: 5 } }));
    const env = { U21_API_KEY: server.apiKey };
    try {
      const full = startBin(args(dir, server, ['--journal', journal]), {
        cwd: dir,
        env,
        ...(!tmpfs && { fileSizeLimitKb: 16 }),
      });
      const ended = await full.done;
      expect(ended.code).toBe(1);
      const code = tmpfs ? 'ENOSPC' : 'EFBIG';
      expect(ended.stderr).toMatch(
        new RegExp(
          `^u21-media: error: cannot write ${journal} \\(${code}: .*\\); the run stopped \\([\\d,]+ files not sent\\)$`,
          'm',
        ),
      );
      expect(ended.stderr.match(/cannot write/g)).toHaveLength(1);
      const summary = full.events.at(-1)!;
      expect(summary).toMatchObject({ stopped: 'write-failed', write_error: { path: journal, code } });
      expectAccountedFor(full.events, FILES);
      expect(server.stored).toHaveLength(full.events.filter((e) => e.event === 'uploaded').length);
      expect(Number(summary.not_sent)).toBeGreaterThan(0);

      // Room again: the resume stores the rest and flags every file whose outcome the journal lost.
      tmpfs?.grow();
      const resumed = await runBin(args(dir, server, ['--journal', journal]), { cwd: dir, env });
      expect(resumed.code, resumed.stderr).toBe(0);
      expectAccountedFor(resumed.events, FILES);
      expectNoSilentDuplicate(server, resumed.events, FILES);
    } finally {
      tmpfs?.unmount();
    }
  }, 60_000);

  it("a full $TMPDIR under the run's working files stops new uploads naming the folder, exits 1, and the summary adds up", async (context) => {
    const files = 10_000;
    const dir = await pdfs(files, (i) => `doc_${String(i).padStart(5, '0')}.pdf`);
    const disk = join(await tempDir(), 'disk');
    await mkdir(disk);
    const tmpfs = smallDisk(disk, 200);
    if (!tmpfs) return context.skip(); // this machine lets no test mount a small disk
    const server = closeAfter(await startSandbox());
    try {
      // Streamed, so that duplicate detection's tables fill the disk while files are being sent.
      const run = startBin(args(dir, server, ['--skip-invalid', '--no-journal']), {
        cwd: dir,
        env: { U21_API_KEY: server.apiKey, TMPDIR: disk },
      });
      const ended = await run.done;
      expect(ended.code).toBe(1);
      expect(ended.stderr).toMatch(
        new RegExp(
          `^u21-media: error: cannot write ${disk}/u21-media-\\d+/run-\\w+/\\d+ \\(ENOSPC: set TMPDIR to a folder with room\\); the run stopped \\([\\d,]+ files not sent\\)$`,
          'm',
        ),
      );
      expect(run.events.at(-1)).toMatchObject({ stopped: 'write-failed', write_error: { code: 'ENOSPC' } });
      expectAccountedFor(run.events, files);
      expect(server.stored).toHaveLength(run.events.filter((e) => e.event === 'uploaded').length);
    } finally {
      tmpfs.unmount();
    }
  }, 60_000);

  it('a report on a device that is always full stops the run with one line naming it', async () => {
    const dir = await pdfs(20);
    const out = await tempDir();
    await symlink('/dev/full', join(out, 'report.csv'));
    const server = closeAfter(await startSandbox());
    const run = await runBin(args(dir, server, ['--report', join(out, 'report.csv')]), {
      cwd: out,
      env: { U21_API_KEY: server.apiKey },
    });
    expect(run.code).toBe(1);
    expect(run.stderr).toMatch(
      /^u21-media: error: cannot write .*report\.csv \(ENOSPC: no space left on device, write\); the run stopped/m,
    );
    expectAccountedFor(run.events, 20);
    expect(server.stored).toHaveLength(run.events.filter((e) => e.event === 'uploaded').length);
  });

  it('--journal /dev/null keeps no record and does not crash', async () => {
    const dir = await pdfs(20);
    const server = closeAfter(await startSandbox());
    const run = await runBin(args(dir, server, ['--journal', '/dev/null']), {
      cwd: dir,
      env: { U21_API_KEY: server.apiKey },
    });
    expect(run.code, run.stderr).toBe(0);
    expect(run.events.at(-1)).toMatchObject({ uploaded: 20 });
    expect([...timesStored(server).values()]).toEqual(Array(20).fill(1));
    expect(await readFile('/dev/null', 'utf8')).toBe('');
  });
});
