import { describe, expect, it } from 'vitest';
import {
  retryDelayMs,
  serverHintMs,
  serverWait,
  shouldRetry,
  type AttemptOutcome,
} from '../../src/core/transfer/retry-policy.js';

const policy = { retries: 5, minDelayMs: 500, maxDelayMs: 30_000 };
const response = (status: number, headers: Record<string, string> = {}): AttemptOutcome => ({
  kind: 'response',
  status,
  headers,
});
const NOW = Date.parse('2026-11-25T12:00:00Z');

describe('retry policy', () => {
  it.each([408, 423, 429, 500, 502, 503, 504])('retries %i', (status) => {
    expect(shouldRetry(response(status))).toBe(true);
  });

  it.each([400, 401, 403, 404, 409, 413, 422])('does not retry %i', (status) => {
    expect(shouldRetry(response(status))).toBe(false);
  });

  it('retries network errors and timeouts', () => {
    expect(shouldRetry({ kind: 'no-response', code: 'ECONNRESET', message: '', reached: true, bodySent: true })).toBe(
      true,
    );
  });

  it('backs off exponentially with full jitter, capped', () => {
    const top = () => 0.999999;
    expect([1, 2, 3, 4].map((n) => retryDelayMs(policy, n, response(500), NOW, top))).toEqual([500, 1000, 2000, 4000]);
    expect(retryDelayMs(policy, 12, response(500), NOW, top)).toBe(30_000);
    expect(retryDelayMs(policy, 3, response(500), NOW, () => 0)).toBe(0);
    expect(retryDelayMs(policy, 3, response(500), NOW, () => 0.5)).toBe(1000);
  });

  it('waits at least as long as Retry-After in seconds or as an HTTP date', () => {
    expect(retryDelayMs(policy, 1, response(429, { 'retry-after': '7' }), NOW, () => 0)).toBe(7000);
    const date = new Date(NOW + 12_000).toUTCString();
    expect(retryDelayMs(policy, 1, response(503, { 'retry-after': date }), NOW, () => 0)).toBe(12_000);
  });

  it('falls back to X-RateLimit-Reset (epoch seconds)', () => {
    expect(serverHintMs({ 'x-ratelimit-reset': String(NOW / 1000 + 3) }, NOW)).toBe(3000);
    expect(serverHintMs({ 'x-ratelimit-reset': String(NOW / 1000 - 3) }, NOW)).toBe(0);
    expect(serverHintMs({}, NOW)).toBeUndefined();
    expect(serverHintMs({ 'retry-after': 'soon' }, NOW)).toBeUndefined();
  });

  it('caps a server hint at a minute, and says what was asked', () => {
    expect(serverHintMs({ 'retry-after': '86400' }, NOW)).toBe(60_000);
    expect(serverWait({ 'retry-after': '999999' }, NOW)).toEqual({
      ms: 60_000,
      askedMs: 999_999_000,
      header: 'Retry-After',
    });
  });

  it('reads X-RateLimit-Reset as epoch milliseconds when it has 13 digits, and as seconds from now when small', () => {
    expect(serverWait({ 'x-ratelimit-reset': String(NOW + 3_000) }, NOW)).toEqual({
      ms: 3_000,
      askedMs: 3_000,
      header: 'X-RateLimit-Reset',
    });
    expect(serverHintMs({ 'x-ratelimit-reset': '7' }, NOW)).toBe(7_000);
  });

  it('waits at least 2 s after a 423', () => {
    expect(retryDelayMs(policy, 1, response(423), NOW, () => 0)).toBe(2000);
  });
});
