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
export type SkipReason = 'unsupported' | 'link_outside' | 'invalid' | 'journal' | 'duplicate' | 'not_sent' | 'unknown_outcome';

/** What preflight made of one input, in the order found. */
export type Checked =
  | { kind: 'file'; file: PlannedFile }
  /** Found by a walk or glob but not to be sent (not something Unit21 takes, or a link out of the tree): skipped, not an error. */
  | { kind: 'skip'; path: string; reason: 'unsupported' | 'link_outside'; message: string }
  /** Invalid input: refuses the run, or is skipped as `invalid` with skipInvalid. */
  | { kind: 'problem'; problem: Problem }
  /** Said once per run, e.g. the first time an unrecognised media_type appears. */
  | { kind: 'warning'; message: string };
