import { createHash } from 'node:crypto';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ReaderThreads } from '../../src/core/body/reader-threads.js';
import { Journal } from '../../src/core/journal/journal.js';
import type { JournalRecord } from '../../src/core/journal/records.js';
import type { PlannedFile } from '../../src/core/inputs/plan.js';
import { RepeatFilter } from '../../src/core/transfer/dedupe.js';
import { scratch, tempDir } from '../helpers.js';

const HOST = 'https://api.unit21.com/v1';

/** Hashes files for the filter, in a thread as in a run. */
const reader = new ReaderThreads(1);
afterAll(() => reader.close());

const sha256 = (bytes: Buffer) => createHash('sha256').update(bytes).digest('hex');

/** Writes `bytes` as `name` in `dir` and describes it as the check would. */
async function planned(dir: string, name: string, bytes: Buffer, entityId = 'c1'): Promise<PlannedFile> {
  const absPath = join(dir, name);
  await writeFile(absPath, bytes);
  return {
    path: name,
    absPath,
    name,
    entityId,
    mediaType: 'IMAGE_FACE_IMAGE',
    mediaTypeSource: 'flag',
    bytes: bytes.length,
    contentType: 'image/jpeg',
  };
}

const journalRecord = (file: PlannedFile, outcome: 'uploaded' | 'sending', hash: string | null): JournalRecord =>
  ({
    time: '2026-12-01T00:00:00.000Z',
    outcome,
    host: HOST,
    org: 'acme',
    entity_id: file.entityId,
    path: file.path,
    name: file.name,
    media_type: file.mediaType ?? null,
    sha256: hash,
    bytes: file.bytes,
    status: outcome === 'uploaded' ? 200 : null,
    attempts: 1,
  }) as JournalRecord;

/** A filter over the files in `dir`, refusing repeats unless `options` say otherwise. */
const filterIn = async (dir: string, options: { journal?: Journal; allowDuplicates?: boolean } = {}) =>
  new RepeatFilter({
    scratch: await scratch(),
    reader,
    host: HOST,
    org: 'acme',
    cwd: dir,
    allowDuplicates: false,
    ...options,
  });

/** A journal as the next run opens it, after an earlier run wrote `records`. */
async function earlierRun(path: string, ...records: JournalRecord[]): Promise<Journal> {
  const earlier = await Journal.open(path);
  earlier.record(...records);
  earlier.close();
  return Journal.open(path);
}

describe('RepeatFilter', () => {
  it('skips the second copy of the same content to the same entity, naming the first', async () => {
    const dir = await tempDir();
    const filter = await filterIn(dir);
    const bytes = Buffer.from('the same selfie');
    expect(await filter.check(await planned(dir, 'a.jpg', bytes))).toEqual({});
    expect(await filter.check(await planned(dir, 'b.jpg', bytes))).toEqual({
      skip: 'duplicate',
      message: expect.stringContaining('same content as a.jpg'),
      sha256: sha256(bytes),
    });
  });

  it('sends the same content to another entity, and other content of the same size to the same one', async () => {
    const dir = await tempDir();
    const filter = await filterIn(dir);
    expect(await filter.check(await planned(dir, 'a.jpg', Buffer.from('aaaa')))).toEqual({});
    expect(await filter.check(await planned(dir, 'b.jpg', Buffer.from('aaaa'), 'c2'))).toEqual({});
    const other = await filter.check(await planned(dir, 'c.jpg', Buffer.from('bbbb')));
    expect(other).toEqual({ sha256: sha256(Buffer.from('bbbb')) });
  });

  it('spots a third copy under another name once the second was skipped', async () => {
    const dir = await tempDir();
    const filter = await filterIn(dir);
    const bytes = Buffer.from('scan');
    await filter.check(await planned(dir, 'a.jpg', bytes));
    await filter.check(await planned(dir, 'b.jpg', bytes));
    expect(await filter.check(await planned(dir, 'c.jpg', bytes))).toMatchObject({
      skip: 'duplicate',
      message: expect.stringContaining('a.jpg'),
    });
  });

  it('with allowDuplicates sends every copy', async () => {
    const dir = await tempDir();
    const filter = await filterIn(dir, { allowDuplicates: true });
    const bytes = Buffer.from('the same selfie');
    expect(await filter.check(await planned(dir, 'a.jpg', bytes))).toEqual({});
    expect(await filter.check(await planned(dir, 'b.jpg', bytes))).toEqual({});
  });

  it('skips what the journal says was uploaded with this content, and sends it when the content changed', async () => {
    const dir = await tempDir();
    const file = await planned(dir, 'a.jpg', Buffer.from('v1'));
    const journal = await earlierRun(join(dir, 'j.jsonl'), journalRecord(file, 'uploaded', sha256(Buffer.from('v1'))));
    const filter = await filterIn(dir, { journal });
    expect(await filter.check(file)).toMatchObject({ skip: 'journal', message: expect.stringContaining('j.jsonl') });
    const changed = await planned(dir, 'a.jpg', Buffer.from('v2'));
    expect(await filter.check(changed)).toEqual({ sha256: sha256(Buffer.from('v2')) });
    journal.close();
  });

  it('says the outcome is unknown for a file an earlier run was sending when it ended', async () => {
    const dir = await tempDir();
    const file = await planned(dir, 'a.jpg', Buffer.from('in flight'));
    const journal = await earlierRun(
      join(dir, 'j.jsonl'),
      journalRecord(file, 'sending', sha256(Buffer.from('in flight'))),
    );
    const filter = await filterIn(dir, { journal });
    expect(await filter.check(file)).toEqual({ unknownOutcome: true, sha256: sha256(Buffer.from('in flight')) });
    journal.close();
  });

  it('reports a file it must hash but cannot read as unreadable', async () => {
    const dir = await tempDir();
    const filter = await filterIn(dir);
    await filter.check(await planned(dir, 'a.jpg', Buffer.from('same size')));
    const second = await planned(dir, 'b.jpg', Buffer.from('same size'));
    await rm(second.absPath);
    const verdict = await filter.check(second);
    expect(verdict).toEqual({ unreadable: expect.objectContaining({ code: 'ENOENT' }) });
  });
});
