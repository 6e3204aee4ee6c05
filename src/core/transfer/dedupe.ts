import { resolve } from 'node:path';
import type { BodyReader, WholeFile } from '../body/reader-threads.js';
import type { Journal } from '../journal/journal.js';
import { objectVersion, type PlannedFile } from '../inputs/plan.js';
import type { UploadIdentity } from '../journal/records.js';
import type { Scratch } from '../disk/scratch.js';
import { isS3Url } from '../s3/url.js';
import { objectBeside } from '../s3/store.js';

/** bySize's mark for a size whose files are hashed. */
const HASHED = -1;

type RepeatVerdict =
  | { skip: 'journal' | 'duplicate'; message: string; sha256: string }
  /** An earlier run sent it and got no answer: it may be on the entity already. */
  | { skip?: undefined; unknownOutcome: true; sha256: string }
  /** The file could not be read to hash it: it fails without a request. */
  | { unreadable: NodeJS.ErrnoException }
  | { skip?: undefined; unknownOutcome?: undefined; sha256?: string };

/**
 * Spots files an earlier run already uploaded or sent without an answer (journal), and repeats
 * of the same content to the same entity within this run. Only files that could match need a
 * hash, since the same content means the same size: a small file's comes with its read ahead,
 * a larger one is hashed by a reader thread; the rest are hashed while they are sent.
 */
/** Why a file an earlier run sent without an answer is skipped (--no-resend-unknown), and what to do. */
export const unknownOutcomeMessage = (journalPath: string) =>
  `an earlier run sent it and got no answer (${journalPath}); it may be on the entity already: check, then send it without --no-resend-unknown`;

export class RepeatFilter {
  /** Per entity and size: the first file's path (its place in `paths`) until a second of that size met it, then HASHED (its hash is in byContent). */
  private readonly bySize;
  /** Per entity and content: the first file met with it (its place in `paths`). */
  private readonly byContent;
  /** The paths those name, on disk like them: a backfill of millions of files holds none in memory. */
  private readonly paths;

  constructor(
    private readonly options: {
      host: string;
      org: string;
      cwd: string;
      journal?: Journal;
      allowDuplicates: boolean;
      scratch: Scratch;
      reader: BodyReader;
    },
  ) {
    this.bySize = options.scratch.table();
    this.byContent = options.scratch.table();
    this.paths = options.scratch.strings();
  }

  /** `read`: the file read whole ahead of its turn, if it was. */
  async check(file: PlannedFile, read?: Promise<WholeFile>): Promise<RepeatVerdict> {
    const { journal, allowDuplicates } = this.options;
    const { object } = file;
    const id = this.identityOf(file);
    // Per object and id: an alert and an entity of the same id are not the same place.
    const owner = object ? `${object}\0${file.entityId}` : file.entityId;
    const inJournal = journal?.mayHave(id) ?? false;
    const sizeKey = `${owner}\0${file.bytes}`;
    const earlier = allowDuplicates ? undefined : this.bySize.get(sizeKey);
    if (!inJournal && earlier === undefined) {
      if (!allowDuplicates) this.bySize.set(sizeKey, this.paths.add(file.path));
      return {};
    }
    let sha256: string;
    try {
      sha256 =
        (inJournal && this.recorded(file)) ||
        (read
          ? (await read).sha256
          : file.stored
            ? await file.stored.store.digest(file.stored)
            : await this.options.reader.digest(file.absPath, file.identity));
    } catch (error) {
      return { unreadable: error as NodeJS.ErrnoException };
    }
    let same: string | undefined;
    if (!allowDuplicates) {
      if (earlier !== undefined && earlier !== HASHED) await this.rememberContent(owner, earlier, file);
      this.bySize.set(sizeKey, HASHED);
      const contentKey = `${owner}\0${sha256}`;
      const first = this.byContent.get(contentKey);
      // Remembered even when skipped, so a later copy under another name is a duplicate too.
      if (first === undefined) this.byContent.set(contentKey, this.paths.add(file.path));
      else same = this.paths.get(first);
    }
    const storedAt = inJournal ? journal!.uploadedAt(id, sha256) : undefined;
    if (storedAt !== undefined) {
      return {
        skip: 'journal',
        message: `already uploaded${storedAt ? ` at ${storedAt}` : ''}, as ${journal!.path} records`,
        sha256,
      };
    }
    if (same !== undefined)
      return {
        skip: 'duplicate',
        message: `same content as ${same}, sent once to this entity (--allow-duplicates sends both)`,
        sha256,
      };
    if (inJournal && journal!.unknownOutcome(id, file.bytes, sha256)) return { unknownOutcome: true, sha256 };
    return { sha256 };
  }

  /**
   * The sha256 the journal records an object uploaded with under its identity, from its URL at
   * its ETag (and version): known without reading it (a resume of millions of objects reads
   * none of those sent). Undefined for a file on disk, and when no record says so (then it is hashed).
   */
  recorded(file: PlannedFile): string | undefined {
    // Asked when a small object may be read ahead, then again at its check: the journal's line is read once.
    const version = objectVersion(file);
    if (!version?.etag || !this.options.journal) return undefined;
    if (this.recordedFor.has(file)) return this.recordedFor.get(file);
    const sha256 = this.options.journal.uploadedObject(this.identityOf(file), {
      path: file.path,
      bytes: file.bytes,
      etag: version.etag,
      ...(version.version_id && { versionId: version.version_id }),
    });
    this.recordedFor.set(file, sha256);
    return sha256;
  }

  private readonly recordedFor = new WeakMap<PlannedFile, string | undefined>();

  private identityOf(file: PlannedFile): UploadIdentity {
    return {
      host: this.options.host,
      org: this.options.org,
      ...(file.object && { object: file.object }),
      entityId: file.entityId,
      name: file.name,
      mediaType: file.mediaType ?? null,
    };
  }

  /** Hashes the first file of a size once a second one meets it; one gone since is left out. */
  private async rememberContent(owner: string, path: number, second: PlannedFile) {
    try {
      const first = this.paths.get(path);
      // An object's: in the same store as the second (a run reads one store), of the same size.
      const digest =
        isS3Url(first) && second.stored
          ? objectBeside(second.stored, first).store.digest(objectBeside(second.stored, first))
          : this.options.reader.digest(resolve(this.options.cwd, first));
      const contentKey = `${owner}\0${await digest}`;
      this.byContent.add(contentKey, path);
    } catch {
      // Gone since: nothing to compare with.
    }
  }
}
