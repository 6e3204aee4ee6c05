import { createHash } from 'node:crypto';
import { closeSync, createReadStream, fsyncSync, openSync, readSync, fstatSync, writeSync } from 'node:fs';
import { createInterface } from 'node:readline';

/** One line of the journal: a file's final outcome in one run. Never holds the API key. */
export interface JournalRecord {
  time: string;
  outcome: 'uploaded' | 'failed';
  org: string;
  entity_id: string;
  path: string;
  name: string;
  media_type: string | null;
  sha256: string | null;
  bytes: number;
  status: number | null;
  attempts: number;
  possibly_duplicated?: true;
  error_code?: string | null;
  message?: string;
}

/** What identifies "this file is already on that entity". */
export interface UploadIdentity {
  org: string;
  entityId: string;
  name: string;
  mediaType: string | null;
}

// Compact fixed-size keys keep a journal of 300,000 uploads to a few tens of MB in memory.
const keyOf = (parts: unknown[]) => createHash('sha1').update(JSON.stringify(parts)).digest('base64');
const identityKey = (id: UploadIdentity) => keyOf([id.org, id.entityId, id.name, id.mediaType]);

/**
 * The append-only record of outcomes. Each line is written with one write(2) as soon as the
 * outcome is known, so it survives a crash or `kill -9`; a torn last line is ignored on reading.
 */
export class Journal {
  private readonly identities = new Set<string>();
  private readonly uploads = new Set<string>();
  private fd: number | undefined;
  /** Lines that could not be read (a torn last line after a crash, say). */
  ignoredLines = 0;
  /** Uploads recorded by earlier runs. */
  uploadedBefore = 0;

  private constructor(readonly path: string) {}

  /** Reads what earlier runs recorded and opens the file for appending (creating it if needed). */
  static async open(path: string): Promise<Journal> {
    const journal = new Journal(path);
    await journal.load();
    journal.fd = openSync(path, 'a');
    journal.endWithNewline();
    return journal;
  }

  /** Whether an earlier run uploaded a file of this identity at all (then its content hash decides). */
  mayHave(id: UploadIdentity): boolean {
    return this.identities.has(identityKey(id));
  }

  /** Whether an earlier run uploaded this exact content under this identity. */
  has(id: UploadIdentity, sha256: string): boolean {
    return this.uploads.has(keyOf([id.org, id.entityId, id.name, id.mediaType, sha256]));
  }

  record(record: JournalRecord): void {
    if (this.fd === undefined) return;
    writeSync(this.fd, `${JSON.stringify(record)}\n`);
  }

  close(): void {
    if (this.fd === undefined) return;
    fsyncSync(this.fd);
    closeSync(this.fd);
    this.fd = undefined;
  }

  private async load() {
    let input;
    try {
      input = createReadStream(this.path, 'utf8');
      for await (const line of createInterface({ input, crlfDelay: Infinity })) {
        if (line.trim() === '') continue;
        let record: Partial<JournalRecord>;
        try {
          record = JSON.parse(line) as Partial<JournalRecord>;
        } catch {
          this.ignoredLines++;
          continue;
        }
        if (record.outcome !== 'uploaded' || typeof record.sha256 !== 'string') continue;
        const id = { org: String(record.org), entityId: String(record.entity_id), name: String(record.name), mediaType: record.media_type ?? null };
        this.identities.add(identityKey(id));
        this.uploads.add(keyOf([id.org, id.entityId, id.name, id.mediaType, record.sha256]));
        this.uploadedBefore++;
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    }
  }

  /** After a torn write, the next record must start on a line of its own. */
  private endWithNewline() {
    const size = fstatSync(this.fd!).size;
    if (size === 0) return;
    const last = Buffer.alloc(1);
    const readFd = openSync(this.path, 'r');
    try {
      readSync(readFd, last, 0, 1, size - 1);
    } finally {
      closeSync(readFd);
    }
    if (last[0] !== 0x0a) writeSync(this.fd!, '\n');
  }
}
