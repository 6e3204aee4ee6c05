import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { open, stat } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { DiskTable } from '../disk/disk-table.js';
import type { JournalRecord, UploadIdentity } from './records.js';

const keyOf = (parts: unknown[]) => JSON.stringify(parts);
// A record counts only where it was written for: the API host and org, and the object (the same
// id names different things as an entity and as an alert).
const owner = (id: UploadIdentity) => [id.host, id.org, id.object ?? null, id.entityId];
const identityKey = (id: UploadIdentity) => keyOf([...owner(id), id.name, id.mediaType]);
const contentKey = (id: UploadIdentity, sha256: string) => keyOf([...owner(id), id.name, id.mediaType, sha256]);
const sizeKey = (id: UploadIdentity, bytes: number) => keyOf([...owner(id), id.name, id.mediaType, bytes]);
const objectKey = (id: UploadIdentity, path: string, etag: string) =>
  keyOf([...owner(id), id.name, id.mediaType, path, etag]);

/** `pending`'s marks: sent with its sha256 not known, and sent then answered. */
const SHA256_UNKNOWN = -1;
const ANSWERED = -2;
/** The first 52 bits of a sha256, exact in a number: enough to tell one file's content from another's. */
const sha256Number = (sha256: string) => Number.parseInt(sha256.slice(0, 13), 16);

// 3: a failure left unanswered names its file among the identities (indexes of 2 lacked it).
// 4: objects uploaded, by URL and ETag (indexes of 3 lacked them).
const VERSION = 4;
const TABLES = ['identities', 'uploads', 'pending', 'last', 'objects'] as const;
/** The journal's bytes are hashed in blocks this size: a run's own lines are hashed once, at its end. */
const BLOCK = 1024 * 1024;

/** The journal file as the index last saw it: any change to it since shows in one of these. */
interface FileStamp {
  dev: string;
  ino: string;
  size: string;
  mtimeNs: string;
  ctimeNs: string;
}

/** How much of the journal the index holds, and what it counted there. */
interface IndexState {
  version: number;
  covered: number;
  lines: number;
  /** The journal when the state was saved; when it differs now, `blocks` tell whether the covered bytes are still the same. */
  file: FileStamp;
  /** sha1 of each block of the covered bytes, the last one maybe short. */
  blocks: string[];
  uploadedBefore: number;
  /** Lines a later line about the same file made moot: a `sending` line once its outcome came, a failure once the file was sent again. */
  superseded: number;
  /** Records that name no API host (written before records did): they count for no host. */
  hostless: number;
  unusable: { count: number; lines: number[] };
}

/** Where a journal's index is kept: `.<journal>.index/` beside it. */
export const indexDirOf = (journal: string) => join(dirname(journal), `.${basename(journal)}.index`);

/** What a record is about: one file (by identity and size) on one entity. */
export const recordKey = (record: JournalRecord) => sizeKey(identityOf(record), record.bytes);
const identityOf = (record: JournalRecord): UploadIdentity => ({
  host: record.host ?? null,
  org: record.org,
  ...(record.object && { object: record.object }),
  entityId: record.entity_id,
  name: record.name,
  mediaType: record.media_type,
});
/** Whether a record is about a file of this identity. */
export const isRecordOf = (record: JournalRecord, id: UploadIdentity) =>
  identityKey(identityOf(record)) === identityKey(id);
/** `last`'s marks: the file's last record is its upload, or a send or failure. */
const LAST_UPLOADED = 0;
const LAST_UNFINISHED = 1;

/**
 * What a journal's records say, kept on disk beside it (`.<journal>.index/`) so that a resume
 * reads only the lines added since, and holds none of it in memory. The journal stays the
 * record: the index is rebuilt from it when missing, unreadable, or when the journal changed
 * other than by lines added at its end.
 */
export class JournalIndex {
  private constructor(
    readonly dir: string,
    private readonly tables: Record<(typeof TABLES)[number], DiskTable>,
    readonly state: IndexState,
  ) {}

  /** The journal's index, brought up to the journal's end: `apply` reads the lines it lacks. Kept beside the journal unless `dir` says where. */
  static async open(
    journal: string,
    apply: (index: JournalIndex) => Promise<void>,
    dir = indexDirOf(journal),
  ): Promise<JournalIndex> {
    const index = (await JournalIndex.load(dir, journal)) ?? JournalIndex.fresh(dir);
    await index.catchUp(journal, apply);
    return index;
  }

  /** Reads the lines added since and saves the state; a failure leaves no index to trust. */
  async catchUp(journal: string, apply: (index: JournalIndex) => Promise<void>): Promise<void> {
    const hashed = { blocks: this.state.blocks, end: this.state.covered };
    try {
      await apply(this);
      // The tables on disk before the state that says what they hold.
      for (const table of Object.values(this.tables)) table.flush();
      this.state.file = await stampOf(journal);
      this.state.blocks = await blockHashes(journal, this.state.covered, hashed);
      const temporary = join(this.dir, `state.json.${process.pid}`);
      writeFileSync(temporary, JSON.stringify(this.state));
      renameSync(temporary, join(this.dir, 'state.json'));
    } catch (error) {
      rmSync(this.dir, { recursive: true, force: true });
      throw error;
    }
  }

  mayHave(id: UploadIdentity): boolean {
    return this.tables.identities.get(identityKey(id)) !== undefined;
  }

  /** When this content was stored under this identity (ms, NaN if not readable), or undefined. */
  uploadedAt(id: UploadIdentity, sha256: string): number | undefined {
    return this.tables.uploads.get(contentKey(id, sha256));
  }

  /** Where the journal's last record of this object uploaded under this identity, from this URL at this ETag, starts (a byte offset), or undefined. */
  objectUploadAt(id: UploadIdentity, path: string, etag: string): number | undefined {
    return this.tables.objects.get(objectKey(id, path, etag));
  }

  unknownOutcome(id: UploadIdentity, bytes: number, sha256: string): boolean {
    const sent = this.tables.pending.get(sizeKey(id, bytes));
    return sent === SHA256_UNKNOWN || sent === sha256Number(sha256);
  }

  /** One record, read at the end of what is indexed (which now ends after it), its line starting at byte `at`. */
  add(record: JournalRecord, at: number): void {
    const { identities, uploads, pending, last, objects } = this.tables;
    const id = identityOf(record);
    const sized = sizeKey(id, record.bytes);
    if (record.host === undefined) this.state.hostless++;
    // Counted again, at worst, for lines a killed run's index held before its state was saved: it only decides when to compact.
    if (last.get(sized) === LAST_UNFINISHED) this.state.superseded++;
    last.set(sized, record.outcome === 'uploaded' ? LAST_UPLOADED : LAST_UNFINISHED);
    const sent = record.sha256 === null ? SHA256_UNKNOWN : sha256Number(record.sha256);
    if (record.outcome === 'sending') {
      pending.set(sized, sent);
      identities.add(identityKey(id), 1);
      return;
    }
    // A failure whose last attempt went unanswered is as unknown as a send with no outcome (and
    // may be all a compacted journal keeps of the file).
    if (record.outcome === 'failed' && record.possibly_duplicated) {
      pending.set(sized, sent);
      identities.add(identityKey(id), 1);
    } else pending.set(sized, ANSWERED);
    if (record.outcome === 'uploaded' && record.sha256 !== null) {
      identities.add(identityKey(id), 1);
      uploads.set(contentKey(id, record.sha256), Date.parse(record.time));
      if (typeof record.etag === 'string') objects.set(objectKey(id, record.path, record.etag), at);
      this.state.uploadedBefore++;
    }
  }

  /** Whether more of the journal's lines are superseded than live: it is then worth rewriting. */
  get overdue(): boolean {
    const { lines, superseded, unusable } = this.state;
    return superseded > lines - superseded - unusable.count;
  }

  /** Closes the index and removes it: its journal was rewritten. */
  remove(): void {
    this.close();
    rmSync(this.dir, { recursive: true, force: true });
  }

  close(): void {
    for (const table of Object.values(this.tables)) table.close();
  }

  /**
   * The index left by an earlier run, if it is one and indexes this journal as it is: the file
   * untouched since (the same inode, size and change times), or its covered bytes the same
   * block for block (after a killed run added lines, or a copy). An edit anywhere, even one
   * that keeps the size, makes it be rebuilt.
   */
  private static async load(dir: string, journal: string): Promise<JournalIndex | undefined> {
    let state: IndexState;
    try {
      state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as IndexState;
      if (state.version !== VERSION || !(state.covered <= statSync(journal).size)) return undefined;
      const untouched = sameStamp(state.file, await stampOf(journal)) && Number(state.file.size) === state.covered;
      if (!untouched && !sameBlocks(state.blocks, await blockHashes(journal, state.covered, { blocks: [], end: 0 })))
        return undefined;
    } catch {
      return undefined;
    }
    const tables: Partial<Record<(typeof TABLES)[number], DiskTable>> = {};
    try {
      for (const name of TABLES) {
        const table = DiskTable.open(join(dir, name));
        if (!table) throw new Error(`${name}: not a table`);
        tables[name] = table;
      }
    } catch {
      for (const table of Object.values(tables)) table.close();
      return undefined;
    }
    return new JournalIndex(dir, tables as Record<(typeof TABLES)[number], DiskTable>, state);
  }

  private static fresh(dir: string): JournalIndex {
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const tables = Object.fromEntries(TABLES.map((name) => [name, DiskTable.create(join(dir, name))])) as Record<
      (typeof TABLES)[number],
      DiskTable
    >;
    return new JournalIndex(dir, tables, {
      version: VERSION,
      covered: 0,
      lines: 0,
      file: { dev: '', ino: '', size: '', mtimeNs: '', ctimeNs: '' },
      blocks: [],
      uploadedBefore: 0,
      superseded: 0,
      hostless: 0,
      unusable: { count: 0, lines: [] },
    });
  }
}

async function stampOf(path: string): Promise<FileStamp> {
  const stats = await stat(path, { bigint: true });
  return {
    dev: String(stats.dev),
    ino: String(stats.ino),
    size: String(stats.size),
    mtimeNs: String(stats.mtimeNs),
    ctimeNs: String(stats.ctimeNs),
  };
}

const sameStamp = (a: FileStamp | undefined, b: FileStamp) =>
  a !== undefined &&
  a.dev === b.dev &&
  a.ino === b.ino &&
  a.size === b.size &&
  a.mtimeNs === b.mtimeNs &&
  a.ctimeNs === b.ctimeNs;

const sameBlocks = (a: readonly string[] | undefined, b: readonly string[]) =>
  a !== undefined && a.length === b.length && a.every((hash, i) => hash === b[i]);

/**
 * The sha1 of each block of the journal's first `end` bytes. The whole blocks among those
 * already hashed (`known`: the hashes of its first `known.end` bytes, trusted) are kept; only
 * the rest is read, a block at a time, so the event loop (and the lock's renewal) goes on.
 */
async function blockHashes(
  path: string,
  end: number,
  known: { blocks: readonly string[]; end: number },
): Promise<string[]> {
  const wholeKnown = Math.min(Math.floor(known.end / BLOCK), Math.floor(end / BLOCK), known.blocks.length);
  const hashes = known.blocks.slice(0, wholeKnown);
  const file = await open(path, 'r');
  try {
    const buffer = Buffer.allocUnsafe(BLOCK);
    for (let start = wholeKnown * BLOCK; start < end; start += BLOCK) {
      const length = Math.min(BLOCK, end - start);
      const { bytesRead } = await file.read(buffer, 0, length, start);
      if (bytesRead < length) throw new Error('the journal is shorter than its index says');
      hashes.push(createHash('sha1').update(buffer.subarray(0, length)).digest('hex'));
    }
  } finally {
    await file.close();
  }
  return hashes;
}
