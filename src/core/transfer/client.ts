import { createRequire } from 'node:module';
import type { Agent as UndiciAgent, Dispatcher } from 'undici';
import type { RequestBody } from '../body/request-body.js';
import type { Redact } from '../redact.js';

// undici's entry loads everything it offers (fetch, WebSocket, mocks, caches), a tenth of a
// second before the first request; a run needs only its connection pool and its request call.
// These paths are undici's own layout, not its public API: package.json keeps undici to 7.30.x.
const require = createRequire(import.meta.url);
const Agent: typeof UndiciAgent = require('undici/lib/dispatcher/agent.js');
/** Dispatcher.request, which undici's entry adds to every dispatcher's prototype. */
const dispatcherRequest: Dispatcher['request'] = require('undici/lib/api/api-request.js');

/** A keep-alive connection pool sized to the run's concurrency. */
export function createDispatcher(concurrency: number): Dispatcher {
  return new Agent({ connections: concurrency, keepAliveTimeout: 30_000, keepAliveMaxTimeout: 120_000 });
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
export async function put(
  url: string,
  body: RequestBody,
  options: { apiKey: string; dispatcher: Dispatcher; signal?: AbortSignal; redact: Redact },
): Promise<ApiResponse> {
  const { origin, pathname, search } = new URL(url);
  const response = await dispatcherRequest.call(options.dispatcher, {
    origin,
    path: pathname + search,
    method: 'PUT',
    headers: { ...body.headers, 'u21-key': options.apiKey, accept: 'application/json' },
    body: body.body,
    signal: options.signal,
  });
  const status = response.statusCode;
  const answer = await readAnswer(response.body);
  if (status >= 200 && status < 300) return { status, headers: response.headers, errorCode: null, message: '' };
  return { status, headers: response.headers, ...describe(answer, status, response.headers, options.redact) };
}

/** The start of an answer's body, bounded in size and time; `cut` when it was not read to its end. */
function readAnswer(body: Dispatcher.ResponseData['body']): Promise<{ text: string; cut: boolean }> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (cut: boolean) => {
      clearTimeout(timer);
      body.off('data', onData).off('end', onEnd).off('error', onError).on('error', () => {}); // destroying it errors it
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
    return { errorCode: null, message: `redirected${where}; not followed, so the key goes to the API host only (check --base-url)` };
  }
  // A body cut short may end in part of an echoed key, which no redaction would recognise.
  const text = answer.cut ? answer.text.slice(0, Math.max(0, answer.text.length - redact.longest)) : answer.text;
  try {
    const parsed = JSON.parse(text) as { error_code?: unknown; message?: unknown };
    if (parsed && typeof parsed === 'object') {
      const errorCode = typeof parsed.error_code === 'string' ? shorten(oneLine(redact(parsed.error_code)), MAX_ERROR_CODE) : null;
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
