import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { SkippedEvent } from '../events.js';
import type { Journal } from '../journal.js';
import type { PlannedFile } from '../plan.js';

/** sha256 of a file, read in a stream. */
export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Drops files an earlier run already uploaded (journal) and repeats of the same content to
 * the same entity within this run. Only files that could match are hashed here; the rest are
 * hashed while they are sent.
 */
export async function* withoutRepeats(
  files: readonly PlannedFile[],
  options: { org: string; journal?: Journal; allowDuplicates: boolean; onSkip: (file: PlannedFile, event: SkippedEvent) => void },
): AsyncGenerator<PlannedFile> {
  // Same content means same size: only files sharing an (entity, size) can be duplicates.
  const sizeCounts = new Map<string, number>();
  if (!options.allowDuplicates) {
    for (const f of files) sizeCounts.set(`${f.entityId}\0${f.bytes}`, (sizeCounts.get(`${f.entityId}\0${f.bytes}`) ?? 0) + 1);
  }
  const firstWithContent = new Map<string, string>();

  for (const file of files) {
    const id = { org: options.org, entityId: file.entityId, name: file.name, mediaType: file.mediaType ?? null };
    const inJournal = options.journal?.mayHave(id) ?? false;
    const mayRepeat = (sizeCounts.get(`${file.entityId}\0${file.bytes}`) ?? 0) > 1;
    if (!inJournal && !mayRepeat) {
      yield file;
      continue;
    }
    const sha256 = await sha256File(file.absPath);
    if (inJournal && options.journal!.has(id, sha256)) {
      options.onSkip(file, { event: 'skipped', path: file.path, reason: 'journal', message: `already uploaded, as ${options.journal!.path} records` });
      continue;
    }
    if (mayRepeat) {
      const contentKey = `${file.entityId}\0${sha256}`;
      const first = firstWithContent.get(contentKey);
      if (first !== undefined) {
        options.onSkip(file, { event: 'skipped', path: file.path, reason: 'duplicate', message: `same content as ${first}, sent once to this entity (--allow-duplicates sends both)` });
        continue;
      }
      firstWithContent.set(contentKey, file.path);
    }
    yield file;
  }
}
