import { describe, expect, it } from 'vitest';
import { createRedactor } from '../../src/core/shared/redact.js';

describe('redaction of the key', () => {
  const key = 'k3y"q\\z/+%&<x>\'';
  const redact = createRedactor(key);

  it.each([
    ['as it is', key],
    ['JSON-escaped', JSON.stringify(key).slice(1, -1)],
    ['percent-encoded', encodeURIComponent(key)],
    ['percent-encoded in lower case', encodeURIComponent(key).toLowerCase()],
    [
      'HTML-escaped',
      key
        .replace(/&/g, '&amp;')
        .replace(/</g, '&lt;')
        .replace(/>/g, '&gt;')
        .replace(/"/g, '&quot;')
        .replace(/'/g, '&#39;'),
    ],
  ])('replaces it %s, every time it appears', (_, form) => {
    expect(redact(`bad key: ${form} (again: ${form})`)).toBe('bad key: [redacted] (again: [redacted])');
  });

  it('knows the longest form it looks for, for texts cut short', () => {
    expect(redact.longest).toBe(34); // the HTML-escaped form
  });

  it('leaves texts without the key as they are, and has nothing to hide for an empty key', () => {
    expect(redact('no secret here')).toBe('no secret here');
    expect(createRedactor('')('anything')).toBe('anything');
  });
});
