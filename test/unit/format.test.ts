import { describe, expect, it } from 'vitest';
import { formatBytes, joinDistinct } from '../../src/cli/format.js';
import { Progress } from '../../src/cli/render/progress.js';

describe('numbers as people read them', () => {
  it('shows bytes, and a rate under 1 kB/s, in whole bytes', () => {
    expect(formatBytes(528)).toBe('528 B');
    expect(formatBytes(235.6091030789826)).toBe('236 B');
    expect(formatBytes(1500)).toBe('1.5 kB');
    const progress = new Progress(0);
    progress.note({ event: 'uploaded', path: 'a.pdf', entity_id: 'c', media_type: null, bytes: 528, attempts: 1, sha256: 'x' });
    expect(progress.statusLine(2241)).toContain('528 B at 236 B/s');
  });
});

describe('a status, an error code and a message joined', () => {
  it('says each word once: a part another part already holds is left out', () => {
    expect(joinDistinct([500, 'internal_error', 'internal_error'])).toBe('500 internal_error');
    expect(joinDistinct([null, 'ECONNRESET', 'read ECONNRESET'])).toBe('read ECONNRESET');
    expect(joinDistinct(['ENOTFOUND', 'getaddrinfo ENOTFOUND api.unit21.invalid'], ': ')).toBe('getaddrinfo ENOTFOUND api.unit21.invalid');
    expect(joinDistinct(['ENOSPC', 'ENOSPC: no space left on device, write'], ': ')).toBe('ENOSPC: no space left on device, write');
    expect(joinDistinct([502, null, 'HTTP 502'])).toBe('HTTP 502');
  });

  it('keeps parts that only look alike: a code inside a longer word, or another number', () => {
    expect(joinDistinct([404, 'resource_not_found', 'entity "c1" not found'])).toBe('404 resource_not_found entity "c1" not found');
    expect(joinDistinct([400, 'not_found', 'resource_not_found'])).toBe('400 not_found resource_not_found');
    expect(joinDistinct([500, 'internal_error', 'took 5000 ms'])).toBe('500 internal_error took 5000 ms');
    expect(joinDistinct(['proxy_timeout', 'the proxy did not answer CONNECT within 1 s'], ': ')).toBe('proxy_timeout: the proxy did not answer CONNECT within 1 s');
  });
});
