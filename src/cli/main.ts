import { readVersion } from './version.js';

// --version answers before anything else loads: it is the startup users feel most.
if (process.argv.length === 3 && (process.argv[2] === '--version' || process.argv[2] === '-V')) {
  process.stdout.on('error', () => (process.exitCode = 1));
  process.stdout.write(`${readVersion()}\n`);
} else {
  await main();
}

async function main() {
  const { run } = await import('./cli.js');
  // The process entry: exit codes are set, never forced, so output drains first. The streams'
  // failures (a reader gone, a full disk, a closed terminal) are the CLI's own to handle.
  process.exitCode = await run(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    cwd: process.cwd(),
  });
}
