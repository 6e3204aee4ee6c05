import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { startSandbox } from '../../src/sandbox/server.js';
import { closeAfter, FIXTURES, fixtureCopy, runBin, tempDir, validContent } from '../helpers.js';

// What a new user meets on a first try: every setup problem at once, errors a script can read, small words right.
describe('a first run (built binary)', () => {
  it('names every missing piece of setup in one run: key, org, host and entity', async () => {
    const result = await runBin(['upload', 'selfie.jpg'], { cwd: FIXTURES });
    expect(result.code).toBe(2);
    for (const text of ['no Unit21 host given', '--org is required', 'no entity given', 'no API key'])
      expect(result.stderr).toContain(text);
    expect(result.stderr).toContain('4 problems to fix before anything can be sent');
  });

  it('with --json, ends a refused run in an error event and a summary on stdout', async () => {
    const result = await runBin(['upload', 'selfie.jpg', '--json', '--org', 'acme'], { cwd: FIXTURES });
    expect(result.code).toBe(2);
    expect(result.events).toEqual([
      {
        event: 'error',
        code: 2,
        problems: [
          { message: 'no Unit21 host given', hint: expect.stringContaining('--env') },
          { message: 'no entity given', hint: expect.stringContaining('--entity') },
          { message: 'no API key', hint: expect.stringContaining('U21_API_KEY') },
        ],
      },
      expect.objectContaining({ event: 'summary', total: 0, uploaded: 0, failed: 0, skipped: 0 }),
    ]);
    // Human words still go to stderr.
    expect(result.stderr).toContain('no Unit21 host given');

    const usage = await runBin(['upload', 'selfie.jpg', '--json', '--concurrency', 'many'], { cwd: FIXTURES });
    expect(usage.code).toBe(2);
    expect(usage.events[0]).toMatchObject({
      event: 'error',
      code: 2,
      problems: [{ message: expect.stringContaining('--concurrency') }],
    });
  });

  it('with --json, names each invalid file in the error event', async () => {
    const dir = await fixtureCopy();
    await writeFile(join(dir, 'blank.png'), '');
    const result = await runBin(
      ['upload', 'blank.png', 'selfie.jpg', '--entity', 'c', '--json', '--org', 'acme', '--env', 'prod1'],
      { cwd: dir, env: { U21_API_KEY: 'k' } },
    );
    expect(result.code).toBe(2);
    expect(result.events[0]).toEqual({
      event: 'error',
      code: 2,
      problems: [{ path: 'blank.png', message: expect.stringContaining('empty') }],
    });
    expect(result.events).toHaveLength(2);
    // The summary agrees with the error: two files, one invalid, both left unsent.
    expect(result.events[1]).toMatchObject({ event: 'summary', total: 2, invalid: 1, not_sent: 2, uploaded: 0 });
  });

  it('groups many files with the same problem, and offers --skip-invalid only when some file is valid', async () => {
    const dir = await tempDir();
    const names = Array.from({ length: 7 }, (_, i) => `empty-${i}.png`);
    for (const name of names) await writeFile(join(dir, name), '');
    const result = await runBin(['upload', ...names, '--entity', 'c', '--org', 'acme', '--env', 'prod1', '--dry-run'], {
      cwd: dir,
    });
    expect(result.code).toBe(2);
    expect(result.stderr.match(/^✖ empty-\d\.png: /gm)).toHaveLength(3);
    expect(result.stderr).toMatch(/… and 4 more: .*empty/);
    expect(result.stderr).toContain('7 invalid inputs; nothing was sent');
    expect(result.stderr).not.toContain('pass --skip-invalid');

    await writeFile(join(dir, 'good.png'), validContent('good.png', 'png'));
    const mixed = await runBin(
      ['upload', names[0]!, 'good.png', '--entity', 'c', '--org', 'acme', '--env', 'prod1', '--dry-run'],
      { cwd: dir },
    );
    expect(mixed.code).toBe(2);
    expect(mixed.stderr).toContain('pass --skip-invalid');
  });

  it('suggests the environment a typo was meant to be', async () => {
    const result = await runBin(
      ['upload', 'selfie.jpg', '--entity', 'c', '--org', 'acme', '--env', 'prd1', '--dry-run'],
      { cwd: FIXTURES },
    );
    expect(result.code).toBe(2);
    expect(result.stderr).toContain('"prd1" is not a valid value; did you mean prod1?');
  });

  it('takes -q and -v, and says "1 file/s" rather than "1 files/s"', async () => {
    const server = closeAfter(await startSandbox({ apiKey: 'k', org: 'acme' }));
    const quiet = await runBin(
      ['upload', 'selfie.jpg', '--entity', 'c', '-q', '--org', 'acme', '--base-url', server.url],
      { cwd: FIXTURES, env: { U21_API_KEY: 'k' } },
    );
    expect(quiet.code).toBe(0);
    expect(quiet.stderr).toBe('');
    expect(quiet.stdout).toMatch(/^✔ 1 of 1 file uploaded/);
    expect(quiet.stdout).not.toMatch(/\b1 files\/s/);
    const verbose = await runBin(
      ['upload', 'selfie.jpg', '--entity', 'c', '-v', '--org', 'acme', '--base-url', server.url],
      { cwd: FIXTURES, env: { U21_API_KEY: 'k' } },
    );
    expect(verbose.stderr).toContain('→ selfie.jpg → c (attempt 1)');
    expect(server.stored).toHaveLength(2);
  });
});

describe('u21-media completion (built binary)', () => {
  it('prints a bash script that completes commands, flags and their values', async () => {
    const script = await runBin(['completion', 'bash'], { cwd: FIXTURES });
    expect(script.code).toBe(0);
    const dir = await tempDir();
    await writeFile(join(dir, 'completion.bash'), script.stdout);
    const complete = (...words: string[]) => {
      const shell = `source ${JSON.stringify(join(dir, 'completion.bash'))}; COMP_WORDS=(${words.map((w) => JSON.stringify(w)).join(' ')}); COMP_CWORD=${words.length - 1}; _u21_media; echo "\${COMPREPLY[*]}"`;
      return spawnSync('bash', ['-c', shell], { encoding: 'utf8' }).stdout.trim().split(' ');
    };
    expect(complete('u21-media', 'up')).toEqual(['upload']);
    expect(complete('u21-media', 'upload', '--ent')).toEqual(['--entity', '--entity-from']);
    expect(complete('u21-media', 'upload', '--env', 'sand')).toEqual(['sandbox1', 'sandbox2', 'sandbox3']);
    expect(complete('u21-media', 'report', 'merge', '--o')).toEqual(['--output']);
  });

  it('prints zsh and fish scripts, and refuses another shell', async () => {
    const zsh = await runBin(['completion', 'zsh'], { cwd: FIXTURES });
    expect(zsh.stdout).toMatch(/^#compdef u21-media\n/);
    const fish = await runBin(['completion', 'fish'], { cwd: FIXTURES });
    expect(fish.stdout).toContain(
      "complete -c u21-media -n '__fish_seen_subcommand_from upload' -l env -x -a 'prod1 prod2 prod3 sandbox1 sandbox2 sandbox3'",
    );
    const other = await runBin(['completion', 'tcsh'], { cwd: FIXTURES });
    expect(other.code).toBe(2);
    expect(other.stderr).toContain('Allowed choices are bash, zsh, fish');
  });
});
