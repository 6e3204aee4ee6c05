/** Faults the sandbox can inject, so retries, backoff and rate control meet a misbehaving server in tests. */
export interface FaultOptions {
  /** Seed of the PRNG deciding which requests get a fault (same seed, same request order → same faults). Default 1. */
  seed?: number;
  /** Probability (0..1) per authenticated, routed request of each fault; their sum must be ≤ 1 (throw a RangeError otherwise). */
  rate429?: number; // answer 429 with Retry-After: retryAfterSeconds and X-RateLimit-* headers, nothing stored
  error500?: number; // answer 500 {"error_code":"internal_error"}, nothing stored
  error503?: number; // answer 503, nothing stored
  locked423?: number; // answer 423 {"error_code":"locked","message":"…still being processed"}, nothing stored
  resetBeforeStore?: number; // destroy the connection (TCP reset, no response) after reading part or all of the body, nothing stored
  resetAfterStore?: number; // read and store the media normally, then destroy the connection without answering
  slow?: number; // answer normally but only after slowMs
  redirect?: number; // answer 307 to redirectTo (with the key in its query when echoKey), nothing stored
  stallAfterStore?: number; // store, send the 200 status line, then never finish the body
  cutAfterStore?: number; // store, answer 200 with a Content-Length longer than the body, then close
  closeAfterAnswer?: number; // store, answer 200, then close the connection at once
  hugeError?: number; // answer 500 with a 50 MB body, nothing stored
  absurdRetryAfter?: number; // answer 429 with Retry-After: 999999, nothing stored
  resetInMs?: number; // answer 429 with X-RateLimit-Reset in epoch milliseconds (no Retry-After), nothing stored
  slowMs?: number; // default 300
  retryAfterSeconds?: number; // default 1; Retry-After value for injected 429s
  /** A real rate limit: at most this many requests per second (token bucket, burst = the rate), excess answered 429 with X-RateLimit-Limit, X-RateLimit-Remaining: 0, X-RateLimit-Reset (epoch seconds) and Retry-After (seconds, at least 1). */
  rateLimit?: number;
  /** Added to every response (ms). */
  latencyMs?: number;
  /** The first N requests are never answered (the connection stays open, body is read, nothing stored) — a stalled server. */
  stallFirst?: number;
  /** Where `redirect` points. */
  redirectTo?: string;
  /**
   * Echo the key a request sent, as a leaky gateway would: in every refusal's and error's
   * message, error_code and an `x-echo-u21-key` header, a 401 as the text `bad key: <key>`.
   */
  echoKey?: boolean;
}

/** The name a fault is recorded under in `RequestRecord.fault`. */
export type FaultKind =
  | '429'
  | '500'
  | '503'
  | '423'
  | 'reset-before'
  | 'reset-after'
  | 'slow'
  | 'rate-limit'
  | 'stall'
  | 'redirect'
  | 'stall-after-store'
  | 'cut-after-store'
  | 'close-after-answer'
  | 'huge-error'
  | 'absurd-retry-after'
  | 'reset-in-ms';

/** Faults that let the request be stored first. */
export const AFTER_STORE: ReadonlySet<FaultKind> = new Set([
  'reset-after',
  'slow',
  'stall-after-store',
  'cut-after-store',
  'close-after-answer',
]);

/** The fault chosen for one request; 429s carry their response headers. */
export interface Fault {
  kind: FaultKind;
  headers?: Record<string, string>;
}

/** Decides, request by request, which fault the sandbox injects. */
export interface FaultPlan {
  latencyMs: number;
  slowMs: number;
  echoKey: boolean;
  redirectTo: string;
  /** The fault for the next eligible request, or undefined for a normal answer. */
  next(): Fault | undefined;
}

// The drawn faults, in the order their probability ranges are laid out on [0, 1).
const DRAWN = [
  ['rate429', '429'],
  ['error500', '500'],
  ['error503', '503'],
  ['locked423', '423'],
  ['resetBeforeStore', 'reset-before'],
  ['resetAfterStore', 'reset-after'],
  ['slow', 'slow'],
  ['redirect', 'redirect'],
  ['stallAfterStore', 'stall-after-store'],
  ['cutAfterStore', 'cut-after-store'],
  ['closeAfterAnswer', 'close-after-answer'],
  ['hugeError', 'huge-error'],
  ['absurdRetryAfter', 'absurd-retry-after'],
  ['resetInMs', 'reset-in-ms'],
] as const;

/** The longest delay the sandbox adds to an answer: an hour, past any client's timeout. */
export const MAX_WAIT_MS = 3_600_000;

// Unit21's documented limit, reported by injected 429s when no real limit is set.
const UNIT21_RATE_LIMIT = 200;

/** Validates the options and returns the plan; throws a RangeError on impossible values. */
export function createFaultPlan(options: FaultOptions = {}, now: () => number = Date.now): FaultPlan {
  const ranges = DRAWN.map(([key, kind]) => ({ kind, p: checkRange(key, options[key] ?? 0, 1) }));
  const total = ranges.reduce((sum, range) => sum + range.p, 0);
  // A small tolerance, so 0.1 * 10 written as ten options is not refused for float rounding.
  if (total > 1 + 1e-9) throw new RangeError(`faults: the probabilities add up to ${total}, more than 1`);
  for (const key of ['retryAfterSeconds', 'stallFirst'] as const) checkRange(key, options[key] ?? 0);
  // Waited with setTimeout, which fires at once (and warns) past 2^31-1 ms.
  for (const key of ['slowMs', 'latencyMs'] as const) checkRange(key, options[key] ?? 0, MAX_WAIT_MS);
  if (options.rateLimit !== undefined && !(options.rateLimit > 0)) {
    throw new RangeError(`faults.rateLimit must be more than 0, got ${options.rateLimit}`);
  }

  const random = mulberry32(options.seed ?? 1);
  const retryAfter = options.retryAfterSeconds ?? 1;
  const limiter = options.rateLimit === undefined ? undefined : tokenBucket(options.rateLimit, now);
  let stallsLeft = options.stallFirst ?? 0;
  return {
    latencyMs: options.latencyMs ?? 0,
    slowMs: options.slowMs ?? 300,
    echoKey: options.echoKey ?? false,
    redirectTo: options.redirectTo ?? 'http://127.0.0.1:9/elsewhere',
    next() {
      // Drawn for every request, stalled and rate-limited ones too, so the drawn faults depend on request order only.
      const draw = random();
      if (stallsLeft > 0) {
        stallsLeft--;
        return { kind: 'stall' };
      }
      const limited = limiter?.take();
      if (limited) return { kind: 'rate-limit', headers: limited };
      let edge = 0;
      for (const { kind, p } of ranges) {
        edge += p;
        if (draw >= edge) continue;
        if (kind !== '429') return { kind };
        return {
          kind,
          headers: rateLimitHeaders(options.rateLimit ?? UNIT21_RATE_LIMIT, now() / 1000 + retryAfter, retryAfter),
        };
      }
      return undefined;
    },
  };
}

/** mulberry32: a tiny seeded PRNG returning floats in [0, 1), plenty for picking faults reproducibly. */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = Math.imul(state ^ (state >>> 15), state | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Refills `rate` tokens a second up to a burst of `rate`; `take()` answers the 429 headers when none is left. */
function tokenBucket(rate: number, now: () => number) {
  // At least one token fits, or a rate below 1/s would refuse everything forever.
  const capacity = Math.max(1, rate);
  let tokens = capacity;
  let last = now();
  return {
    take(): Record<string, string> | undefined {
      const time = now();
      tokens = Math.min(capacity, tokens + ((time - last) / 1000) * rate);
      last = time;
      if (tokens >= 1) {
        tokens -= 1;
        return undefined;
      }
      const waitSeconds = (1 - tokens) / rate;
      return rateLimitHeaders(rate, time / 1000 + waitSeconds, Math.max(1, Math.ceil(waitSeconds)));
    },
  };
}

function rateLimitHeaders(limit: number, resetAt: number, retryAfterSeconds: number): Record<string, string> {
  return {
    'retry-after': String(retryAfterSeconds),
    'x-ratelimit-limit': String(limit),
    'x-ratelimit-remaining': '0',
    'x-ratelimit-reset': String(Math.ceil(resetAt)),
  };
}

function checkRange(name: string, value: number, max = Infinity): number {
  // Written so NaN fails too.
  if (!(value >= 0 && value <= max)) throw new RangeError(`faults.${name} must be between 0 and ${max}, got ${value}`);
  return value;
}
