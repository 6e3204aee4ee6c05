import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { appendFileSync, readdirSync, readlinkSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { copyFile, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { upload, type UploadEvent } from '../../src/index.js';
import { WHOLE_AT_MOST } from '../../src/core/files/file-types.js';
import { startSandbox } from '../../src/sandbox/server.js';
import { closeAfter, FIXTURES, planned, tempDir, validContent, validContentOfSize } from '../helpers.js';

async function run(paths: string[], extra: Record<string, unknown> = {}) {
  const server = closeAfter(await startSandbox());
  const events: UploadEvent[] = [];
  const summary = await upload({
    paths,
    entity: 'e1',
    org: server.org,
    baseUrl: server.url,
    apiKey: server.apiKey,
    onEvent: (e) => events.push(e),
    ...extra,
  });
  return { server, events, summary };
}

describe('edge cases of finding files', () => {
  it('does not follow folder links, so a link loop uploads each file once', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'd', 'sub'), { recursive: true });
    await copyFile(join(FIXTURES, 'selfie.jpg'), join(dir, 'd', 'selfie.jpg'));
    await symlink('..', join(dir, 'd', 'sub', 'loop'));
    await symlink('../selfie.jpg', join(dir, 'd', 'sub', 'link.jpg'));
    const { server, events, summary } = await run([join(dir, 'd')]);
    expect(server.stored).toHaveLength(1);
    expect(summary).toMatchObject({ uploaded: 1, skipped: 2 });
    expect(events).toContainEqual(
      expect.objectContaining({ event: 'skipped', path: join(dir, 'd', 'sub', 'link.jpg'), reason: 'duplicate' }),
    );
    expect(events).toContainEqual(
      expect.objectContaining({ event: 'skipped', path: join(dir, 'd', 'sub', 'loop'), reason: 'unsupported' }),
    );
  });

  it('reports pipes and broken links met on a walk instead of dropping them', async () => {
    const dir = await tempDir();
    await copyFile(join(FIXTURES, 'selfie.jpg'), join(dir, 'selfie.jpg'));
    execFileSync('mkfifo', [join(dir, 'pipe.png')]);
    await symlink('nowhere.jpg', join(dir, 'broken.jpg'));
    const { events, summary } = await run([dir]);
    expect(summary).toMatchObject({ total: 3, uploaded: 1, skipped: 2 });
    const skipped = events
      .filter((e) => e.event === 'skipped')
      .map((e) => (e as { path: string }).path)
      .sort();
    expect(skipped).toEqual([join(dir, 'broken.jpg'), join(dir, 'pipe.png')]);
  });

  it('never takes dot-files or node_modules, also from a glob that names them', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, '.git'));
    await mkdir(join(dir, 'node_modules'));
    for (const p of ['.hidden_selfie.jpg', '.git/leak.jpg', 'node_modules/x.jpg', 'ok.jpg'])
      await copyFile(join(FIXTURES, 'selfie.jpg'), join(dir, p));
    const result = await planned({ paths: ['.*.jpg', '.git/*.jpg', '**/*.jpg'], entity: 'e1', cwd: dir });
    expect(result.files.map((f) => f.path)).toEqual(['ok.jpg']);
    const named = await planned({ paths: ['node_modules/x.jpg', '.git/leak.jpg'], entity: 'e1', cwd: dir });
    expect(named.invalid.map((p) => p.path)).toEqual(['node_modules/x.jpg', '.git/leak.jpg']);
  });

  it('treats only a lower-case .json beside a file as its sidecar', async () => {
    const dir = await tempDir();
    await copyFile(join(FIXTURES, 'selfie.jpg'), join(dir, 'a.jpg'));
    await writeFile(join(dir, 'a.jpg.JSON'), '{"media_type":"IMAGE_PROFILE_PICTURE"}');
    const result = await planned({ paths: [dir], entity: 'e1' });
    expect(result.skipped).toEqual([expect.objectContaining({ path: join(dir, 'a.jpg.JSON'), reason: 'unsupported' })]);
  });

  it('reads a sidecar with a byte-order mark', async () => {
    const dir = await tempDir();
    await copyFile(join(FIXTURES, 'selfie.jpg'), join(dir, 'a.jpg'));
    await writeFile(join(dir, 'a.jpg.json'), '\uFEFF{"media_type":"IMAGE_PROFILE_PICTURE"}');
    const result = await planned({ paths: [dir], entity: 'e1' });
    expect(result.files[0]).toMatchObject({ media_type: 'IMAGE_PROFILE_PICTURE', media_type_source: 'sidecar' });
  });

  it('names the file, not only its sidecar, when the sidecar is bad', async () => {
    const dir = await tempDir();
    await copyFile(join(FIXTURES, 'selfie.jpg'), join(dir, 'a.jpg'));
    await writeFile(join(dir, 'a.jpg.json'), '{bad');
    const result = await planned({ paths: [dir], entity: 'e1' });
    expect(result.invalid).toEqual([
      { path: join(dir, 'a.jpg'), message: expect.stringMatching(/^a\.jpg\.json: sidecar is not valid JSON/) },
    ]);
  });

  it('refuses an empty folder like a pattern that matches nothing', async () => {
    const dir = await tempDir();
    const result = await planned({ paths: [dir], entity: 'e1' });
    expect(result.invalid).toEqual([{ path: dir, message: expect.stringMatching(/holds no files/) }]);
  });
});

// A request up to 5 MiB is read whole before it is sent (a file that fails was never sent:
// attempts 0); a larger one streams, and the file fails during its first attempt.
const BOTH_PATHS = (['multipart', 'json'] as const).flatMap(
  (format) =>
    [
      [format, 'read whole', 100_000, 0],
      [format, 'streamed', WHOLE_AT_MOST + 1, 1],
    ] as const,
);

/**
 * Uploads selfies of `size` bytes named after `letters`, one at a time and duplicates allowed
 * (duplicate detection would meet a changed file before the send does); `change` runs once
 * the check has passed, before any file is read to be sent.
 */
async function uploadThenChange(
  letters: string,
  size: number,
  format: 'multipart' | 'json',
  change: (dir: string) => void,
) {
  const dir = await tempDir();
  for (const letter of letters)
    await writeFile(join(dir, `${letter}_selfie.jpg`), validContentOfSize('.jpg', size, letter.charCodeAt(0)));
  const events: UploadEvent[] = [];
  const server = closeAfter(await startSandbox({ maxFileSize: 2 * WHOLE_AT_MOST }));
  const summary = await upload({
    paths: [dir],
    entity: 'e1',
    org: server.org,
    baseUrl: server.url,
    apiKey: server.apiKey,
    format,
    concurrency: 1,
    allowDuplicates: true,
    maxFileSize: 2 * WHOLE_AT_MOST,
    onEvent: (e) => events.push(e),
    onTotal: () => change(dir),
  });
  return { dir, events, server, summary };
}

describe('edge cases while sending', () => {
  it.each(BOTH_PATHS)(
    'fails a file that vanished after preflight (%s, %s) and uploads the rest',
    async (format, _, size, attempts) => {
      const { dir, events, server, summary } = await uploadThenChange('abc', size, format, (dir) =>
        rmSync(join(dir, 'b_selfie.jpg')),
      );
      expect(summary).toMatchObject({ uploaded: 2, failed: 1 });
      expect(events).toContainEqual(
        expect.objectContaining({
          event: 'failed',
          path: join(dir, 'b_selfie.jpg'),
          status: null,
          error_code: 'ENOENT',
          attempts,
        }),
      );
      expect(events.filter((e) => e.event === 'attempt' && e.path.endsWith('b_selfie.jpg'))).toHaveLength(attempts);
      expect(server.stored.map((m) => m.name).sort()).toEqual(['a_selfie.jpg', 'c_selfie.jpg']);
    },
  );
});

describe('a file that cannot be read in a batch', () => {
  const cases = (['multipart', 'json'] as const).flatMap(
    (format) =>
      [
        [format, 'read whole', 2000],
        [format, 'streamed', 1_100_000],
      ] as const,
  );

  it.each(cases)(
    'fails alone, and the rest of its request is sent again without it (%s, %s)',
    async (format, _, size) => {
      const dir = await tempDir();
      for (const name of ['a', 'b', 'c', 'd', 'e'])
        await writeFile(join(dir, `${name}_selfie.jpg`), validContentOfSize('.jpg', size, name.charCodeAt(0)));
      const events: UploadEvent[] = [];
      const server = closeAfter(await startSandbox());
      const summary = await upload({
        paths: [dir],
        entity: 'e1',
        org: server.org,
        baseUrl: server.url,
        apiKey: server.apiKey,
        format,
        batch: 5,
        allowDuplicates: true,
        onEvent: (e) => events.push(e),
        onTotal: () => {
          rmSync(join(dir, 'c_selfie.jpg'));
          appendFileSync(join(dir, 'e_selfie.jpg'), 'more');
        },
      });
      expect(summary).toMatchObject({ total: 5, uploaded: 3, failed: 2 });
      expect(events).toContainEqual(
        expect.objectContaining({ event: 'failed', path: join(dir, 'c_selfie.jpg'), error_code: 'ENOENT' }),
      );
      expect(events).toContainEqual(
        expect.objectContaining({ event: 'failed', path: join(dir, 'e_selfie.jpg'), error_code: 'file_changed' }),
      );
      expect(server.stored.map((m) => m.name).sort()).toEqual(['a_selfie.jpg', 'b_selfie.jpg', 'd_selfie.jpg']);
    },
  );
});

describe('--fail-fast and a file that can no longer be read', () => {
  it.each([
    // Read whole before the request: the unreadable file stops the run before anything is sent.
    ['read whole', 2000, { failed: 1, not_sent: 9 }, [], 0],
    // Streamed: found while sending, so the other four of that request were tried once.
    ['streamed', 1_100_000, { failed: 5, not_sent: 5 }, ['a', 'b', 'd', 'e'], 1],
  ] as const)(
    'stops after the unreadable file of a batch (%s): the rest of its request is not sent again, nor the next request',
    async (_, size, counts, stopped, requests) => {
      const dir = await tempDir();
      for (const name of 'abcdefghij')
        await writeFile(join(dir, `${name}_selfie.jpg`), validContentOfSize('.jpg', size, name.charCodeAt(0)));
      const events: UploadEvent[] = [];
      const server = closeAfter(await startSandbox());
      const summary = await upload({
        paths: [dir],
        entity: 'e1',
        org: server.org,
        baseUrl: server.url,
        apiKey: server.apiKey,
        batch: 5,
        concurrency: 1,
        failFast: true,
        allowDuplicates: true,
        onEvent: (e) => events.push(e),
        onTotal: () => rmSync(join(dir, 'c_selfie.jpg')),
      });
      expect(summary).toMatchObject({ total: 10, uploaded: 0, ...counts, stopped: 'fail-fast' });
      expect(events).toContainEqual(
        expect.objectContaining({ event: 'failed', path: join(dir, 'c_selfie.jpg'), error_code: 'ENOENT' }),
      );
      expect(
        events.flatMap((e) => (e.event === 'failed' && e.error_code === 'stopped' ? [e.path] : [])).sort(),
      ).toEqual(stopped.map((n) => join(dir, `${n}_selfie.jpg`)));
      expect(server.requests).toHaveLength(requests);
      expect(server.stored).toEqual([]);
    },
  );

  it('stops after a file duplicate detection could not read', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'a.png'), validContent('a.png', 'same-size-1'));
    await writeFile(join(dir, 'b.png'), validContent('b.png', 'same-size-2'));
    await writeFile(join(dir, 'c.png'), validContent('c.png', 'another size'));
    const { server, events, summary } = await run([dir], {
      concurrency: 1,
      failFast: true,
      onTotal: () => rmSync(join(dir, 'b.png')),
    });
    expect(summary).toMatchObject({ uploaded: 1, failed: 1, not_sent: 1, stopped: 'fail-fast' });
    expect(events).toContainEqual(
      expect.objectContaining({ event: 'failed', path: join(dir, 'b.png'), error_code: 'ENOENT' }),
    );
    expect(server.stored.map((m) => m.name)).toEqual(['a.png']);
  });
});

describe('files that change after the check', () => {
  it.each(BOTH_PATHS)(
    'fails a file that grew and one that shrank (%s, %s), storing neither',
    async (format, _, size, attempts) => {
      const { dir, events, server, summary } = await uploadThenChange('abcd', size, format, (dir) => {
        appendFileSync(join(dir, 'b_selfie.jpg'), 'more');
        truncateSync(join(dir, 'c_selfie.jpg'), 1000);
      });
      expect(summary).toMatchObject({ uploaded: 2, failed: 2 });
      for (const name of ['b_selfie.jpg', 'c_selfie.jpg']) {
        expect(events).toContainEqual(
          expect.objectContaining({
            event: 'failed',
            path: join(dir, name),
            status: null,
            error_code: 'file_changed',
            attempts,
            message: expect.stringMatching(/size changed after the check/),
          }),
        );
      }
      expect(server.stored.map((m) => [m.name, m.bytes]).sort()).toEqual([
        ['a_selfie.jpg', size],
        ['d_selfie.jpg', size],
      ]);
    },
  );
});

describe('a file swapped for a pipe after the check', () => {
  const swapForPipe = (dir: string) => {
    rmSync(join(dir, 'b_selfie.jpg'));
    execFileSync('mkfifo', [join(dir, 'b_selfie.jpg')]);
  };

  it.each(BOTH_PATHS)('fails alone instead of waiting for a writer (%s, %s)', async (format, _, size) => {
    const { dir, events, server, summary } = await uploadThenChange('abc', size, format, swapForPipe);
    expect(summary).toMatchObject({ uploaded: 2, failed: 1 });
    expect(events).toContainEqual(
      expect.objectContaining({ event: 'failed', path: join(dir, 'b_selfie.jpg'), status: null }),
    );
    expect(server.stored.map((m) => m.name).sort()).toEqual(['a_selfie.jpg', 'c_selfie.jpg']);
  });

  it('fails alone when duplicate detection meets it', async () => {
    const dir = await tempDir();
    for (const letter of 'abc')
      await writeFile(join(dir, `${letter}_selfie.jpg`), validContentOfSize('.jpg', 1000, letter.charCodeAt(0)));
    const { server, summary } = await run([dir], { concurrency: 1, onTotal: () => swapForPipe(dir) });
    expect(summary).toMatchObject({ uploaded: 2, failed: 1 });
    expect(server.stored.map((m) => m.name).sort()).toEqual(['a_selfie.jpg', 'c_selfie.jpg']);
  });
});

describe('a retry', () => {
  it('reads its files again: one that changed between attempts fails with file_changed, not sent as first read', async () => {
    const dir = await tempDir();
    const path = join(dir, 'a_selfie.jpg');
    await writeFile(path, validContentOfSize(path, 100_000, 1));
    const server = closeAfter(await startSandbox({ faults: { error500: 1 } }));
    const events: UploadEvent[] = [];
    const summary = await upload({
      paths: [dir],
      entity: 'e1',
      org: server.org,
      baseUrl: server.url,
      apiKey: server.apiKey,
      retries: 1,
      onEvent: (e) => {
        events.push(e);
        if (e.event === 'retry') appendFileSync(path, 'more');
      },
    });
    expect(summary).toMatchObject({ uploaded: 0, failed: 1, retries: 1 });
    expect(events).toContainEqual(
      expect.objectContaining({ event: 'failed', path, error_code: 'file_changed', attempts: 1 }),
    );
    expect(server.requests).toHaveLength(1);
  });
});

describe('files opened for a request', () => {
  it('are all closed when the API answers before reading the body', async () => {
    const dir = await tempDir();
    for (let i = 0; i < 10; i++) await writeFile(join(dir, `selfie_${i}.jpg`), randomBytes(1_000_000));
    // Refuses at once, without reading what is sent.
    const server = createServer((_req, res) => {
      res.writeHead(400, { 'content-type': 'application/json' });
      res.end('{"error_code":"bad_request","message":"refused unread"}');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const openInDir = () =>
      readdirSync('/proc/self/fd').filter((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`).startsWith(dir);
        } catch {
          return false;
        }
      }).length;
    try {
      const summary = await upload({
        paths: [dir],
        entity: 'e1',
        org: 'acme',
        baseUrl: `http://127.0.0.1:${port}`,
        apiKey: 'k',
        batch: 10,
        retries: 0,
        allowDuplicates: true,
        sniff: false,
      });
      expect(summary).toMatchObject({ failed: 10, uploaded: 0 });
      await new Promise((resolve) => setTimeout(resolve, 200)); // closing is asynchronous
      expect(openInDir()).toBe(0);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });
});

describe('what is checked is what is sent', () => {
  it('sends the files the check found, not one added to the folder after it', async () => {
    const dir = await tempDir();
    for (const name of ['a_selfie.jpg', 'b_selfie.jpg'])
      await writeFile(join(dir, name), validContentOfSize(name, 1000, name.charCodeAt(0)));
    const server = closeAfter(await startSandbox());
    const summary = await upload({
      paths: [dir],
      entity: 'e1',
      org: server.org,
      baseUrl: server.url,
      apiKey: server.apiKey,
      // Called between the check and the first request.
      onTotal: (total) => {
        expect(total).toBe(2);
        writeFileSync(join(dir, 'c_selfie.jpg'), validContentOfSize('c_selfie.jpg', 1000, 99));
      },
    });
    expect(summary).toMatchObject({ total: 2, uploaded: 2 });
    expect(server.stored.map((m) => m.name).sort()).toEqual(['a_selfie.jpg', 'b_selfie.jpg']);
  });
});

describe('dot-folders above the working folder', () => {
  it('accepts a file named by an absolute path that passes through a dot-folder outside the working folder', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, '.cache', 'kyc'), { recursive: true });
    await copyFile(join(FIXTURES, 'selfie.jpg'), join(dir, '.cache', 'kyc', 'selfie.jpg'));
    const elsewhere = await tempDir();
    const result = await planned({
      paths: [join(dir, '.cache', 'kyc', 'selfie.jpg'), join(dir, '.cache', 'kyc')],
      entity: 'e1',
      cwd: elsewhere,
    });
    expect(result.invalid).toEqual([]);
    expect(result.files).toHaveLength(1);
  });
});
