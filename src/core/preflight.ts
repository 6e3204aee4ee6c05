import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { basename } from 'node:path';
import { contentTypeOf, extensionOf, SUPPORTED_EXTENSIONS } from './file-types.js';
import { inferMediaType, isRecognised, RECOGNISED_MEDIA_TYPES, type CompiledRule, type MediaTypeSource } from './media-type.js';
import { readSidecar, sidecarPathOf, type FileMetadata } from './sidecar.js';
import { forEachLimit } from './for-each-limit.js';
import type { FoundFile } from './discover.js';
import type { Problem } from './errors.js';
import type { Plan, PlannedFile } from './plan.js';

export interface PreflightSettings {
  entityId: string;
  mediaType?: string;
  infer: boolean;
  rules: readonly CompiledRule[];
  maxFileSize: number;
}

/** Longest entity id Unit21 takes. */
export const MAX_ENTITY_ID_LENGTH = 128;

/** Why an entity id cannot be used, or undefined when it can. */
export function entityIdProblem(id: string): string | undefined {
  const length = [...id].length;
  if (length === 0) return 'entity id is empty';
  if (length > MAX_ENTITY_ID_LENGTH) return `entity id is ${length} characters, over Unit21's limit of ${MAX_ENTITY_ID_LENGTH}`;
  // URL parsers collapse these path segments even when percent-encoded.
  if (id === '.' || id === '..') return `entity id "${id}" cannot travel in a URL`;
  return undefined;
}

// Enough parallel stats and sidecar reads to hide disk latency without exhausting file handles.
const PREFLIGHT_CONCURRENCY = 32;

/** Checks every found file before anything is sent, in the order found. */
export async function preflight(found: readonly FoundFile[], settings: PreflightSettings): Promise<Plan> {
  const results: Array<PlannedFile | Problem | { skip: string; path: string } | undefined> = new Array(found.length);
  const indexed = found.map((file, index) => ({ file, index }));
  await forEachLimit(indexed, PREFLIGHT_CONCURRENCY, async ({ file, index }) => {
    results[index] = await check(file, settings);
  });

  const plan: Plan = { files: [], skipped: [], problems: [], warnings: [], bytes: 0 };
  for (const result of results) {
    if (!result) continue;
    if ('skip' in result) plan.skipped.push({ path: result.path, reason: 'unsupported', message: result.skip });
    else if ('message' in result) plan.problems.push(result);
    else {
      plan.files.push(result);
      plan.bytes += result.bytes;
    }
  }
  plan.warnings = unrecognisedWarnings(plan.files);
  return plan;
}

async function check(file: FoundFile, settings: PreflightSettings) {
  const name = basename(file.absPath);
  const contentType = contentTypeOf(name);
  if (!contentType) {
    const ext = extensionOf(name);
    const message = `${ext ? `.${ext}` : 'a file without an extension'} is not a file type Unit21 accepts`;
    if (!file.explicit) return { path: file.path, skip: message };
    return { path: file.path, message: `${message}; supported: ${SUPPORTED_EXTENSIONS.join(', ')}` };
  }

  let bytes: number;
  try {
    // Opening proves the file is readable now; O_NONBLOCK keeps a FIFO from hanging the run.
    const handle = await open(file.absPath, constants.O_RDONLY | constants.O_NONBLOCK);
    try {
      const stats = await handle.stat();
      if (!stats.isFile()) {
        const message = 'not a regular file (a folder link, pipe or device)';
        return file.explicit ? { path: file.path, message } : { path: file.path, skip: message };
      }
      bytes = stats.size;
    } finally {
      await handle.close();
    }
  } catch (error) {
    const err = error as NodeJS.ErrnoException;
    // A walk may meet a link to nothing; a named file that is gone is the user's mistake.
    if (err.code === 'ENOENT' && !file.explicit) return { path: file.path, skip: 'a broken link (or the file vanished)' };
    return { path: file.path, message: `cannot read it (${err.code ?? err.message}); check that it exists and its permissions` };
  }
  if (bytes === 0) return { path: file.path, message: 'file is empty (0 bytes); Unit21 rejects empty media' };
  if (bytes > settings.maxFileSize) {
    return { path: file.path, message: `file is ${bytes} bytes, over the limit of ${settings.maxFileSize}; Unit21 takes at most 5 MB per file (raise --max-file-size only for a deployment that accepts more)` };
  }

  let sidecar: FileMetadata | undefined;
  try {
    sidecar = await readSidecar(file.absPath);
  } catch (error) {
    return { path: file.path, message: `${basename(sidecarPathOf(file.path))}: ${(error as Error).message}` };
  }

  const [mediaType, mediaTypeSource] = resolveMediaType(file.absPath, sidecar, settings);
  const planned: PlannedFile = {
    path: file.path,
    absPath: file.absPath,
    name,
    entityId: settings.entityId,
    mediaTypeSource,
    bytes,
    contentType,
    ...(mediaType !== undefined && { mediaType }),
    ...(sidecar?.customData && { customData: sidecar.customData }),
  };
  return planned;
}

/** media_type precedence: manifest or sidecar, then --media-type, then the file name. */
function resolveMediaType(absPath: string, sidecar: FileMetadata | undefined, settings: PreflightSettings): [string | undefined, MediaTypeSource] {
  if (sidecar?.mediaType) return [sidecar.mediaType, 'sidecar'];
  if (settings.mediaType) return [settings.mediaType, 'flag'];
  if (settings.infer) {
    const inferred = inferMediaType(absPath, settings.rules);
    if (inferred) return [inferred, 'file_name'];
  }
  return [undefined, 'none'];
}

function unrecognisedWarnings(files: readonly PlannedFile[]): string[] {
  const unknown = new Set(files.map((f) => f.mediaType).filter((t): t is string => t !== undefined && !isRecognised(t)));
  return [...unknown].map((type) => {
    const near = closestMediaType(type);
    const suggestion = near ? `did you mean ${near}? ` : '';
    return `media_type "${type}" is not one Unit21 recognises (${suggestion}see u21-media types); it is sent as given`;
  });
}

/** The recognised media_type a value is probably a typo of, or undefined when none is close. */
export function closestMediaType(value: string): string | undefined {
  const upper = value.toUpperCase();
  let best: string | undefined;
  let bestDistance = Math.max(2, Math.floor(upper.length / 4)) + 1;
  for (const candidate of RECOGNISED_MEDIA_TYPES) {
    const d = editDistance(upper, candidate);
    if (d < bestDistance) [best, bestDistance] = [candidate, d];
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      current[j] = Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
    }
    previous = current;
  }
  return previous[b.length]!;
}
