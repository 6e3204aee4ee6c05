import type { AttemptOutcome } from './retry-policy.js';

/** TLS certificate errors (OpenSSL's and Node's names): no retry helps, only trusting another CA. */
const CERTIFICATE_ERRORS = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY',
  'CERT_SIGNATURE_FAILURE',
  'CERT_NOT_YET_VALID',
  'CERT_HAS_EXPIRED',
  'CERT_REVOKED',
  'CERT_UNTRUSTED',
  'CERT_REJECTED',
  'CERT_CHAIN_TOO_LONG',
  'INVALID_CA',
  'INVALID_PURPOSE',
  'PATH_LENGTH_EXCEEDED',
  'HOSTNAME_MISMATCH',
  'ERR_TLS_CERT_ALTNAME_INVALID',
]);

/** Failures to connect at all: the host is not found, refuses, or cannot be routed to; or the proxy refuses the tunnel. */
const CONNECT_ERRORS = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EAI_NONAME', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT', 'proxy_refused']);

/** Connections failed in a row, with no answer yet, after which a run stops as unreachable. */
export const UNREACHABLE_STREAK = 8;

export const isCertificateError = (code: string): boolean => CERTIFICATE_ERRORS.has(code);

/** A network error's code and message; a proxy's refusal of the tunnel (which undici tells only in words) gets a code of its own. */
export function describeNetworkError(error: unknown): { code: string; message: string } {
  const err = error as Error & { code?: string; cause?: { code?: string } };
  const refused = /^Proxy response \((\d+)\)/.exec(String(err.message));
  if (refused) {
    const status = Number(refused[1]);
    const why = status === 407 ? 'asked for credentials (407); give them in the proxy URL, http://user:password@host:port' : `answered ${status}`;
    return { code: 'proxy_refused', message: `the proxy refused the tunnel: it ${why}` };
  }
  return { code: err.code ?? err.cause?.code ?? 'network_error', message: String(err.message) };
}

/**
 * Whether the API looks unreachable: connections failed UNREACHABLE_STREAK times in a row and
 * no request has had any answer. After a first answer the normal retries apply for good.
 */
export class Reachability {
  private answered = false;
  private streak = 0;

  /** Notes an attempt's outcome; true once the run should stop as unreachable. */
  note(outcome: AttemptOutcome): boolean {
    if (outcome.kind === 'response') this.answered = true;
    if (this.answered) return false;
    this.streak = outcome.kind === 'no-response' && CONNECT_ERRORS.has(outcome.code) ? this.streak + 1 : 0;
    return this.streak >= UNREACHABLE_STREAK;
  }
}
