import picomatch from 'picomatch';
import { isExcluded, type Found, type FoundFile, type ListedObject } from './found.js';
import { sidecarPathOf } from '../files/sidecar.js';
import type { ObjectStore, StoredObject } from '../s3/store.js';
import { parseS3Url, s3Url } from '../s3/url.js';

/**
 * Expands s3:// arguments into objects as a folder walk or a glob expands paths, page by page:
 * `s3://bucket/prefix/` (or a prefix without its slash) is walked like a folder, a glob such
 * as `s3://bucket/2024/**\/*_front.jpg` matches keys (picomatch, as fast-glob), and a key that
 * names one object is that object, named directly. An object reached twice is yielded once
 * (only when arguments can overlap: remembering costs memory). Dot-keys and node_modules are
 * left out, as on disk.
 */
export async function* discoverObjects(
  inputs: readonly string[],
  openStore: () => Promise<ObjectStore>,
): AsyncGenerator<Found> {
  const seen = inputs.length > 1 ? new Set<string>() : undefined;
  for (const input of inputs) {
    const location = parseS3Url(input);
    if ('problem' in location) {
      yield { kind: 'problem', problem: { path: input, message: location.problem } };
      continue;
    }
    const scan = picomatch.scan(location.key);
    const isGlob = scan.isGlob;
    // A glob lists below its static part; a key lists itself and what is below it as a folder.
    const prefix = isGlob ? (scan.base ? `${scan.base}/` : '') : location.key;
    const folder = location.key === '' || location.key.endsWith('/') ? location.key : `${location.key}/`;
    const matches = isGlob ? picomatch(location.key, { dot: false }) : undefined;
    let count = 0;
    try {
      const store = await openStore();
      for await (const object of withSidecars(store.list(location.bucket, prefix))) {
        const named = !isGlob && object.key === location.key;
        if (!named && (isGlob ? !matches!(object.key) : !object.key.startsWith(folder))) continue;
        // Below the root walked (or the glob's base): what --shard hashes, as for files.
        const below = named
          ? object.key.slice(object.key.lastIndexOf('/') + 1)
          : object.key.slice(isGlob ? prefix.length : folder.length);
        if (!named && isExcluded(below)) continue;
        const url = s3Url(object.bucket, object.key);
        count++;
        if (seen?.has(url)) continue;
        seen?.add(url);
        const file: FoundFile = {
          path: url,
          absPath: url,
          explicit: named,
          key: below,
          hasSidecar: object.sidecar !== undefined,
          sidecarJudged: true,
          stored: object,
        };
        yield { kind: 'found', file };
      }
    } catch (error) {
      const err = error as NodeJS.ErrnoException;
      yield { kind: 'problem', problem: { path: input, message: err.message } };
      continue;
    }
    if (count === 0) {
      const message = isGlob
        ? 'the pattern matches no object; check it (keys are case-sensitive)'
        : 'no object has this key, and none is below it as a folder; check the bucket and key';
      yield { kind: 'problem', problem: { path: input, message } };
    }
  }
}

/**
 * The objects of a listing, each with its `<key>.json` sidecar when one is listed, and without
 * the sidecars themselves. Keys come in order, so an object waits only until the listing is
 * past where its sidecar would be: the few keys in between (`a.jpg-2.jpg` before `a.jpg.json`).
 */
async function* withSidecars(listing: AsyncIterable<StoredObject>): AsyncGenerator<ListedObject> {
  let waiting: ListedObject[] = [];
  for await (const object of listing) {
    const owner = waiting.find((earlier) => sidecarPathOf(earlier.key) === object.key);
    if (owner) {
      owner.sidecar = object;
      continue;
    }
    const ready = waiting.filter((earlier) => sidecarPathOf(earlier.key) < object.key);
    if (ready.length > 0) {
      yield* ready;
      waiting = waiting.filter((earlier) => !ready.includes(earlier));
    }
    waiting.push(object);
  }
  yield* waiting;
}

/**
 * The object a manifest row (or a report given back) names by its URL, found by a HEAD, with
 * its `<key>.json` sidecar when there is one, as a named file's sidecar is looked for beside
 * it. A HEAD needs only s3:GetObject on the key: a manifest of keys needs no listing.
 */
export async function namedObject(
  url: string,
  openStore: () => Promise<ObjectStore>,
): Promise<ListedObject | { problem: string }> {
  const location = parseS3Url(url);
  if ('problem' in location) return location;
  const store = await openStore();
  try {
    const [object, sidecar] = await Promise.all([
      store.head(location.bucket, location.key),
      store.head(location.bucket, sidecarPathOf(location.key)),
    ]);
    if (!object) return { problem: `${url}: no such object; check the bucket and key (keys are case-sensitive)` };
    return sidecar ? { ...object, sidecar } : object;
  } catch (error) {
    // Said on the manifest's line: the message names the object.
    return { problem: `${url}: ${(error as Error).message}` };
  }
}
