// Unit21's published spec, over real HTTP to the sandbox: alerts and cases, a batch with one
// refused item, the id rule, names multipart cannot carry exactly, and media_type warnings.
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startSandbox, type SandboxOptions } from '../../src/sandbox/server.js';
import {
  InputError,
  plan,
  upload,
  type PlanEvent,
  type PlanOptions,
  type UploadEvent,
  type UploadOptions,
} from '../../src/index.js';
import { closeAfter, FIXTURES, planned, runCli, sha256, tempDir } from '../helpers.js';

const sandbox = async (options: SandboxOptions = {}) => closeAfter(await startSandbox(options));
type Server = Awaited<ReturnType<typeof sandbox>>;

function optionsFor(
  server: Server,
  extra: Partial<UploadOptions> & { paths: string[] },
): UploadOptions & { events: UploadEvent[] } {
  const events: UploadEvent[] = [];
  return {
    org: server.org,
    baseUrl: server.url,
    apiKey: server.apiKey,
    concurrency: 4,
    onEvent: (e) => events.push(e),
    events,
    ...extra,
  };
}

const warnings = (events: ReadonlyArray<UploadEvent | PlanEvent>) =>
  events.flatMap((e) => (e.event === 'warning' ? [e.message] : []));

/** A folder of small text files (content is not checked for .txt), named as given. */
async function textFiles(names: string[]): Promise<string> {
  const dir = await tempDir();
  for (const name of names) await writeFile(join(dir, name), `content of ${name}\n`);
  return dir;
}

describe.each(['multipart', 'json'] as const)('alerts and cases in %s', (format) => {
  it.each([
    ['alert', 'alerts'],
    ['case', 'cases'],
  ] as const)(
    '--%s sends every file to PUT /v1/%s/{unit21_id}/link-media, bytes and names intact',
    async (kind, objectType) => {
      const server = await sandbox();
      const paths = ['selfie.jpg', 'passport_front.jpg', 'proof_of_address.pdf'].map((name) => join(FIXTURES, name));
      const options = optionsFor(server, { paths, [kind]: '9001', format });
      const summary = await upload(options);
      expect(summary).toMatchObject({ uploaded: 3, failed: 0, skipped: 0 });
      expect(server.requests.map((r) => `${r.method} ${r.path} ${r.status}`)).toEqual(
        Array(3).fill(`PUT /v1/${objectType}/9001/link-media 200`),
      );
      const stored = Object.fromEntries(server.stored.map((m) => [m.name, [m.objectType, m.objectId, m.sha256]]));
      expect(stored).toEqual({
        'selfie.jpg': [objectType, '9001', await sha256(paths[0]!)],
        'passport_front.jpg': [objectType, '9001', await sha256(paths[1]!)],
        'proof_of_address.pdf': [objectType, '9001', await sha256(paths[2]!)],
      });
      expect(server.stored.find((m) => m.name === 'passport_front.jpg')?.mediaType).toBe('IMAGE_PASSPORT_FRONT');
      expect(options.events.filter((e) => e.event === 'uploaded').map((e) => 'object' in e && e.object)).toEqual(
        Array(3).fill(objectType),
      );
    },
  );
});

describe('alerts and cases', () => {
  it.each(['csv', 'jsonl'] as const)(
    'take a %s manifest whose rows name an entity_id, an alert_id or a case_id',
    async (format) => {
      const server = await sandbox();
      const dir = await textFiles(['a.txt', 'b.txt', 'c.txt', 'd.txt']);
      const rows = [
        { path: 'a.txt', entity_id: 'cust-1' },
        { path: 'b.txt', alert_id: '501' },
        { path: 'c.txt', case_id: '77' },
        { path: 'd.txt', alert_id: '501' },
      ];
      const manifest = join(dir, `list.${format}`);
      const csv = [
        'path,entity_id,alert_id,case_id',
        ...rows.map((r) => [r.path, r.entity_id ?? '', r.alert_id ?? '', r.case_id ?? ''].join(',')),
      ];
      await writeFile(
        manifest,
        format === 'csv' ? `${csv.join('\n')}\n` : `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`,
      );
      expect(await upload(optionsFor(server, { paths: [], manifest, batch: 10 }))).toMatchObject({
        uploaded: 4,
        failed: 0,
      });
      const where = Object.fromEntries(server.stored.map((m) => [m.name, `${m.objectType}/${m.objectId}`]));
      expect(where).toEqual({
        'a.txt': 'entities/cust-1',
        'b.txt': 'alerts/501',
        'c.txt': 'cases/77',
        'd.txt': 'alerts/501',
      });
      // Batches hold consecutive rows for one place: b and d, apart in the list, go in two requests.
      expect(server.requests.map((r) => r.path).sort()).toEqual(
        [
          '/v1/alerts/501/link-media',
          '/v1/alerts/501/link-media',
          '/v1/cases/77/link-media',
          `/v1/${server.org}/entities/cust-1/link-media`,
        ].sort(),
      );
    },
  );

  it('refuses a manifest row that names two places, naming its line', async () => {
    const dir = await textFiles(['a.txt']);
    await writeFile(join(dir, 'list.csv'), 'path,entity_id,alert_id\na.txt,cust-1,501\n');
    const { invalid } = await planned({ manifest: join(dir, 'list.csv') });
    expect(invalid).toEqual([
      {
        path: `${join(dir, 'list.csv')}:2`,
        message: '"entity_id" and "alert_id" are both given; a row names one entity, alert or case',
      },
    ]);
  });

  it('keeps an alert and an entity of the same id apart in the journal: one does not skip the other', async () => {
    const server = await sandbox();
    const dir = await tempDir();
    const journal = join(dir, 'journal.jsonl');
    const paths = [join(FIXTURES, 'selfie.jpg')];
    expect(await upload(optionsFor(server, { paths, entity: '42', journal }))).toMatchObject({ uploaded: 1 });
    expect(await upload(optionsFor(server, { paths, alert: '42', journal }))).toMatchObject({
      uploaded: 1,
      skipped: 0,
    });
    expect(await upload(optionsFor(server, { paths, case: '42', journal }))).toMatchObject({ uploaded: 1, skipped: 0 });
    // And each again is skipped: the journal knows each of them.
    expect(await upload(optionsFor(server, { paths, alert: '42', journal }))).toMatchObject({
      uploaded: 0,
      skipped: 1,
    });
    expect(server.stored.map((m) => `${m.objectType}/${m.objectId}`)).toEqual(['entities/42', 'alerts/42', 'cases/42']);
    const records = (await readFile(journal, 'utf8'))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { object?: string; outcome: string });
    expect(records.filter((r) => r.outcome === 'uploaded').map((r) => r.object ?? 'entity')).toEqual([
      'entity',
      'alerts',
      'cases',
    ]);
  });

  it('warns before sending more than 100 files to one alert or case, and not for 100', async () => {
    const hundred = await textFiles(Array.from({ length: 100 }, (_, i) => `note_${i}.txt`));
    expect(warnings(await plannedEvents({ paths: [hundred], alert: '7' }))).toEqual([]);
    await writeFile(join(hundred, 'note_100.txt'), 'one more\n');
    const warned = warnings(await plannedEvents({ paths: [hundred], case: '7' }));
    expect(warned).toEqual([
      expect.stringMatching(
        /^more than 100 files go to case 7: Unit21's dashboard shows at most 100 media per alert or case/,
      ),
    ]);
    // An entity has no such cap.
    expect(warnings(await plannedEvents({ paths: [hundred], entity: '7' }))).toEqual([]);
  });

  it('refuses two targets at once, naming both', async () => {
    const server = await sandbox();
    const result = await runCli(
      ['upload', 'x.txt', '--alert', '1', '--case', '2', '--org', server.org, '--base-url', server.url],
      { cwd: await tempDir(), env: { U21_API_KEY: server.apiKey } },
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--alert and --case both decide the entity');
    expect(server.requests).toHaveLength(0);
  });
});

async function plannedEvents(options: PlanOptions) {
  const events: PlanEvent[] = [];
  await plan({ ...options, onEvent: (e) => events.push(e) });
  return events;
}

describe.each(['multipart', 'json'] as const)('a batch with one refused item, in %s', (format) => {
  it('is split: the others are stored, the one at fault fails with the server message, and the summary and report say so', async () => {
    const server = await sandbox({ strictMediaTypes: true });
    const dir = await textFiles(['a.txt', 'b.txt', 'c.txt']);
    await writeFile(join(dir, 'b.txt.json'), JSON.stringify({ media_type: 'PROOF_OF_ADDRESS' }));
    const report = join(await tempDir(), 'report.json');
    const options = optionsFor(server, { paths: [dir], entity: 'cust-1', batch: 3, format, report, concurrency: 1 });
    const summary = await upload(options);

    expect(summary).toMatchObject({ total: 3, uploaded: 2, failed: 1, skipped: 0, split: 1 });
    expect(server.stored.map((m) => m.name).sort()).toEqual(['a.txt', 'c.txt']);
    // One refused request of three, then each file alone.
    expect(server.requests.map((r) => [r.status, r.files])).toEqual([
      [400, 0],
      [200, 1],
      [400, 0],
      [200, 1],
    ]);
    const failed = options.events.find((e) => e.event === 'failed');
    expect(failed).toMatchObject({ path: join(dir, 'b.txt'), status: 400, error_code: 'invalid_request' });
    expect(failed && 'message' in failed && failed.message).toMatch(
      /media_type "PROOF_OF_ADDRESS" is not one of IMAGE_PROFILE_PICTURE.*\(sent alone after its request of 3 files was refused\)$/,
    );
    expect(warnings(options.events)).toContainEqual(
      expect.stringMatching(
        /^a request of 3 files to cust-1 was refused \(HTTP 400: .*\); each such request is sent again file by file/,
      ),
    );
    // A JSON array: the run's header, a row per file, the run's end.
    const rows = JSON.parse(await readFile(report, 'utf8')) as Array<{
      path?: string;
      outcome?: string;
      reason?: string | null;
    }>;
    expect(rows.find((r) => r.path?.endsWith('b.txt'))).toMatchObject({
      outcome: 'failed',
      reason: expect.stringContaining('sent alone after its request of 3 files was refused'),
    });
  });
});

describe('entity ids outside the spec', () => {
  it('warns once per id, naming it and the characters, and sends it as given', async () => {
    const server = await sandbox();
    const dir = await tempDir();
    for (const entity of ['cust 42', 'kunde-ü', "ok-a_b:c.d@e!#$%&'*+=?^`{"]) {
      await mkdir(join(dir, entity));
      await writeFile(join(dir, entity, 'one.txt'), `for ${entity}\n`);
      await writeFile(join(dir, entity, 'two.txt'), `also for ${entity}\n`);
    }
    const options = optionsFor(server, { paths: [dir], entityFrom: 'dir' });
    expect(await upload(options)).toMatchObject({ uploaded: 6, failed: 0 });
    expect(warnings(options.events).sort()).toEqual([
      expect.stringMatching(
        /^entity id "cust 42" has " ", outside the characters Unit21's spec describes \(letters a-z A-Z, digits and - _ : \. @ .*\); it is sent as given, and the API may refuse it$/,
      ),
      expect.stringMatching(/^entity id "kunde-ü" has "ü", outside/),
    ]);
    expect(new Set(server.stored.map((m) => m.objectId))).toEqual(
      new Set(['cust 42', 'kunde-ü', "ok-a_b:c.d@e!#$%&'*+=?^`{"]),
    );
  });

  it('names five ids, then says only that there are more', async () => {
    const dir = await tempDir();
    for (let i = 0; i < 8; i++) {
      await mkdir(join(dir, `cust ${i}`));
      await writeFile(join(dir, `cust ${i}`, 'a.txt'), `${i}\n`);
    }
    const warned = warnings(await plannedEvents({ paths: [dir], entityFrom: 'dir' }));
    expect(warned).toHaveLength(6);
    expect(warned.at(-1)).toBe(
      "more ids have characters outside Unit21's documented set; they are sent as given and not named here",
    );
  });
});

describe('file names a multipart header cannot carry exactly', () => {
  const names = ['q"uote.txt', 'q%22uote.txt', 'back\\slash.txt'];

  it('are input errors in multipart, naming the file and --format json; nothing is sent', async () => {
    const server = await sandbox();
    const dir = await textFiles([...names, 'plain name é.txt']);
    const error = await upload(optionsFor(server, { paths: [dir], entity: 'c1' })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InputError);
    const problems: Record<string, string> = Object.fromEntries(
      (error as InputError).problems.map((p) => [p.path.split('/').at(-1)!, p.message]),
    );
    expect(Object.keys(problems).sort()).toEqual([...names].sort());
    expect(problems['q"uote.txt']).toMatch(
      /^its name has a double quote \("\), which a multipart header does not carry exactly .*send it with --format json/,
    );
    expect(problems['q%22uote.txt']).toMatch(/^its name has a percent-escape such as %22/);
    expect(problems['back\\slash.txt']).toMatch(/^its name has a backslash/);
    expect(server.requests).toHaveLength(0);
  });

  it('arrive exactly with --format json', async () => {
    const server = await sandbox();
    const dir = await textFiles(names);
    expect(await upload(optionsFor(server, { paths: [dir], entity: 'c1', format: 'json' }))).toMatchObject({
      uploaded: 3,
    });
    expect(server.stored.map((m) => m.name).sort()).toEqual([...names].sort());
  });

  it('exit 2 from the CLI with one line naming the file', async () => {
    const server = await sandbox();
    const dir = await textFiles(['q"uote.txt']);
    const result = await runCli(['upload', '.', '--entity', 'c1', '--org', server.org, '--base-url', server.url], {
      cwd: dir,
      env: { U21_API_KEY: server.apiKey },
    });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/q"uote\.txt: its name has a double quote .*--format json/);
    expect(server.requests).toHaveLength(0);
  });
});

describe("media_type outside Unit21's list", () => {
  it('is sent with a warning that offers the nearest value and says the API may refuse it', async () => {
    const server = await sandbox();
    const options = optionsFor(server, {
      paths: [join(FIXTURES, 'selfie.jpg')],
      entity: 'c1',
      mediaType: 'IMAGE_PASPORT_FRONT',
    });
    expect(await upload(options)).toMatchObject({ uploaded: 1 });
    expect(warnings(options.events)).toEqual([
      '--media-type: media_type "IMAGE_PASPORT_FRONT" is not one Unit21 recognises (did you mean IMAGE_PASSPORT_FRONT? see u21-media types); it is sent as given, and the API may refuse it',
    ]);
    expect(server.stored[0]?.mediaType).toBe('IMAGE_PASPORT_FRONT');
  });
});

describe('--retry-failed of an alert run', () => {
  it("sends the report's failed files to the alert again: the report says where each went", async () => {
    const strict = await sandbox({ strictMediaTypes: true });
    const dir = await textFiles(['a.txt', 'b.txt']);
    await writeFile(join(dir, 'b.txt.json'), JSON.stringify({ media_type: 'PROOF_OF_ADDRESS' }));
    const first = await runCli(
      [
        'upload',
        '.',
        '--alert',
        '77',
        '--org',
        strict.org,
        '--base-url',
        strict.url,
        '--report',
        'report.csv',
        '--no-journal',
      ],
      { cwd: dir, env: { U21_API_KEY: strict.apiKey } },
    );
    expect(first.code).toBe(1);
    // The failure says what the id names.
    expect(first.stderr).toContain('b.txt → alert 77: 400 invalid_request');
    const command = /run from this folder:\n\s+(u21-media upload .*)\n/.exec(first.stderr)?.[1];
    expect(command).toMatch(/^u21-media upload --retry-failed report\.csv /);
    expect(command).not.toContain('--alert');

    const lenient = await sandbox();
    // Another sandbox listens on another port: another host, so the retry says it is meant.
    const again = await runCli(
      [
        'upload',
        '--retry-failed',
        'report.csv',
        '--retry-elsewhere',
        '--org',
        lenient.org,
        '--base-url',
        lenient.url,
        '--no-journal',
      ],
      { cwd: dir, env: { U21_API_KEY: lenient.apiKey } },
    );
    expect(again.code).toBe(0);
    expect(lenient.stored.map((m) => [m.objectType, m.objectId, m.name])).toEqual([['alerts', '77', 'b.txt']]);
  });
});
