import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { rmSync, statSync, symlinkSync, utimesSync, writeFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../../src/sandbox/server.js';
import { closeAfter, tempDir, toSandbox } from '../helpers.js';
import { expectAccountedFor, startBin } from './attack-helpers.js';

const FILES = 40;
const pad = (i: number) => String(i).padStart(3, '0');
/** The file swapped: the last, which nothing has read (the check aside) when the first upload is done. */
const LAST = `doc_${pad(FILES - 1)}.pdf`;

/** FILES PDFs of one size, so that duplicate detection hashes each one it meets after the first. */
async function sameSizePdfs(): Promise<string> {
  const dir = await tempDir();
  for (let i = 0; i < FILES; i++)
    await writeFile(join(dir, `doc_${pad(i)}.pdf`), `%PDF-1.4 document ${pad(i)}\n%%EOF\n`);
  return dir;
}

/**
 * Runs the built binary on `dir`, one request at a time against a slow sandbox, and calls
 * `swap` once the first file is stored: after the check, before the swapped file is read to be
 * sent. A run that never ends is killed, so that the test fails rather than hangs.
 */
async function swapAfterCheck(dir: string, server: Sandbox, swap: () => void, extra: string[] = []) {
  const run = startBin(
    [
      'upload',
      dir,
      '--entity',
      'cust-1',
      ...toSandbox(server),
      '--concurrency',
      '1',
      '--no-journal',
      '--json',
      ...extra,
    ],
    { cwd: dir, env: { U21_API_KEY: server.apiKey } },
  );
  run.after('uploaded', 1, () => swap());
  const timer = setTimeout(() => process.kill(run.pid, 'SIGKILL'), 25_000);
  const ended = await run.done;
  clearTimeout(timer);
  return { ...ended, events: run.events };
}

const sha256 = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');

describe('a file swapped between the check and the send: the bytes checked are the bytes sent', () => {
  it('for a link to a secret of the same size outside the folder: the secret is never sent', async () => {
    const dir = await sameSizePdfs();
    const outside = await tempDir();
    const size = statSync(join(dir, LAST)).size;
    const secret = `%PDF-1.4 SECRET${'x'.repeat(size - 22)}\n%%EOF\n`;
    expect(secret.length).toBe(size);
    writeFileSync(join(outside, 'secret.pdf'), secret);
    const server = closeAfter(await startSandbox({ faults: { latencyMs: 100 } }));
    const run = await swapAfterCheck(dir, server, () => {
      rmSync(join(dir, LAST));
      symlinkSync(join(outside, 'secret.pdf'), join(dir, LAST));
    });
    expect(run.code).toBe(1);
    expect(run.events.find((e) => e.event === 'failed')).toMatchObject({
      path: join(dir, LAST),
      error_code: 'file_changed',
      message: expect.stringMatching(/^another file is in its place since the check, so it was not sent/),
    });
    expect(server.stored.map((m) => m.sha256)).not.toContain(sha256(secret));
    expectAccountedFor(run.events, FILES);
  }, 40_000);

  it('written over in place with an HTML page of the same size, its mtime put back: it is never stored', async () => {
    const dir = await sameSizePdfs();
    const server = closeAfter(await startSandbox({ faults: { latencyMs: 100 } }));
    const run = await swapAfterCheck(dir, server, () => {
      const path = join(dir, LAST);
      const before = statSync(path);
      writeFileSync(path, '<html>login</html>'.padEnd(before.size, ' '));
      utimesSync(path, before.atime, before.mtime);
    });
    expect(run.code).toBe(1);
    expect(run.events.find((e) => e.event === 'failed')).toMatchObject({
      path: join(dir, LAST),
      error_code: 'file_changed',
      message: expect.stringMatching(/^it was written to or changed after the check/),
    });
    expect(server.stored.map((m) => m.name)).not.toContain(LAST);
    expect(server.stored).toHaveLength(FILES - 1);
  }, 40_000);

  it('for a link to /dev/zero that duplicate detection meets: it fails at once instead of being hashed forever', async () => {
    const dir = await sameSizePdfs();
    const server = closeAfter(await startSandbox({ faults: { latencyMs: 100 } }));
    const run = await swapAfterCheck(dir, server, () => {
      rmSync(join(dir, LAST));
      symlinkSync('/dev/zero', join(dir, LAST));
    });
    expect(run.signal).toBeNull();
    expect(run.code).toBe(1);
    expect(run.events.find((e) => e.event === 'failed')).toMatchObject({
      path: join(dir, LAST),
      error_code: 'file_changed',
      message: expect.stringMatching(/^it is no longer a regular file/),
    });
    expect(server.stored).toHaveLength(FILES - 1);
  }, 40_000);

  it('for a named pipe under --strip-location: it fails at once instead of holding the run', async () => {
    const dir = await tempDir();
    for (let i = 0; i < FILES; i++) {
      await sharp({ create: { width: 16, height: 16, channels: 3, background: { r: i * 6, g: 255 - i * 6, b: 128 } } })
        .jpeg()
        .toFile(join(dir, `scan_${pad(i)}.jpg`));
    }
    const server = closeAfter(await startSandbox({ faults: { latencyMs: 100 } }));
    const last = join(dir, `scan_${pad(FILES - 1)}.jpg`);
    const run = await swapAfterCheck(
      dir,
      server,
      () => {
        rmSync(last);
        execFileSync('mkfifo', [last]);
      },
      ['--strip-location'],
    );
    expect(run.signal).toBeNull();
    expect(run.code).toBe(1);
    expect(run.events.find((e) => e.event === 'failed')).toMatchObject({ path: last, error_code: 'file_changed' });
    expect(server.stored).toHaveLength(FILES - 1);
  }, 40_000);
});
