import { describe, expect, it } from 'vitest';
import { count, formatBytes, plural } from '../../src/cli/format.js';
import { joinDistinct } from '../../src/core/shared/join-distinct.js';
import { Progress } from '../../src/cli/render/progress.js';
import type { UploadEvent } from '../../src/core/outcomes/events.js';
import { FakeClock } from '../fake-clock.js';

const uploaded = (path: string, bytes = 600): UploadEvent => ({
  event: 'uploaded',
  path,
  entity_id: 'c',
  media_type: null,
  bytes,
  attempts: 1,
  sha256: 'x',
});
const attempt = (path: string): UploadEvent => ({ event: 'attempt', path, entity_id: 'c', attempt: 1 });
const storedBefore = (path: string): UploadEvent => ({
  event: 'skipped',
  path,
  reason: 'journal',
  message: 'already uploaded',
});

describe('numbers as people read them', () => {
  it('shows bytes, and a rate under 1 kB/s, in whole bytes', () => {
    expect(formatBytes(528)).toBe('528 B');
    expect(formatBytes(235.6091030789826)).toBe('236 B');
    expect(formatBytes(1500)).toBe('1.5 kB');
    const clock = new FakeClock();
    const progress = new Progress(clock.now);
    progress.note(attempt('a.pdf'));
    clock.time += 2241;
    progress.note(uploaded('a.pdf', 528));
    expect(progress.statusLine()).toContain('528 B at 236 B/s');
  });

  it('writes every count one way, with thousands separated', () => {
    expect(count(1175)).toBe('1,175');
    expect(plural(2000, 'file')).toBe('2,000 files');
    expect(plural(1, 'file')).toBe('1 file');
  });
});

describe('the live line', () => {
  it('shows the check as it goes, with the total once the inputs are counted', () => {
    const progress = new Progress(new FakeClock().now);
    progress.check = { checked: 1, total: undefined };
    expect(progress.statusLine()).toBe('checking 1 file');
    progress.check = { checked: 3200, total: 10_000 };
    expect(progress.statusLine()).toBe('checking 3,200/10,000 files');
    expect(progress.ciLine()).toBe('checking 3,200/10,000 files');
    progress.total = 10_000; // the check is done
    expect(progress.statusLine()).toMatch(/^0\/10,000 uploaded · 0 in flight · 0 B$/);
  });

  it('on a resumed run counts the files the journal holds apart, and takes the ETA from the files sent', () => {
    const clock = new FakeClock();
    const progress = new Progress(clock.now);
    progress.total = 2000;
    // The check took 10 s and the journal's 1,946 files went by in no time: neither is the pace.
    clock.time += 10_000;
    for (let i = 0; i < 1946; i++) progress.note(storedBefore(`old-${i}`));
    for (let i = 0; i < 4; i++) progress.note(attempt(`new-${i}`));
    // 4 files sent in 2 s: 2 files/s, 50 left → 25 s.
    clock.time += 2000;
    for (let i = 0; i < 4; i++) progress.note(uploaded(`new-${i}`));
    expect(progress.statusLine()).toBe(
      '4/54 uploaded · 1,946 already uploaded · 0 in flight · 2.4 kB at 1.2 kB/s · 2 files/s · ETA 25.0 s',
    );
    expect(progress.ciLine()).toBe('[1,950/2,000] 97% 2 files/s 0 failed, 1,946 already uploaded ETA 25.0 s');
  });

  it('gives no rate and no ETA before the first request', () => {
    const clock = new FakeClock();
    const progress = new Progress(clock.now);
    progress.total = 3;
    progress.note(storedBefore('a'));
    clock.time += 5000;
    expect(progress.statusLine()).toBe('0/2 uploaded · 1 already uploaded · 0 in flight · 0 B');
    expect(progress.ciLine()).toBe('[1/3] 33% 0 failed, 1 already uploaded');
  });
});

describe('a status, an error code and a message joined', () => {
  it('says each word once: a part another part already holds is left out', () => {
    expect(joinDistinct([500, 'internal_error', 'internal_error'])).toBe('500 internal_error');
    expect(joinDistinct([null, 'ECONNRESET', 'read ECONNRESET'])).toBe('read ECONNRESET');
    expect(joinDistinct(['ENOTFOUND', 'getaddrinfo ENOTFOUND api.unit21.invalid'], ': ')).toBe(
      'getaddrinfo ENOTFOUND api.unit21.invalid',
    );
    expect(joinDistinct(['ENOSPC', 'ENOSPC: no space left on device, write'], ': ')).toBe(
      'ENOSPC: no space left on device, write',
    );
    expect(joinDistinct([502, null, 'HTTP 502'])).toBe('HTTP 502');
  });

  it('keeps parts that only look alike: a code inside a longer word, or another number', () => {
    expect(joinDistinct([404, 'resource_not_found', 'entity "c1" not found'])).toBe(
      '404 resource_not_found entity "c1" not found',
    );
    expect(joinDistinct([400, 'not_found', 'resource_not_found'])).toBe('400 not_found resource_not_found');
    expect(joinDistinct([500, 'internal_error', 'took 5000 ms'])).toBe('500 internal_error took 5000 ms');
    expect(joinDistinct(['proxy_timeout', 'the proxy did not answer CONNECT within 1 s'], ': ')).toBe(
      'proxy_timeout: the proxy did not answer CONNECT within 1 s',
    );
  });
});
