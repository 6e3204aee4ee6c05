import { MAX_BYTES_PER_REQUEST } from '../files/file-types.js';
import type { PlannedFile } from '../inputs/plan.js';

/** Groups consecutive files for the same entity (or alert, case, event) into requests of at most `size` files and 20 MB. */
export async function* batches(files: AsyncIterable<PlannedFile>, size: number): AsyncGenerator<PlannedFile[]> {
  let batch: PlannedFile[] = [];
  let bytes = 0;
  for await (const file of files) {
    // A full batch went out already: what is left to decide is the entity and the 20 MB.
    const fits =
      batch[0]?.entityId === file.entityId &&
      batch[0].object === file.object &&
      bytes + file.bytes <= MAX_BYTES_PER_REQUEST;
    if (batch.length > 0 && !fits) {
      yield batch;
      batch = [];
      bytes = 0;
    }
    batch.push(file);
    bytes += file.bytes;
    // A full batch goes at once, not when the next file shows up: that file's own checks
    // (and their failures) come after this batch has started.
    if (batch.length === size) {
      yield batch;
      batch = [];
      bytes = 0;
    }
  }
  if (batch.length > 0) yield batch;
}
