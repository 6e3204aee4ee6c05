import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { startSandbox } from './sandbox/server.js';

// `npm run demo`: the local sandbox, the real CLI uploading fixtures/, then what the sandbox stored.
const root = fileURLToPath(new URL('..', import.meta.url));
const sandbox = await startSandbox({ org: 'demo' });
const args = ['upload', 'fixtures', '--org', 'demo', '--base-url', sandbox.url, '--entity', 'demo-customer-1'];
console.log(`Local Unit21 sandbox at ${sandbox.url}\n\n$ u21-media ${args.join(' ')}`);

const code = await new Promise<number>((resolve) => {
  const child = spawn(process.execPath, [fileURLToPath(new URL('../bin/u21-media.js', import.meta.url)), ...args], {
    cwd: root,
    stdio: 'inherit',
    env: { ...process.env, U21_API_KEY: sandbox.apiKey },
  });
  child.on('close', (exitCode) => resolve(exitCode ?? 1));
});

console.log(`\nThe sandbox stored ${sandbox.stored.length} media on entity demo-customer-1:`);
const width = Math.max(...sandbox.stored.map((m) => m.name.length));
for (const m of [...sandbox.stored].sort((a, b) => a.name.localeCompare(b.name))) {
  const custom = m.customData ? `  ${JSON.stringify(m.customData)}` : '';
  console.log(`  ${m.name.padEnd(width)}  ${(m.mediaType ?? '(no media_type)').padEnd(27)}  ${String(m.bytes).padStart(5)} B  sha256 ${m.sha256.slice(0, 12)}…${custom}`);
}
await sandbox.close();
process.exitCode = code;
