import type { Writable } from 'node:stream';

/** The outside world a command sees; tests pass their own. */
export interface Io {
  stdout: Writable;
  stderr: Writable;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

/** What the command's output looks like, known once its settings are: the CLI's last words follow it (an `error` event with --json). */
export interface OutputMode {
  json: boolean;
  dryRun: boolean;
}
