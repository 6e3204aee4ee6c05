import { describe, expect, it } from 'vitest';
import type { PlannedFile } from '../../src/core/inputs/plan.js';
import { batches } from '../../src/core/transfer/batches.js';

const file = (name: string, entityId: string, bytes = 100): PlannedFile => ({
  path: name,
  absPath: `/${name}`,
  name,
  entityId,
  bytes,
  contentType: 'image/png',
  mediaTypeSource: 'none',
});

/** Yields the files, noting how many were pulled. */
function source(files: PlannedFile[]) {
  const pulled: string[] = [];
  async function* gen() {
    for (const f of files) {
      pulled.push(f.name);
      yield f;
    }
  }
  return { pulled, files: gen() };
}

describe('batches', () => {
  it('groups consecutive files of one entity, up to the size', async () => {
    const { files } = source([file('a', 'e1'), file('b', 'e1'), file('c', 'e1'), file('d', 'e2'), file('e', 'e1')]);
    const out: string[][] = [];
    for await (const batch of batches(files, 2)) out.push(batch.map((f) => f.name));
    expect(out).toEqual([['a', 'b'], ['c'], ['d'], ['e']]);
  });

  it('keeps an entity and an alert of the same id in separate requests', async () => {
    const { files } = source([
      file('a', '42'),
      { ...file('b', '42'), object: 'alerts' },
      { ...file('c', '42'), object: 'alerts' },
      { ...file('d', '42'), object: 'cases' },
    ]);
    const out: string[][] = [];
    for await (const batch of batches(files, 10)) out.push(batch.map((f) => f.name));
    expect(out).toEqual([['a'], ['b', 'c'], ['d']]);
  });

  it('splits a request that would pass 20 MB', async () => {
    const { files } = source([file('a', 'e1', 8e6), file('b', 'e1', 8e6), file('c', 'e1', 8e6)]);
    const out: string[][] = [];
    for await (const batch of batches(files, 10)) out.push(batch.map((f) => f.name));
    expect(out).toEqual([['a', 'b'], ['c']]);
  });

  it('hands out a full batch before pulling the next file', async () => {
    const { pulled, files } = source([file('a', 'e1'), file('b', 'e1'), file('c', 'e1')]);
    const it1 = batches(files, 1)[Symbol.asyncIterator]();
    expect(((await it1.next()).value as PlannedFile[]).map((f) => f.name)).toEqual(['a']);
    expect(pulled).toEqual(['a']);
  });
});
