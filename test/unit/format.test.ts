import { describe, expect, it } from 'vitest';
import { formatBytes } from '../../src/cli/format.js';
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
