import { createHash, type Hash } from 'node:crypto';
import { Readable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import type { S3Client } from '@aws-sdk/client-s3';
import { CHANGED_SINCE_CHECK, fileChanged, SIZE_CHANGED, type FileIdentity } from '../files/file-identity.js';
import { HEAD_BYTES, TAIL_BYTES } from '../files/sniff.js';
import { base64Length, writeBase64 } from '../files/base64.js';
import { FRAMING_ROOM, type WholeFile } from '../files/framing.js';
import { MAX_SIDECAR_BYTES, parseSidecar, type FileMetadata } from '../files/sidecar.js';
import { isTransient, objectError, readError } from './errors.js';
import { CONNECTION_TIMEOUT_MS } from '../shared/connect-timeout.js';
import { ProxyChoosingAgent, type ProxyDecision } from './proxy-agent.js';
import { parseS3Url, s3Url } from './url.js';

/** Where objects are read from: the endpoint of an S3-compatible store, or AWS's own. */
export interface ObjectStoreSettings {
  /** --s3-endpoint or AWS_ENDPOINT_URL_S3: a store of its own (MinIO, R2, Ceph), addressed path-style. */
  endpoint?: string;
  /** The proxy for each connection to the store, by its URL (none: direct). */
  proxyFor?: ProxyDecision;
  /** --timeout: a connection not made, or a read that gets no byte, in this long is given up (and tried again). */
  timeoutMs: number;
}

/** An object as a listing found it: what the check and every read after it go by. */
export interface StoredObject {
  store: ObjectStore;
  bucket: string;
  key: string;
  size: number;
  /** As S3 gives it, quoted: every read asks for this version of the content, and gets it or fails. */
  etag: string;
  lastModified: number;
  /** The version S3 answered with, in a versioned bucket: known from a HEAD, else from the first GET of it. */
  versionId?: string;
}

/** The SDK's switch for its warning on Node versions it will soon leave (a public environment variable it reads as the client is made). */
const NODE_WARNING_SWITCH = 'AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED';

/** Reads of one object tried at most this many times, for cuts and slow-downs met once its body flows. */
const READ_TRIES = 5;

/**
 * Opens the S3 client a run reads objects with; the SDK is loaded only now, so a run of local
 * files never loads it. Credentials come from the SDK's default chain (environment, shared
 * config and AWS_PROFILE, web identity, container and instance roles), untouched; the region
 * from AWS_REGION or the profile, else us-east-1 (a bucket elsewhere is followed to its region).
 */
export async function openObjectStore(settings: ObjectStoreSettings): Promise<ObjectStore> {
  const { S3Client } = await import('@aws-sdk/client-s3');
  // The SDK warns once per process that its releases after January 2027 need Node 22; that is
  // the tool's decision to tell (its engines), not a warning on every run.
  const given = process.env[NODE_WARNING_SWITCH];
  process.env[NODE_WARNING_SWITCH] = 'true';
  // A bucket in another region than the one given (or defaulted) is followed there, as `aws s3` does.
  const clientIn = (region?: string) =>
    new S3Client({
      ...(settings.endpoint && { endpoint: settings.endpoint, forcePathStyle: true }),
      ...(region && { region }),
      followRegionRedirects: true,
      maxAttempts: READ_TRIES,
      requestHandler: connectionSettings(settings),
    });
  try {
    let client = clientIn();
    // No region anywhere (AWS_REGION, the profile), as a store of its own often has none: S3's signing needs one all the same.
    if ((await client.config.region().catch(() => undefined)) === undefined) {
      client.destroy();
      client = clientIn('us-east-1');
    }
    return new ObjectStore(client);
  } finally {
    if (given === undefined) delete process.env[NODE_WARNING_SWITCH];
    else process.env[NODE_WARNING_SWITCH] = given;
  }
}

/**
 * How the client connects: through the proxy chosen for the store's host, or direct; and a
 * connection or a read that stalls is cut after --timeout (idle, not in total: a large object
 * may take long, but never waits forever on a silent socket), to be tried again.
 */
function connectionSettings(settings: ObjectStoreSettings) {
  const proxyFor = settings.proxyFor ?? (() => undefined);
  const idleMs = settings.timeoutMs;
  return {
    httpAgent: new ProxyChoosingAgent(proxyFor, false),
    httpsAgent: new ProxyChoosingAgent(proxyFor, true),
    connectionTimeout: Math.min(idleMs, CONNECTION_TIMEOUT_MS),
    socketTimeout: idleMs,
  };
}

/** Objects of one store, listed and read through one client. */
export class ObjectStore {
  constructor(private readonly client: S3Client) {}

  /** The objects under a prefix, page by page as S3 lists them (in key order): a bucket of millions is never held whole. */
  async *list(bucket: string, prefix: string): AsyncGenerator<StoredObject> {
    const { ListObjectsV2Command } = await import('@aws-sdk/client-s3');
    let token: string | undefined;
    do {
      let page;
      try {
        page = await this.client.send(
          new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix, ...(token && { ContinuationToken: token }) }),
        );
      } catch (error) {
        throw objectError(error, s3Url(bucket, prefix));
      }
      for (const listed of page.Contents ?? []) {
        if (listed.Key === undefined || listed.Key.endsWith('/')) continue; // a "folder" marker
        yield {
          store: this,
          bucket,
          key: listed.Key,
          size: listed.Size ?? 0,
          etag: listed.ETag ?? '',
          lastModified: listed.LastModified?.getTime() ?? 0,
        };
      }
      token = page.IsTruncated ? page.NextContinuationToken : undefined;
    } while (token);
  }

  /** The object at a key as a HEAD finds it, or undefined when there is none (404). */
  async head(bucket: string, key: string): Promise<StoredObject | undefined> {
    const { HeadObjectCommand } = await import('@aws-sdk/client-s3');
    let answer;
    try {
      answer = await this.client.send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
    } catch (error) {
      if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 404) return undefined;
      throw objectError(error, s3Url(bucket, key));
    }
    const { ContentLength: size = 0, ETag: etag = '', LastModified: written, VersionId: versionId } = answer;
    return {
      store: this,
      bucket,
      key,
      size,
      etag,
      lastModified: written?.getTime() ?? 0,
      ...(versionId && { versionId }),
    };
  }

  /** Its first HEAD_BYTES and, when `wantTail` says so, its last TAIL_BYTES: one or two ranged reads. */
  async headAndTail(
    object: StoredObject,
    wantTail: (head: Buffer) => boolean,
  ): Promise<{ head: Buffer; tail: Buffer }> {
    const head = await this.collect(object, 0, Math.min(object.size, HEAD_BYTES));
    if (object.size <= HEAD_BYTES || !wantTail(head))
      return { head, tail: head.subarray(Math.max(0, head.length - TAIL_BYTES)) };
    return { head, tail: await this.collect(object, object.size - TAIL_BYTES, TAIL_BYTES) };
  }

  /** The object whole as it goes out (as it is, or base64), in memory with FRAMING_ROOM around it, and the sha256 of its bytes. */
  async readWhole(object: StoredObject, base64: boolean): Promise<WholeFile> {
    const bytes = await this.collect(object, 0, object.size, FRAMING_ROOM);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    if (!base64) return { bytes, sha256 };
    const out = Buffer.allocUnsafeSlow(FRAMING_ROOM + base64Length(object.size) + FRAMING_ROOM);
    writeBase64(bytes, out, FRAMING_ROOM);
    return { bytes: out.subarray(FRAMING_ROOM, FRAMING_ROOM + base64Length(object.size)), sha256 };
  }

  /** sha256 of the object's content, read as it streams. */
  async digest(object: StoredObject): Promise<string> {
    const hash = createHash('sha256');
    for await (const chunk of this.bytes(object)) hash.update(chunk);
    return hash.digest('hex');
  }

  /**
   * The object's bytes from `from` for `length` bytes, as they come, never touching disk. Each
   * GET asks for the version the check saw (If-Match) and is used only if the answer is that
   * version (its ETag): an object replaced since fails with file_changed, never mixing bytes of
   * two versions. A connection cut mid-object is picked up where it stopped, a few times.
   */
  async *bytes(object: StoredObject, from = 0, length = object.size): AsyncGenerator<Buffer> {
    const url = s3Url(object.bucket, object.key);
    const end = from + length;
    let at = from;
    for (let tries = 1; at < end; tries++) {
      try {
        for await (const chunk of await this.get(object, at, end)) {
          const piece = chunk as Buffer;
          if (at + piece.length > end) throw fileChanged(url, SIZE_CHANGED);
          at += piece.length;
          yield piece;
        }
        if (at !== end) throw fileChanged(url, SIZE_CHANGED);
        return;
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'file_changed' || !isTransient(error) || tries >= READ_TRIES)
          throw (error as NodeJS.ErrnoException).path ? error : readError(error, url);
        await sleep(100 * 2 ** tries);
      }
    }
  }

  /** One ranged GET of the version checked: its body, once its answer says it is that version. */
  private async get(object: StoredObject, from: number, end: number): Promise<AsyncIterable<unknown>> {
    const url = s3Url(object.bucket, object.key);
    if (end > object.size) throw fileChanged(url, SIZE_CHANGED);
    const { GetObjectCommand } = await import('@aws-sdk/client-s3');
    let answer;
    try {
      answer = await this.client.send(
        new GetObjectCommand({
          Bucket: object.bucket,
          Key: object.key,
          ...(object.etag && { IfMatch: object.etag }),
          Range: `bytes=${from}-${end - 1}`,
        }),
      );
    } catch (error) {
      if ((error as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode === 412)
        throw fileChanged(url, REPLACED);
      throw error;
    }
    const body = answer.Body as (AsyncIterable<unknown> & { destroy?: () => void }) | undefined;
    // A store that ignores If-Match still says which version it sent.
    if (object.etag && answer.ETag !== object.etag) {
      body?.destroy?.();
      throw fileChanged(url, REPLACED);
    }
    if (!body) throw fileChanged(url, SIZE_CHANGED);
    // The version sent, for the report: every read of it is the same version (its ETag).
    if (answer.VersionId) object.versionId ??= answer.VersionId;
    return body;
  }

  /** `length` bytes from `from`, in one buffer with `room` bytes free on either side. */
  private async collect(object: StoredObject, from: number, length: number, room = 0): Promise<Buffer> {
    const memory = Buffer.allocUnsafeSlow(room + length + room);
    let at = room;
    for await (const chunk of this.bytes(object, from, length)) at += chunk.copy(memory, at);
    return memory.subarray(room, at);
  }

  /** Lets go of the client's connections. */
  close(): void {
    this.client.destroy();
  }
}

const REPLACED =
  'the object was replaced after the check (its ETag differs), so it was not sent; run again to send it as it is now';

/**
 * What the check saw of an object, in the shape a file's is kept (a large run keeps it as a
 * number): its size, when it was written, and its ETag folded into the inode's place.
 */
export function objectIdentity(object: StoredObject): FileIdentity {
  const etag = Number.parseInt(createHash('sha1').update(object.etag).digest('hex').slice(0, 12), 16);
  return { dev: -2, ino: etag, size: object.size, mtimeMs: object.lastModified, ctimeMs: object.lastModified };
}

/** Whether a large run's second look found the object changed since its check: it then fails when read. */
export const changedSinceCheck = (identity: FileIdentity | undefined) => identity === CHANGED_SINCE_CHECK;

/** A sidecar object's metadata: read whole (it is small), parsed as a sidecar on disk is. */
export async function objectSidecar(sidecar: StoredObject): Promise<FileMetadata> {
  if (sidecar.size > MAX_SIDECAR_BYTES)
    throw new Error(
      `the sidecar is over ${MAX_SIDECAR_BYTES / 1024} KB; a sidecar holds media_type and a few custom_data fields`,
    );
  let text = '';
  for await (const chunk of sidecar.store.bytes(sidecar)) text += chunk.toString('utf8');
  return parseSidecar(text);
}

/** A planned object read whole, unless a large run's second look found it changed since its check. */
export function readObject(
  file: { path: string; identity?: FileIdentity; stored: StoredObject },
  base64: boolean,
): Promise<WholeFile> {
  if (changedSinceCheck(file.identity)) return Promise.reject(fileChanged(file.path, REPLACED));
  return file.stored.store.readWhole(file.stored, base64);
}

/** A planned object's bytes as a stream for a request body, hashed as they go (a body too large to hold whole). */
export function objectStream(
  file: { path: string; identity?: FileIdentity; stored: StoredObject },
  hash: Hash,
): Readable {
  const { stored } = file;
  async function* hashed() {
    if (changedSinceCheck(file.identity)) throw fileChanged(file.path, REPLACED);
    for await (const chunk of stored.store.bytes(stored)) {
      hash.update(chunk);
      yield chunk;
    }
  }
  return Readable.from(hashed(), { objectMode: false });
}

/** The object at `url` in the same store as `object` and of its size, whatever its version: to compare contents. */
export function objectBeside(object: StoredObject, url: string): StoredObject {
  const location = parseS3Url(url);
  if ('problem' in location) throw new Error(location.problem);
  return { ...object, ...location, etag: '', lastModified: 0 };
}
