import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type RequestListener, type ServerResponse } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import { join } from 'node:path';
import type { AddressInfo } from 'node:net';
import { DEFAULT_MAX_FILE_SIZE } from '../core/files/file-types.js';
import { isRecognised, RECOGNISED_MEDIA_TYPES } from '../core/inputs/media-type.js';
import { entityIdProblem, OBJECT_NAME } from '../core/inputs/route.js';
import type { ObjectType } from '../core/inputs/objects.js';
import { AFTER_STORE, createFaultPlan, type Fault, type FaultOptions } from './faults.js';
import { SANDBOX_API_KEY, SANDBOX_ORG } from './defaults.js';
import { BadRequest, parseJson, parseMultipart, type IncomingMedia } from './parse-body.js';
import type { RequestRecord, StoredMedia } from './store.js';

export type { FaultOptions } from './faults.js';

export interface SandboxOptions {
  port?: number;
  host?: string;
  /** The key clients must send in `u21-key` (default: a fixed sandbox key). */
  apiKey?: string;
  /** The only org name the key has access to. */
  org?: string;
  /** When given, only these entity ids exist; others answer 404. Default: every entity exists. */
  entities?: Iterable<string>;
  /** Entity, event, alert or case ids that do not exist: they answer 404 resource_not_found, as Unit21 does. */
  missing?: Iterable<string>;
  /** The key is accepted for this many requests, then refused (401) as a revoked key is; 0 refuses it from the start. Default: never. */
  revokeKeyAfter?: number;
  maxFileSize?: number;
  /** Refuse (400) a request with any media_type outside Unit21's list, as the spec's enum reads; by default any string is taken, as its prose says. */
  strictMediaTypes?: boolean;
  /** Where accepted files are written: `<dir>/<org>/<entity>/<name>` plus `<name>.meta.json`. */
  dir?: string;
  /** Accept and count, but neither parse nor keep anything: for benchmarks of the client. */
  sink?: boolean;
  /** Called once per answered request, for a request log. */
  onRequest?: (record: RequestRecord, ms: number) => void;
  /** Errors, resets, stalls, latency and a rate limit to inject; none by default. */
  faults?: FaultOptions;
  /** Serve https with this key and certificate (PEM), as Unit21 does, e.g. to test a proxy or a CA. */
  tls?: { key: string | Buffer; cert: string | Buffer };
}

/** A running sandbox: where it listens and what it stored. */
export interface Sandbox {
  /** The base URL to give `--base-url`, e.g. http://127.0.0.1:43210 */
  url: string;
  apiKey: string;
  org: string;
  /** Every media item accepted, in order. */
  stored: StoredMedia[];
  /** Every request received, in order, including refused ones. */
  requests: RequestRecord[];
  close(): Promise<void>;
}

// Ten 5 MB files as base64 JSON fit well within this; anything bigger is not a client of ours.
const MAX_BODY = 100 * 1024 * 1024;

/** Starts the local Unit21-compatible media API on loopback. */
export async function startSandbox(options: SandboxOptions = {}): Promise<Sandbox> {
  const apiKey = options.apiKey ?? SANDBOX_API_KEY;
  const org = options.org ?? SANDBOX_ORG;
  const entities = options.entities ? new Set(options.entities) : undefined;
  const missing = new Set(options.missing);
  const exists = (objectType: ObjectType, id: string) =>
    !missing.has(id) && !(objectType === 'entities' && entities && !entities.has(id));
  const revokeKeyAfter = options.revokeKeyAfter ?? Infinity;
  if (!(revokeKeyAfter >= 0)) throw new RangeError(`revokeKeyAfter must be 0 or more, got ${revokeKeyAfter}`);
  let keyUsesLeft = revokeKeyAfter;
  const maxFileSize = options.maxFileSize ?? DEFAULT_MAX_FILE_SIZE;
  const faults = createFaultPlan(options.faults);
  const stored: StoredMedia[] = [];
  const requests: RequestRecord[] = [];

  const listener: RequestListener = (req, res) => {
    handle(req, res).catch((error: Error) => reply(res, 500, { error_code: 'internal_error', message: error.message }));
  };
  const server = options.tls ? createTlsServer(options.tls, listener) : createServer(listener);

  async function handle(req: IncomingMessage, res: ServerResponse) {
    const path = (req.url ?? '/').split('?')[0]!;
    const record: RequestRecord = { method: req.method ?? '', path, status: 0, files: 0 };
    requests.push(record);
    const started = Date.now();
    const sentKey = [req.headers['u21-key']].flat()[0] ?? '';
    const answer = (status: number, body: unknown, headers: Record<string, string> = {}) => {
      record.status = status;
      if (faults.echoKey && status >= 400) [body, headers] = echoed(status, body, headers, sentKey);
      const send = () => {
        reply(res, status, body, headers);
        options.onRequest?.(record, Date.now() - started);
      };
      if (faults.latencyMs > 0) setTimeout(send, faults.latencyMs);
      else send();
    };

    const route = matchRoute(path, org);
    // GET /v1/{org}/entities/{id} reads an entity back; PUT .../link-media adds media.
    const read = route !== undefined && !route.linkMedia && route.objectType === 'entities' && req.method === 'GET';
    if (!route || (!route.linkMedia && !read))
      return drainThen(req, () => answer(404, { error_code: 'not_found', message: `no route for ${path}` }));
    if (!read && req.method !== 'PUT')
      return drainThen(req, () => answer(405, { error_code: 'method_not_allowed', message: 'use PUT' }));
    if (req.headers['u21-key'] !== apiKey) {
      return drainThen(req, () =>
        answer(401, { error_code: 'unauthorized', message: 'missing or invalid u21-key header' }),
      );
    }
    if (keyUsesLeft-- <= 0)
      return drainThen(req, () => answer(401, { error_code: 'unauthorized', message: 'this key has been revoked' }));
    if (route.org !== org) {
      return drainThen(req, () =>
        answer(403, { error_code: 'forbidden', message: `this key has no access to org "${route.org}"` }),
      );
    }
    if (read) {
      if (!exists('entities', route.objectId))
        return answer(404, { error_code: 'resource_not_found', message: `entity "${route.objectId}" not found` });
      const media = stored.filter((m) => m.objectType === 'entities' && m.objectId === route.objectId);
      return answer(200, {
        entity_id: route.objectId,
        media_data: media.map((m) => ({ name: m.name, media_type: m.mediaType, created_at: m.createdAt })),
      });
    }
    if (entityIdProblem(route.objectId) || !exists(route.objectType, route.objectId)) {
      return drainThen(req, () =>
        answer(404, {
          error_code: 'resource_not_found',
          message: `${OBJECT_NAME[route.objectType]} "${route.objectId}" not found`,
        }),
      );
    }

    // Faults only replace answers a healthy server would give to an allowed request, never a 401/403/404.
    const fault = faults.next();
    if (fault?.kind === 'huge-error') {
      record.fault = fault.kind;
      return drainThen(req, () => hugeAnswer(res, record, faults.echoKey ? sentKey : undefined));
    }
    if (fault && !AFTER_STORE.has(fault.kind)) {
      record.fault = fault.kind;
      return injectEarly(fault, req, answer, {
        redirectTo: faults.redirectTo,
        key: faults.echoKey ? sentKey : undefined,
      });
    }

    if (options.sink) return drainThen(req, () => answer(200, {})); // at socket speed, holding nothing
    const body = await readBody(req);
    if (!body) return answer(413, { error_code: 'payload_too_large', message: `request body over ${MAX_BODY} bytes` });
    let media: IncomingMedia[];
    const type = (req.headers['content-type'] ?? '').toLowerCase();
    const format = type.startsWith('application/json') ? 'json' : 'multipart';
    try {
      if (type.startsWith('multipart/form-data'))
        media = await parseMultipart(body, req.headers['content-type']!, maxFileSize);
      else if (format === 'json') media = parseJson(body, maxFileSize);
      else throw new BadRequest(`unsupported Content-Type "${type}"; send multipart/form-data or application/json`);
      if (route.objectType === 'events' && media.some((m) => !m.mediaType)) {
        throw new BadRequest('media_type is required for event media');
      }
      const refused = options.strictMediaTypes
        ? media.find((m) => typeof m.mediaType === 'string' && !isRecognised(m.mediaType))
        : undefined;
      if (refused)
        throw new BadRequest(
          `${refused.name}: media_type "${refused.mediaType}" is not one of ${RECOGNISED_MEDIA_TYPES.join(', ')}`,
        );
    } catch (error) {
      if (error instanceof BadRequest) return answer(400, { error_code: 'invalid_request', message: error.message });
      throw error;
    }
    const createdAt = new Date().toISOString();
    for (const { data, ...m } of media) {
      const item: StoredMedia = {
        org,
        objectType: route.objectType,
        objectId: route.objectId,
        ...m,
        format,
        createdAt,
      };
      if (options.dir && data) await saveToDisk(options.dir, item, data);
      stored.push(item);
    }
    record.files = media.length;
    if (fault) record.fault = fault.kind;
    // Stored but never answered: the client cannot tell whether the upload landed.
    if (fault?.kind === 'reset-after') return req.socket.resetAndDestroy();
    if (fault?.kind === 'slow') await new Promise((resolve) => setTimeout(resolve, faults.slowMs));
    // Stored and the status sent, then a body that never ends or breaks off.
    record.status = 200;
    if (fault?.kind === 'stall-after-store')
      return res.writeHead(200, { 'content-type': 'application/json', 'content-length': '100' }).write('{');
    if (fault?.kind === 'cut-after-store') {
      res
        .writeHead(200, { 'content-type': 'application/json', 'content-length': '1000' })
        .write('{}', () => req.socket.destroy());
      return;
    }
    if (fault?.kind === 'close-after-answer') {
      res
        .writeHead(200, { 'content-type': 'application/json', 'content-length': '2', connection: 'close' })
        .end('{}', () => req.socket.destroy());
      return;
    }
    answer(200, {});
  }

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve);
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `${options.tls ? 'https' : 'http'}://${host}:${address.port}`,
    apiKey,
    org,
    stored,
    requests,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

/** Writes an accepted file and its metadata under `<dir>/<org>/<entity>/` (events, alerts and cases under `events/`, `alerts/`, `cases/`). */
async function saveToDisk(dir: string, media: StoredMedia, data: Uint8Array) {
  // Ids and names come from clients: encoded, so none can climb out of `dir`.
  const folder = join(
    dir,
    encodeURIComponent(media.org),
    ...(media.objectType === 'entities' ? [] : [media.objectType]),
    encodeURIComponent(media.objectId),
  );
  await mkdir(folder, { recursive: true });
  const safe = encodeURIComponent(media.name).replace(/^\.+/, '_');
  let name = safe;
  // Created only if new ('wx'): two uploads of one name at once cannot overwrite each other.
  for (let n = 2; ; n++) {
    try {
      await writeFile(join(folder, name), data, { flag: 'wx' });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      name = `${n}-${safe}`;
    }
  }
  const meta = {
    name: media.name,
    media_type: media.mediaType,
    custom_data: media.customData,
    sha256: media.sha256,
    bytes: media.bytes,
    content_type: media.contentType,
    format: media.format,
    created_at: media.createdAt,
    org: media.org,
    [`${OBJECT_NAME[media.objectType]}_id`]: media.objectId,
  };
  await writeFile(join(folder, `${name}.meta.json`), `${JSON.stringify(meta, null, 2)}\n`);
}

/**
 * `/v1/{org}/{entities|events}/{id}` with or without `/link-media`, and
 * `/v1/{alerts|cases}/{unit21_id}/link-media` (no org: `org` is then the key's own), segments percent-decoded.
 */
function matchRoute(
  path: string,
  keyOrg: string,
): { org: string; objectType: ObjectType; objectId: string; linkMedia: boolean } | undefined {
  const parts = path.split('/');
  if (parts[0] !== '' || parts[1] !== 'v1') return undefined;
  try {
    if ((parts[2] === 'alerts' || parts[2] === 'cases') && parts.length === 5 && parts[4] === 'link-media') {
      return { org: keyOrg, objectType: parts[2], objectId: decodeURIComponent(parts[3]!), linkMedia: true };
    }
    const linkMedia = parts.length === 6 && parts[5] === 'link-media';
    const objectType = parts[3];
    if (!(linkMedia || parts.length === 5) || (objectType !== 'entities' && objectType !== 'events')) return undefined;
    return { org: decodeURIComponent(parts[2]!), objectType, objectId: decodeURIComponent(parts[4]!), linkMedia };
  } catch {
    return undefined;
  }
}

async function readBody(req: IncomingMessage): Promise<Buffer | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY) {
      req.resume();
      return undefined;
    }
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

type Answer = (status: number, body: unknown, headers?: Record<string, string>) => void;

/** The faults that refuse a request before its body is looked at: nothing is stored. */
function injectEarly(
  fault: Fault,
  req: IncomingMessage,
  answer: Answer,
  echo: { redirectTo: string; key: string | undefined },
) {
  switch (fault.kind) {
    case 'redirect': {
      const query = echo.key !== undefined ? `?key=${encodeURIComponent(echo.key)}` : '';
      return drainThen(req, () => answer(307, { error_code: 'moved' }, { location: `${echo.redirectTo}${query}` }));
    }
    case 'absurd-retry-after':
      return drainThen(req, () => answer(429, { error_code: 'rate_limit_exceeded' }, { 'retry-after': '999999' }));
    case 'reset-in-ms':
      return drainThen(req, () =>
        answer(429, { error_code: 'rate_limit_exceeded' }, { 'x-ratelimit-reset': String(Date.now() + 3_000) }),
      );
    case 'stall':
      // Read and drop the body but never answer, as a hung server would; close() still ends the connection.
      req.resume();
      return;
    case 'reset-before': {
      // A TCP reset mid-upload: the client sees ECONNRESET or "other side closed", never a status.
      const reset = () => req.socket.resetAndDestroy();
      req.once('data', reset);
      req.once('end', reset);
      return;
    }
    case '429':
    case 'rate-limit':
      return drainThen(req, () =>
        answer(429, { error_code: 'rate_limit_exceeded', message: 'too many requests' }, fault.headers),
      );
    case '500':
      return drainThen(req, () => answer(500, { error_code: 'internal_error' }));
    case '503':
      return drainThen(req, () => answer(503, { error_code: 'service_unavailable', message: 'try again later' }));
    case '423':
      return drainThen(req, () =>
        answer(423, { error_code: 'locked', message: 'the object is still being processed' }),
      );
    default:
      throw new Error(`fault "${fault.kind}" cannot be injected before the body is read`);
  }
}

/** Answers only after the request body is consumed, so the client sees the status, not a reset. */
function drainThen(req: IncomingMessage, send: () => void) {
  req.resume();
  if (req.readableEnded) send();
  else req.once('end', send);
}

function reply(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  // Destroyed: the client left, or close() ran, while a latency or slow timer was pending.
  if (res.headersSent || res.destroyed) return;
  // A string goes as plain text, as a gateway's error page would.
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  const type = typeof body === 'string' ? 'text/plain' : 'application/json';
  res.writeHead(status, { ...headers, 'content-type': type, 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

const HUGE_BYTES = 50 * 1024 * 1024;

/**
 * A 500 whose JSON message goes on for 50 MB, written as the client reads it: `clientLeft` is
 * noted when the client hangs up before the end (it read only what it needed).
 */
function hugeAnswer(res: ServerResponse, record: RequestRecord, key: string | undefined) {
  record.status = 500;
  const head = `{"error_code":"internal_error","message":"${key !== undefined ? `${JSON.stringify(key).slice(1, -1)} ` : ''}`;
  const tail = '"}';
  res.writeHead(500, {
    'content-type': 'application/json',
    'content-length': String(Buffer.byteLength(head) + HUGE_BYTES + tail.length),
  });
  res.write(head);
  const chunk = Buffer.alloc(64 * 1024, 'x');
  let sent = 0;
  res.on('close', () => {
    if (sent < HUGE_BYTES) record.clientLeft = true;
  });
  const pump = () => {
    while (sent < HUGE_BYTES && !res.destroyed) {
      sent += chunk.length;
      if (!res.write(chunk)) return void res.once('drain', pump);
    }
    if (!res.destroyed) res.end(tail);
  };
  pump();
}

/** An answer that gives the key back, as a leaky gateway does (FaultOptions.echoKey). */
function echoed(
  status: number,
  body: unknown,
  headers: Record<string, string>,
  key: string,
): [unknown, Record<string, string>] {
  const withKey = { ...headers, 'x-echo-u21-key': key };
  if (status === 401) return [`bad key: ${key}`, withKey];
  const fields = (typeof body === 'object' && body !== null ? body : {}) as { error_code?: string; message?: string };
  return [
    {
      ...fields,
      error_code: `${fields.error_code ?? 'error'}:${key}`,
      message: `${fields.message ?? ''} (u21-key: ${key})`,
    },
    withKey,
  ];
}
