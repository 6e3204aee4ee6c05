import { describe, expect, it } from 'vitest';
import { CheckedSizes } from '../../src/core/checked-sizes.js';

describe('CheckedSizes', () => {
  it('gives back the size of every path added, and nothing for others', () => {
    const sizes = new CheckedSizes();
    const paths = Array.from({ length: 50_000 }, (_, i) => `/data/cust-${i % 500}/scan_${i}.jpg`);
    paths.forEach((path, i) => sizes.add(path, i + 1));
    sizes.seal();
    paths.forEach((path, i) => expect(sizes.sizeOf(path)).toBe(i + 1));
    expect(sizes.sizeOf('/data/cust-1/scan_50000.jpg')).toBeUndefined();
    expect(sizes.sizeOf('/data/cust-1/scan_1.jpg ')).toBeUndefined();
  });

  it('knows nothing when empty', () => {
    expect(new CheckedSizes().seal().sizeOf('/a.jpg')).toBeUndefined();
  });
});
