import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { resolve } from 'node:path';
import type { Journal } from '../journal.js';
import type { PlannedFile } from '../plan.js';

/** sha256 of a file, read in a stream. */
async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

type RepeatVerdict =
  | { skip: 'journal' | 'duplicate'; message: string; sha256: string }
  /** The file could not be read to hash it: it fails without a request. */
  | { unreadable: NodeJS.ErrnoException }
  | { skip?: undefined; sha256?: string };

/**
 * Spots files an earlier run already uploaded (journal) and repeats of the same content to the
 * same entity within this run. Only files that could match are hashed here, since the same
 * content means the same size; the rest are hashed while they are sent.
 */
export class RepeatFilter {
  /** Per entity and size: the first file's path, or every such file's hash once two met. */
  private readonly bySize = new Map<string, string | Array<{ path: string; sha256: string }>>();

  constructor(
    private readonly options: { org: string; cwd: string; journal?: Journal; allowDuplicates: boolean },
  ) {}

  async check(file: PlannedFile): Promise<RepeatVerdict> {
    const { journal, allowDuplicates } = this.options;
    const id = { org: this.options.org, entityId: file.entityId, name: file.name, mediaType: file.mediaType ?? null };
    const inJournal = journal?.mayHave(id) ?? false;
    const key = `${file.entityId}\0${file.bytes}`;
    const earlier = allowDuplicates ? undefined : this.bySize.get(key);
    if (!inJournal && earlier === undefined) {
      if (!allowDuplicates) this.bySize.set(key, file.path);
      return {};
    }
    let sha256: string;
    try {
      sha256 = await sha256File(file.absPath);
    } catch (error) {
      return { unreadable: error as NodeJS.ErrnoException };
    }
    const known = allowDuplicates ? [] : await this.knownContent(earlier);
    const same = known.find((k) => k.sha256 === sha256);
    // Remembered even when skipped, so a later copy under another name is a duplicate too.
    if (!allowDuplicates && !same) this.bySize.set(key, [...known, { path: file.path, sha256 }]);
    if (inJournal && journal!.has(id, sha256)) {
      return { skip: 'journal', message: `already uploaded, as ${journal!.path} records`, sha256 };
    }
    if (same) return { skip: 'duplicate', message: `same content as ${same.path}, sent once to this entity (--allow-duplicates sends both)`, sha256 };
    return { sha256 };
  }

  /** The hashes of earlier files of the same entity and size; one gone since is left out. */
  private async knownContent(earlier: string | Array<{ path: string; sha256: string }> | undefined) {
    if (typeof earlier !== 'string') return earlier ?? [];
    try {
      return [{ path: earlier, sha256: await sha256File(resolve(this.options.cwd, earlier)) }];
    } catch {
      return [];
    }
  }
}
