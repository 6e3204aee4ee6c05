import type { MediaTypeSource } from './media-type.js';
import type { Problem } from './errors.js';

/** One file that passed preflight, with everything needed to send it. */
export interface PlannedFile {
  /** As the user wrote or would write it. */
  path: string;
  absPath: string;
  /** The media `name` sent: the file's own base name. */
  name: string;
  entityId: string;
  mediaType?: string;
  mediaTypeSource: MediaTypeSource;
  customData?: Record<string, unknown>;
  bytes: number;
  contentType: string;
}

/** Why a file is not sent although the run goes on. */
export type SkipReason = 'unsupported' | 'invalid' | 'journal' | 'duplicate' | 'not_sent';

export interface SkippedFile {
  path: string;
  reason: SkipReason;
  message: string;
}

/** The outcome of preflight: what will be sent, what is skipped, and what is wrong. */
export interface Plan {
  files: PlannedFile[];
  skipped: SkippedFile[];
  /** Invalid inputs; a run with any (and no skipInvalid) sends nothing. */
  problems: Problem[];
  /** media_type values that Unit21 does not recognise, each with its closest recognised value. */
  warnings: string[];
  bytes: number;
}
