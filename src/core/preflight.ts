import { stat as statCallback, type Stats } from 'node:fs';
import { promisify } from 'node:util';
import { basename } from 'node:path';
import { contentTypeOf, extensionOf, SUPPORTED_EXTENSIONS } from './file-types.js';
import { inferMediaType, isRecognised, RECOGNISED_MEDIA_TYPES, type CompiledRule, type MediaTypeSource } from './media-type.js';
import { readSidecar, sidecarPathOf, type FileMetadata } from './sidecar.js';
import { mapOrdered } from './map-ordered.js';
import { closest } from './did-you-mean.js';
import { route, type EntitySource } from './route.js';
import { shardOf, type Shard } from './shard.js';
import type { Found, FoundFile } from './discover.js';
import type { Problem } from './errors.js';
import type { Checked, PlannedFile } from './plan.js';
import type { CheckedSizes } from './checked-sizes.js';

export interface PreflightSettings {
  entity: EntitySource;
  mediaType?: string;
  infer: boolean;
  rules: readonly CompiledRule[];
  maxFileSize: number;
  /** Only this shard's files are checked and yielded. */
  shard?: Shard;
  /** A large run's second look: only the files its check saw, at the size they had then. */
  checkedSizes?: CheckedSizes;
}

// The callback API: fs/promises costs about twice as much per stat, which a 300,000-file check feels.
const stat = promisify(statCallback);

// Enough parallel stats and sidecar reads to hide disk latency without exhausting file handles.
const PREFLIGHT_CONCURRENCY = 32;

/**
 * Checks each found file as it comes, in order, a few ahead of the consumer: what it is,
 * where it goes and what it carries. Warns once per unrecognised media_type.
 */
export async function* preflight(found: AsyncIterable<Found>, settings: PreflightSettings): AsyncGenerator<Checked> {
  const warned = new Set<string>();
  for await (const checked of mapOrdered(found, PREFLIGHT_CONCURRENCY, (item) => checkFound(item, settings))) {
    if (checked.kind === 'elsewhere') continue;
    const type = checked.kind === 'file' ? checked.file.mediaType : undefined;
    if (type !== undefined && !isRecognised(type) && !warned.has(type)) {
      warned.add(type);
      yield { kind: 'warning', message: unrecognisedWarning(type) };
    }
    yield checked;
  }
}

/** Another shard's file (--shard), or one the check of a large run did not see, is not this run's: dropped without a word. */
async function checkFound(item: Found, settings: PreflightSettings): Promise<Checked | { kind: 'elsewhere' }> {
  if (item.kind === 'problem') return item;
  const result = await check(item.file, settings);
  if ('elsewhere' in result) return { kind: 'elsewhere' };
  if ('skip' in result) return { kind: 'skip', path: result.path, reason: result.reason ?? 'unsupported', message: result.skip };
  if ('message' in result) {
    // A manifest row's problem names the row (file:line) and the file.
    const problem = item.file.row ? { path: item.file.row.where, message: `${item.file.path}: ${result.message}` } : result;
    return { kind: 'problem', problem };
  }
  return { kind: 'file', file: result };
}

// Looked up on first use, not at import: importing the library does no I/O.
let identity: { uid: number | undefined; groups: Set<number> } | undefined;

/** Whether this process may read a file, from its mode bits (ACLs aside: the send would still fail cleanly). */
function readableByUs(stats: Stats): boolean {
  identity ??= { uid: process.getuid?.(), groups: new Set(process.getgroups?.() ?? []) };
  const { uid, groups } = identity;
  if (uid === undefined || uid === 0) return true;
  if (stats.uid === uid) return (stats.mode & 0o400) !== 0;
  if (groups.has(stats.gid)) return (stats.mode & 0o040) !== 0;
  return (stats.mode & 0o004) !== 0;
}

type Skip = { path: string; skip: string; reason?: 'link_outside' };

async function check(file: FoundFile, settings: PreflightSettings): Promise<PlannedFile | Problem | Skip | { elsewhere: true }> {
  const name = basename(file.absPath);
  // Routed first: the shard is decided by entity and path alone, before any disk access.
  const routed = route(file, name, settings.entity);
  const { shard } = settings;
  if (shard && shard.n > 1 && shardOf('entityId' in routed ? routed.entityId : '', file.key, shard.n) !== shard.k) return { elsewhere: true };
  const { verdict } = file;
  if (verdict) {
    if ('problem' in verdict) return { path: file.path, message: verdict.problem };
    return { path: file.path, skip: verdict.message, ...(verdict.skip === 'link_outside' && { reason: verdict.skip }) };
  }
  const contentType = contentTypeOf(name);
  if (!contentType) {
    const ext = extensionOf(name);
    const message = `${ext ? `.${ext}` : 'a file without an extension'} is not a file type Unit21 accepts`;
    if (!file.explicit) return { path: file.path, skip: message };
    return { path: file.path, message: `${message}; supported: ${SUPPORTED_EXTENSIONS.join(', ')}` };
  }

  let bytes: number;
  if (settings.checkedSizes) {
    // Checked already: its size then is the one to send, or the read fails with file_changed.
    const checkedSize = settings.checkedSizes.sizeOf(file.absPath);
    if (checkedSize === undefined) return { elsewhere: true };
    bytes = checkedSize;
  } else {
    const size = await sizeOnDisk(file);
    if (typeof size !== 'number') return size;
    bytes = size;
  }
  if ('problem' in routed) return { path: file.path, message: routed.problem };
  if (bytes === 0) return { path: file.path, message: 'file is empty (0 bytes); Unit21 rejects empty media' };
  if (bytes > settings.maxFileSize) {
    return { path: file.path, message: `file is ${bytes} bytes, over the limit of ${settings.maxFileSize}; Unit21 takes at most 5 MB per file (raise --max-file-size only for a deployment that accepts more)` };
  }

  let sidecar: FileMetadata | undefined;
  try {
    sidecar = file.hasSidecar === false ? undefined : await readSidecar(file.absPath);
  } catch (error) {
    return { path: file.path, message: `${basename(sidecarPathOf(file.path))}: ${(error as Error).message}` };
  }

  const row = file.row?.metadata;
  const [mediaType, decidedBy] = resolveMediaType(routed.conventionName, row, sidecar, settings);
  // A report given back says where its media_type was first decided; that stays the answer.
  const mediaTypeSource = decidedBy === 'manifest' ? (file.row?.mediaTypeSource ?? decidedBy) : decidedBy;
  if (settings.entity.kind === 'event' && mediaType === undefined) {
    return { path: file.path, message: 'event media needs a media_type (Unit21 requires it); give --media-type, a sidecar, or a name it can be read from' };
  }
  // A manifest row's custom_data keys win over the sidecar's.
  const customData = sidecar?.customData || row?.customData ? { ...sidecar?.customData, ...row?.customData } : undefined;
  return {
    path: file.path,
    absPath: file.absPath,
    name,
    entityId: routed.entityId,
    mediaTypeSource,
    bytes,
    contentType,
    ...(mediaType !== undefined && { mediaType }),
    ...(customData && { customData }),
  };
}

/** A file's size from one stat, or why it cannot be sent. */
async function sizeOnDisk(file: FoundFile): Promise<number | Problem | Skip> {
  try {
    // One stat per file: a FileHandle, or an access() call, costs far more in a 300,000-file run.
    const stats = await stat(file.absPath);
    if (!stats.isFile()) {
      const message = 'not a regular file (a folder link, pipe or device)';
      return file.explicit ? { path: file.path, message } : { path: file.path, skip: message };
    }
    if (!readableByUs(stats)) return { path: file.path, message: 'cannot read it (EACCES); check its permissions' };
    return stats.size;
  } catch (error) {
    const err = error as NodeJS.ErrnoException;
    // A walk may meet a link to nothing; a named file that is gone is the user's mistake.
    if (err.code === 'ENOENT' && !file.explicit) return { path: file.path, skip: 'a broken link (or the file vanished)' };
    return { path: file.path, message: `cannot read it (${err.code ?? err.message}); check that it exists and its permissions` };
  }
}

/** media_type precedence: manifest row, sidecar, then --media-type, then the file name. */
function resolveMediaType(
  conventionName: string,
  row: FileMetadata | undefined,
  sidecar: FileMetadata | undefined,
  settings: PreflightSettings,
): [string | undefined, MediaTypeSource] {
  if (row?.mediaType) return [row.mediaType, 'manifest'];
  if (sidecar?.mediaType) return [sidecar.mediaType, 'sidecar'];
  if (settings.mediaType) return [settings.mediaType, 'flag'];
  if (settings.infer) {
    const inferred = inferMediaType(conventionName, settings.rules);
    if (inferred) return [inferred, 'file_name'];
  }
  return [undefined, 'none'];
}

function unrecognisedWarning(type: string): string {
  const near = closest(type, RECOGNISED_MEDIA_TYPES);
  return `media_type "${type}" is not one Unit21 recognises (${near ? `did you mean ${near}? ` : ''}see u21-media types); it is sent as given`;
}
