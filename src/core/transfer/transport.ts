import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { Agent, type Dispatcher } from 'undici';
import type { RequestBody } from '../body/request-body.js';
import type { Clock } from '../shared/clock.js';
import type { Redact } from '../shared/redact.js';
import { Connections, type ConnectFailure } from './connections.js';

/** How a run reaches the API. */
export interface Transport {
  /**
   * PUTs one body; resolves with any HTTP status, rejects on network errors before a status
   * came, and at once when `signal` aborts, whatever the request is waiting for.
   */
  put(url: string, body: RequestBody, signal: AbortSignal): Promise<ApiResponse>;
  /** Whether the request went out on a connection (its headers were sent): one that did not, never reached the API. */
  reached(body: RequestBody): boolean;
  /** Whether the body went out in full: a request that then got no answer may have been stored. */
  bodySent(body: RequestBody): boolean;
  /** Why a request given up after `ms` before it reached a connection had none (the proxy not answering CONNECT, say). */
  unconnected(ms: number): ConnectFailure;
  /** Whether a body the server stored may be read into again: not when a caller's dispatcher may keep it. */
  readonly reusesBodies: boolean;
  close(): Promise<void>;
}

const SEND_HEADERS = 'undici:client:sendHeaders';
const BODY_SENT = 'undici:request:bodySent';

/** What the transport takes: the key, the pool's size and each request's time limit, the proxy or the caller's dispatcher. */
interface TransportSettings {
  apiKey: string;
  redact: Redact;
  concurrency: number;
  timeoutMs: number;
  clock: Clock;
  proxy?: URL;
  dispatcher?: Dispatcher;
}

/**
 * undici through its public API: a keep-alive pool sized to the run's concurrency whose
 * connections (direct, or through the proxy's CONNECT tunnel, so the API's host is resolved by
 * the proxy, never here) are made by Connections, each bounded in time and cut when the run
 * closes; or the caller's dispatcher (left open). Whether a request reached a connection, and
 * whether its body went out, come from undici's `undici:client:sendHeaders` and
 * `undici:request:bodySent` diagnostics channels, which undici's own dispatchers publish.
 */
export function undiciTransport(options: TransportSettings): Transport {
  const { dispatcher, connections } = options.dispatcher
    ? { dispatcher: options.dispatcher, connections: undefined }
    : ownDispatcher(options);
  const reached = new WeakSet<object>();
  const sent = new WeakSet<object>();
  const noting = (bodies: WeakSet<object>) => (message: unknown) => {
    const body = (message as { request: { body: unknown } }).request.body;
    if (typeof body === 'object' && body !== null) bodies.add(body);
  };
  const [onSendHeaders, onBodySent] = [noting(reached), noting(sent)];
  subscribe(SEND_HEADERS, onSendHeaders);
  subscribe(BODY_SENT, onBodySent);
  return {
    put: (url, body, signal) => put(url, body, { apiKey: options.apiKey, dispatcher, signal, redact: options.redact }),
    // A body that went out went out on a connection, also through a dispatcher that tells only that.
    reached: (body) => reached.has(body.body) || sent.has(body.body),
    bodySent: (body) => sent.has(body.body),
    unconnected: (ms) => connections?.stalled(ms) ?? { code: 'timeout', message: `no answer within ${ms / 1000} s` },
    reusesBodies: connections !== undefined,
    close: async () => {
      unsubscribe(SEND_HEADERS, onSendHeaders);
      unsubscribe(BODY_SENT, onBodySent);
      if (!connections) return;
      // Connections still being made for requests given up (a stalled proxy, say) end now, not at their limit.
      connections.cutAll();
      await dispatcher.close();
    },
  };
}

/** The run's own pool, whose connections are made (and cut) by Connections. */
function ownDispatcher(options: { concurrency: number; timeoutMs: number; clock: Clock; proxy?: URL }): {
  dispatcher: Dispatcher;
  connections: Connections;
} {
  const connections = new Connections({
    clock: options.clock,
    timeoutMs: options.timeoutMs,
    ...(options.proxy && { proxy: options.proxy }),
  });
  const dispatcher = new Agent({
    connections: options.concurrency,
    keepAliveTimeout: 30_000,
    keepAliveMaxTimeout: 120_000,
    connect: connections.connect,
  });
  return { dispatcher, connections };
}

export interface ApiResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  /** error_code from a JSON error body, if any; redacted. */
  errorCode: string | null;
  /** message from a JSON error body, or the raw body cut short; redacted. */
  message: string;
}

const MAX_MESSAGE = 300;
const MAX_ERROR_CODE = 100;
/** An answer's body is read this far at most: a few KB is all an error message needs. */
const MAX_ANSWER_BYTES = 8 * 1024;
/** And for this long at most once its status has come: a body that stalls changes nothing. */
const ANSWER_WAIT_MS = 2_000;

/**
 * PUTs one body with the key in `u21-key`; resolves with any HTTP status, rejects on network
 * errors before a status came. Once the status line is in, the outcome is decided: a 2xx is
 * stored however its body then stalls or breaks off. Every text from the server is redacted.
 */
async function put(
  url: string,
  body: RequestBody,
  options: { apiKey: string; dispatcher: Dispatcher; signal: AbortSignal; redact: Redact },
): Promise<ApiResponse> {
  const { origin, pathname, search } = new URL(url);
  const request = options.dispatcher.request({
    origin,
    path: pathname + search,
    method: 'PUT',
    headers: { ...body.headers, 'u21-key': options.apiKey, accept: 'application/json' },
    body: body.body,
    signal: options.signal,
  });
  const response = await untilAborted(request, options.signal);
  const status = response.statusCode;
  const answer = await readAnswer(response.body);
  if (status >= 200 && status < 300) return { status, headers: response.headers, errorCode: null, message: '' };
  return { status, headers: response.headers, ...describe(answer, status, response.headers, options.redact) };
}

/**
 * The request's answer, or its signal's reason as soon as it aborts. undici heeds an abort only
 * once the request is on a connection: until then (DNS, TCP, the proxy's CONNECT, TLS) the
 * caller is let go here, and the request, left queued, is dropped when its connection is made,
 * fails or is cut.
 */
function untilAborted(
  request: Promise<Dispatcher.ResponseData>,
  signal: AbortSignal,
): Promise<Dispatcher.ResponseData> {
  return new Promise((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
    request.then(
      (response) => {
        signal.removeEventListener('abort', onAbort);
        // An answer that came after the caller was let go is read by no one.
        if (signal.aborted) response.body.on('error', () => {}).destroy();
        resolve(response);
      },
      (error: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(error as Error);
      },
    );
  });
}

/** The start of an answer's body, bounded in size and time; `cut` when it was not read to its end. */
function readAnswer(body: Dispatcher.ResponseData['body']): Promise<{ text: string; cut: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (cut: boolean) => {
      clearTimeout(timer);
      body
        .off('data', onData)
        .off('end', onEnd)
        .off('error', onError)
        .on('error', () => {}); // destroying it errors it
      if (cut) body.destroy(); // the rest is not read: undici closes the connection
      resolve({ text: Buffer.concat(chunks).subarray(0, MAX_ANSWER_BYTES).toString('utf8'), cut });
    };
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      size += chunk.length;
      if (size > MAX_ANSWER_BYTES) done(true);
    };
    const onEnd = () => done(false);
    // Stalled, cut off, or the request was aborted: what came is all there is.
    const onError = () => done(true);
    const timer = setTimeout(() => done(true), ANSWER_WAIT_MS);
    body.on('data', onData).on('end', onEnd).on('error', onError);
  });
}

function describe(
  answer: { text: string; cut: boolean },
  status: number,
  headers: ApiResponse['headers'],
  redact: Redact,
): { errorCode: string | null; message: string } {
  if (status >= 300 && status < 400) {
    const location = [headers.location].flat()[0];
    const where = location ? ` to ${shorten(redact(location), MAX_MESSAGE)}` : '';
    return {
      errorCode: null,
      message: `redirected${where}; not followed, so the key goes to the API host only (check --base-url)`,
    };
  }
  // A body cut short may end in part of an echoed key, which no redaction would recognise.
  const text = answer.cut ? answer.text.slice(0, Math.max(0, answer.text.length - redact.longest)) : answer.text;
  try {
    const parsed = JSON.parse(text) as { error_code?: unknown; message?: unknown };
    if (parsed && typeof parsed === 'object') {
      const errorCode =
        typeof parsed.error_code === 'string' ? shorten(oneLine(redact(parsed.error_code)), MAX_ERROR_CODE) : null;
      const message = typeof parsed.message === 'string' ? shorten(oneLine(redact(parsed.message)), MAX_MESSAGE) : '';
      if (errorCode || message) return { errorCode, message: message || errorCode || '' };
    }
  } catch {
    // Not JSON: shown raw below.
  }
  const raw = oneLine(redact(text));
  return { errorCode: null, message: shorten(raw, MAX_MESSAGE) || `HTTP ${status}` };
}

const oneLine = (text: string) => text.trim().replace(/\s+/g, ' ');
const shorten = (text: string, max: number) => (text.length > max ? `${text.slice(0, max)}…` : text);
