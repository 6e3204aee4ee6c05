import { execFile } from 'node:child_process';
import { copyFile, mkdir, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { UPLOAD_OPTIONS } from '../../src/core/options.js';
import { startSandbox, type Sandbox } from '../../src/sandbox/server.js';
import { BIN, cleanEnv, closeAfter, FIXTURES, runBin, runCli, tempDir } from '../helpers.js';

/** A cloned repository: a scan, a secret outside it that a link points at, and the config file it came with. */
async function clonedRepository(server: Sandbox, config: Record<string, unknown>) {
  const root = await tempDir();
  const repo = join(root, 'repo');
  await mkdir(join(repo, 'kyc'), { recursive: true });
  await copyFile(join(FIXTURES, 'selfie.jpg'), join(repo, 'kyc', 'selfie.jpg'));
  await writeFile(join(root, 'credentials.txt'), '[default]\naws_secret_access_key = SECRET\n');
  await symlink(join(root, 'credentials.txt'), join(repo, 'kyc', 'credentials.txt'));
  await writeFile(join(repo, '.u21mediarc.json'), JSON.stringify({ org: server.org, baseUrl: server.url, ...config }));
  return repo;
}

const upload = (extra: string[] = []) => ['upload', 'kyc', '--entity', 'cust-1', '--json', ...extra];

describe('a config file found by searching decides nothing that matters', () => {
  it('may not follow links out of the folder: the secret a link points at is never sent', async () => {
    const server = closeAfter(await startSandbox());
    const repo = await clonedRepository(server, { followLinks: true });
    const run = await runBin(upload(), { cwd: repo, env: { U21_API_KEY: server.apiKey } });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(
      `${join(repo, '.u21mediarc.json')}: "followLinks" decides which files are read, so only a config file named with --config may set it`,
    );
    expect(run.stderr).toContain(
      `hint: take "followLinks" out of it (and pass --follow-links yourself if you want it), or pass --config ${join(repo, '.u21mediarc.json')} if you trust the file`,
    );
    expect(run.events[0]).toMatchObject({ event: 'error', code: 2 });
    // The flag alone does not make the file trusted: the hint says so, and it is still refused.
    const withFlag = await runBin(upload(['--follow-links']), { cwd: repo, env: { U21_API_KEY: server.apiKey } });
    expect(withFlag.code).toBe(2);
    expect(server.requests).toHaveLength(0);
  });

  it.each([
    ['a journal pre-filled with forged uploads', { journal: 'forged.jsonl' }, '"journal" decides what is remembered'],
    ['no journal, so every rerun sends again', { journal: false }, '"journal" decides what is remembered'],
  ])('may not choose %s', async (_, config, message) => {
    const server = closeAfter(await startSandbox());
    const repo = await clonedRepository(server, config);
    await writeFile(
      join(repo, 'forged.jsonl'),
      `${JSON.stringify({ time: '2026-01-01T00:00:00.000Z', outcome: 'uploaded', host: `${server.url}/v1`, org: server.org, entity_id: 'cust-1', path: 'kyc/selfie.jpg', name: 'selfie.jpg', media_type: 'IMAGE_FACE_IMAGE', sha256: '0'.repeat(64), bytes: 1, status: 200, attempts: 1 })}\n`,
    );
    const run = await runBin(upload(), { cwd: repo, env: { U21_API_KEY: server.apiKey } });
    expect(run.code).toBe(2);
    expect(run.stderr).toContain(message);
    expect(server.requests).toHaveLength(0);
  });

  it('may set none of the options that decide what is read, sent, checked or remembered; a config named with --config may', async () => {
    const server = closeAfter(await startSandbox());
    const deciding = UPLOAD_OPTIONS.filter((spec) => spec.decides !== undefined);
    expect(deciding.map((spec) => spec.key).sort()).toEqual([
      'allowDuplicates',
      'apiKeyFile',
      'convert',
      'entityFrom',
      'fit',
      'followLinks',
      'journal',
      'proxy',
      'resendUnknown',
      's3Endpoint',
      'skipInvalid',
      'sniff',
      'stripLocation',
    ]);
    const values: Record<string, unknown> = {
      apiKeyFile: 'key.txt',
      entityFrom: 'dir',
      proxy: 'http://127.0.0.1:9',
      journal: 'j.jsonl',
      sniff: false,
      convert: true,
      fit: true,
      stripLocation: true,
      followLinks: true,
      skipInvalid: true,
      resendUnknown: false,
      allowDuplicates: true,
      s3Endpoint: 'http://127.0.0.1:9',
    };
    for (const spec of deciding) {
      const repo = await clonedRepository(server, { [spec.key]: values[spec.key] });
      const run = await runCli([...upload(), '--dry-run'], { cwd: repo, env: { U21_API_KEY: server.apiKey } });
      expect(run.code, spec.key).toBe(2);
      expect(run.stderr, spec.key).toContain(
        `"${spec.key}" decides ${spec.decides}, so only a config file named with --config may set it`,
      );
    }
    const repo = await clonedRepository(server, { followLinks: true, allowDuplicates: true });
    const named = await runCli([...upload(), '--dry-run', '--config', '.u21mediarc.json'], {
      cwd: repo,
      env: { U21_API_KEY: server.apiKey },
    });
    expect(named.code, named.stderr).toBe(0);
    expect(named.events.filter((e) => e.event === 'planned').map((e) => e.path)).toEqual([
      'kyc/credentials.txt',
      'kyc/selfie.jpg',
    ]);
  });

  it('says what it set on the first line, even with --quiet', async () => {
    const server = closeAfter(await startSandbox());
    const repo = await clonedRepository(server, {
      concurrency: 4,
      conventions: [{ glob: '*.jpg', media_type: 'IMAGE_FACE_IMAGE' }],
    });
    const run = await runBin([...upload(), '--quiet', '--concurrency', '2'], {
      cwd: repo,
      env: { U21_API_KEY: server.apiKey },
    });
    expect(run.code, run.stderr).toBe(1); // the link out of the folder is not followed
    expect(run.stderr).toContain(
      `u21-media: sending to ${server.url}/v1 · org sandbox · config ${join(repo, '.u21mediarc.json')} (found by searching; it sets org="sandbox", baseUrl="${server.url}", conventions (1 rule))`,
    );
  });

  it('runs its patterns in linear time: a regex or glob that backtracks cannot hang a dry run', async () => {
    const server = closeAfter(await startSandbox());
    const repo = await clonedRepository(server, {
      conventions: [
        { regex: '^(a+)+$', media_type: 'X' },
        { glob: '*a*a*a*a*a*a*a*a*a*a*a*a*b', media_type: 'Y' },
      ],
    });
    const name = `${'a'.repeat(40)}!.jpg`;
    await copyFile(join(FIXTURES, 'selfie.jpg'), join(repo, 'kyc', name));
    await writeFile(join(repo, 'kyc', `${'a'.repeat(200)}.txt`), 'a note');
    // A backtracking engine takes minutes on these names: the run is cut after 15 s so that it cannot outlive the test.
    const run = await promisify(execFile)(process.execPath, [BIN, ...upload(), '--dry-run'], {
      cwd: repo,
      env: cleanEnv(),
      timeout: 15_000,
    }).catch((error: { code: number; stdout: string; killed?: boolean }) => error);
    expect('killed' in run && run.killed).toBeFalsy();
    const planned = run.stdout
      .split('\n')
      .filter((line) => line.startsWith('{"event":"planned"'))
      .map((line) => JSON.parse(line) as { path: string; media_type: string | null });
    expect(planned.find((e) => e.path === `kyc/${name}`)).toMatchObject({ media_type: null });
  }, 30_000);
});
