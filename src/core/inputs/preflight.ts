import { stat as statCallback, type Stats } from 'node:fs';
import { promisify } from 'node:util';
import { basename, dirname } from 'node:path';
import {
  contentTypeOf,
  CONVERTIBLE_EXTENSIONS,
  extensionOf,
  FITTABLE_EXTENSIONS,
  jpegName,
  SUPPORTED_EXTENSIONS,
} from '../files/file-types.js';
import {
  CONVERTIBLE,
  detect,
  hasEndMarker,
  isSniffed,
  judge,
  kindOfExtension,
  readHeadAndTail,
  type Detected,
} from '../files/sniff.js';
import {
  inferMediaType,
  isRecognised,
  RECOGNISED_MEDIA_TYPES,
  type CompiledRule,
  type MediaTypeSource,
} from './media-type.js';
import { readSidecar, sidecarPathOf, type FileMetadata } from '../files/sidecar.js';
import { mapOrdered } from '../shared/map-ordered.js';
import { withDescriptor } from '../files/descriptors.js';
import { CHANGED_SINCE_CHECK, identityNumber, identityOf, type FileIdentity } from '../files/file-identity.js';
import { closest } from '../shared/did-you-mean.js';
import { OBJECT_NAME, offSpecCharacters, route, SPEC_ID_RULE, type EntitySource } from './route.js';
import { shardOf, type Shard } from './shard.js';
import { judgeLink } from './discover.js';
import type { Found, FoundFile } from './found.js';
import { lstat, realpath } from 'node:fs/promises';
import type { Problem } from '../shared/errors.js';
import type { Checked, Fix, InputPlace, PlannedFile } from './plan.js';
import type { DiskTable } from '../disk/disk-table.js';
import { textProblem } from '../shared/well-formed.js';
import { objectIdentity, objectSidecar, type ObjectStore } from '../s3/store.js';
import { isS3Url } from '../s3/url.js';

export interface PreflightSettings {
  entity: EntitySource;
  mediaType?: string;
  infer: boolean;
  rules: readonly CompiledRule[];
  maxFileSize: number;
  /** Compare each file's content with its extension (--no-sniff turns it off). */
  sniff: boolean;
  /** The body format: multipart refuses names its headers cannot carry exactly. */
  format: 'multipart' | 'json';
  /** --convert, --fit, --strip-location: what may be changed before sending. */
  convert: boolean;
  fit: boolean;
  stripLocation: boolean;
  /** Only this shard's files are checked and yielded. */
  shard?: Shard;
  /** A large run's second look: only the files its check saw, each as it was then (identityNumber). */
  checkedFiles?: DiskTable;
  /** Follow links out of the folder (--follow-links): a named file's sidecar too. */
  followLinks?: boolean;
  /** Called once for every input checked, also another shard's (for the check's progress). */
  onChecked?: () => void;
  /** The run's S3 client, for the objects manifest rows name by their s3:// URL (opened on the first). */
  objectStore?: () => Promise<ObjectStore>;
}

// The callback API: fs/promises costs about twice as much per stat, which a 300,000-file check feels.
const stat = promisify(statCallback);

// Enough parallel stats and sidecar reads to hide disk latency without exhausting file handles.
const PREFLIGHT_CONCURRENCY = 32;

const INEXACT_IN_MULTIPART = /["\\\p{Cc}]|%[0-9A-Fa-f]{2}/u;

/**
 * What in a file name would not arrive as it is in multipart: form-data writes `"` as `%22`
 * (so `a"b` and `a%22b` arrive alike), and parsers disagree about `\\` and about control
 * characters (a line break ends the header).
 */
function inexactInMultipart(name: string): string | undefined {
  // One pass for the names that are fine, which is nearly all of them.
  if (!INEXACT_IN_MULTIPART.test(name)) return undefined;
  if (name.includes('"')) return 'a double quote (")';
  if (name.includes('\\')) return 'a backslash (\\)';
  if (/%[0-9A-Fa-f]{2}/.test(name)) return 'a percent-escape such as %22';
  if (/\p{Cc}/u.test(name)) return 'a control character';
  return undefined;
}

/** Ids warned of by name; past these, one more warning says there are more. */
const IDS_NAMED_AT_MOST = 5;

/**
 * Warns once per entity or event id with characters outside the spec's set, naming a few ids
 * and then only that there are more. Alert and case ids are Unit21's own, not checked.
 */
class OffSpecIds {
  private readonly warned = new Set<string>();
  /** Files come grouped by id: the id just checked is not checked again. */
  private last: string | undefined;

  warning({ entityId: id, object }: PlannedFile): string | undefined {
    if (
      object === 'alerts' ||
      object === 'cases' ||
      id === this.last ||
      this.warned.size > IDS_NAMED_AT_MOST ||
      this.warned.has(id)
    )
      return undefined;
    this.last = id;
    const off = offSpecCharacters(id);
    if (off.length === 0) return undefined;
    this.warned.add(id);
    if (this.warned.size > IDS_NAMED_AT_MOST)
      return "more ids have characters outside Unit21's documented set; they are sent as given and not named here";
    return `${OBJECT_NAME[object ?? 'entities']} id ${JSON.stringify(id)} has ${off.map((c) => JSON.stringify(c)).join(', ')}, outside the characters Unit21's spec describes (${SPEC_ID_RULE}); it is sent as given, and the API may refuse it`;
  }
}

/** Media Unit21's dashboard shows for one alert or case. */
const MEDIA_SHOWN_AT_MOST = 100;

/** Counts the files for each alert and case, and warns once for each that gets more than the dashboard shows. */
class DashboardCap {
  private readonly counts = new Map<string, number>();

  warning({ entityId: id, object }: PlannedFile): string | undefined {
    if (object !== 'alerts' && object !== 'cases') return undefined;
    const key = `${object}\0${id}`;
    const count = (this.counts.get(key) ?? 0) + 1;
    this.counts.set(key, count);
    if (count !== MEDIA_SHOWN_AT_MOST + 1) return undefined;
    return `more than ${MEDIA_SHOWN_AT_MOST} files go to ${OBJECT_NAME[object]} ${id}: Unit21's dashboard shows at most ${MEDIA_SHOWN_AT_MOST} media per alert or case; link the rest to the entity instead`;
  }
}

/**
 * Checks each found file as it comes, in order, a few ahead of the consumer: what it is,
 * where it goes and what it carries. Warns once per unrecognised media_type.
 */
export async function* preflight(found: AsyncIterable<Found>, settings: PreflightSettings): AsyncGenerator<Checked> {
  const warned = new Set<string>();
  const offSpecIds = new OffSpecIds();
  const shown = new DashboardCap();
  const checkedAlong = async (item: Found) => ({ item, checked: await checkFound(item, settings) });
  for await (const { item, checked } of mapOrdered(found, PREFLIGHT_CONCURRENCY, checkedAlong)) {
    settings.onChecked?.();
    if (checked.kind === 'elsewhere') continue;
    if (checked.kind === 'file' && item.kind === 'found') {
      const { file } = checked;
      const offSpec = offSpecIds.warning(file);
      if (offSpec) yield { kind: 'warning', message: offSpec, ...idPlace(item.file, settings.entity) };
      const overCap = shown.warning(file);
      if (overCap) yield { kind: 'warning', message: overCap, at: placeOf(item.file) };
      const type = file.mediaType;
      if (type !== undefined && !isRecognised(type) && !warned.has(type)) {
        warned.add(type);
        const at = mediaTypePlace(item.file, file);
        yield {
          kind: 'warning',
          message: `${at ? '' : '--media-type: '}${unrecognisedWarning(type)}`,
          ...(at && { at }),
        };
      }
    }
    yield checked;
  }
}

/** The input a file was found in: its manifest line, or the file itself. */
const placeOf = (found: FoundFile): InputPlace => found.row?.at ?? { path: found.path };

/** Where an id came from: a manifest line, or the file whose folder or name holds it; none for one given by a flag (--entity), which the message names. */
function idPlace(found: FoundFile, entity: EntitySource): { at?: InputPlace } {
  return entity.kind === 'manifest' || entity.kind === 'dir' || entity.kind === 'prefix' ? { at: placeOf(found) } : {};
}

/** Where a file's media_type was read: its manifest line, its sidecar, or its name; undefined for --media-type. */
function mediaTypePlace(found: FoundFile, file: PlannedFile): InputPlace | undefined {
  if (found.row?.metadata.mediaType) return found.row.at;
  if (file.mediaTypeSource === 'sidecar') return { path: sidecarPathOf(found.path) };
  return file.mediaTypeSource === 'flag' ? undefined : { path: found.path };
}

/** Another shard's file (--shard), or one the check of a large run did not see, is not this run's: dropped without a word. */
async function checkFound(item: Found, settings: PreflightSettings): Promise<Checked | { kind: 'elsewhere' }> {
  if (item.kind === 'problem') return item;
  const result = await check(item.file, settings);
  if ('elsewhere' in result) return { kind: 'elsewhere' };
  if ('skip' in result)
    return { kind: 'skip', path: result.path, reason: result.reason ?? 'unsupported', message: result.skip };
  if ('message' in result) {
    // A manifest row's problem names the row (file:line) and the file.
    // A message about an object names its URL already.
    const named = result.message.startsWith(`${item.file.path}: `);
    const problem = item.file.row
      ? {
          path: `${item.file.row.at.path}:${item.file.row.at.line}`,
          message: named ? result.message : `${item.file.path}: ${result.message}`,
        }
      : result;
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

async function check(
  file: FoundFile,
  settings: PreflightSettings,
): Promise<PlannedFile | Problem | Skip | { elsewhere: true }> {
  const name = basename(file.absPath);
  // Routed first: the shard is decided by entity and path alone, before any disk access.
  const routed = route(file, name, settings.entity);
  const { shard } = settings;
  if (shard && shard.n > 1 && shardOf('entityId' in routed ? routed.entityId : '', file.key, shard.n) !== shard.k)
    return { elsewhere: true };
  const { verdict } = file;
  if (verdict) {
    if ('problem' in verdict) return { path: file.path, message: verdict.problem };
    return { path: file.path, skip: verdict.message, ...(verdict.skip === 'link_outside' && { reason: verdict.skip }) };
  }
  const ext = extensionOf(name);
  // HEIC and WebP photos are not Unit21's, but their JPEG copies are.
  const convertible = settings.convert && CONVERTIBLE_EXTENSIONS.has(ext);
  if (!convertible && !contentTypeOf(name)) {
    const offer = CONVERTIBLE_EXTENSIONS.has(ext) ? ' (--convert sends it as JPEG)' : '';
    const message = `${ext ? `.${ext}` : 'a file without an extension'} is not a file type Unit21 accepts${offer}`;
    if (!file.explicit) return { path: file.path, skip: message };
    return { path: file.path, message: `${message}; supported: ${SUPPORTED_EXTENSIONS.join(', ')}` };
  }

  // The second look of a large run takes only what its check saw, as it was then: one changed since fails when read (file_changed).
  const checkedThen = settings.checkedFiles?.get(file.absPath);
  if (settings.checkedFiles && checkedThen === undefined) return { elsewhere: true };
  // A manifest row's object is looked up only now: its shard is this one, and the HEADs go a few at a time.
  if (!file.stored && isS3Url(file.absPath)) {
    const named = await (await import('./discover-objects.js')).namedObject(file.absPath, settings.objectStore!);
    if ('problem' in named) return { path: file.path, message: named.problem };
    file = { ...file, stored: named, sidecarJudged: true };
  }
  const onDisk = file.stored ? { identity: objectIdentity(file.stored) } : await statOnDisk(file);
  if (!('identity' in onDisk)) return onDisk;
  const identity =
    checkedThen === undefined || identityNumber(onDisk.identity) === checkedThen
      ? onDisk.identity
      : CHANGED_SINCE_CHECK;
  const bytes = onDisk.identity.size;
  if ('problem' in routed) return { path: file.path, message: routed.problem };
  // Sent as the media's name: a path a caller made up (not one read from disk) may hold what is not text.
  const notText = textProblem(name, 'its name');
  if (notText) return { path: file.path, message: notText };
  if (bytes === 0) return { path: file.path, message: 'file is empty (0 bytes); Unit21 rejects empty media' };
  // A photo to convert or fit is measured once it is re-encoded.
  const reencoded = convertible || (settings.fit && FITTABLE_EXTENSIONS.has(ext));
  if (bytes > settings.maxFileSize && !reencoded) {
    const offer = FITTABLE_EXTENSIONS.has(ext) ? '; or pass --fit to re-encode it to fit' : '';
    return {
      path: file.path,
      message: `file is ${bytes} bytes, over the limit of ${settings.maxFileSize}; Unit21 takes at most 5 MB per file (raise --max-file-size only for a deployment that accepts more)${offer}`,
    };
  }
  if (bytes > MAX_REENCODED_INPUT && reencoded)
    return {
      path: file.path,
      message: `file is ${bytes} bytes, too large to re-encode (at most ${MAX_REENCODED_INPUT}); make it smaller first`,
    };

  let detected: Detected | undefined;
  // A large run's second look sends what its first look checked (its identity guards against changes since), and needs the content only to change it.
  const sniffNow =
    settings.sniff &&
    isSniffed(ext) &&
    (!settings.checkedFiles || settings.convert || settings.fit || settings.stripLocation);
  if (sniffNow) {
    let read;
    const wantTail = (head: Buffer) => hasEndMarker(detect(head));
    try {
      read = await (file.stored
        ? file.stored.store.headAndTail(file.stored, wantTail)
        : withDescriptor(() => readHeadAndTail(file.absPath, bytes, wantTail)));
    } catch (error) {
      if (file.stored) return { path: file.path, message: (error as Error).message };
      return {
        path: file.path,
        message: `cannot read it (${(error as NodeJS.ErrnoException).code ?? (error as Error).message}); check that it exists and its permissions`,
      };
    }
    const verdict = judge(ext, read.head, read.tail, {
      convert: settings.convert,
      imageExtension: convertible || FITTABLE_EXTENSIONS.has(ext) || ext === 'gif',
    });
    if (!verdict.ok) return { path: file.path, message: verdict.problem };
    detected = verdict.detected;
  }
  const fix = fixFor(ext, detected, bytes, settings);
  if ('problem' in fix) return { path: file.path, message: fix.problem };
  // What is sent as JPEG is named so; the file-name conventions read the name sent.
  const asJpeg = fix.convert || fix.fit;
  const sentName = asJpeg ? jpegName(name) : name;
  const inexact = settings.format === 'multipart' ? inexactInMultipart(sentName) : undefined;
  if (inexact)
    return {
      path: file.path,
      message: `its name has ${inexact}, which a multipart header does not carry exactly (Unit21 may store another name); send it with --format json, which keeps names exactly, or rename it`,
    };
  const contentType = asJpeg ? 'image/jpeg' : contentTypeOf(name)!;

  let sidecar: FileMetadata | undefined;
  const linkedOut =
    file.hasSidecar === false || file.sidecarJudged || settings.followLinks ? undefined : await sidecarLinkedOut(file);
  if (linkedOut) return { path: file.path, skip: linkedOut, reason: 'link_outside' };
  try {
    if (file.stored) sidecar = file.stored.sidecar && (await objectSidecar(file.stored.sidecar));
    else sidecar = file.hasSidecar === false ? undefined : await withDescriptor(() => readSidecar(file.absPath));
  } catch (error) {
    return { path: file.path, message: `${basename(sidecarPathOf(file.path))}: ${(error as Error).message}` };
  }

  const row = file.row?.metadata;
  const [mediaType, decidedBy] = resolveMediaType(
    asJpeg ? jpegName(routed.conventionName) : routed.conventionName,
    row,
    sidecar,
    settings,
  );
  // A report given back says where its media_type was first decided; that stays the answer.
  const mediaTypeSource = decidedBy === 'manifest' ? (file.row?.mediaTypeSource ?? decidedBy) : decidedBy;
  if (routed.object === 'events' && mediaType === undefined) {
    return {
      path: file.path,
      message:
        'event media needs a media_type (Unit21 requires it); give --media-type, a sidecar, or a name it can be read from',
    };
  }
  // A manifest row's custom_data keys win over the sidecar's.
  const customData =
    sidecar?.customData || row?.customData ? { ...sidecar?.customData, ...row?.customData } : undefined;
  return {
    path: file.path,
    absPath: file.absPath,
    name: sentName,
    entityId: routed.entityId,
    ...(routed.object && { object: routed.object }),
    mediaTypeSource,
    bytes,
    identity,
    contentType,
    ...(detected !== undefined && { detected }),
    ...(Object.keys(fix).length > 0 && { fix }),
    ...(mediaType !== undefined && { mediaType }),
    ...(customData && { customData }),
    ...(file.stored && { stored: file.stored }),
  };
}

/**
 * A named file's sidecar (on the command line or in a manifest) follows the rule a walk's does:
 * a link out of the file's own folder takes the file with it, since its metadata would come from
 * outside. Only a sidecar that is a link costs more than one lstat.
 */
async function sidecarLinkedOut(file: FoundFile): Promise<string | undefined> {
  const path = sidecarPathOf(file.absPath);
  const stats = await lstat(path).catch(() => undefined);
  if (!stats?.isSymbolicLink()) return undefined;
  const folder = dirname(file.absPath);
  const verdict = await judgeLink(
    path,
    { real: realpath(folder), shown: dirname(file.path) },
    `its sidecar ${basename(path)} is a link`,
  );
  return verdict && 'skip' in verdict && verdict.skip === 'link_outside' ? verdict.message : undefined;
}

/** Larger originals are refused for --convert and --fit: decoding one takes several times its size in memory. */
const MAX_REENCODED_INPUT = 200_000_000;

const FITTABLE_KINDS: ReadonlySet<Detected> = new Set(['jpeg', 'png', 'tiff']);

/** What --convert, --fit and --strip-location will do to this file, from what it is (its content when checked, else its extension). */
function fixFor(
  ext: string,
  detected: Detected | undefined,
  bytes: number,
  settings: PreflightSettings,
): Fix | { problem: string } {
  const kind = detected !== undefined && detected !== 'unknown' ? detected : kindOfExtension(ext);
  const fix: Fix = {};
  if (settings.convert && kind !== undefined && CONVERTIBLE.has(kind)) fix.convert = true;
  if (bytes > settings.maxFileSize) {
    if (settings.fit && (fix.convert || (kind !== undefined && FITTABLE_KINDS.has(kind)))) fix.fit = true;
    // Converted without --fit: its JPEG may fit; that is checked once it is made.
    else if (!fix.convert)
      return {
        problem: `file is ${bytes} bytes, over the limit of ${settings.maxFileSize}, and its content is not an image --fit can re-encode (JPEG, PNG, TIFF)`,
      };
  }
  if (settings.stripLocation && (fix.convert || fix.fit || (kind !== undefined && FITTABLE_KINDS.has(kind))))
    fix.stripLocation = true;
  return fix;
}

/** A file as the check sees it, from one stat, or why it cannot be sent. */
async function statOnDisk(file: FoundFile): Promise<{ identity: FileIdentity } | Problem | Skip> {
  try {
    // One stat per file: a FileHandle, or an access() call, costs far more in a 300,000-file run.
    const stats = await stat(file.absPath);
    if (!stats.isFile()) {
      const message = 'not a regular file (a folder link, pipe or device)';
      return file.explicit ? { path: file.path, message } : { path: file.path, skip: message };
    }
    if (!readableByUs(stats)) return { path: file.path, message: 'cannot read it (EACCES); check its permissions' };
    return { identity: identityOf(stats) };
  } catch (error) {
    const err = error as NodeJS.ErrnoException;
    // A walk may meet a link to nothing; a named file that is gone is the user's mistake.
    if (err.code === 'ENOENT' && !file.explicit)
      return { path: file.path, skip: 'a broken link (or the file vanished)' };
    return {
      path: file.path,
      message: `cannot read it (${err.code ?? err.message}); check that it exists and its permissions`,
    };
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
  // Unit21's spec lists the values as an enum, its prose says any string is taken: warned, not refused.
  return `media_type "${type}" is not one Unit21 recognises (${near ? `did you mean ${near}? ` : ''}see u21-media types); it is sent as given, and the API may refuse it`;
}
