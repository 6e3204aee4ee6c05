import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../../src/sandbox/server.js';
import { closeAfter, interruptedRun, journalledUpload, runBin, tempDir, timesStored } from '../helpers.js';
import { startS3, type TestS3 } from '../s3-server.js';

const CONCURRENCY = 4;
/** The memory test's run (some 70 s on a 2-core machine), against one a tenth its size; S3_SCALE_OBJECTS sets another. */
const SCALE = Number(process.env.S3_SCALE_OBJECTS ?? 5_000);

/** `count` small PDFs under kyc/docs/, a hundred to a folder, each its own bytes; their names. */
async function objects(s3: TestS3, count: number): Promise<string[]> {
  const names = Array.from(
    { length: count },
    (_, i) => `${String(Math.floor(i / 100)).padStart(3, '0')}/doc_${String(i).padStart(5, '0')}.pdf`,
  );
  // Written 200 at a time: straight into the server's folder, as a PUT would leave them.
  for (let i = 0; i < names.length; i += 200)
    await Promise.all(
      names.slice(i, i + 200).map((name, j) => s3.write('kyc', `docs/${name}`, `%PDF-1.4 document ${i + j}\n%%EOF\n`)),
    );
  return names.map((name) => name.split('/')[1]!);
}

const uploadArgs = (server: Sandbox, journal: string) =>
  journalledUpload('s3://kyc/docs/', server, journal, CONCURRENCY);

describe('s3:// paths at scale (built binary, real S3 server on loopback)', () => {
  it('after kill -9 midway, a rerun stores every object, re-sending at most the ones in flight (flagged)', async () => {
    const s3 = await startS3(['kyc']);
    const names = await objects(s3, 200);
    const journal = join(await tempDir(), 'journal.jsonl');
    const server = closeAfter(await startSandbox({ faults: { latencyMs: 20 } }));

    const killed = await interruptedRun(uploadArgs(server, journal), server.apiKey, 'SIGKILL', 40, s3.env);
    expect(killed.signal).toBe('SIGKILL');
    expect(server.stored.length).toBeLessThan(names.length);

    const rerun = await runBin(uploadArgs(server, journal), {
      cwd: await tempDir(),
      env: { ...s3.env, U21_API_KEY: server.apiKey },
    });
    expect(rerun.code).toBe(0);
    const fromJournal = rerun.events.filter((e) => e.event === 'skipped' && e.reason === 'journal').length;
    expect(fromJournal).toBeGreaterThanOrEqual(40);
    expect(rerun.events.at(-1)).toMatchObject({
      event: 'summary',
      failed: 0,
      uploaded: names.length - fromJournal,
      skipped: fromJournal,
    });

    const counts = timesStored(server);
    expect([...counts.keys()].sort()).toEqual(names.sort());
    expect(server.stored.length - names.length).toBeLessThanOrEqual(CONCURRENCY);
    // Each object stored twice was sent again flagged, as the write-ahead record told; none else twice.
    const flagged = new Set(
      rerun.events
        .filter((e) => e.event === 'uploaded' && e.possibly_duplicated)
        .map((e) => String(e.path).split('/').at(-1)),
    );
    for (const [name, n] of counts) if (n > 1) expect(flagged, name).toContain(name);
    expect(flagged.size).toBeLessThanOrEqual(CONCURRENCY);
  }, 60_000);

  it(`uploads ${SCALE.toLocaleString('en-US')} objects listed 1,000 to a page, keeping a few KB of each at most`, async () => {
    // A module the binary is started with: at exit it writes the most heap it held live, as seen
    // right after each full garbage collection (KB). Peak RSS would measure how lazily each V8
    // collects (Node 24's grows its heap further before it does), not what the run keeps.
    const dir = await tempDir();
    const hook = join(dir, 'peak.mjs');
    await writeFile(
      hook,
      [
        "import { writeFileSync } from 'node:fs';",
        "import { constants, PerformanceObserver } from 'node:perf_hooks';",
        'let most = 0;',
        'new PerformanceObserver((list) => {',
        '  if (list.getEntries().some((e) => e.detail?.kind === constants.NODE_PERFORMANCE_GC_MAJOR)) most = Math.max(most, process.memoryUsage().heapUsed);',
        "}).observe({ entryTypes: ['gc'] });",
        "process.on('exit', () => writeFileSync(process.env.PEAK_FILE, String(Math.round(most / 1024))));",
      ].join('\n'),
    );
    const peakOf = async (count: number) => {
      const s3 = await startS3(['kyc']);
      await objects(s3, count);
      const server = closeAfter(await startSandbox());
      const peakFile = join(dir, `peak-${count}`);
      const result = await runBin(
        [...uploadArgs(server, join(dir, `journal-${count}.jsonl`)), '--concurrency', '16', '--quiet'],
        {
          cwd: dir,
          env: {
            ...s3.env,
            U21_API_KEY: server.apiKey,
            NODE_OPTIONS: `--import=${pathToFileURL(hook).href}`,
            PEAK_FILE: peakFile,
          },
        },
      );
      expect(result.code, result.stderr).toBe(0);
      expect(result.events.at(-1)).toMatchObject({ event: 'summary', uploaded: count, failed: 0 });
      expect(new Set(server.stored.map((m) => m.name)).size).toBe(count);
      return Number(await readFile(peakFile, 'utf8'));
    };
    const small = await peakOf(SCALE / 10);
    const large = await peakOf(SCALE);
    // Ten times the objects: a copy of each object's state (or its bytes) kept to the end would show.
    // Up to 20,000 files or objects, the check-first pass keeps what it checked of each (a few KB,
    // as for local files), so the heap grows with them that far: a copy of each object's bytes or
    // of its listing page kept besides would pass this bound per object.
    const perObjectKb = (large - small) / (SCALE - SCALE / 10);
    expect(perObjectKb).toBeLessThan(8);
  }, 300_000);
});
