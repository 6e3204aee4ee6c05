import { run } from './cli.js';

// The process entry: exit codes are set, never forced, so output drains first.
process.exitCode = await run(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  env: process.env,
  cwd: process.cwd(),
});
