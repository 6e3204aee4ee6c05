import { readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../../src/sandbox/server.js';
import { closeAfter, interruptedRun, journalledUpload, runBin, tempDir, timesStored } from '../helpers.js';

const FILES = 200;
const CONCURRENCY = 4;

async function makeFiles(): Promise<string> {
  const dir = await tempDir();
  await Promise.all(
    Array.from({ length: FILES }, (_, i) =>
      writeFile(join(dir, `doc_${String(i).padStart(3, '0')}.pdf`), `%PDF-1.4 document ${i}\n%%EOF\n`),
    ),
  );
  return dir;
}

const uploadArgs = (dir: string, server: Sandbox, journal: string) =>
  journalledUpload(dir, server, journal, CONCURRENCY);

describe('resuming with --journal (built binary)', () => {
  it('after kill -9 midway, a rerun stores every file, re-sending at most the ones in flight', async () => {
    const dir = await makeFiles();
    const journal = join(await tempDir(), 'journal.jsonl');
    const server = closeAfter(await startSandbox({ faults: { latencyMs: 20 } }));

    const scratchParent = await tempDir();
    const killed = await interruptedRun(uploadArgs(dir, server, journal), server.apiKey, 'SIGKILL', 40, {
      TMPDIR: scratchParent,
    });
    expect(killed.signal).toBe('SIGKILL');
    const storedBeforeRerun = server.stored.length;
    expect(storedBeforeRerun).toBeLessThan(FILES);
    // The killed run left its working folder, its lock and the file naming its holder (in the
    // user's folder under $TMPDIR); the rerun removes them, and its own at its end.
    const runs = join(scratchParent, `u21-media-${process.getuid!()}`);
    expect((await readdir(runs)).sort()).toEqual([
      expect.stringMatching(/^run-\w+$/),
      expect.stringMatching(/^run-\w+\.lock$/),
      expect.stringMatching(/^run-\w+\.lock\.json$/),
    ]);

    const rerun = await runBin(uploadArgs(dir, server, journal), {
      cwd: dir,
      env: { U21_API_KEY: server.apiKey, TMPDIR: scratchParent },
    });
    expect(await readdir(runs)).toEqual([]);
    expect(rerun.code).toBe(0);
    const fromJournal = rerun.events.filter((e) => e.event === 'skipped' && e.reason === 'journal').length;
    expect(fromJournal).toBeGreaterThanOrEqual(40);
    expect(rerun.events.at(-1)).toMatchObject({
      event: 'summary',
      failed: 0,
      uploaded: FILES - fromJournal,
      skipped: fromJournal,
    });

    const counts = timesStored(server);
    expect(counts.size).toBe(FILES);
    const duplicates = server.stored.length - FILES;
    expect(duplicates).toBeLessThanOrEqual(CONCURRENCY);
    // No duplicate goes unsaid: each file stored twice was sent again flagged, as the write-ahead record told.
    const flagged = new Set(
      rerun.events
        .filter((e) => e.event === 'uploaded' && e.possibly_duplicated)
        .map((e) => String(e.path).split('/').at(-1)),
    );
    const twice = [...counts].filter(([, n]) => n > 1).map(([name]) => name);
    for (const name of twice) expect(flagged, name).toContain(name);
    expect(rerun.events.at(-1)).toMatchObject({ possibly_duplicated: flagged.size });
    // The killed run's lock was taken over, and given up at the end.
    await expect(stat(`${journal}.lock`)).rejects.toThrow();
  }, 60_000);

  it('after Ctrl-C midway exits 130 with a resume hint, and a rerun adds no duplicate at all', async () => {
    const dir = await makeFiles();
    const journal = join(await tempDir(), 'journal.jsonl');
    const server = closeAfter(await startSandbox({ faults: { latencyMs: 20 } }));

    const stopped = await interruptedRun(uploadArgs(dir, server, journal), server.apiKey, 'SIGINT', 40);
    expect(stopped.code).toBe(130);
    expect(stopped.stderr).toMatch(/run the same command again to resume/);
    const summary = stopped.events.at(-1)!;
    expect(summary).toMatchObject({ event: 'summary', stopped: 'interrupted', failed: 0 });
    expect(summary.uploaded).toBe(server.stored.length);
    expect((summary.uploaded as number) + (summary.skipped as number)).toBe(FILES);

    const rerun = await runBin(uploadArgs(dir, server, journal), { cwd: dir, env: { U21_API_KEY: server.apiKey } });
    expect(rerun.code).toBe(0);
    expect(server.stored).toHaveLength(FILES);
    expect([...timesStored(server).values()].every((n) => n === 1)).toBe(true);
  }, 60_000);
});
