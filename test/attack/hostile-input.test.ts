import { describe, expect, it } from 'vitest';
import { startSandbox, type Sandbox } from '../../src/sandbox/server.js';
import { closeAfter, runBin } from '../helpers.js';
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
    const run = await runBin(['upload', dir, '--entity', 'cust-1', ...target(server), '--timeout', '3000000'], { cwd: dir, env: { U21_API_KEY: server.apiKey } });
    expect(run.code).toBe(2);
    expect(errorLine(run.stderr)).toBe('u21-media: error: --timeout: "3000000" is not a valid value (over the maximum, 3600)');
    expect(run.stderr).toContain('hint: use a number from 0.001 to 3600');
    expect(run.stdout).toBe('');
    expect(server.requests).toHaveLength(0);
  });

  it('--rate 0.0000001 sends what the rate allows and then waits, quietly, until a Ctrl-C ends it with a summary that adds up', async () => {
    const dir = await pdfs(4);
    const server = await sandbox();
    const run = startBin(['upload', dir, '--entity', 'cust-1', ...target(server), '--rate', '0.0000001', '--no-journal', '--json'], { cwd: dir, env: { U21_API_KEY: server.apiKey } });
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
