import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { upload, UsageError, type UploadOptions } from '../../src/index.js';
import { readReport } from '../../src/core/inputs/report-format.js';
import { startSandbox, type Sandbox } from '../../src/sandbox/server.js';
import { closeAfter, FIXTURES, planned, runCli, sha256, tempDir } from '../helpers.js';
import { systemClock, type Clock } from '../../src/core/shared/clock.js';

const KEY = 'k-report-back-5f1e';

async function sandbox(entities?: string[]): Promise<Sandbox> {
  return closeAfter(await startSandbox({ apiKey: KEY, org: 'acme', ...(entities && { entities }) }));
}

const send = (server: Sandbox, options: Partial<UploadOptions>) =>
  upload({ org: server.org, baseUrl: server.url, apiKey: server.apiKey, ...options });
/** A retry sent to a fresh sandbox, which listens on another port: another host, so it is said to be meant. */
const retry = (server: Sandbox, options: Partial<UploadOptions>) => send(server, { retryElsewhere: true, ...options });

/** Four files in a manifest, two of them for cust-2, one with custom_data the report must carry. */
async function exportFolder(): Promise<string> {
  const dir = await tempDir();
  await mkdir(join(dir, 'files'));
  for (const name of [
    'passport_front.jpg',
    'passport_front.jpg.json',
    'selfie.jpg',
    'proof_of_address.pdf',
    'proof_of_address.pdf.json',
    'id_card_front.jpg',
  ]) {
    await copyFile(join(FIXTURES, name), join(dir, 'files', name));
  }
  const rows = [
    'path,entity_id,media_type,custom_data',
    'files/passport_front.jpg,cust-1,,',
    'files/selfie.jpg,cust-2,,"{""case"":""=7""}"',
    'files/proof_of_address.pdf,cust-1,,',
    'files/id_card_front.jpg,cust-2,IMAGE_ID_CARD_BACK,',
  ];
  await writeFile(join(dir, 'manifest.csv'), `${rows.join('\n')}\n`);
  return dir;
}

/** What a sandbox stored, by file name: entity, media_type, custom_data, hash. */
const storedBy = (server: Sandbox) =>
  Object.fromEntries(
    server.stored.map((m) => [m.name, [m.objectId, m.mediaType ?? null, m.customData ?? null, m.sha256]]),
  );

describe('a report given back', () => {
  it.each(['csv', 'json'] as const)(
    'as --manifest (%s), sends every file it lists again, as the first run sent it',
    async (format) => {
      const dir = await exportFolder();
      const first = await sandbox(['cust-1']);
      const report = join(dir, `report.${format}`);
      const summary = await send(first, { manifest: 'manifest.csv', report, cwd: dir });
      expect(summary).toMatchObject({ uploaded: 2, failed: 2 });

      const again = await sandbox();
      expect(await send(again, { manifest: report, cwd: await tempDir() })).toMatchObject({ uploaded: 4, failed: 0 });
      const expected = {
        'passport_front.jpg': [
          'cust-1',
          'IMAGE_PASSPORT_FRONT',
          { source: 'onfido', document_country: 'GB', document_number_last4: '4821' },
          await sha256(join(dir, 'files', 'passport_front.jpg')),
        ],
        'selfie.jpg': ['cust-2', 'IMAGE_FACE_IMAGE', { case: '=7' }, await sha256(join(dir, 'files', 'selfie.jpg'))],
        'proof_of_address.pdf': [
          'cust-1',
          null,
          expect.objectContaining({ document: 'utility_bill' }),
          await sha256(join(dir, 'files', 'proof_of_address.pdf')),
        ],
        'id_card_front.jpg': [
          'cust-2',
          'IMAGE_ID_CARD_BACK',
          null,
          await sha256(join(dir, 'files', 'id_card_front.jpg')),
        ],
      };
      expect(storedBy(again)).toEqual(expected);
    },
  );

  it.each(['csv', 'json'] as const)(
    'with --retry-failed (%s), sends only the failed files, keeping where their media_type came from',
    async (format) => {
      const dir = await exportFolder();
      const first = await sandbox(['cust-1']);
      const report = join(dir, `report.${format}`);
      await send(first, { manifest: 'manifest.csv', report, cwd: dir });

      const again = await sandbox();
      const retryReport = join(dir, `retry.${format}`);
      expect(await retry(again, { retryFailed: report, report: retryReport, cwd: dir })).toMatchObject({
        total: 2,
        uploaded: 2,
        failed: 0,
        skipped: 0,
      });
      expect(storedBy(again)).toEqual({
        'selfie.jpg': ['cust-2', 'IMAGE_FACE_IMAGE', { case: '=7' }, await sha256(join(dir, 'files', 'selfie.jpg'))],
        'id_card_front.jpg': [
          'cust-2',
          'IMAGE_ID_CARD_BACK',
          null,
          await sha256(join(dir, 'files', 'id_card_front.jpg')),
        ],
      });
      const rows = await readReport(retryReport);
      expect(rows.map((r) => [r.path, r.media_type_source, r.outcome]).sort()).toEqual([
        ['files/id_card_front.jpg', 'manifest', 'uploaded'],
        ['files/selfie.jpg', 'file_name', 'uploaded'],
      ]);
      // The retry's own report has nothing left to retry: a run from it sends nothing and ends clean.
      const third = await sandbox();
      expect(await retry(third, { retryFailed: retryReport, cwd: dir })).toMatchObject({
        total: 0,
        uploaded: 0,
        failed: 0,
      });
      expect(third.requests).toHaveLength(0);
    },
  );

  it('takes the not_sent rows of a run stopped by --fail-fast, and not the skipped duplicates', async () => {
    const dir = await exportFolder();
    await copyFile(join(dir, 'files', 'passport_front.jpg'), join(dir, 'files', 'passport copy.jpg'));
    await writeFile(
      join(dir, 'manifest.csv'),
      'path,entity_id\nfiles/passport_front.jpg,cust-1\nfiles/passport copy.jpg,cust-1\nfiles/selfie.jpg,cust-2\nfiles/proof_of_address.pdf,cust-1\nfiles/id_card_front.jpg,cust-1\n',
    );
    const first = await sandbox(['cust-1']);
    const report = join(dir, 'report.csv');
    const summary = await send(first, { manifest: 'manifest.csv', report, cwd: dir, failFast: true, concurrency: 1 });
    expect(summary).toMatchObject({ uploaded: 1, failed: 1, not_sent: 2 });
    const rows = await readReport(report);
    // A skip is told as it is decided, before the upload ahead of it ends: compared in path order.
    expect(rows.map((r) => [r.path, r.outcome, r.reason?.split(':')[0] ?? null]).sort()).toEqual([
      ['files/id_card_front.jpg', 'skipped', 'not_sent'],
      ['files/passport copy.jpg', 'skipped', 'duplicate'],
      ['files/passport_front.jpg', 'uploaded', null],
      ['files/proof_of_address.pdf', 'skipped', 'not_sent'],
      ['files/selfie.jpg', 'failed', 'resource_not_found'],
    ]);

    const again = await sandbox();
    await retry(again, { retryFailed: report, cwd: dir });
    expect(again.stored.map((m) => m.name).sort()).toEqual(['id_card_front.jpg', 'proof_of_address.pdf', 'selfie.jpg']);
  });

  it('still refuses a plain manifest with a column it does not know', async () => {
    const dir = await exportFolder();
    await writeFile(join(dir, 'm.csv'), 'path,entity_id,media_typ\nfiles/selfie.jpg,c1,IMAGE_FACE_IMAGE\n');
    const { invalid } = await planned({ manifest: join(dir, 'm.csv') });
    expect(invalid).toEqual([
      { path: join(dir, 'm.csv'), message: expect.stringMatching(/unknown column "media_typ"/) },
    ]);
  });

  it('refuses a manifest given as --retry-failed, and a JSON file that is not a report', async () => {
    const dir = await exportFolder();
    const plain = await planned({ retryFailed: join(dir, 'manifest.csv') });
    expect(plain.invalid).toEqual([
      { path: join(dir, 'manifest.csv'), message: expect.stringMatching(/^not a report written by --report/) },
    ]);
    await writeFile(join(dir, 'list.json'), '[{"path":"files/selfie.jpg","entity_id":"c1"}]\n');
    const json = await planned({ manifest: join(dir, 'list.json') });
    expect(json.invalid).toEqual([
      { path: join(dir, 'list.json'), message: expect.stringMatching(/^not a report written by --report/) },
    ]);
  });

  it.each([
    [{ manifest: 'm.csv' }, '--manifest'],
    [{ entity: 'c1' }, '--entity'],
    [{ event: 'e1' }, '--event'],
    [{ alert: 'a1' }, '--alert'],
    [{ paths: ['x.jpg'] }, 'path arguments'],
    [{ entity: 'c1', paths: ['x.jpg'] }, '--entity, path arguments'],
  ])('refuses --retry-failed with %j', async (options, named) => {
    const error = await planned({ retryFailed: 'report.csv', ...options }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toBe(`--retry-failed cannot be combined with ${named}`);
  });

  it("merges a report and its retry's into the last outcome of each file, ordered by time, and the merge retries what is still to do", async () => {
    const dir = await exportFolder();
    // cust-3 exists in no sandbox: its file fails every time.
    await writeFile(
      join(dir, 'manifest.csv'),
      'path,entity_id\nfiles/passport_front.jpg,cust-1\nfiles/selfie.jpg,cust-2\nfiles/proof_of_address.pdf,cust-1\nfiles/id_card_front.jpg,cust-3\n',
    );
    // Each run's clock starts on a day of its own, so the times in the reports say which run came last.
    const at = (day: number): Clock => {
      const offset = Date.UTC(2026, 0, day) - Date.now();
      return { ...systemClock, now: () => Date.now() + offset };
    };
    const first = await sandbox(['cust-1']);
    expect(
      await send(first, { manifest: 'manifest.csv', report: join(dir, 'report.csv'), cwd: dir, clock: at(1) }),
    ).toMatchObject({ uploaded: 2, failed: 2 });
    const second = await sandbox(['cust-1', 'cust-2']);
    expect(
      await retry(second, {
        retryFailed: join(dir, 'report.csv'),
        report: join(dir, 'report.retry.json'),
        cwd: dir,
        clock: at(2),
      }),
    ).toMatchObject({ uploaded: 1, failed: 1 });

    // Given the retry first: the times say which outcome is the last.
    const merged = await runCli(['report', 'merge', 'report.retry.json', 'report.csv', '--output', 'merged.csv'], {
      cwd: dir,
    });
    expect(merged.code).toBe(1);
    expect(merged.stdout.split('\n')[0]).toBe(
      '4 files from 2 reports: 3 uploaded, 1 failed, 0 skipped (the last outcome of each: 2 earlier rows replaced); still to do: 1 (1 failed)',
    );
    const rows = await readReport(join(dir, 'merged.csv'));
    expect(rows.map((r) => [r.path, r.outcome]).sort()).toEqual([
      ['files/id_card_front.jpg', 'failed'],
      ['files/passport_front.jpg', 'uploaded'],
      ['files/proof_of_address.pdf', 'uploaded'],
      ['files/selfie.jpg', 'uploaded'],
    ]);

    const third = await sandbox(['cust-3']);
    expect(await retry(third, { retryFailed: join(dir, 'merged.csv'), cwd: dir })).toMatchObject({
      total: 1,
      uploaded: 1,
      failed: 0,
    });
    expect(Object.keys(storedBy(third))).toEqual(['id_card_front.jpg']);
  });

  it("retries from a CSV report written before reports were plain CSV, its first line the run's comment", async () => {
    const dir = await exportFolder();
    const selfie = join(dir, 'files', 'selfie.jpg');
    const old = `# u21-media report · run 20260101T000000Z-abcdef · host h · org acme · config none · started 2026-01-01T00:00:00.000Z\npath,abs_path,entity_id,outcome,reason\nfiles/selfie.jpg,${selfie},cust-2,failed,resource_not_found: no such entity\nfiles/passport_front.jpg,,cust-1,uploaded,\n`;
    await writeFile(join(dir, 'old.csv'), old);
    const server = await sandbox();
    expect(await retry(server, { retryFailed: join(dir, 'old.csv'), cwd: dir })).toMatchObject({
      total: 1,
      uploaded: 1,
      failed: 0,
    });
    expect(storedBy(server)).toEqual({ 'selfie.jpg': ['cust-2', 'IMAGE_FACE_IMAGE', null, await sha256(selfie)] });
  });

  it('merges old reports (without the new columns) with new ones', async () => {
    const dir = await tempDir();
    const old =
      '# u21-media report · run 20260101T000000Z-abcdef · host h · org o · config none · started 2026-01-01T00:00:00.000Z\npath,entity_id,media_type,bytes,sha256,outcome,reason,status,attempts,possibly_duplicated\na.jpg,c1,,3,abc,uploaded,,200,1,false\n';
    await writeFile(join(dir, 'old.csv'), old);
    const rows = await readReport(join(dir, 'old.csv'));
    expect(rows).toEqual([
      expect.objectContaining({
        path: 'a.jpg',
        entity_id: 'c1',
        bytes: 3,
        sha256: 'abc',
        outcome: 'uploaded',
        abs_path: null,
        name: null,
        time: null,
      }),
    ]);
    expect(await readFile(join(dir, 'old.csv'), 'utf8')).toBe(old);
  });
});
