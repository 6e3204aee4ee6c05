import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../../src/sandbox/server.js';
import { closeAfter, FIXTURES, fixtureCopy, runBin, sha256, tempDir } from '../helpers.js';

const KEY = 'e2e-secret-key-123';

async function sandbox(options: Parameters<typeof startSandbox>[0] = {}): Promise<Sandbox> {
  return closeAfter(await startSandbox({ apiKey: KEY, org: 'acme', ...options }));
}

const target = (server: Sandbox) => ['--org', 'acme', '--base-url', server.url];

describe('u21-media upload (built binary)', () => {
  it('uploads the fixtures and reports each file and a summary as JSON events', async () => {
    const server = await sandbox();
    const result = await runBin(['upload', FIXTURES, '--entity', 'cust-9', '--json', ...target(server)], {
      cwd: FIXTURES,
      env: { U21_API_KEY: KEY },
    });
    expect(result.code).toBe(0);
    const uploaded = result.events.filter((e) => e.event === 'uploaded');
    expect(uploaded).toHaveLength(10);
    expect(uploaded).toContainEqual({
      event: 'uploaded',
      path: join(FIXTURES, 'passport_front.jpg'),
      entity_id: 'cust-9',
      media_type: 'IMAGE_PASSPORT_FRONT',
      bytes: 684,
      attempts: 1,
      sha256: await sha256(join(FIXTURES, 'passport_front.jpg')),
    });
    expect(result.events.at(-1)).toMatchObject({
      event: 'summary',
      uploaded: 10,
      failed: 0,
      skipped: 0,
      retries: 0,
      possibly_duplicated: 0,
    });
    expect(result.events.every((e) => typeof e.event === 'string')).toBe(true);
    expect(server.stored).toHaveLength(10);
    const passport = server.stored.find((m) => m.name === 'passport_front.jpg')!;
    expect(passport.sha256).toBe(await sha256(join(FIXTURES, 'passport_front.jpg')));
    expect(result.stdout + result.stderr).not.toContain(KEY);
  });

  it('prints plain lines, the summary on stdout, and reads the key from --api-key-file', async () => {
    const server = await sandbox();
    const dir = await tempDir();
    await writeFile(join(dir, 'key'), `${KEY}\n`);
    const result = await runBin(
      [
        'upload',
        'selfie.jpg',
        '--entity',
        'cust-9',
        '--format',
        'json',
        '--api-key-file',
        join(dir, 'key'),
        '--verbose',
        ...target(server),
      ],
      { cwd: FIXTURES },
    );
    expect(result.code).toBe(0);
    expect(result.stderr).toContain('→ selfie.jpg → cust-9 (attempt 1)');
    expect(result.stderr).toContain('✔ selfie.jpg → cust-9 (IMAGE_FACE_IMAGE');
    expect(result.stdout).toMatch(/^✔ 1 of 1 file uploaded \(596 B\) in /);
    expect(server.stored.map((m) => [m.name, m.format])).toEqual([['selfie.jpg', 'json']]);
  });

  it('exits 1 with a failed event and a hint when the entity does not exist', async () => {
    const server = await sandbox({ entities: ['cust-1'] });
    const json = await runBin(['upload', 'selfie.jpg', '--entity', 'ghost', '--json', ...target(server)], {
      cwd: FIXTURES,
      env: { U21_API_KEY: KEY },
    });
    expect(json.code).toBe(1);
    expect(json.events).toContainEqual(
      expect.objectContaining({
        event: 'failed',
        path: 'selfie.jpg',
        entity_id: 'ghost',
        status: 404,
        error_code: 'resource_not_found',
      }),
    );
    expect(json.events.at(-1)).toMatchObject({ event: 'summary', uploaded: 0, failed: 1 });

    const plain = await runBin(['upload', 'selfie.jpg', '--entity', 'ghost', ...target(server)], {
      cwd: FIXTURES,
      env: { U21_API_KEY: KEY },
    });
    expect(plain.code).toBe(1);
    expect(plain.stderr).toContain('✖ selfie.jpg → ghost: 404 resource_not_found');
    expect(plain.stderr).toContain('placeholder');
  });

  it('exits 3 and stops when the key is refused, without printing the key', async () => {
    const server = await sandbox();
    const result = await runBin(
      ['upload', FIXTURES, '--entity', 'cust-9', '--concurrency', '1', '--json', ...target(server)],
      {
        cwd: FIXTURES,
        env: { U21_API_KEY: 'not-the-key-456' },
      },
    );
    expect(result.code).toBe(3);
    expect(server.requests).toHaveLength(1);
    expect(result.stderr).toMatch(/refused the key; the run stopped \(9 files not sent\)/);
    expect(result.events.at(-2)).toMatchObject({
      event: 'error',
      code: 3,
      problems: [{ message: expect.stringContaining('refused the key') }],
    });
    expect(result.events.at(-1)).toMatchObject({ event: 'summary', stopped: 'auth', not_sent: 9, failed: 1 });
    expect(result.stdout + result.stderr).not.toContain('not-the-key-456');
  });

  it('after a refused key, says to check the key rather than how to retry, and leaves no journal of the run behind', async () => {
    const server = await sandbox();
    const state = await tempDir();
    const result = await runBin(['upload', FIXTURES, '--entity', 'cust-9', '--concurrency', '1', ...target(server)], {
      cwd: FIXTURES,
      env: { U21_API_KEY: 'not-the-key-456', XDG_STATE_HOME: state },
    });
    expect(result.code).toBe(3);
    expect(result.stderr).toContain(
      'u21-media: error: the API refused the key; the run stopped (9 files not sent)\n  hint: check the key from U21_API_KEY, and that it has access to org "acme"',
    );
    expect(result.stderr).not.toContain('--report');
    expect(result.stderr).not.toContain('to retry');
    expect(result.stdout).not.toMatch(/journal/);
    // The failure is said once: "401 unauthorized <message>", the code not repeated.
    expect(result.stderr).toMatch(/✖ \S+ → cust-9: 401 unauthorized missing or invalid u21-key header\n/);
    expect(await readdir(join(state, 'u21-media'))).toEqual([]);

    // With a report, the command that retries comes after what to fix.
    const reported = await runBin(
      [
        'upload',
        FIXTURES,
        '--entity',
        'cust-9',
        '--concurrency',
        '1',
        '--report',
        join(state, 'report.csv'),
        ...target(server),
      ],
      { cwd: FIXTURES, env: { U21_API_KEY: 'not-the-key-456', XDG_STATE_HOME: state } },
    );
    expect(reported.stderr).toContain(
      'hint: check the key from U21_API_KEY, and that it has access to org "acme"\nu21-media: once that is fixed, to retry the 10 files (1 failed, 9 not sent), run from this folder:\n',
    );
  });

  it("says a failure's error_code once when the API sends no message of its own", async () => {
    const server = await sandbox({ faults: { error500: 1 } });
    const result = await runBin(['upload', 'selfie.jpg', '--entity', 'cust-9', '--retries', '0', ...target(server)], {
      cwd: FIXTURES,
      env: { U21_API_KEY: KEY },
    });
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('✖ selfie.jpg → cust-9: 500 internal_error\n');
  });

  it('names the manifest line, sidecar or file each warning comes from, in the terminal and as path and line in --json', async () => {
    const dir = await fixtureCopy();
    await writeFile(join(dir, 'passport_front.jpg.json'), '{"media_type":"PASSPORT"}');
    await writeFile(
      join(dir, 'm.csv'),
      'path,entity_id,media_type\nselfie.jpg,cust-9,\nid_card_back.jpg,cust-9,ID_CARD_FRONTT\npassport_front.jpg,cust-9,\n',
    );
    const run = (args: string[]) =>
      runBin(['upload', ...args, '--org', 'acme', '--env', 'prod1', '--dry-run'], { cwd: dir });
    const json = await run(['--manifest', 'm.csv', '--json']);
    expect(json.code).toBe(0);
    expect(json.events.filter((e) => e.event === 'warning')).toEqual([
      {
        event: 'warning',
        message: expect.stringMatching(/^media_type "ID_CARD_FRONTT" is not one Unit21 recognises/),
        path: 'm.csv',
        line: 3,
      },
      {
        event: 'warning',
        message: expect.stringMatching(/^media_type "PASSPORT" is not one Unit21 recognises/),
        path: 'passport_front.jpg.json',
      },
    ]);
    const human = await run(['--manifest', 'm.csv']);
    expect(human.stderr).toContain('⚠ m.csv:3: media_type "ID_CARD_FRONTT" is not one Unit21 recognises');
    expect(human.stderr).toContain('⚠ passport_front.jpg.json: media_type "PASSPORT" is not one Unit21 recognises');

    // An id read from a folder's name: the file in it; one given by a flag: the flag.
    await mkdir(join(dir, 'cust 9'));
    await writeFile(join(dir, 'cust 9', 'note.txt'), 'a note');
    const fromDir = await run(['cust 9', '--entity-from', 'dir', '--json']);
    expect(fromDir.events.filter((e) => e.event === 'warning')).toEqual([
      {
        event: 'warning',
        message: expect.stringMatching(/^entity id "cust 9" has " "/),
        path: join('cust 9', 'note.txt'),
      },
    ]);
    const fromFlag = await run(['selfie.jpg', '--entity', 'cust-9', '--media-type', 'FOO']);
    expect(fromFlag.stderr).toContain('⚠ --media-type: media_type "FOO" is not one Unit21 recognises');
  });

  it('dry-runs without a key: plans each file with its media_type source, sends nothing', async () => {
    const server = await sandbox();
    const result = await runBin(
      [
        'upload',
        '.',
        '--entity',
        'cust-9',
        '--media-type',
        'IMAGE_FACE_IMAGE',
        '--dry-run',
        '--json',
        ...target(server),
      ],
      { cwd: FIXTURES },
    );
    expect(result.code).toBe(0);
    const planned = Object.fromEntries(
      result.events
        .filter((e) => e.event === 'planned')
        .map((e) => [String(e.path), [e.media_type, e.media_type_source]] as const),
    );
    expect(planned).toMatchObject({
      'passport_front.jpg': ['IMAGE_FACE_IMAGE', 'flag'],
      'profile_picture.png': ['IMAGE_PROFILE_PICTURE', 'sidecar'],
      'proof_of_address.pdf': ['IMAGE_FACE_IMAGE', 'flag'],
      'analyst_note.txt': ['IMAGE_FACE_IMAGE', 'flag'],
    });
    expect(result.events.at(-1)).toEqual({
      event: 'summary',
      dry_run: true,
      planned: 10,
      skipped: 0,
      invalid: 0,
      link_outside: 0,
      unknown_outcome: 0,
      unreadable: 0,
      bytes: expect.any(Number),
    });
    expect(server.requests).toHaveLength(0);

    const plain = await runBin(['upload', '.', '--entity', 'cust-9', '--dry-run', ...target(server)], {
      cwd: FIXTURES,
    });
    expect(plain.stdout).toContain(
      'drivers_license_back.png → cust-9  IMAGE_DRIVERS_LICENSE_BACK (from file name)  150 B',
    );
    expect(plain.stdout).toMatch(/Dry run: 10 files \(.*\) would be uploaded, 0 skipped; nothing sent/);
  });

  describe('refuses bad input with exit 2, one line naming the culprit, and nothing sent', () => {
    it.each([
      [
        'an empty file',
        async (d: string) => void (await writeFile(join(d, 'blank.png'), '')),
        ['.'],
        /blank\.png: file is empty/,
      ],
      [
        'a file over the limit',
        async (d: string) => void (await writeFile(join(d, 'huge.jpg'), Buffer.alloc(5_000_001))),
        ['.'],
        /huge\.jpg: file is 5000001 bytes/,
      ],
      [
        'an explicit unsupported file',
        async (d: string) => void (await writeFile(join(d, 'memo.docx'), 'x')),
        ['memo.docx'],
        /memo\.docx: \.docx is not a file type Unit21 accepts/,
      ],
      [
        'a bad sidecar',
        async (d: string) => void (await writeFile(join(d, 'selfie.jpg.json'), '{oops')),
        ['.'],
        /selfie\.jpg\.json: sidecar is not valid JSON/,
      ],
      ['a missing file', async () => {}, ['nope.pdf'], /nope\.pdf: no such file/],
      [
        'a glob matching nothing',
        async () => {},
        ['scans/**/*.tiff'],
        /scans\/\*\*\/\*\.tiff: the pattern matches no file/,
      ],
    ])('%s', async (_name, setup, paths, message) => {
      const server = await sandbox();
      const dir = await fixtureCopy();
      await setup(dir);
      const result = await runBin(['upload', ...paths, '--entity', 'cust-9', '--json', ...target(server)], {
        cwd: dir,
        env: { U21_API_KEY: KEY },
      });
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(result.stderr).toMatch(/nothing was sent/);
      // stdout holds only what a script reads: the problem, then a summary of nothing sent.
      expect(result.events.map((e) => e.event)).toEqual(['error', 'summary']);
      expect(result.events[0]).toMatchObject({
        code: 2,
        problems: [{ message: expect.stringMatching(message.source.split(': ').at(-1)!) }],
      });
      expect(result.events[1]).toMatchObject({ uploaded: 0, failed: 0 });
      expect(server.requests).toHaveLength(0);
    });

    it.each([
      [['--concurrency', 'lots'], /--concurrency: "lots" is not a valid value/],
      [['--concurrency', '0'], /--concurrency: "0"/],
      [['--format', 'xml'], /--format: "xml" is not a valid value.*\n.*multipart, json/],
      [['--max-file-size', '-5'], /--max-file-size/],
      [['--base-url', ''], /--base-url: must not be empty/],
      [['--media-type', ''], /--media-type: must not be empty/],
    ])('option %j', async (args, message) => {
      const server = await sandbox();
      const result = await runBin(['upload', 'selfie.jpg', '--entity', 'cust-9', ...target(server), ...args], {
        cwd: FIXTURES,
        env: { U21_API_KEY: KEY },
      });
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(server.requests).toHaveLength(0);
    });

    it.each([
      [
        ['--org', 'acme', '--base-url', 'http://uploads.example.com'],
        /refusing plain http:\/\/ to uploads\.example\.com/,
      ],
      [['--org', 'acme'], /no Unit21 host given/],
      [['--org', 'acme', '--env', 'prod9'], /--env: "prod9" is not a valid value/],
      [['--env', 'prod1'], /--org is required/],
      [['--env', 'prod1', '--org', 'acme', '--entity', 'x'.repeat(129)], /129 characters/],
    ])('target %j', async (args, message) => {
      const result = await runBin(['upload', 'selfie.jpg', '--entity', 'cust-9', ...args], {
        cwd: FIXTURES,
        env: { U21_API_KEY: KEY },
      });
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(message);
      expect(result.stderr).toMatch(/hint: /);
    });

    it.each([
      [['--env', 'prod1']],
      [['--org', 'acme', '--base-url', 'http://uploads.example.com']],
      [['--org', 'acme', '--base-url', 'not a url']],
    ])('a dry run refuses target %j with the same message', async (args) => {
      const run = (extra: string[]) =>
        runBin(['upload', 'selfie.jpg', '--entity', 'cust-9', ...args, ...extra], {
          cwd: FIXTURES,
          env: { U21_API_KEY: KEY },
        });
      const [real, dry] = await Promise.all([run([]), run(['--dry-run'])]);
      expect(dry.code).toBe(2);
      expect(dry.stderr).toMatch(/^u21-media: error: .*\n {2}hint: /);
      expect(dry.stderr).toBe(real.stderr);
    });

    it('a missing key names both ways to give one', async () => {
      const server = await sandbox();
      const result = await runBin(['upload', 'selfie.jpg', '--entity', 'cust-9', ...target(server)], { cwd: FIXTURES });
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/no API key\n.*U21_API_KEY.*--api-key-file/);
      expect(server.requests).toHaveLength(0);
    });

    it.each(['0', 'four', '2.5'])('U21_READER_THREADS=%s', async (threads) => {
      const server = await sandbox();
      const result = await runBin(['upload', 'selfie.jpg', '--entity', 'cust-9', ...target(server)], {
        cwd: FIXTURES,
        env: { U21_API_KEY: KEY, U21_READER_THREADS: threads },
      });
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(
        `u21-media: error: U21_READER_THREADS: "${threads}" is not a thread count\n  hint: give a whole number from 1 to 16`,
      );
      expect(server.requests).toHaveLength(0);
    });

    it('--api-key: says there is none on purpose and what to use, without echoing the key', async () => {
      const server = await sandbox();
      for (const given of [['--api-key', 'typed-key-789'], ['--api-key=typed-key-789']]) {
        const result = await runBin(
          ['upload', 'selfie.jpg', '--entity', 'cust-9', ...target(server), ...given, '--json'],
          { cwd: FIXTURES, env: { U21_API_KEY: KEY } },
        );
        expect(result.code).toBe(2);
        expect(result.stderr).toMatch(
          /^u21-media: error: --api-key: there is no such option, on purpose: a key on the command line is kept in the shell history and shown by ps\n {2}hint: set U21_API_KEY, or put the key in a file and pass --api-key-file <file>/,
        );
        expect(result.events[0]).toMatchObject({
          event: 'error',
          code: 2,
          problems: [{ message: expect.stringContaining('--api-key: there is no such option') }],
        });
        expect(result.stdout + result.stderr).not.toContain('typed-key-789');
      }
      const help = await runBin(['upload', '--help'], { cwd: FIXTURES });
      expect(help.stdout).not.toMatch(/--api-key </);
      expect(server.requests).toHaveLength(0);
    });

    it.each([
      [
        ['--alert', 'abc'],
        '--alert: alert id "abc" is not a number: Unit21 names alerts by their unit21_id, the number it gives each',
        "give the alert's unit21_id",
      ],
      [
        ['--case', 'CASE-12'],
        '--case: case id "CASE-12" is not a number: Unit21 names cases by their unit21_id, the number it gives each',
        "give the case's unit21_id",
      ],
    ])('%j: an alert or a case is named by its numeric unit21_id', async (args, message, hint) => {
      const server = await sandbox();
      const result = await runBin(['upload', 'selfie.jpg', ...args, ...target(server)], {
        cwd: FIXTURES,
        env: { U21_API_KEY: KEY },
      });
      expect(result.code).toBe(2);
      expect(result.stderr).toContain(`u21-media: error: ${message}\n  hint: ${hint}`);
      expect(server.requests).toHaveLength(0);
    });

    it('an alert_id in a manifest that is not a number, naming its line', async () => {
      const server = await sandbox();
      const dir = await fixtureCopy();
      await writeFile(join(dir, 'm.csv'), 'path,alert_id\nselfie.jpg,ALERT-9\npassport_front.jpg,501\n');
      const result = await runBin(['upload', '--manifest', 'm.csv', ...target(server)], {
        cwd: dir,
        env: { U21_API_KEY: KEY },
      });
      expect(result.code).toBe(2);
      expect(result.stderr).toContain('✖ m.csv:2: selfie.jpg: alert id "ALERT-9" is not a number');
      expect(server.requests).toHaveLength(0);
    });

    it('an --api-key-file that cannot be read is named, unless its name looks like a key pasted in its place', async () => {
      const server = await sandbox();
      const dir = await tempDir();
      const missing = await runBin(
        ['upload', 'selfie.jpg', '--entity', 'cust-9', ...target(server), '--api-key-file', join(dir, 'kee.txt')],
        { cwd: FIXTURES },
      );
      expect(missing.code).toBe(2);
      expect(missing.stderr).toContain(
        `u21-media: error: --api-key-file: cannot read the key file ${join(dir, 'kee.txt')} (ENOENT)`,
      );
      const pasted = 'sk9f8e7d6c5b4a39281706f5e4';
      const keyGiven = await runBin(
        ['upload', 'selfie.jpg', '--entity', 'cust-9', ...target(server), '--api-key-file', pasted],
        { cwd: FIXTURES },
      );
      expect(keyGiven.code).toBe(2);
      expect(keyGiven.stderr).toContain(
        '--api-key-file: cannot read the key file (its name is not shown: it looks like a key, pasted in place of a path) (ENOENT)',
      );
      expect(keyGiven.stderr).not.toContain(pasted);
      // A token with dots in it (a JWT) is a key too.
      const token = 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjMifQ.c2lnbmF0dXJlOTk';
      const tokenGiven = await runBin(
        ['upload', 'selfie.jpg', '--entity', 'cust-9', ...target(server), '--api-key-file', token],
        { cwd: FIXTURES },
      );
      expect(tokenGiven.code).toBe(2);
      expect(tokenGiven.stderr).not.toContain(token);
      expect(tokenGiven.stderr).not.toContain('c2lnbmF0dXJlOTk');
      expect(server.requests).toHaveLength(0);
    });

    it('an unknown flag', async () => {
      const result = await runBin(['upload', 'selfie.jpg', '--entyti', 'x'], { cwd: FIXTURES });
      expect(result.code).toBe(2);
      expect(result.stderr).toMatch(/unknown option '--entyti'/);
    });
  });
});

describe('u21-media upload output (built binary)', () => {
  it('finishes the run when the reader of --json goes away (| head -1)', async () => {
    const server = await sandbox();
    const { spawn } = await import('node:child_process');
    const { BIN, cleanEnv } = await import('../helpers.js');
    const child = spawn(
      process.execPath,
      [BIN, 'upload', '.', '--entity', 'c', '--json', '--concurrency', '1', ...target(server)],
      {
        cwd: FIXTURES,
        env: cleanEnv({ U21_API_KEY: KEY }),
      },
    );
    let stderr = '';
    child.stderr.on('data', (c) => (stderr += c));
    child.stdout.once('data', () => child.stdout.destroy());
    const code = await new Promise((resolve) => child.on('close', resolve));
    expect(stderr).not.toMatch(/EPIPE|Unhandled/);
    expect(code).toBe(0);
    expect(server.stored).toHaveLength(10);
  });

  it('names every file a refused key left unsent', async () => {
    const server = await sandbox();
    const result = await runBin(['upload', '.', '--entity', 'c', '--json', '--concurrency', '1', ...target(server)], {
      cwd: FIXTURES,
      env: { U21_API_KEY: 'bad-key-0' },
    });
    expect(result.code).toBe(3);
    const notSent = result.events.filter((e) => e.event === 'skipped' && e.reason === 'not_sent');
    expect(notSent).toHaveLength(9);
    const summary = result.events.at(-1)!;
    expect(summary).toMatchObject({ total: 10, uploaded: 0, failed: 1, skipped: 9, not_sent: 9, stopped: 'auth' });
  });

  it('dry-runs with --skip-invalid: lists the invalid inputs and exits 1', async () => {
    const dir = await fixtureCopy();
    await writeFile(join(dir, 'blank.png'), '');
    const result = await runBin(
      ['upload', '.', '--entity', 'c', '--dry-run', '--skip-invalid', '--json', '--org', 'acme', '--env', 'prod1'],
      { cwd: dir },
    );
    expect(result.code).toBe(1);
    expect(result.events).toContainEqual(
      expect.objectContaining({ event: 'skipped', path: 'blank.png', reason: 'invalid' }),
    );
    expect(result.events.at(-1)).toMatchObject({ dry_run: true, planned: 10, skipped: 1, invalid: 1 });
  });
});

describe('u21-media (built binary)', () => {
  it('prints its version', async () => {
    const result = await runBin(['--version'], { cwd: FIXTURES });
    expect(result.code).toBe(0);
    expect(result.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  it('lists media types, conventions, file types and the size limit', async () => {
    const result = await runBin(['types'], { cwd: FIXTURES });
    expect(result.code).toBe(0);
    for (const text of [
      'IMAGE_PASSPORT_FRONT',
      'IMAGE_CHECK_BACK',
      'selfie / face / liveness',
      'mkv',
      '5000000 bytes',
    ]) {
      expect(result.stdout).toContain(text);
    }
  });
});
