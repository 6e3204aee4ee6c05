import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ConfigError, UsageError } from '../../src/core/shared/errors.js';
import { readApiKey, resolveSettings } from '../../src/cli/settings.js';
import { rateOf } from '../../src/cli/upload-command.js';
import { FIXTURES, runCli, tempDir } from '../helpers.js';

const write = (dir: string, name: string, value: unknown) =>
  writeFile(join(dir, name), typeof value === 'string' ? value : JSON.stringify(value));

describe('settings', () => {
  it('applies defaults when nothing is given', async () => {
    const dir = await tempDir();
    const settings = await resolveSettings({}, {}, dir);
    expect(settings).toMatchObject({
      format: 'multipart',
      concurrency: 16,
      maxFileSize: 5_000_000,
      infer: true,
      dryRun: false,
      conventions: [],
    });
  });

  it('takes flags over environment over config file over defaults', async () => {
    const dir = await tempDir();
    await write(dir, '.u21mediarc.json', { org: 'from-config', env: 'sandbox1', concurrency: 4, format: 'json' });
    const settings = await resolveSettings({ concurrency: '8' }, { U21_ORG: 'from-env' }, dir);
    expect(settings).toMatchObject({ org: 'from-env', env: 'sandbox1', concurrency: 8, format: 'json' });
  });

  it('finds the config in a parent folder, in package.json or YAML', async () => {
    const dir = await tempDir();
    await write(dir, 'package.json', { name: 'x', u21media: { org: 'pkg-org' } });
    await mkdir(join(dir, 'scans'));
    expect((await resolveSettings({}, {}, join(dir, 'scans'))).org).toBe('pkg-org');

    const yamlDir = await tempDir();
    await write(yamlDir, '.u21mediarc.yaml', 'org: yaml-org\nmaxFileSize: 1000\n');
    expect(await resolveSettings({}, {}, yamlDir)).toMatchObject({ org: 'yaml-org', maxFileSize: 1000 });
  });

  it('loads --config from any path and resolves apiKeyFile beside it', async () => {
    const dir = await tempDir();
    await mkdir(join(dir, 'conf'));
    await write(join(dir, 'conf'), 'u21.json', { apiKeyFile: 'key.txt' });
    await write(join(dir, 'conf'), 'key.txt', 'k-123\n');
    const settings = await resolveSettings({ config: 'conf/u21.json' }, {}, dir);
    expect(settings.apiKeyFile).toBe(join(dir, 'conf', 'key.txt'));
    expect(await readApiKey(settings, {}, dir)).toEqual({
      key: 'k-123',
      source: `"apiKeyFile" in ${join(dir, 'conf', 'u21.json')}`,
    });
    // The environment beats the config file.
    expect((await readApiKey(settings, { U21_API_KEY: 'env-key' }, dir)).key).toBe('env-key');
  });

  it('lets --env on the command line beat a base URL from the environment', async () => {
    const dir = await tempDir();
    const settings = await resolveSettings({ env: 'sandbox1' }, { U21_BASE_URL: 'https://prod.example' }, dir);
    expect(settings.baseUrl).toBeUndefined();
    const both = await resolveSettings({ env: 'sandbox1', baseUrl: 'https://proxy.example' }, {}, dir);
    expect(both.baseUrl).toBe('https://proxy.example');
  });

  it('refuses a key a header cannot carry, without printing it', async () => {
    const dir = await tempDir();
    await write(dir, 'k', 'abc\ndef');
    const settings = await resolveSettings({ apiKeyFile: 'k' }, {}, dir);
    const error = await readApiKey(settings, {}, dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UsageError);
    expect((error as UsageError).message).toMatch(/--api-key-file: the API key holds spaces, line breaks/);
    expect((error as UsageError).message).not.toContain('abc');
  });

  it('refuses an unknown key, naming the file', async () => {
    const dir = await tempDir();
    await write(dir, '.u21mediarc.json', { org: 'a', concurency: 3 });
    const error = await resolveSettings({}, {}, dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as Error).message).toBe(`${join(dir, '.u21mediarc.json')}: unknown key "concurency"`);
  });

  it('refuses an API key in a config file', async () => {
    const dir = await tempDir();
    await write(dir, '.u21mediarc.json', { apiKey: 'secret' });
    await expect(resolveSettings({}, {}, dir)).rejects.toThrow(/never holds the API key/);
  });

  it('refuses a bad value in the config, naming file and key', async () => {
    const dir = await tempDir();
    await write(dir, '.u21mediarc.json', { concurrency: 'many' });
    await expect(resolveSettings({}, {}, dir)).rejects.toThrow(
      /\.u21mediarc\.json: "concurrency": "many" is not a valid value/,
    );
  });

  it('refuses a bad conventions rule and unparseable config', async () => {
    const dir = await tempDir();
    await write(dir, '.u21mediarc.json', { conventions: [{ glob: '*.pdf' }] });
    await expect(resolveSettings({}, {}, dir)).rejects.toThrow(/conventions\[0\] needs exactly one/);
    await write(dir, '.u21mediarc.json', '{ broken');
    await expect(resolveSettings({}, {}, dir)).rejects.toThrow(/\.u21mediarc\.json: cannot load config/);
  });

  it('names a --config file that does not exist', async () => {
    const dir = await tempDir();
    await expect(resolveSettings({ config: 'nope.json' }, {}, dir)).rejects.toThrow(
      /nope\.json: cannot load config \(no such file\)/,
    );
  });

  it('uses config conventions ahead of the built-in ones (seen in a dry run)', async () => {
    const dir = await tempDir();
    await write(dir, '.u21mediarc.json', {
      org: 'acme',
      env: 'sandbox2',
      conventions: [{ glob: 'selfie.*', media_type: 'IMAGE_PROFILE_PICTURE' }],
    });
    const result = await runCli(['upload', join(FIXTURES, 'selfie.jpg'), '--entity', 'c1', '--dry-run', '--json'], {
      cwd: dir,
    });
    expect(result.code).toBe(0);
    expect(result.events[0]).toMatchObject({
      event: 'planned',
      media_type: 'IMAGE_PROFILE_PICTURE',
      media_type_source: 'file_name',
    });
  });

  it('exits 2 with the config error and its hint', async () => {
    const dir = await tempDir();
    await write(dir, '.u21mediarc.json', { colour: true });
    const result = await runCli(['upload', 'x.jpg', '--entity', 'c1'], { cwd: dir });
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/unknown key "colour"\n {2}hint: known keys: org, env/);
  });
});

describe('--rate-total', () => {
  it("gives each shard its share of the fleet's rate, from a flag or U21_RATE_TOTAL", async () => {
    const dir = await tempDir();
    expect(rateOf(await resolveSettings({ rateTotal: '180' }, {}, dir), { n: 8 })).toBe(22.5);
    expect(rateOf(await resolveSettings({}, { U21_RATE_TOTAL: '200' }, dir), { n: 4 })).toBe(50);
    // Without --shard the one process is the whole fleet.
    expect(rateOf(await resolveSettings({ rateTotal: '150' }, {}, dir), undefined)).toBe(150);
    expect(rateOf(await resolveSettings({}, {}, dir), { n: 8 })).toBe(100);
  });

  it('is refused beside --rate, with exit 2 and nothing sent', async () => {
    const dir = await tempDir();
    await write(dir, 'a.txt', 'a\n');
    const result = await runCli(
      [
        'upload',
        'a.txt',
        '--entity',
        'c',
        '--org',
        'o',
        '--base-url',
        'http://127.0.0.1:9',
        '--shard',
        '1/4',
        '--rate',
        '50',
        '--rate-total',
        '200',
      ],
      { cwd: dir, env: { U21_API_KEY: 'k' } },
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('--rate and --rate-total both set the pace');
  });
});
