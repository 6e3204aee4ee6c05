import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Output } from './cli/output.js';
import { startSandbox } from './sandbox/server.js';

// `npm run demo`: the local sandbox, the real CLI uploading fixtures/, then what the sandbox stored.
const root = fileURLToPath(new URL('..', import.meta.url));
const sandbox = await startSandbox({ org: 'demo' });
const args = ['upload', 'fixtures', '--org', 'demo', '--base-url', sandbox.url, '--entity', 'demo-customer-1'];
const out = new Output('stdout', process.stdout);
out.lines(`Local Unit21 sandbox at ${sandbox.url}\n\n$ u21-media ${args.join(' ')}\n`);

// The sandbox listens on a new port each time: its journal would be a new file in the user's state folder per demo.
const stateHome = await mkdtemp(join(tmpdir(), 'u21-media-demo-'));
const code = await new Promise<number>((resolve) => {
  const child = spawn(process.execPath, [fileURLToPath(new URL('../bin/u21-media.js', import.meta.url)), ...args], {
    cwd: root,
    stdio: 'inherit',
    // Its working folder too: the demo leaves nothing behind.
    env: { ...process.env, U21_API_KEY: sandbox.apiKey, XDG_STATE_HOME: stateHome, TMPDIR: stateHome },
  });
  child.on('close', (exitCode) => resolve(exitCode ?? 1));
});

out.lines(`\nThe sandbox stored ${sandbox.stored.length} media on entity demo-customer-1:\n`);
const width = Math.max(...sandbox.stored.map((m) => m.name.length));
for (const m of [...sandbox.stored].sort((a, b) => a.name.localeCompare(b.name))) {
  const custom = m.customData ? `  ${JSON.stringify(m.customData)}` : '';
  out.line(
    `  ${m.name.padEnd(width)}  ${(m.mediaType ?? '(no media_type)').padEnd(27)}  ${String(m.bytes).padStart(5)} B  sha256 ${m.sha256.slice(0, 12)}…${custom}`,
  );
}
await sandbox.close();
await rm(stateHome, { recursive: true, force: true });
process.exitCode = code;
