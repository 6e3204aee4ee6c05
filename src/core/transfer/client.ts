import { createRequire } from 'node:module';
import type { Agent as UndiciAgent, Dispatcher } from 'undici';
import type { RequestBody } from '../body/request-body.js';

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
  /** error_code from a JSON error body, if any. */
  errorCode: string | null;
  /** message from a JSON error body, or the raw body cut short. */
  message: string;
}

const MAX_MESSAGE = 300;

/** PUTs one body with the key in `u21-key`; resolves with any HTTP status, rejects on network errors. */
export async function put(
  url: string,
  body: RequestBody,
  options: { apiKey: string; dispatcher: Dispatcher; signal?: AbortSignal },
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
  const text = await response.body.text();
  return { status: response.statusCode, headers: response.headers, ...describe(text, response.statusCode) };
}

function describe(text: string, status: number): { errorCode: string | null; message: string } {
  try {
    const parsed = JSON.parse(text) as { error_code?: unknown; message?: unknown };
    if (parsed && typeof parsed === 'object') {
      const errorCode = typeof parsed.error_code === 'string' ? parsed.error_code : null;
      const message = typeof parsed.message === 'string' ? parsed.message : '';
      if (errorCode || message) return { errorCode, message: message || errorCode || '' };
    }
  } catch {
    // Not JSON: shown raw below.
  }
  const raw = text.trim().replace(/\s+/g, ' ');
  return { errorCode: null, message: raw.length > MAX_MESSAGE ? `${raw.slice(0, MAX_MESSAGE)}…` : raw || `HTTP ${status}` };
}
