import type {
  CheckProgress,
  DryRunSummary,
  PlanEvent,
  UploadEvent,
  UploadSummary,
} from '../../core/outcomes/events.js';
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
