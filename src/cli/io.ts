import type { Output } from './output.js';

/** What a command sees of the outside world: its two outputs (see output.ts), its environment and folder. */
export interface Io {
  out: Output;
  err: Output;
  env: NodeJS.ProcessEnv;
  cwd: string;
}

/** What the command's output looks like, known once its settings are: the CLI's last words follow it (an `error` event with --json). */
export interface OutputMode {
  json: boolean;
  dryRun: boolean;
}
