import { createHash } from 'node:crypto';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { JournalRecord } from '../../src/core/journal/records.js';
import { startSandbox, type Sandbox } from '../../src/sandbox/server.js';
import { closeAfter, interruptedRun, journalledUpload, runBin, tempDir, timesStored } from '../helpers.js';
import { faultyS3, s3Env, startS3 } from '../s3-server.js';

const sha = (bytes: Buffer | string) => createHash('sha256').update(bytes).digest('hex');
const CONCURRENCY = 4;

/** A PDF larger than the check's first 4096 bytes and last 1024, each of its own size: reading it whole is a GET of bytes 0 to its end. */
const pdf = (i: number, fill = 'a') => `%PDF-1.4 document ${i}\n${fill.repeat(6_000 + i)}\n%%EOF\n`;

/** `count` PDFs under kyc/docs/, and a proxy in front of the server counting, per key, the GETs that read an object whole. */
async function bucket(count: number) {
  const s3 = await startS3(['kyc']);
  const bodies = new Map<string, string>();
  for (let i = 0; i < count; i++) bodies.set(`docs/doc_${String(i).padStart(3, '0')}.pdf`, pdf(i));
  for (const [key, body] of bodies) await s3.write('kyc', key, body);
  const wholeReads = new Map<string, number>();
  const proxy = await faultyS3(s3.endpoint, (req) => {
    const key = decodeURIComponent(new URL(req.url!, 'http://s3').pathname).replace(/^\/kyc\//, '');
    const body = bodies.get(key);
    if (
      req.method === 'GET' &&
      body &&
      [undefined, `bytes=0-${Buffer.byteLength(body) - 1}`].includes(req.headers.range)
    )
      wholeReads.set(key, (wholeReads.get(key) ?? 0) + 1);
    return undefined;
  });
  const replace = async (key: string, body: string) => {
    bodies.set(key, body);
    await s3.put('kyc', key, body);
  };
  return { bodies, wholeReads, replace, env: s3Env(proxy.endpoint) };
}

const uploadArgs = (server: Sandbox, journal: string) =>
  journalledUpload('s3://kyc/docs/', server, journal, CONCURRENCY);

const skippedFromJournal = (events: Array<Record<string, unknown>>) =>
  events.filter((e) => e.event === 'skipped' && e.reason === 'journal');
const total = (reads: Map<string, number>) => [...reads.values()].reduce((sum, n) => sum + n, 0);

async function uploaded(count: number) {
  const objects = await bucket(count);
  const server = closeAfter(await startSandbox());
  const cwd = await tempDir();
  const journal = join(cwd, 'journal.jsonl');
  const run = (extra: string[] = []) =>
    runBin([...uploadArgs(server, journal), ...extra], {
      cwd,
      env: { ...objects.env, U21_API_KEY: server.apiKey },
    });
  const first = await run();
  expect(first.code, first.stderr).toBe(0);
  expect(server.stored).toHaveLength(count);
  objects.wholeReads.clear();
  return { ...objects, server, journal, run };
}

describe('a rerun over s3:// objects the journal records as uploaded (built binary, real S3 server on loopback)', () => {
  it('skips every one, and so does a dry run, without reading any of them again', async () => {
    const { bodies, wholeReads, server, journal, run } = await uploaded(20);
    // Each record names the object's ETag (the MD5 of its bytes, for an object written whole).
    const records = (await readFile(journal, 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as JournalRecord);
    const md5 = (path: string) =>
      createHash('md5')
        .update(bodies.get(path.slice('s3://kyc/'.length))!)
        .digest('hex');
    for (const record of records.filter((r) => r.outcome === 'uploaded')) expect(record.etag).toBe(md5(record.path));

    const rerun = await run();
    expect(rerun.code, rerun.stderr).toBe(0);
    const skipped = skippedFromJournal(rerun.events);
    expect(skipped).toHaveLength(20);
    for (const event of skipped)
      expect(event).toMatchObject({
        message: expect.stringMatching(/^already uploaded at \d{4}-.*Z, as .*journal\.jsonl records$/),
        entity_id: 'cust-7',
        bytes: Buffer.byteLength(bodies.get(String(event.path).slice('s3://kyc/'.length))!),
        sha256: sha(bodies.get(String(event.path).slice('s3://kyc/'.length))!),
      });
    expect(rerun.events.at(-1)).toMatchObject({ event: 'summary', uploaded: 0, skipped: 20, failed: 0 });
    expect(server.stored).toHaveLength(20);
    expect(total(wholeReads)).toBe(0);

    const dry = await run(['--dry-run']);
    expect(dry.code, dry.stderr).toBe(0);
    expect(skippedFromJournal(dry.events)).toHaveLength(20);
    expect(dry.events.filter((e) => e.event === 'planned')).toEqual([]);
    expect(total(wholeReads)).toBe(0);
  }, 60_000);

  it('sends again the one object replaced since (its new bytes), reading only that one', async () => {
    const { replace, wholeReads, server, run } = await uploaded(20);
    await replace('docs/doc_007.pdf', pdf(7, 'b'));

    const rerun = await run();
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(skippedFromJournal(rerun.events)).toHaveLength(19);
    expect(rerun.events.filter((e) => e.event === 'uploaded')).toEqual([
      expect.objectContaining({ path: 's3://kyc/docs/doc_007.pdf', sha256: sha(pdf(7, 'b')) }),
    ]);
    expect(server.stored.filter((m) => m.name === 'doc_007.pdf').map((m) => m.sha256)).toEqual([
      sha(pdf(7)),
      sha(pdf(7, 'b')),
    ]);
    expect(server.stored).toHaveLength(21);
    expect([...wholeReads.keys()]).toEqual(['docs/doc_007.pdf']);
  }, 60_000);

  it('skips by content, reading each again, the objects of records written before records named their ETag', async () => {
    const { wholeReads, server, journal, run } = await uploaded(20);
    const lines = (await readFile(journal, 'utf8')).trim().split('\n');
    const older = lines.map((line) => {
      const { etag, version_id, ...record } = JSON.parse(line) as Record<string, unknown>;
      expect(etag).toEqual(expect.any(String));
      expect(version_id).toBeUndefined(); // an unversioned bucket
      return JSON.stringify(record);
    });
    await writeFile(journal, `${older.join('\n')}\n`);

    const rerun = await run();
    expect(rerun.code, rerun.stderr).toBe(0);
    expect(skippedFromJournal(rerun.events)).toHaveLength(20);
    expect(server.stored).toHaveLength(20);
    expect(total(wholeReads)).toBe(20);
  }, 60_000);

  it('after kill -9 midway, a rerun stores every object, reading again only those not recorded as uploaded', async () => {
    const { bodies, wholeReads, env } = await bucket(100);
    const server = closeAfter(await startSandbox({ faults: { latencyMs: 20 } }));
    const journal = join(await tempDir(), 'journal.jsonl');
    const killed = await interruptedRun(uploadArgs(server, journal), server.apiKey, 'SIGKILL', 30, env);
    expect(killed.signal).toBe('SIGKILL');
    expect(server.stored.length).toBeLessThan(bodies.size);
    wholeReads.clear();

    const rerun = await runBin(uploadArgs(server, journal), {
      cwd: await tempDir(),
      env: { ...env, U21_API_KEY: server.apiKey },
    });
    expect(rerun.code, rerun.stderr).toBe(0);
    const skipped = skippedFromJournal(rerun.events).map((e) => String(e.path).slice('s3://kyc/'.length));
    expect(skipped.length).toBeGreaterThanOrEqual(30);
    const sent = rerun.events.filter((e) => e.event === 'uploaded');
    expect(sent).toHaveLength(bodies.size - skipped.length);
    // Each object sent read whole once (for its hash and its body), each skipped not at all.
    expect(total(wholeReads)).toBe(sent.length);
    for (const key of skipped) expect(wholeReads.get(key), key).toBeUndefined();

    const counts = timesStored(server);
    expect([...counts.keys()].sort()).toEqual([...bodies.keys()].map((key) => key.split('/')[1]).sort());
    expect(server.stored.length - bodies.size).toBeLessThanOrEqual(CONCURRENCY);
    // Each object stored twice was sent again flagged, as the write-ahead record told; none else twice.
    const flagged = new Set(sent.filter((e) => e.possibly_duplicated).map((e) => String(e.path).split('/').at(-1)));
    for (const [name, n] of counts) if (n > 1) expect(flagged, name).toContain(name);
    expect(flagged.size).toBeLessThanOrEqual(CONCURRENCY);
  }, 60_000);
});
