import type { Writable } from 'node:stream';

/** The outside world a command sees; tests pass their own. */
export interface Io {
  stdout: Writable;
  stderr: Writable;
  env: NodeJS.ProcessEnv;
  cwd: string;
}
