import type { CheckProgress, DryRunSummary, PlanEvent, UploadEvent, UploadSummary } from '../../core/outcomes/events.js';
import { EXIT } from '../exit-codes.js';
import type { Output } from '../output.js';

/** Where a run's outcome files are, for the summary. */
export interface RunFiles {
  report?: string;
  journal?: string;
}

/** Shows a run: JSON events, or human lines with live progress. */
export interface Renderer {
  /** Throws OutputError once stdout, which carries the results, cannot be written: the run then stops. */
  event: (event: UploadEvent | PlanEvent) => void;
  /** The number of files the run considers, once known (for progress and ETA). */
  total: (files: number) => void;
  /** The check before sending, as it goes; absent when nothing shows it (a second listing of the inputs is then spared). */
  check?: (progress: CheckProgress) => void;
  summary(summary: UploadSummary | DryRunSummary, files?: RunFiles): void;
  /** Stops the spinner and timers. */
  close(): void;
}

export interface RenderOptions {
  json: boolean;
  quiet: boolean;
  verbose: boolean;
  /** False with --no-color. */
  color: boolean;
  stdout: Output;
  stderr: Output;
  env: NodeJS.ProcessEnv;
}

export async function createRenderer(options: RenderOptions): Promise<Renderer> {
  // --json needs neither chalk nor the progress line.
  return options.json ? createJsonRenderer(options) : (await import('./human.js')).createHumanRenderer(options);
}

/** `--json`: every event as a line on stdout; attempts only with --verbose. */
function createJsonRenderer({ stdout, verbose }: RenderOptions): Renderer {
  return {
    event: (event) => {
      stdout.check();
      if (event.event !== 'attempt' || verbose) stdout.json(event);
    },
    total: () => {},
    summary: (summary) => {
      // Exit 3 is said as an event too, as exit 2 is (cli.ts): scripts read one shape of refusal.
      if ('stopped' in summary && summary.stopped === 'auth') stdout.json({ event: 'error', code: EXIT.keyRefused, problems: [{ message: 'the API refused the key; the run stopped', hint: 'check the key, and that it has access to the org' }] });
      stdout.json(summary);
      stdout.flush();
    },
    close: () => stdout.flush(),
  };
}
