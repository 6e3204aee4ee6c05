import type { Problem } from '../shared/errors.js';
import type { FileMetadata } from '../files/sidecar.js';
import type { StoredObject } from '../s3/store.js';
import type { MediaTypeSource } from './media-type.js';
import type { LinkedObject } from './objects.js';
import type { InputPlace } from './plan.js';

/** A file found from the user's path arguments or a manifest row. */
export interface FoundFile {
  /** As the user would write it: the argument joined with the path below it. */
  path: string;
  absPath: string;
  /** Named directly (refused when unsupported) rather than found by a walk or glob (skipped). */
  explicit: boolean;
  /** Its path below the input root (the folder walked, the working folder, or the manifest's folder): what --shard hashes. */
  key: string;
  /** Whether `<file>.json` exists beside it, when the walk already knows; undefined = look. */
  hasSidecar?: boolean;
  /** A walk or glob judged its sidecar's link already (against its root); a named file's sidecar is judged by preflight, against the file's folder. */
  sidecarJudged?: true;
  /** From a manifest row: its entity and metadata, and the manifest and line that say so. */
  row?: {
    entityId: string;
    object?: LinkedObject;
    metadata: FileMetadata;
    at: InputPlace & { line: number };
    mediaTypeSource?: MediaTypeSource;
  };
  /** Decided by the walk already: not to be sent (a link out of the tree, a broken link), or an invalid input. */
  verdict?: WalkVerdict;
  /** An object in a bucket (an s3:// path) rather than a file on disk: as its listing found it. */
  stored?: ListedObject;
}

/** What a walk can tell about an entry without the checks: a skip with its reason, or a problem. */
export type WalkVerdict = { skip: 'unsupported' | 'link_outside'; message: string } | { problem: string };

export type Found = { kind: 'found'; file: FoundFile } | { kind: 'problem'; problem: Problem };

/** An object as the walk hands it on: with the `<key>.json` sidecar listed beside it, if any. */
export type ListedObject = StoredObject & { sidecar?: StoredObject };

/** Dot-files and node_modules are never uploaded, however they are named. */
export const isExcludedName = (name: string) =>
  (name.startsWith('.') && name !== '.' && name !== '..') || name === 'node_modules';

export function isExcluded(relativePath: string): boolean {
  return relativePath.split(/[\\/]/).some(isExcludedName);
}
