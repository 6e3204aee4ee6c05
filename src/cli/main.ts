import { setFlagsFromString } from 'node:v8';
import { readVersion } from './version.js';

// --version answers before anything else loads: it is the startup users feel most.
if (process.argv.length === 3 && (process.argv[2] === '--version' || process.argv[2] === '-V')) {
  process.stdout.write(`${readVersion()}\n`);
} else {
  await main();
}

async function main() {
  // undici parses HTTP with WebAssembly. V8's optimising compile of that module takes some
  // 35 MB for a moment, a third of a run's peak memory; the baseline compiler parses short
  // answers as fast.
  setFlagsFromString('--liftoff-only');
  // Code hot for a moment (module loading, the check, a run's first requests) had V8's
  // optimising compiler busy on the cores the upload needs: a fifth of a 2,000-file run's CPU.
  // A budget 16 times V8's default leaves such code to the baseline compiler; what stays hot
  // through a long run is still optimised, a little later.
  setFlagsFromString('--interrupt-budget=1081344');
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
