import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/core/shared/errors.js';
import { mediaUrl, pathSegment, resolveApiRoot, resolveTarget } from '../../src/core/connection/hosts.js';
import { entityIdProblem } from '../../src/core/inputs/route.js';

describe('target', () => {
  it('checks the host, then the org, in one place', () => {
    expect(resolveTarget({ env: 'prod1', org: 'acme' })).toEqual({ apiRoot: 'https://api.unit21.com/v1', org: 'acme' });
    expect(() => resolveTarget({ org: 'acme' })).toThrow(/no Unit21 host/);
    expect(() => resolveTarget({ env: 'prod1' })).toThrow(/^--org is required$/);
    expect(() => resolveTarget({ env: 'prod1', org: '..' })).toThrow(/is not an org name/);
  });
});

describe('API root', () => {
  it('maps each environment name to its host', () => {
    expect(resolveApiRoot({ env: 'prod1' })).toBe('https://api.unit21.com/v1');
    expect(resolveApiRoot({ env: 'sandbox3' })).toBe('https://api.sandbox1.eu-central-1.unit21.com/v1');
  });

  it('lets --base-url win, with or without a trailing /v1', () => {
    expect(resolveApiRoot({ env: 'prod1', baseUrl: 'https://proxy.example/u21/v1/' })).toBe(
      'https://proxy.example/u21/v1',
    );
    expect(resolveApiRoot({ baseUrl: 'https://proxy.example' })).toBe('https://proxy.example/v1');
  });

  it('allows plain http only to loopback', () => {
    expect(resolveApiRoot({ baseUrl: 'http://127.0.0.1:8080' })).toBe('http://127.0.0.1:8080/v1');
    expect(resolveApiRoot({ baseUrl: 'http://localhost:1' })).toBe('http://localhost:1/v1');
    expect(resolveApiRoot({ baseUrl: 'http://[::1]:9' })).toBe('http://[::1]:9/v1');
    expect(() => resolveApiRoot({ baseUrl: 'http://api.unit21.com' })).toThrow(/refusing plain http/);
    expect(() => resolveApiRoot({ baseUrl: 'http://127.evil.com' })).toThrow(UsageError);
  });

  it('requires a host and names the fix', () => {
    expect(() => resolveApiRoot({})).toThrow(/no Unit21 host/);
    expect(() => resolveApiRoot({ env: 'prod9' })).toThrow(/unknown environment "prod9"/);
  });
});

describe('entity path segment', () => {
  it('percent-encodes an id as one segment', () => {
    expect(pathSegment('a/b#c?d e@f')).toBe('a%2Fb%23c%3Fd%20e%40f');
    expect(pathSegment('%+=&:')).toBe('%25%2B%3D%26%3A');
  });

  it('refuses ids that no URL keeps as a segment', () => {
    expect(entityIdProblem('..')).toMatch(/cannot travel in a URL/);
    expect(entityIdProblem('.')).toMatch(/cannot travel in a URL/);
    expect(entityIdProblem('...')).toBeUndefined();
    expect(mediaUrl('https://h/v1', 'acme', 'a b')).toBe('https://h/v1/acme/entities/a%20b/link-media');
    // Alerts and cases are addressed by their unit21_id alone, without the org.
    expect(mediaUrl('https://h/v1', 'acme', '42', 'alerts')).toBe('https://h/v1/alerts/42/link-media');
    expect(mediaUrl('https://h/v1', 'acme', 'c/1', 'cases')).toBe('https://h/v1/cases/c%2F1/link-media');
  });

  it('counts an id in characters, not UTF-16 units', () => {
    expect(entityIdProblem('😀'.repeat(128))).toBeUndefined();
    expect(entityIdProblem('😀'.repeat(129))).toMatch(/129 characters/);
  });
});
