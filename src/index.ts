import type { PlanOptions, UploadOptions } from './core/api-options.js';
import type { DryRunSummary, PlanEvent, UploadSummary } from './core/outcomes/events.js';
import { planFiles } from './core/check.js';
import { uploadFiles } from './core/run.js';

export * from './core/shared/errors.js';
export type * from './core/outcomes/events.js';
export type { PlannedFile, SkipReason } from './core/inputs/plan.js';
export type { ConventionRule, MediaTypeSource } from './core/inputs/media-type.js';
export type { BodyFormat } from './core/transfer/engine.js';
export type { Clock } from './core/shared/clock.js';
export type { JournalRecord } from './core/journal/records.js';
export type { Shard } from './core/inputs/shard.js';
export { parseShard, shardOf } from './core/inputs/shard.js';
export { RECOGNISED_MEDIA_TYPES, CONVENTIONS } from './core/inputs/media-type.js';
export { SUPPORTED_EXTENSIONS, DEFAULT_MAX_FILE_SIZE } from './core/files/file-types.js';
export { HOSTS, ENV_NAMES } from './core/connection/hosts.js';

export type { PlanOptions, UploadOptions } from './core/api-options.js';
export { DEFAULTS, type Defaults } from './core/options.js';

/**
 * Checks every input without sending anything, reporting each file as a `planned` (or
 * `skipped`) event as it comes. Throws InputError at the end when inputs were invalid
 * (unless skipInvalid, which reports them as skipped).
 */
export function plan(options: PlanOptions & { onEvent?: (event: PlanEvent) => void }): Promise<DryRunSummary> {
  return planFiles(options);
}

/**
 * Checks every input, then uploads every valid file. Throws UsageError or InputError (nothing
 * sent) for bad options or inputs; otherwise resolves with the summary, also when files
 * failed or the run stopped early (`summary.stopped`). The key never appears in what it
 * reports or throws.
 */
export function upload(options: UploadOptions): Promise<UploadSummary> {
  return uploadFiles(options);
}
