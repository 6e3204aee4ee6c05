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

/** Attempts in a row that failed before their request reached a connection, with no answer yet, after which a run stops as unreachable. */
export const UNREACHABLE_STREAK = 8;

export const isCertificateError = (code: string): boolean => CERTIFICATE_ERRORS.has(code);

/** What a proxy's refusal of the tunnel (an answer to CONNECT other than 200) says. */
export function proxyRefusal(status: number): string {
  const why =
    status === 407
      ? 'asked for credentials (407); give them in the proxy URL, http://user:password@host:port'
      : `answered ${status}`;
  return `the proxy refused the tunnel: it ${why}`;
}

/**
 * A network error's code and message. A caller's undici ProxyAgent tells a proxy's refusal of
 * the tunnel only in words: it gets the code the run's own connections give it.
 */
export function describeNetworkError(error: unknown): { code: string; message: string } {
  const err = error as Error & { code?: string; cause?: { code?: string } };
  const refused = /^Proxy response \((\d+)\)/.exec(String(err.message));
  if (refused) return { code: 'proxy_refused', message: proxyRefusal(Number(refused[1])) };
  return { code: err.code ?? err.cause?.code ?? 'network_error', message: String(err.message) };
}

/**
 * Whether the API looks unreachable: while no request has had any answer, UNREACHABLE_STREAK
 * attempts in a row failed before their request went out on a connection (DNS, TCP, the
 * proxy's CONNECT, TLS, or a timeout in any of them), whatever the error. A certificate error
 * has its own stop. After a first answer the normal retries apply for good.
 */
export class Reachability {
  private answered = false;
  private streak = 0;

  /** Notes an attempt's outcome; true once the run should stop as unreachable. */
  note(outcome: AttemptOutcome): boolean {
    if (outcome.kind === 'response') this.answered = true;
    if (this.answered) return false;
    const unconnected = outcome.kind === 'no-response' && !outcome.reached && !isCertificateError(outcome.code);
    this.streak = unconnected ? this.streak + 1 : 0;
    return this.streak >= UNREACHABLE_STREAK;
  }
}
