import { readVersion } from './version.js';

// --version answers before anything else loads: it is the startup users feel most.
if (process.argv.length === 3 && (process.argv[2] === '--version' || process.argv[2] === '-V')) {
  process.stdout.write(`${readVersion()}\n`);
} else {
  await main();
}

async function main() {
  // A reader that went away (`| head`) must not kill a run halfway: its output is dropped instead.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code !== 'EPIPE') throw error;
    });
  }
  const { run } = await import('./cli.js');
  // The process entry: exit codes are set, never forced, so output drains first.
  process.exitCode = await run(process.argv.slice(2), {
    stdout: process.stdout,
    stderr: process.stderr,
    env: process.env,
    cwd: process.cwd(),
  });
}
