import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, expectTypeOf, it } from 'vitest';
import { resolveSettings, type UploadSettings } from '../../src/cli/settings.js';
import { UPLOAD_OPTIONS } from '../../src/core/options.js';
import {
  DEFAULT_MAX_FILE_SIZE,
  DEFAULTS,
  type BodyFormat,
  type PlanOptions,
  type Shard,
  type UploadOptions,
} from '../../src/index.js';
import { ROOT, tempDir } from '../helpers.js';

/** The option reference, checked against the option table so that it cannot drift from --help. */
const OPTIONS_DOC = join(ROOT, 'docs', 'options.md');

describe('option table', () => {
  it('documents every upload option in docs/options.md', async () => {
    const reference = await readFile(OPTIONS_DOC, 'utf8');
    for (const spec of UPLOAD_OPTIONS) expect(reference, spec.flags).toContain(`| \`${spec.flags.split(' ')[0]}`);
  });

  it("shows each option's env variable and default in docs/options.md as the table declares them", async () => {
    const rows = documentedOptionRows(await readFile(OPTIONS_DOC, 'utf8'));
    // As --help shows them: a boolean's default is its flag's absence.
    const expected = UPLOAD_OPTIONS.map((spec) => ({
      flag: spec.flags.split(' ')[0],
      env: spec.env ? `\`${spec.env}\`` : '',
      default: spec.default !== undefined && spec.type !== 'boolean' ? String(spec.default) : '',
    }));
    const byFlag = (a: { flag?: string }, b: { flag?: string }) => a.flag!.localeCompare(b.flag!);
    expect(rows.sort(byFlag)).toEqual(expected.sort(byFlag));
  });

  it('gives the library the same defaults as the CLI', async () => {
    const dir = await tempDir();
    const settings = await resolveSettings({}, {}, dir);
    for (const [key, value] of Object.entries(DEFAULTS))
      expect(settings[key as keyof typeof settings], key).toBe(value);
    expect(DEFAULTS).toMatchObject({
      concurrency: 16,
      rate: 100,
      batch: 1,
      retries: 5,
      timeout: 60,
      maxFileSize: DEFAULT_MAX_FILE_SIZE,
    });
  });

  it('derives the option types from the table', () => {
    // Checked by the type checker (npm run typecheck); nothing to see at run time.
    expectTypeOf<UploadSettings['format']>().toEqualTypeOf<BodyFormat>();
    expectTypeOf<Pick<UploadSettings, 'concurrency' | 'org' | 'entityFrom'>>().toEqualTypeOf<{
      concurrency: number;
      org?: string;
      entityFrom?: 'dir' | 'prefix';
    }>();
    expectTypeOf<Pick<UploadOptions, 'org' | 'concurrency' | 'format' | 'resendUnknown'>>().toEqualTypeOf<{
      org: string;
      concurrency?: number;
      format?: BodyFormat;
      resendUnknown?: boolean;
    }>();
    expectTypeOf<Pick<PlanOptions, 'shard' | 'maxFileSize' | 'infer'>>().toEqualTypeOf<{
      shard?: Shard;
      maxFileSize?: number;
      infer?: boolean;
    }>();
    expectTypeOf(DEFAULTS.concurrency).toEqualTypeOf<16>();
  });

  it('declares each option and env variable once', () => {
    const keys = UPLOAD_OPTIONS.map((o) => o.key);
    expect(new Set(keys).size).toBe(keys.length);
    const envs = UPLOAD_OPTIONS.flatMap((o) => (o.env ? [o.env] : []));
    expect(new Set(envs).size).toBe(envs.length);
  });
});

/** The rows of docs/options.md's "Options (`u21-media upload`)" table: each flag with its env and default cells. */
function documentedOptionRows(reference: string) {
  const section = reference.split(/^## Options \(`u21-media upload`\)$/m)[1]!.split(/^#/m)[0]!;
  return section
    .split('\n')
    .filter((line) => line.startsWith('| `-'))
    .map((line) => {
      const [option, env, defaultValue] = line
        .split(/(?<!\\)\|/)
        .slice(1)
        .map((cell) => cell.trim());
      return { flag: option!.slice(1).split(/[ `]/)[0], env, default: defaultValue };
    });
}

describe('importing the library', () => {
  it('has no side effects: no output, no signal handlers', async () => {
    const { execFileSync } = await import('node:child_process');
    const script = `const before = process.listenerCount('SIGINT'); await import(${JSON.stringify(join(ROOT, 'dist', 'index.js'))}); console.log(JSON.stringify({ sigint: process.listenerCount('SIGINT') - before, exitCode: process.exitCode ?? null }));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual({ sigint: 0, exitCode: null });
  });
});
