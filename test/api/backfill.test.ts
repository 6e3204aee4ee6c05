import { appendFileSync, writeFileSync } from 'node:fs';
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  InputError,
  upload,
  UsageError,
  type CheckProgress,
  type UploadEvent,
  type UploadOptions,
} from '../../src/index.js';
import { startSandbox } from '../../src/sandbox/server.js';
import { parseCsv } from '../../src/core/shared/csv.js';
import { closeAfter, FIXTURES, planned, sha256, tempDir, validContent } from '../helpers.js';
import { readVersion } from '../../src/core/shared/version.js';

const version = readVersion();

async function run(options: Partial<UploadOptions>, sandbox: Parameters<typeof startSandbox>[0] = {}) {
  const server = closeAfter(await startSandbox(sandbox));
  const events: UploadEvent[] = [];
  const summary = await upload({
    org: server.org,
    baseUrl: server.url,
    apiKey: server.apiKey,
    onEvent: (e) => events.push(e),
    ...options,
  });
  const byEntity: Record<string, string[]> = {};
  for (const m of server.stored) (byEntity[m.objectId] ??= []).push(m.name);
  for (const names of Object.values(byEntity)) names.sort();
  return { server, events, summary, byEntity };
}

const fixture = (name: string) => join(FIXTURES, name);

/** A CSV report read back with the manifest's own CSV reader: the column names first, as any CSV reader expects. */
async function csvObjects(text: string): Promise<Array<Record<string, string>>> {
  expect(text.split('\n')[0]).toMatch(/^time,org,host,entity_id,path,/);
  const records = [];
  for await (const record of parseCsv([text])) records.push(record.fields);
  const [header, ...rows] = records;
  return rows.map((fields) => Object.fromEntries(header!.map((column, i) => [column, fields[i]!])));
}

describe('--entity-from dir', () => {
  it('sends each file to the entity its folder names', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'export', 'cust-1'), { recursive: true });
    await mkdir(join(dir, 'export', 'cust 2', 'nested'), { recursive: true });
    await copyFile(fixture('selfie.jpg'), join(dir, 'export', 'cust-1', 'selfie.jpg'));
    await copyFile(fixture('passport_front.jpg'), join(dir, 'export', 'cust-1', 'passport_front.jpg'));
    await copyFile(fixture('id_card_front.jpg'), join(dir, 'export', 'cust 2', 'id_card_front.jpg'));
    await copyFile(fixture('id_card_back.jpg'), join(dir, 'export', 'cust 2', 'nested', 'id_card_back.jpg'));
    const { byEntity, summary } = await run({ paths: [join(dir, 'export')], entityFrom: 'dir' });
    expect(byEntity).toEqual({
      'cust-1': ['passport_front.jpg', 'selfie.jpg'],
      'cust 2': ['id_card_front.jpg'],
      nested: ['id_card_back.jpg'],
    });
    expect(summary.uploaded).toBe(4);
  });
});

describe('--entity-from prefix', () => {
  it('takes the entity from the name before __, and reads the rest for the media type', async () => {
    const dir = await tempDir();
    await copyFile(fixture('passport_front.jpg'), join(dir, 'cust42__passport_front.jpg'));
    await copyFile(fixture('selfie.jpg'), join(dir, 'cust-43__selfie.jpg'));
    await copyFile(fixture('selfie.jpg'), join(dir, 'cust42__id__selfie.jpg'));
    const { server, byEntity } = await run({ paths: [dir], entityFrom: 'prefix', allowDuplicates: true });
    expect(byEntity).toEqual({
      cust42: ['cust42__id__selfie.jpg', 'cust42__passport_front.jpg'],
      'cust-43': ['cust-43__selfie.jpg'],
    });
    const types = Object.fromEntries(server.stored.map((m) => [m.name, m.mediaType]));
    expect(types).toEqual({
      'cust42__passport_front.jpg': 'IMAGE_PASSPORT_FRONT',
      'cust-43__selfie.jpg': 'IMAGE_FACE_IMAGE',
      'cust42__id__selfie.jpg': 'IMAGE_FACE_IMAGE',
    });
  });

  it('refuses a file without a prefix, naming it', async () => {
    const dir = await tempDir();
    await copyFile(fixture('selfie.jpg'), join(dir, 'selfie.jpg'));
    await copyFile(fixture('selfie.jpg'), join(dir, '__selfie.jpg'));
    const { invalid } = await planned({ paths: [dir], entityFrom: 'prefix' });
    expect(invalid.map((p) => p.path).sort()).toEqual([join(dir, '__selfie.jpg'), join(dir, 'selfie.jpg')]);
    expect(invalid[0]!.message).toMatch(/no "<entity>__" prefix/);
  });
});

describe('--manifest', () => {
  async function kycFolder() {
    const dir = await tempDir();
    await mkdir(join(dir, 'files', 'a b'), { recursive: true });
    for (const name of ['selfie.jpg', 'passport_front.jpg', 'proof_of_address.pdf', 'analyst_note.txt']) {
      await copyFile(fixture(name), join(dir, 'files', 'a b', name));
    }
    return dir;
  }

  it('reads CSV with a BOM, CRLF, quoted commas, quotes and line breaks, and JSON custom_data', async () => {
    const dir = await kycFolder();
    const csv = [
      'path,entity_id,media_type,custom_data',
      'files/a b/selfie.jpg,"cust,1",,"{""source"":""app, v2""}"',
      '"files/a b/passport_front.jpg","cust ""2""",IMAGE_PASSPORT_FRONT,',
      'files/a b/analyst_note.txt,cust-3,,"{""note"":""one"",',
      '""lines"":2}"',
      '',
    ].join('\r\n');
    await writeFile(join(dir, 'manifest.csv'), `\uFEFF${csv}`);
    const { server, summary } = await run({ manifest: join(dir, 'manifest.csv') });
    expect(summary).toMatchObject({ uploaded: 3, failed: 0, skipped: 0 });
    const stored = Object.fromEntries(server.stored.map((m) => [m.name, [m.objectId, m.mediaType, m.customData]]));
    expect(stored).toEqual({
      'selfie.jpg': ['cust,1', 'IMAGE_FACE_IMAGE', { source: 'app, v2' }],
      'passport_front.jpg': ['cust "2"', 'IMAGE_PASSPORT_FRONT', null],
      'analyst_note.txt': ['cust-3', null, { note: 'one', lines: 2 }],
    });
    for (const m of server.stored) expect(m.sha256).toBe(await sha256(fixture(m.name)));
  });

  it('lets the manifest media_type win over the sidecar, and merges custom_data', async () => {
    const dir = await kycFolder();
    await writeFile(
      join(dir, 'files', 'a b', 'selfie.jpg.json'),
      '{"media_type":"IMAGE_PROFILE_PICTURE","source":"sidecar","keep":1}',
    );
    await writeFile(
      join(dir, 'm.jsonl'),
      `${JSON.stringify({ path: 'files/a b/selfie.jpg', entity_id: 'c1', media_type: 'IMAGE_FACE_IMAGE', custom_data: { source: 'row' } })}\n`,
    );
    const { server } = await run({ manifest: join(dir, 'm.jsonl') });
    expect(server.stored[0]).toMatchObject({
      objectId: 'c1',
      mediaType: 'IMAGE_FACE_IMAGE',
      customData: { source: 'row', keep: 1 },
    });
  });

  it('reads JSONL, one object per line', async () => {
    const dir = await kycFolder();
    const lines = [
      { path: 'files/a b/selfie.jpg', entity_id: 'c1' },
      {
        path: 'files/a b/proof_of_address.pdf',
        entity_id: 'c2',
        media_type: 'PROOF_OF_ADDRESS',
        custom_data: { x: [1, 2] },
      },
    ];
    await writeFile(join(dir, 'm.jsonl'), `\uFEFF${lines.map((l) => JSON.stringify(l)).join('\r\n')}\r\n\r\n`);
    const { byEntity, server } = await run({ manifest: join(dir, 'm.jsonl') });
    expect(byEntity).toEqual({ c1: ['selfie.jpg'], c2: ['proof_of_address.pdf'] });
    expect(server.stored.find((m) => m.objectId === 'c2')).toEqual(
      expect.objectContaining({ mediaType: 'PROOF_OF_ADDRESS', customData: { x: [1, 2] } }),
    );
  });

  it('reports every bad row with its line number and sends nothing', async () => {
    const dir = await kycFolder();
    const csv = [
      'path,entity_id,media_type,custom_data', // line 1
      'files/a b/selfie.jpg,c1,,', // 2: fine
      'files/a b/missing.jpg,c1,,', // 3: no such file
      'files/a b/passport_front.jpg,,,', // 4: no entity
      'files/a b/analyst_note.txt,c1,,{not json}', // 5: bad custom_data
      'files/a b/analyst_note.txt,c1', // 6: field count
      'files/a b/proof_of_address.pdf,c1,,"[1]"', // 7: not an object
      `files/a b/selfie.jpg,${'x'.repeat(129)},,`, // 8: entity too long
    ].join('\n');
    await writeFile(join(dir, 'manifest.csv'), csv);
    const server = closeAfter(await startSandbox());
    const error = await upload({
      manifest: join(dir, 'manifest.csv'),
      org: server.org,
      baseUrl: server.url,
      apiKey: server.apiKey,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputError);
    const lines = (error as InputError).problems.map((p) => `${p.path.split('/').at(-1)}: ${p.message}`);
    expect(lines).toEqual([
      expect.stringMatching(/^manifest\.csv:3: .*missing\.jpg: cannot read it \(ENOENT\)/),
      'manifest.csv:4: "entity_id" is missing',
      'manifest.csv:5: "custom_data" is not valid JSON',
      expect.stringMatching(/^manifest\.csv:6: 2 fields where the header has 4/),
      'manifest.csv:7: "custom_data" must be a JSON object',
      expect.stringMatching(/^manifest\.csv:8: .*129 characters/),
    ]);
    expect(server.requests).toHaveLength(0);
  });

  it('refuses a header without path and entity_id, and a missing manifest', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'm.csv'), 'file,customer\nx.jpg,c1\n');
    const bad = await planned({ manifest: join(dir, 'm.csv') });
    expect(bad.invalid[0]!.message).toMatch(/header must name path and entity_id/);
    const missing = await planned({ manifest: join(dir, 'nope.csv') });
    expect(missing.invalid).toEqual([{ path: join(dir, 'nope.csv'), message: 'no such manifest file' }]);
  });
});

describe('one entity source per run', () => {
  it.each([
    [{ entity: 'a', entityFrom: 'dir' as const, paths: ['x'] }, /--entity and --entity-from both decide/],
    [{ entity: 'a', manifest: 'm.csv' }, /--entity and --manifest both decide/],
    [{ paths: ['x'] }, /no entity given/],
    [{ manifest: 'm.csv', paths: ['x'] }, /path arguments and --manifest both name files/],
  ])('refuses %j', async (options, message) => {
    const error = await planned(options).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as Error).message).toMatch(message);
  });
});

describe('--report', () => {
  it.each(['json', 'csv'] as const)('writes one %s row per file with its outcome', async (format) => {
    const dir = await tempDir();
    await mkdir(join(dir, 'in', 'ghost'), { recursive: true });
    await mkdir(join(dir, 'in', 'cust-1'), { recursive: true });
    await copyFile(fixture('selfie.jpg'), join(dir, 'in', 'cust-1', 'selfie.jpg'));
    await copyFile(fixture('selfie.jpg'), join(dir, 'in', 'cust-1', 'selfie copy.jpg'));
    await copyFile(fixture('passport_front.jpg'), join(dir, 'in', 'ghost', 'passport_front.jpg'));
    await writeFile(join(dir, 'in', 'cust-1', 'notes.docx'), 'x');
    const report = join(dir, `report.${format}`);
    const { summary, server } = await run(
      { paths: [join(dir, 'in')], entityFrom: 'dir', report },
      { entities: ['cust-1'] },
    );
    expect(summary).toMatchObject({ total: 4, uploaded: 1, failed: 1, skipped: 2 });

    const text = await readFile(report, 'utf8');
    const header = {
      tool: 'u21-media',
      tool_version: version,
      run_id: expect.stringMatching(/^\d{8}T\d{6}Z-[0-9a-f]{6}$/),
      host: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+\/v1$/),
      org: 'sandbox',
      proxy: null,
      config: null,
      command: null,
      started: expect.any(String),
    };
    const end = {
      ended: expect.stringMatching(/^\d{4}-\d\d-\d\dT/),
      totals: expect.objectContaining({ total: 4, uploaded: 1, failed: 1, skipped: 2 }),
    };
    let rows: Array<Record<string, unknown>>;
    if (format === 'json') {
      const records = JSON.parse(text) as Array<Record<string, unknown>>;
      expect(records[0]).toEqual({ run: header });
      expect(records.at(-1)).toEqual({ run_end: end });
      rows = records.slice(1, -1);
    } else {
      rows = await csvObjects(text);
      expect(JSON.parse(await readFile(`${report}.meta.json`, 'utf8'))).toEqual({ ...header, ...end });
    }
    expect(rows).toHaveLength(4);
    // What every row tells a reviewer, whatever the format.
    const host = server.url + '/v1';
    for (const row of rows)
      expect(row).toMatchObject({
        org: 'sandbox',
        host,
        time: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      });
    const byName = Object.fromEntries(rows.map((r) => [String(r.path).split('/').at(-1)!, r] as const));
    // The walk meets the two identical selfies in either order: one goes, one is a duplicate.
    const [sent, copy] = ['selfie.jpg', 'selfie copy.jpg'].sort((a) => (byName[a]!.outcome === 'uploaded' ? -1 : 1));
    const selfieSha = await sha256(fixture('selfie.jpg'));
    expect(byName[sent!]).toMatchObject({
      entity_id: 'cust-1',
      name: sent,
      abs_path: join(dir, 'in', 'cust-1', sent!),
      media_type: 'IMAGE_FACE_IMAGE',
      media_type_source: 'file_name',
      outcome: 'uploaded',
      sha256: selfieSha,
    });
    expect(byName[copy!]).toMatchObject({ outcome: 'skipped', sha256: selfieSha });
    expect(String(byName[copy!]!.reason)).toMatch(/^duplicate/);
    // A failed row says what was tried: the file's hash, the media_type and where it came from, the API's error_code.
    expect(byName['passport_front.jpg']).toMatchObject({
      entity_id: 'ghost',
      outcome: 'failed',
      name: 'passport_front.jpg',
      media_type_source: 'file_name',
      sha256: await sha256(fixture('passport_front.jpg')),
      error_code: 'resource_not_found',
    });
    expect(String(byName['passport_front.jpg']!.status)).toBe('404');
    expect(byName['notes.docx']).toMatchObject({ outcome: 'skipped' });
  });

  it('refuses a report that is neither .json nor .csv before sending', async () => {
    const server = closeAfter(await startSandbox());
    await expect(
      upload({
        paths: [fixture('selfie.jpg')],
        entity: 'c',
        report: 'out.txt',
        org: server.org,
        baseUrl: server.url,
        apiKey: server.apiKey,
      }),
    ).rejects.toThrow(/must end in \.json or \.csv/);
    expect(server.requests).toHaveLength(0);
  });
});

describe('totals for progress', () => {
  it.each([false, true])(
    'reports the number of files up front (skipInvalid %s) and it matches the summary',
    async (skipInvalid) => {
      const dir = await tempDir();
      for (const name of ['a_selfie.jpg', 'b_selfie.jpg', 'notes.docx'])
        await writeFile(join(dir, name), validContent(name, name));
      let total: number | undefined;
      const { summary } = await run({ paths: [dir], entity: 'c', skipInvalid, onTotal: (n) => (total = n) });
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(total).toBe(3);
      expect(summary.total).toBe(3);
    },
  );
});

describe('the check before sending, as it goes', () => {
  async function folderOf(files: number) {
    const dir = await tempDir();
    await Promise.all(
      Array.from({ length: files }, (_, i) =>
        writeFile(join(dir, `doc_${String(i).padStart(3, '0')}.pdf`), `%PDF-1.4 ${i}\n%%EOF\n`),
      ),
    );
    await writeFile(join(dir, 'notes.docx'), 'not sent');
    return dir;
  }

  it.each([undefined, { k: 1, n: 2 }])(
    'tells of each input checked, and of all of them once counted (shard %o)',
    async (shard) => {
      const dir = await folderOf(40);
      const seen: CheckProgress[] = [];
      const { summary, server } = await run({
        paths: [dir],
        entity: 'c',
        ...(shard && { shard }),
        onCheck: (p) => seen.push(p),
      });
      // Each input once, another shard's too: all of them is what the check goes through.
      const steps = [...new Set(seen.map((p) => p.checked))].filter((n) => n > 0);
      expect(steps).toEqual(Array.from({ length: 41 }, (_, i) => i + 1));
      expect(seen.at(-1)).toEqual({ checked: 41, total: 41 });
      expect(seen.every((p) => p.total === undefined || p.total === 41)).toBe(true);
      expect(summary.uploaded).toBe(server.stored.length);
      if (shard) expect(summary.total).toBeLessThan(41);
      else expect(summary).toMatchObject({ total: 41, uploaded: 40 });
    },
  );

  it('stopped midway sends nothing and returns a summary of no file', async () => {
    const dir = await folderOf(40);
    const drain = new AbortController();
    let last = 0;
    const { summary, server } = await run({
      paths: [dir],
      entity: 'c',
      drain: drain.signal,
      onCheck: ({ checked }) => {
        last = checked;
        if (checked === 10) drain.abort();
      },
    });
    expect(summary).toMatchObject({ stopped: 'interrupted', total: 0, uploaded: 0, skipped: 0 });
    expect(server.requests).toHaveLength(0);
    expect(last).toBeGreaterThanOrEqual(10);
    expect(last).toBeLessThan(41);
  });
});

describe('a run larger than the checked files kept in memory', () => {
  it('sends exactly what its check found, at the checked size, each once, each warning once', async () => {
    const dir = await tempDir();
    const count = 20_005; // just over the 20,000 a run keeps from its check
    for (let folder = 0; folder < 5; folder++) {
      await mkdir(join(dir, `cust-${folder}`));
      await Promise.all(
        Array.from({ length: count / 5 }, (_, i) =>
          writeFile(join(dir, `cust-${folder}`, `doc_${i}.pdf`), `%PDF-1.4 ${folder} ${i}\n%%EOF\n`),
        ),
      );
    }
    await writeFile(join(dir, 'cust-0', 'doc_0.pdf.json'), '{"media_type":"SOMETHING_ELSE"}');
    // Between the check and the first request: one file grows, one is added.
    const onTotal = (total: number) => {
      expect(total).toBe(count);
      appendFileSync(join(dir, 'cust-3', 'doc_7.pdf'), ' and more');
      writeFileSync(join(dir, 'cust-4', 'added_later.pdf'), '%PDF-1.4 new\n%%EOF\n');
      writeFileSync(join(dir, 'cust-1', 'doc_0.pdf.json'), '{"media_type":"ADDED_LATER"}');
    };
    const { summary, events, server } = await run({
      paths: [dir],
      entityFrom: 'dir',
      batch: 10,
      rate: 0,
      concurrency: 32,
      onTotal,
    });
    expect(summary).toMatchObject({ total: count, uploaded: count - 1, failed: 1, skipped: 0 });
    expect(events).toContainEqual(
      expect.objectContaining({ event: 'failed', path: join(dir, 'cust-3', 'doc_7.pdf'), error_code: 'file_changed' }),
    );
    expect(server.stored).toHaveLength(count - 1);
    const stored = new Set(server.stored.map((m) => `${m.objectId}/${m.name}`));
    expect(stored.size).toBe(count - 1);
    expect(stored.has('cust-4/added_later.pdf')).toBe(false);
    // Each unrecognised media_type is said once: the one the check met, and the one a sidecar added since brought.
    const warnings = events.flatMap((e) => (e.event === 'warning' ? [e.message] : []));
    expect(warnings).toEqual([expect.stringMatching(/SOMETHING_ELSE/), expect.stringMatching(/ADDED_LATER/)]);
  }, 60_000);
});
