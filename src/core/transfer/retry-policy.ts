/** How often and how long to wait before resending a request. */
export interface RetryPolicy {
  /** Retries after the first try. */
  retries: number;
  minDelayMs: number;
  maxDelayMs: number;
}

export const DEFAULT_RETRY_POLICY: RetryPolicy = { retries: 5, minDelayMs: 500, maxDelayMs: 30_000 };

/** Unit21 answers 423 while an entity is still being processed; sooner retries only fail again. */
const LOCKED_MIN_DELAY_MS = 2_000;
/** A server's wait is honoured up to this long, so a broken or hostile header cannot park a run. */
export const MAX_SERVER_WAIT_MS = 60_000;

/** What one attempt came to. */
export type AttemptOutcome =
  | { kind: 'response'; status: number; headers: AttemptHeaders }
  /**
   * No response: a network error or a timeout. `reached`: the request went out on a connection
   * (its headers were sent); `bodySent`: all of it did, so the server may have stored it.
   */
  | { kind: 'no-response'; code: string; message: string; reached: boolean; bodySent: boolean };

const RETRYABLE_STATUSES = new Set([408, 423, 429, 500, 502, 503, 504]);

/** Network errors, timeouts and the transient statuses are retried; other answers are final. */
export function shouldRetry(outcome: AttemptOutcome): boolean {
  return outcome.kind === 'no-response' || RETRYABLE_STATUSES.has(outcome.status);
}

/**
 * Delay before retry number `retry` (1-based): exponential backoff with full jitter, but never
 * sooner than the server asked (Retry-After, X-RateLimit-Reset) or, for 423, than 2 s.
 */
export function retryDelayMs(
  policy: RetryPolicy,
  retry: number,
  outcome: AttemptOutcome,
  now: number,
  random: () => number,
): number {
  const ceiling = Math.min(policy.maxDelayMs, policy.minDelayMs * 2 ** (retry - 1));
  let delay = random() * ceiling;
  if (outcome.kind === 'response') {
    const hinted = serverHintMs(outcome.headers, now);
    // A little jitter on top of the hint keeps every waiting request from returning at the same instant.
    if (hinted !== undefined) delay = Math.max(delay, hinted + random() * Math.min(1_000, ceiling));
    if (outcome.status === 423) delay = Math.max(delay, LOCKED_MIN_DELAY_MS);
  }
  return Math.round(delay);
}

/** A wait a server asked for: `ms` as honoured (capped), `askedMs` as asked, and the header that asked. */
export interface ServerWait {
  ms: number;
  askedMs: number;
  header: 'Retry-After' | 'X-RateLimit-Reset';
}

/** The wait a 429/503 asks for in milliseconds, capped; undefined when it asks none. */
export const serverHintMs = (headers: AttemptHeaders, now: number): number | undefined => serverWait(headers, now)?.ms;

type AttemptHeaders = Record<string, string | string[] | undefined>;

/**
 * The wait a 429/503 asks for: Retry-After (seconds or HTTP date), else X-RateLimit-Reset, read
 * as epoch seconds, epoch milliseconds (a 13-digit value) or, when small, seconds from now.
 * At most MAX_SERVER_WAIT_MS is honoured.
 */
export function serverWait(headers: AttemptHeaders, now: number): ServerWait | undefined {
  const header = (name: string) => {
    const value = headers[name];
    return (Array.isArray(value) ? value[0] : value)?.trim();
  };
  const number = /^\d+(\.\d+)?$/;
  const retryAfter = header('retry-after');
  const reset = header('x-ratelimit-reset');
  let askedMs: number;
  let from: ServerWait['header'];
  if (retryAfter) {
    askedMs = number.test(retryAfter) ? Number(retryAfter) * 1000 : Date.parse(retryAfter) - now;
    from = 'Retry-After';
  } else if (reset && number.test(reset)) {
    const value = Number(reset);
    askedMs = value >= 1e11 ? value - now : value >= 1e9 ? value * 1000 - now : value * 1000;
    from = 'X-RateLimit-Reset';
  } else {
    return undefined;
  }
  if (Number.isNaN(askedMs)) return undefined;
  askedMs = Math.max(0, askedMs);
  return { ms: Math.min(askedMs, MAX_SERVER_WAIT_MS), askedMs, header: from };
}
