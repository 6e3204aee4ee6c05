import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { UPLOAD_OPTIONS } from '../../src/cli/options.js';
import { ROOT } from '../helpers.js';

describe('option table', () => {
  it('documents every upload option in the README', async () => {
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
    for (const spec of UPLOAD_OPTIONS) expect(readme, spec.flags).toContain(`| \`${spec.flags.split(' ')[0]}`);
  });

  it('declares each option and env variable once', () => {
    const keys = UPLOAD_OPTIONS.map((o) => o.key);
    expect(new Set(keys).size).toBe(keys.length);
    const envs = UPLOAD_OPTIONS.flatMap((o) => (o.env ? [o.env] : []));
    expect(new Set(envs).size).toBe(envs.length);
  });
});

describe('importing the library', () => {
  it('has no side effects: no output, no signal handlers', async () => {
    const { execFileSync } = await import('node:child_process');
    const script = `const before = process.listenerCount('SIGINT'); await import(${JSON.stringify(join(ROOT, 'dist', 'index.js'))}); console.log(JSON.stringify({ sigint: process.listenerCount('SIGINT') - before, exitCode: process.exitCode ?? null }));`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(JSON.parse(out)).toEqual({ sigint: 0, exitCode: null });
  });
});
