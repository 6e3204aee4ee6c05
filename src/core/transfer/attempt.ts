import type { Clock } from '../shared/clock.js';
import type { RequestBody } from '../body/request-body.js';
import type { Redact } from '../shared/redact.js';
import { describeNetworkError, isCertificateError } from './connect-errors.js';
import type { FailureDetail } from './outcomes.js';
import { retryDelayMs, shouldRetry, type AttemptOutcome, type RetryPolicy } from './retry-policy.js';
import type { Transport } from './transport.js';

export type AttemptResult =
  | {
      outcome: AttemptOutcome;
      /** error_code and message of the answer, if any. */
      detail: FailureDetail;
      /** The files' sha256, when stored. */
      digests?: string[];
    }
  /** A file could not be read while it was sent (changed or removed since the check): no retry helps. */
  | { fileError: NodeJS.ErrnoException };

/**
 * One request, cut at `timeoutMs` on the run's clock or when `runSignal` aborts, whatever it is
 * waiting for (DNS, TCP, the proxy, TLS, the answer). The body is closed after it either way.
 */
export async function attempt(
  body: RequestBody,
  url: string,
  parts: { transport: Transport; clock: Clock; redact: Redact; timeoutMs: number },
  runSignal: AbortSignal,
): Promise<AttemptResult> {
  const { transport, clock, timeoutMs } = parts;
  const request = new AbortController();
  let timedOut = false;
  const cancelTimeout = clock.after(timeoutMs, () => {
    timedOut = true;
    request.abort();
  });
  const onRunAbort = () => request.abort();
  runSignal.addEventListener('abort', onRunAbort, { once: true });
  let stored = false;
  try {
    const response = await transport.put(url, body, request.signal);
    stored = response.status >= 200 && response.status < 300;
    const outcome: AttemptOutcome = { kind: 'response', status: response.status, headers: response.headers };
    return {
      outcome,
      detail: { status: response.status, errorCode: response.errorCode, message: response.message },
      ...(stored && { digests: body.digests() }),
    };
  } catch (error) {
    const fileError = body.fileError();
    if (fileError) return { fileError };
    const reached = transport.reached(body);
    // Cut at its timeout: after its request went out, the answer is late; before, the connection is, and the transport says where it stuck.
    const { code, message } = !timedOut
      ? describeNetworkError(error)
      : reached
        ? { code: 'timeout', message: `no answer within ${timeoutMs / 1000} s` }
        : transport.unconnected(timeoutMs);
    const outcome: AttemptOutcome = {
      kind: 'no-response',
      code,
      message: parts.redact(message),
      reached,
      bodySent: transport.bodySent(body),
    };
    return { outcome, detail: { status: null, errorCode: code, message: outcome.message } };
  } finally {
    cancelTimeout();
    runSignal.removeEventListener('abort', onRunAbort);
    // An answer can come before the whole body was read (a refusal): every file the body
    // opened is closed either way. A body the API stored, it read to its end.
    body.destroy(stored && transport.reusesBodies);
  }
}

/** What an answered (or unanswered) attempt comes to. */
export type Verdict =
  | { kind: 'uploaded'; status: number }
  /** 401/403: the key is refused, and the run stops. */
  | { kind: 'refused'; detail: FailureDetail }
  /** The API's TLS certificate is not trusted: no retry helps, and the run stops. */
  | { kind: 'untrusted'; detail: FailureDetail }
  | { kind: 'retry'; delayMs: number; detail: FailureDetail }
  | { kind: 'failed'; detail: FailureDetail };

/**
 * A certificate error is final. Other network errors, timeouts and transient statuses go again while retries are left and the run
 * goes on; a request cut by the run's abort is final.
 */
export function classify(
  outcome: AttemptOutcome,
  detail: FailureDetail,
  context: { attempts: number; policy: RetryPolicy; stopped: boolean; cut: boolean; now: number; random: () => number },
): Verdict {
  const status = outcome.kind === 'response' ? outcome.status : null;
  if (status !== null && status >= 200 && status < 300) return { kind: 'uploaded', status };
  if (status === 401 || status === 403) return { kind: 'refused', detail };
  if (outcome.kind === 'no-response' && isCertificateError(outcome.code)) return { kind: 'untrusted', detail };
  if (context.cut)
    return {
      kind: 'failed',
      detail: { status, errorCode: 'interrupted', message: 'the upload was cut off when the run was aborted' },
    };
  if (shouldRetry(outcome) && context.attempts <= context.policy.retries && !context.stopped) {
    return {
      kind: 'retry',
      delayMs: retryDelayMs(context.policy, context.attempts, outcome, context.now, context.random),
      detail,
    };
  }
  return { kind: 'failed', detail };
}
