import { execFile } from 'node:child_process';
import { copyFile, cp, link, mkdir, readdir, readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { cleanEnv, FIXTURES, ROOT, startSandboxCommand, tempDir } from '../helpers.js';

const run = promisify(execFile);

/** npm's cache, registry and config file as the user has them (the suite's HOME is its own). */
async function usersNpm(): Promise<{ cache: string; registry: string; userconfig: string }> {
  const { stdout } = await run('npm', ['config', 'get', 'cache', 'registry', 'userconfig'], {
    // No debug log in the user's cache for this look-up.
    env: { ...process.env, HOME: userInfo().homedir, npm_config_logs_max: '0' },
  });
  const value = (key: string) => new RegExp(`^${key}=(.*)$`, 'm').exec(stdout)![1]!.trim();
  return { cache: value('cache'), registry: value('registry'), userconfig: value('userconfig') };
}

/** What reaches the registry from this machine as from the user's shell: certificates and proxies. */
const NETWORK_VARIABLES = [
  'NODE_EXTRA_CA_CERTS',
  'SSL_CERT_FILE',
  'HTTPS_PROXY',
  'https_proxy',
  'HTTP_PROXY',
  'http_proxy',
  'NO_PROXY',
  'no_proxy',
];
const network = () =>
  Object.fromEntries(NETWORK_VARIABLES.flatMap((name) => (process.env[name] ? [[name, process.env[name]]] : [])));

/**
 * A cache of its own for npm to install from, mostly offline: the user's packages hard-linked in
 * (cacache never rewrites a content file), its index copied (npm appends to index files).
 */
async function cacheCopy(from: string, to: string): Promise<void> {
  await cp(join(from, '_cacache', 'index-v5'), join(to, '_cacache', 'index-v5'), { recursive: true });
  await linkTree(join(from, '_cacache', 'content-v2'), join(to, '_cacache', 'content-v2'));
}

async function linkTree(from: string, to: string): Promise<void> {
  await mkdir(to, { recursive: true });
  for (const entry of await readdir(from, { withFileTypes: true })) {
    const [source, target] = [join(from, entry.name), join(to, entry.name)];
    if (entry.isDirectory()) await linkTree(source, target);
    // Another file system: copied instead.
    else await link(source, target).catch(() => copyFile(source, target));
  }
}

describe('the packed tarball, installed with npm install -g', () => {
  it('runs its sandbox with the sample files it ships, and the command its banner suggests uploads them', async () => {
    const dir = await tempDir();
    const npm = await usersNpm();
    await cacheCopy(npm.cache, join(dir, 'npm-cache'));
    // npm writes its cache, logs and update checks in the test's folder only. What the copy lacks
    // (a global install resolves the ranges afresh, and `npm ci` caches no registry listings) comes
    // from the registry, as for a user.
    const env = cleanEnv({
      ...network(),
      npm_config_userconfig: npm.userconfig,
      npm_config_cache: join(dir, 'npm-cache'),
      npm_config_registry: npm.registry,
      npm_config_update_notifier: 'false',
      npm_config_audit: 'false',
      npm_config_fund: 'false',
    });
    // dist/ is built before the e2e tests; prepack would build it again, in the repository.
    const packed = await run('npm', ['pack', ROOT, '--pack-destination', dir, '--ignore-scripts', '--json'], {
      cwd: dir,
      env,
    });
    const { filename, files } = (
      JSON.parse(packed.stdout) as Array<{ filename: string; files: Array<{ path: string }> }>
    )[0]!;
    expect(files.map((f) => f.path)).toContain('fixtures/selfie.jpg');
    const prefix = join(dir, 'prefix');
    await run('npm', ['install', '--global', '--prefix', prefix, '--prefer-offline', join(dir, filename)], {
      cwd: dir,
      env,
    }).catch((error: { stderr: string }) => {
      throw new Error(
        `npm could not install the tarball (from a copy of ${npm.cache}, then ${npm.registry}):\n${error.stderr}`,
      );
    });

    // As a user's shell finds it: the installed bin on PATH, run by its shebang with this node.
    const PATH = [join(prefix, 'bin'), dirname(process.execPath), env.PATH].join(delimiter);
    const sandbox = await startSandboxCommand(['--samples', 'samples', '--dir', 'stored'], {
      command: join(prefix, 'bin', 'u21-media'),
      cwd: dir,
      env: { PATH },
    });
    const suggested = sandbox.banner.split('\n').find((line) => line.includes(' u21-media upload '))!;
    expect(suggested).toContain(` u21-media upload ${join(dir, 'samples')} `);
    const upload = await run('sh', ['-c', suggested], { cwd: dir, env: cleanEnv({ PATH }) });
    expect(upload.stdout).toMatch(/10 of 10 files uploaded/);

    const stored = join(dir, 'stored', 'sandbox', 'demo-1');
    const samples = (await readdir(FIXTURES)).filter((name) => !name.endsWith('.json'));
    for (const name of samples)
      expect(await readFile(join(stored, name))).toEqual(await readFile(join(FIXTURES, name)));
    expect(JSON.parse(await readFile(join(stored, 'passport_front.jpg.meta.json'), 'utf8'))).toMatchObject({
      media_type: 'IMAGE_PASSPORT_FRONT',
      custom_data: { source: 'onfido' },
    });
    const { code, stderr } = await sandbox.stop();
    expect(code).toBe(0);
    expect(stderr).toMatch(/Stopped; 10 media stored/);
  }, 120_000);
});
