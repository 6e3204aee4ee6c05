import { existsSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../../src/sandbox/server.js';
import { closeAfter, runBin, tempDir } from '../helpers.js';
import { expectAccountedFor, pdfs, startBin } from './attack-helpers.js';

async function sandbox(): Promise<Sandbox> {
  return closeAfter(await startSandbox());
}

const target = (server: Sandbox) => ['--org', server.org, '--base-url', server.url];

/** The line naming the fault (`u21-media: error: …`), from a run's stderr; its hint follows on the next. */
const errorLine = (stderr: string) => stderr.split('\n').find((line) => line.startsWith('u21-media: error: '));

describe('values out of any sane range', () => {
  it('--timeout 3000000 is refused before anything is sent: one line naming --timeout and its range, exit 2', async () => {
    const dir = await pdfs(3);
    const server = await sandbox();
    const run = await runBin(['upload', dir, '--entity', 'cust-1', ...target(server), '--timeout', '3000000'], {
      cwd: dir,
      env: { U21_API_KEY: server.apiKey },
    });
    expect(run.code).toBe(2);
    expect(errorLine(run.stderr)).toBe(
      'u21-media: error: --timeout: "3000000" is not a valid value (over the maximum, 3600)',
    );
    expect(run.stderr).toContain('hint: use a number from 0.001 to 3600');
    expect(run.stdout).toBe('');
    expect(server.requests).toHaveLength(0);
  });

  it('--rate 0.0000001 sends what the rate allows and then waits, quietly, until a Ctrl-C ends it with a summary that adds up', async () => {
    const dir = await pdfs(4);
    const server = await sandbox();
    const run = startBin(
      ['upload', dir, '--entity', 'cust-1', ...target(server), '--rate', '0.0000001', '--no-journal', '--json'],
      { cwd: dir, env: { U21_API_KEY: server.apiKey } },
    );
    // The next start is due in some 116 days: a timer that overflows would fire at once, again and again.
    run.after('uploaded', 1, (child) => setTimeout(() => child.kill('SIGINT'), 300));
    const ended = await run.done;
    expect(ended.code).toBe(130);
    expect(ended.stderr).not.toContain('TimeoutOverflowWarning');
    expect(ended.stderr.length).toBeLessThan(2_000);
    expect(server.stored).toHaveLength(1);
    expect(run.events.filter((e) => e.event === 'uploaded')).toHaveLength(1);
    expect(run.events.at(-1)).toMatchObject({ event: 'summary', uploaded: 1, not_sent: 3, stopped: 'interrupted' });
    expectAccountedFor(run.events, 4);
  });
});

describe('text that is not text', () => {
  it('a JSONL manifest whose entity_id holds a lone surrogate is refused naming its line: exit 2, nothing sent, no journal record', async () => {
    const dir = await pdfs(2);
    const server = await sandbox();
    // The escape as JSON writes it: JSON.parse makes it a lone UTF-16 surrogate, which no URL can carry.
    await writeFile(
      join(dir, 'manifest.jsonl'),
      '{"path":"doc_000.pdf","entity_id":"cust-ok"}\n{"path":"doc_001.pdf","entity_id":"cust-\\ud800"}\n',
    );
    const journal = join(await tempDir(), 'journal.jsonl');
    const run = await runBin(
      ['upload', '--manifest', 'manifest.jsonl', ...target(server), '--journal', journal, '--json'],
      { cwd: dir, env: { U21_API_KEY: server.apiKey } },
    );
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(
      /manifest\.jsonl:2: doc_001\.pdf: entity id "cust-\\ud800" is not well-formed text: a lone UTF-16 surrogate \(\\ud800\) at character 6/,
    );
    expect(run.stderr).not.toMatch(/URIError|\n\s+at /); // no stack trace
    expect(run.events[0]).toMatchObject({ event: 'error', code: 2 });
    expect(server.requests).toHaveLength(0);
    const journalText = existsSync(journal) ? await readFile(journal, 'utf8') : '';
    expect(journalText).not.toContain('"sending"');
  });

  it('a sidecar nested 10,000 deep is refused naming the sidecar: exit 2, nothing sent', async () => {
    const dir = await pdfs(2);
    const server = await sandbox();
    await writeFile(
      join(dir, 'doc_000.pdf.json'),
      `{"media_type":"SCAN","custom_data":{"history":${'['.repeat(10_000)}${']'.repeat(10_000)}}}`,
    );
    const run = await runBin(['upload', dir, '--entity', 'cust-1', ...target(server), '--no-journal'], {
      cwd: dir,
      env: { U21_API_KEY: server.apiKey },
    });
    expect(run.code).toBe(2);
    expect(run.stderr).toMatch(
      /doc_000\.pdf: doc_000\.pdf\.json: sidecar custom_data is nested more than 32 levels deep/,
    );
    expect(run.stderr).not.toMatch(/RangeError|\n\s+at /);
    expect(server.requests).toHaveLength(0);
  });
});

describe('reader threads', () => {
  it('U21_READER_THREADS=64 is refused naming the variable and its range: exit 2, nothing sent', async () => {
    const dir = await pdfs(10);
    const server = await sandbox();
    const run = await runBin(['upload', dir, '--entity', 'cust-1', ...target(server), '--no-journal'], {
      cwd: dir,
      env: { U21_API_KEY: server.apiKey, U21_READER_THREADS: '64' },
    });
    expect(run.code).toBe(2);
    expect(errorLine(run.stderr)).toBe('u21-media: error: U21_READER_THREADS: "64" is not a thread count');
    expect(run.stderr).toContain('hint: give a whole number from 1 to 16');
    expect(server.requests).toHaveLength(0);
  });

  it('U21_READER_THREADS=16, the most, uploads 10 files', async () => {
    const dir = await pdfs(10);
    const server = await sandbox();
    const run = await runBin(['upload', dir, '--entity', 'cust-1', ...target(server), '--no-journal', '--json'], {
      cwd: dir,
      env: { U21_API_KEY: server.apiKey, U21_READER_THREADS: '16' },
    });
    expect(run.code).toBe(0);
    expect(server.stored).toHaveLength(10);
    expectAccountedFor(run.events, 10);
  });
});
