import { existsSync } from 'node:fs';
import { appendFile, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Journal } from '../../src/core/journal/journal.js';
import type { JournalRecord } from '../../src/core/journal/records.js';
import { tempDir } from '../helpers.js';

const record = (extra: Record<string, unknown> = {}): JournalRecord =>
  ({
    time: '2026-11-25T12:00:00.000Z',
    outcome: 'uploaded',
    host: 'https://api.unit21.com/v1',
    org: 'acme',
    entity_id: 'c1',
    path: 'kyc/selfie.jpg',
    name: 'selfie.jpg',
    media_type: 'IMAGE_FACE_IMAGE',
    sha256: 'aa'.repeat(32),
    bytes: 10,
    status: 200,
    attempts: 1,
    ...extra,
  }) as JournalRecord;
const id = {
  host: 'https://api.unit21.com/v1',
  org: 'acme',
  entityId: 'c1',
  name: 'selfie.jpg',
  mediaType: 'IMAGE_FACE_IMAGE',
};

describe('journal', () => {
  it('remembers uploads by org, entity, name, media_type and content', async () => {
    const path = join(await tempDir(), 'j.jsonl');
    const first = await Journal.open(path);
    first.record(record());
    first.record(record({ outcome: 'failed', name: 'passport.jpg', status: 404 }));
    first.close();

    const second = await Journal.open(path);
    expect(second.uploadedBefore).toBe(1);
    expect(second.mayHave(id)).toBe(true);
    expect(second.uploadedAt(id, 'aa'.repeat(32))).toBe('2026-11-25T12:00:00.000Z');
    expect(second.uploadedAt(id, 'bb'.repeat(32))).toBeUndefined(); // content changed
    expect(second.mayHave({ ...id, entityId: 'c2' })).toBe(false);
    expect(second.mayHave({ ...id, mediaType: null })).toBe(false);
    expect(second.mayHave({ ...id, name: 'passport.jpg' })).toBe(false); // only failed
    second.close();
  });

  it('knows an object uploaded from its URL at its ETag (and version, when both say one), by the line its record is on; older records say nothing', async () => {
    const path = join(await tempDir(), 'j.jsonl');
    const url = 's3://kyc/selfie.jpg';
    const first = await Journal.open(path);
    // A record from before objects' ETags were recorded, then one with its ETag and version, then one a torn line cut short.
    first.record(record({ path: url, sha256: '11'.repeat(32) }));
    first.record(record({ path: url, sha256: '22'.repeat(32), etag: 'e2', version_id: 'v2' }));
    first.record(record({ path: 's3://kyc/other.jpg', sha256: '33'.repeat(32), etag: 'e3' }));
    first.close();
    await appendFile(path, '{"time":"2026-11-25T12:00:00.000Z","outco');

    const second = await Journal.open(path);
    expect(second.uploadedObject(id, { path: url, bytes: 10, etag: 'e2' })).toBe('22'.repeat(32));
    expect(second.uploadedObject(id, { path: url, bytes: 10, etag: 'e2', versionId: 'v2' })).toBe('22'.repeat(32));
    expect(second.uploadedObject(id, { path: url, bytes: 10, etag: 'e2', versionId: 'v3' })).toBeUndefined();
    expect(second.uploadedObject(id, { path: url, bytes: 10, etag: 'e1' })).toBeUndefined(); // replaced since: hashed
    expect(second.uploadedObject(id, { path: url, bytes: 11, etag: 'e2' })).toBeUndefined();
    expect(second.uploadedObject(id, { path: 's3://kyc/moved.jpg', bytes: 10, etag: 'e2' })).toBeUndefined();
    expect(second.uploadedObject({ ...id, entityId: 'c2' }, { path: url, bytes: 10, etag: 'e2' })).toBeUndefined();
    expect(second.uploadedObject(id, { path: 's3://kyc/other.jpg', bytes: 10, etag: 'e3', versionId: 'v1' })).toBe(
      '33'.repeat(32),
    );
    // The record without an ETag still counts by content.
    expect(second.uploadedAt(id, '11'.repeat(32))).toBe('2026-11-25T12:00:00.000Z');
    second.record(record({ path: 's3://kyc/later.jpg', sha256: '44'.repeat(32), etag: 'e4' }));
    second.close();
    await second.indexRun();

    // Read where the index caught up after the earlier lines.
    const third = await Journal.open(path);
    expect(third.uploadedObject(id, { path: 's3://kyc/later.jpg', bytes: 10, etag: 'e4' })).toBe('44'.repeat(32));
    expect(third.uploadedObject(id, { path: url, bytes: 10, etag: 'e2' })).toBe('22'.repeat(32));
    third.close();
    third.closeIndex();
  });

  it('counts a record only for the API host it was written for; one that names no host counts for none', async () => {
    const path = join(await tempDir(), 'j.jsonl');
    const first = await Journal.open(path);
    first.record(record({ host: 'http://127.0.0.1:8080/v1' }));
    first.record(record({ name: 'legacy.jpg', host: undefined }));
    first.close();

    const second = await Journal.open(path);
    expect(second.mayHave(id)).toBe(false);
    expect(second.uploadedAt(id, 'aa'.repeat(32))).toBeUndefined();
    expect(second.uploadedAt({ ...id, host: 'http://127.0.0.1:8080/v1' }, 'aa'.repeat(32))).toBe(
      '2026-11-25T12:00:00.000Z',
    );
    expect(second.mayHave({ ...id, name: 'legacy.jpg' })).toBe(false);
    expect(second.hostless).toBe(1);
    second.close();
  });

  it("refuses a run's records from before records named their host, unless the run adopts them, once: then they name its host", async () => {
    const path = join(await tempDir(), 'j.jsonl');
    await writeFile(
      path,
      `${JSON.stringify(record({ host: undefined }))}\n${JSON.stringify(record({ name: 'b.jpg' }))}\n`,
    );
    const host = 'https://api.unit21.com/v1';
    await expect(Journal.open(path, { host, adoptOldRecords: false })).rejects.toThrow(
      `--journal: ${path} holds a record from before records named their API host, so it cannot say where its file went`,
    );
    const adopting = await Journal.open(path, { host, adoptOldRecords: true });
    expect(adopting.adopted).toBe(1);
    expect(adopting.uploadedAt(id, 'aa'.repeat(32))).toBe('2026-11-25T12:00:00.000Z');
    adopting.close();
    const lines = (await readFile(path, 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { host: string });
    expect(lines.map((r) => r.host)).toEqual([host, host]);
    const again = await Journal.open(path, { host, adoptOldRecords: false });
    expect(again.adopted).toBeUndefined();
    again.close();
  });

  it('ignores a torn last line and starts the next record on a line of its own', async () => {
    const path = join(await tempDir(), 'j.jsonl');
    await writeFile(path, `${JSON.stringify(record())}\n{"time":"2026-11-25T12:00:01Z","outcome":"uplo`);
    const journal = await Journal.open(path);
    expect(journal.unusable).toEqual({ count: 1, lines: [2] });
    expect(journal.uploadedBefore).toBe(1);
    journal.record(record({ name: 'b.jpg' }));
    journal.close();
    const lines = (await readFile(path, 'utf8')).split('\n');
    expect(JSON.parse(lines[2]!)).toMatchObject({ name: 'b.jpg' });

    const again = await Journal.open(path);
    expect(again.uploadedBefore).toBe(2);
    expect(again.unusable).toEqual({ count: 1, lines: [2] });
    again.close();
  });

  it('creates a missing journal and skips blank lines', async () => {
    const path = join(await tempDir(), 'new.jsonl');
    const journal = await Journal.open(path);
    journal.close();
    await appendFile(path, '\n\n');
    const reopened = await Journal.open(path);
    expect(reopened.unusable.count).toBe(0);
    reopened.close();
  });

  describe('a journal the run made', () => {
    const sending = (name: string) => ({ ...record({ name }), outcome: 'sending' }) as JournalRecord;
    const failed = (name: string, extra: Record<string, unknown> = {}) =>
      record({ name, outcome: 'failed', status: null, error_code: 'ENOTFOUND', ...extra });
    /** A run's records in a journal that did not exist (or did, `before`), then closed and indexed as a run ends; whether it is still there. */
    async function leftAfter(
      records: JournalRecord[],
      before?: string,
      meanwhile?: (path: string) => Promise<void>,
    ): Promise<boolean> {
      const path = join(await tempDir(), 'j.jsonl');
      if (before !== undefined) await writeFile(path, before);
      const journal = await Journal.open(path);
      for (const r of records) journal.record(r);
      await meanwhile?.(path);
      journal.close();
      await journal.indexRun();
      const removed = journal.removeIfUnneeded();
      expect(existsSync(path)).toBe(!removed);
      expect(existsSync(join(dirname(path), `.${basename(path)}.index`))).toBe(!removed);
      return !removed;
    }

    it('is removed when every file it sent failed for certain (a mistyped host, a refused key): nothing in it matters to a later run', async () => {
      expect(
        await leftAfter([sending('a.jpg'), sending('b.jpg'), failed('a.jpg'), failed('b.jpg', { status: 401 })]),
      ).toBe(false);
      expect(await leftAfter([])).toBe(false);
    });

    it('is kept when a file was stored, may have been, or was sent without an outcome; and one that existed is always kept', async () => {
      expect(await leftAfter([sending('a.jpg'), record({ name: 'a.jpg' })])).toBe(true);
      expect(
        await leftAfter([sending('a.jpg'), failed('a.jpg', { error_code: 'ECONNRESET', possibly_duplicated: true })]),
      ).toBe(true);
      expect(await leftAfter([sending('a.jpg'), sending('b.jpg'), failed('a.jpg')])).toBe(true);
      // Two files of one name and size to one entity: the second's send is still unanswered.
      expect(await leftAfter([sending('a.jpg'), sending('a.jpg'), failed('a.jpg')])).toBe(true);
      expect(await leftAfter([sending('a.jpg'), failed('a.jpg')], '')).toBe(true);
    });

    it('is kept when another run wrote to it or replaced it meanwhile (it took the lock over while this one was paused)', async () => {
      const theirs = `${JSON.stringify(record({ name: 'theirs.jpg' }))}\n`;
      expect(await leftAfter([sending('a.jpg'), failed('a.jpg')], undefined, (path) => appendFile(path, theirs))).toBe(
        true,
      );
      expect(
        await leftAfter([sending('a.jpg'), failed('a.jpg')], undefined, async (path) => {
          await writeFile(`${path}.new`, theirs);
          await rename(`${path}.new`, path);
        }),
      ).toBe(true);
    });
  });

  it('knows what an earlier run sent without learning the outcome, by identity and size, and by content when it was known', async () => {
    const path = join(await tempDir(), 'j.jsonl');
    const journal = await Journal.open(path);
    const sending = (name: string, sha256: string | null) => ({
      ...record({ name, sha256 }),
      outcome: 'sending' as const,
    });
    journal.record(
      sending('a.jpg', 'aa'.repeat(32)),
      sending('b.jpg', null),
      sending('c.jpg', 'cc'.repeat(32)),
      sending('d.jpg', null),
    );
    journal.record(record({ name: 'c.jpg', sha256: 'cc'.repeat(32) })); // stored
    journal.record(record({ name: 'd.jpg', outcome: 'failed', sha256: null, status: null, possibly_duplicated: true })); // no answer to the last try
    journal.close();

    const again = await Journal.open(path);
    const of = (name: string) => ({ ...id, name });
    expect(again.mayHave(of('b.jpg'))).toBe(true); // so its file is hashed and compared
    expect(again.unknownOutcome(of('a.jpg'), 10, 'aa'.repeat(32))).toBe(true);
    expect(again.unknownOutcome(of('a.jpg'), 10, 'ff'.repeat(32))).toBe(false); // changed since
    expect(again.unknownOutcome(of('b.jpg'), 10, 'ff'.repeat(32))).toBe(true); // sent streamed: its size decides
    expect(again.unknownOutcome(of('b.jpg'), 11, 'ff'.repeat(32))).toBe(false);
    expect(again.unknownOutcome(of('c.jpg'), 10, 'cc'.repeat(32))).toBe(false);
    expect(again.uploadedAt(of('c.jpg'), 'cc'.repeat(32))).toBeDefined();
    expect(again.unknownOutcome(of('d.jpg'), 10, 'dd'.repeat(32))).toBe(true);
    again.close();
  });

  it('skips lines that are JSON but no record, naming them', async () => {
    const path = join(await tempDir(), 'j.jsonl');
    await writeFile(path, `null\n${JSON.stringify(record())}\n[]\n{"outcome":"uploaded"}\n"x"\n7\n{}\n`);
    const journal = await Journal.open(path);
    expect(journal.unusable).toEqual({ count: 6, lines: [1, 3, 4, 5, 6] });
    expect(journal.uploadedBefore).toBe(1);
    journal.close();
  });

  describe('its index', () => {
    /** A run's end: the journal closed and its records indexed. */
    async function endRun(journal: Journal) {
      journal.close();
      await journal.indexRun();
    }
    const indexOf = (path: string) => join(dirname(path), `.${basename(path)}.index`);

    it('is kept beside the journal, covering all of it, and answers the next run', async () => {
      const path = join(await tempDir(), 'j.jsonl');
      const first = await Journal.open(path);
      first.record(record());
      await endRun(first);
      const state = JSON.parse(await readFile(join(indexOf(path), 'state.json'), 'utf8'));
      expect(state).toMatchObject({ covered: (await stat(path)).size, lines: 1, uploadedBefore: 1 });
      const second = await Journal.open(path);
      expect(second.uploadedAt(id, 'aa'.repeat(32))).toBe('2026-11-25T12:00:00.000Z');
      second.close();
    });

    it('reads the lines a killed run added after it', async () => {
      const path = join(await tempDir(), 'j.jsonl');
      const first = await Journal.open(path);
      first.record(record());
      await endRun(first);
      await appendFile(
        path,
        `${JSON.stringify(record({ name: 'b.jpg' }))}
`,
      ); // a run killed before its end
      const second = await Journal.open(path);
      expect(second.uploadedBefore).toBe(2);
      expect(second.mayHave({ ...id, name: 'b.jpg' })).toBe(true);
      second.close();
    });

    it('over many blocks: catches up after lines a killed run added, and is rebuilt after an edit that keeps the size', async () => {
      const path = join(await tempDir(), 'j.jsonl');
      const names = (from: number) => Array.from({ length: 5000 }, (_, i) => record({ name: `scan_${from + i}.jpg` }));
      for (const from of [0, 5000]) {
        const run = await Journal.open(path);
        run.record(...names(from));
        await endRun(run);
      }
      expect((await stat(path)).size).toBeGreaterThan(2 * 1024 * 1024);
      const tables = (await stat(join(indexOf(path), 'uploads'))).ino;
      await appendFile(path, `${JSON.stringify(record({ name: 'killed.jpg' }))}\n`);
      const resumed = await Journal.open(path);
      expect(resumed.uploadedBefore).toBe(10_001);
      await endRun(resumed);
      expect((await stat(join(indexOf(path), 'uploads'))).ino).toBe(tables); // caught up, not rebuilt

      // scan_100's upload, in the first block, edited into a failure of the same size.
      const text = await readFile(path, 'utf8');
      const at = text.indexOf('"outcome":"uploaded"', text.indexOf('scan_100.jpg') - 300);
      await writeFile(
        path,
        `${text.slice(0, at)}"outcome":"failed"  ${text.slice(at + '"outcome":"uploaded"'.length)}`,
      );
      const edited = await Journal.open(path);
      expect(edited.uploadedBefore).toBe(10_000);
      expect(edited.uploadedAt({ ...id, name: 'scan_100.jpg' }, 'aa'.repeat(32))).toBeUndefined();
      edited.close();
    });

    it('is rebuilt when the journal was rewritten, so a forgotten upload is sent again', async () => {
      const path = join(await tempDir(), 'j.jsonl');
      const first = await Journal.open(path);
      first.record(record(), record({ name: 'b.jpg' }));
      await endRun(first);
      // As `journal forget` does: the same journal, its first record taken out and another added.
      await writeFile(
        path,
        `${JSON.stringify(record({ name: 'b.jpg' }))}
${JSON.stringify(record({ name: 'c.jpg' }))}
`,
      );
      const second = await Journal.open(path);
      expect(second.mayHave(id)).toBe(false);
      expect(second.mayHave({ ...id, name: 'c.jpg' })).toBe(true);
      expect(second.uploadedBefore).toBe(2);
      second.close();
    });

    it('is rebuilt when missing or broken', async () => {
      const path = join(await tempDir(), 'j.jsonl');
      const first = await Journal.open(path);
      first.record(record());
      await endRun(first);
      for (const breakIt of [
        () => rm(indexOf(path), { recursive: true }),
        () => writeFile(join(indexOf(path), 'state.json'), '{"version":1,"cov'),
        () => writeFile(join(indexOf(path), 'uploads'), 'not a table'),
      ]) {
        await breakIt();
        const again = await Journal.open(path);
        expect(again.uploadedBefore).toBe(1);
        expect(again.uploadedAt(id, 'aa'.repeat(32))).toBe('2026-11-25T12:00:00.000Z');
        await endRun(again);
      }
    });

    it('is not made for a journal that is not a file', async () => {
      const journal = await Journal.open('/dev/null');
      journal.record(record());
      await endRun(journal);
      expect(existsSync('/dev/.null.index')).toBe(false);
    });

    it('is rebuilt from a compacted journal when more of its lines are superseded than live', async () => {
      const path = join(await tempDir(), 'j.jsonl');
      const sending = (name: string) => ({ ...record({ name, sha256: null }), outcome: 'sending' as const });
      const failed = (name: string, extra = {}) =>
        record({ name, outcome: 'failed', sha256: null, status: 500, ...extra });
      const lines = [sending('a.jpg'), record({ name: 'a.jpg' })]; // stored
      // Three runs in which b.jpg failed and c.jpg went unanswered, then one that sent d.jpg and was killed.
      for (let run = 0; run < 3; run++)
        lines.push(sending('b.jpg'), failed('b.jpg'), sending('c.jpg'), failed('c.jpg', { possibly_duplicated: true }));
      lines.push(sending('d.jpg'));
      await writeFile(path, `${lines.map((line) => JSON.stringify(line)).join('\n')}\nnot a record\n`);

      const journal = await Journal.open(path);
      expect(journal.compacted).toEqual({ before: 16, after: 4 });
      const kept = (await readFile(path, 'utf8'))
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as JournalRecord);
      expect(kept.map((r) => [r.name, r.outcome])).toEqual([
        ['a.jpg', 'uploaded'],
        ['b.jpg', 'failed'],
        ['c.jpg', 'failed'],
        ['d.jpg', 'sending'],
      ]);
      // What a resume knows is what it knew before.
      const of = (name: string) => ({ ...id, name });
      expect(journal.uploadedAt(of('a.jpg'), 'aa'.repeat(32))).toBe('2026-11-25T12:00:00.000Z');
      expect(journal.unknownOutcome(of('b.jpg'), 10, 'aa'.repeat(32))).toBe(false);
      expect(journal.unknownOutcome(of('c.jpg'), 10, 'aa'.repeat(32))).toBe(true);
      // All that is left of c.jpg is its unanswered failure: it is still known, so a rerun compares it.
      expect(journal.mayHave(of('c.jpg'))).toBe(true);
      expect(journal.unknownOutcome(of('d.jpg'), 10, 'aa'.repeat(32))).toBe(true);
      expect(journal.mayHave(of('d.jpg'))).toBe(true);
      // And the run's own records go on the compacted journal.
      journal.record(record({ name: 'b.jpg' }));
      await endRun(journal);
      expect((await readFile(path, 'utf8')).trim().split('\n')).toHaveLength(5);
      const again = await Journal.open(path);
      expect(again.compacted).toBeUndefined();
      expect(again.uploadedAt(of('b.jpg'), 'aa'.repeat(32))).toBeDefined();
      again.close();
    });

    it('leaves a journal of sends and their uploads as it is', async () => {
      const path = join(await tempDir(), 'j.jsonl');
      const lines = ['a.jpg', 'b.jpg'].flatMap((name) => [
        { ...record({ name }), outcome: 'sending' },
        record({ name }),
      ]);
      const text = `${lines.map((line) => JSON.stringify(line)).join('\n')}\n`;
      await writeFile(path, text);
      const journal = await Journal.open(path);
      expect(journal.compacted).toBeUndefined();
      journal.close();
      expect(await readFile(path, 'utf8')).toBe(text);
    });
  });
});
