import { execFileSync, spawn } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../../src/sandbox/server.js';
import { BIN, cleanEnv, closeAfter, tempDir, toSandbox } from '../helpers.js';
import { expectAccountedFor, pdfs, startBin, timesStored } from './attack-helpers.js';

function args(dir: string, server: Sandbox, extra: string[]) {
  return ['upload', dir, '--entity', 'cust-7', ...toSandbox(server), '--json', '--no-journal', ...extra];
}

/** Runs the built binary under `ulimit -n`, reading its events. */
function runWithFileLimit(limit: number, argv: string[], options: { cwd: string; env: Record<string, string> }) {
  const child = spawn('bash', ['-c', `ulimit -n ${limit}; exec "$@"`, 'bash', process.execPath, BIN, ...argv], {
    cwd: options.cwd,
    env: cleanEnv(options.env),
  });
  const events: Array<Record<string, unknown>> = [];
  let stderr = '';
  child.stderr.on('data', (c) => (stderr += c));
  createInterface({ input: child.stdout }).on(
    'line',
    (line) => line.startsWith('{') && events.push(JSON.parse(line) as Record<string, unknown>),
  );
  return new Promise<{ code: number | null; stderr: string; events: typeof events }>((resolve) =>
    child.on('close', (code) => resolve({ code, stderr, events })),
  );
}

describe("the machine's limits", () => {
  it('ulimit -n 40: too few file descriptors is waited out and named, never blamed on a file: every file is stored once', async () => {
    const dir = await pdfs(300);
    const server = closeAfter(await startSandbox({ faults: { latencyMs: 20 } }));
    const run = await runWithFileLimit(40, args(dir, server, []), { cwd: dir, env: { U21_API_KEY: server.apiKey } });
    expect(run.code, run.stderr).toBe(0);
    expect(run.events.filter((e) => e.event === 'failed')).toHaveLength(0);
    expect(run.stderr).not.toMatch(/changed or was removed after the check|cannot read it/);
    // Named: the run fits what it sends at once to the descriptors it has.
    expect(run.events.find((e) => e.event === 'warning')).toMatchObject({
      message: expect.stringMatching(
        /^the limit on open files \(ulimit -n 40\) leaves room for \d+ requests? at once: --concurrency 16 is lowered to \d+/,
      ),
    });
    expectAccountedFor(run.events, 300);
    expect([...timesStored(server).values()]).toEqual(Array(300).fill(1));
  }, 60_000);

  it('a full $TMPDIR under --fit stops the run naming the working folder, as a full journal disk does; the summary adds up', async (context) => {
    const disk = join(await tempDir(), 'disk');
    await mkdir(disk);
    try {
      execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=160k', 'tmpfs', disk], { stdio: 'ignore' });
    } catch {
      return context.skip(); // this machine lets no test mount a small disk
    }
    try {
      // Photos of noise, each too large for --max-file-size: every one is re-encoded into a copy under $TMPDIR.
      const dir = await tempDir();
      for (let i = 0; i < 40; i++) {
        const noise = Buffer.from(Array.from({ length: 160 * 160 * 3 }, (_, j) => (j * 7919 + i * 104729) % 251));
        await sharp(noise, { raw: { width: 160, height: 160, channels: 3 } })
          .jpeg({ quality: 95 })
          .toFile(join(dir, `scan_${String(i).padStart(2, '0')}.jpg`));
      }
      const server = closeAfter(await startSandbox({ faults: { latencyMs: 300 } }));
      const run = startBin(args(dir, server, ['--fit', '--max-file-size', '12000', '--concurrency', '16']), {
        cwd: dir,
        env: { U21_API_KEY: server.apiKey, TMPDIR: disk },
      });
      const ended = await run.done;
      expect(ended.code).toBe(1);
      expect(ended.stderr).toMatch(
        new RegExp(
          `^u21-media: error: cannot write ${disk}/u21-media-\\d+/run-\\w+/sent/\\d+-scan_\\d+\\.jpg \\(ENOSPC: set TMPDIR to a folder with room\\); the run stopped \\([\\d,]+ files? not sent\\)$`,
          'm',
        ),
      );
      expect(ended.stderr).not.toContain('cannot read it');
      expect(run.events.at(-1)).toMatchObject({ stopped: 'write-failed', write_error: { code: 'ENOSPC' } });
      expectAccountedFor(run.events, 40);
      expect(server.stored).toHaveLength(run.events.filter((e) => e.event === 'uploaded').length);
    } finally {
      execFileSync('umount', [disk]);
    }
  }, 60_000);
});
