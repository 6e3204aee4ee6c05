import { describe, expect, it } from 'vitest';
import { metadataFrom } from '../../src/core/files/sidecar.js';

describe('sidecar metadata', () => {
  it('reads the flat form: other keys become custom_data', () => {
    expect(metadataFrom({ media_type: 'IMAGE_FACE_IMAGE', source: 'app', score: 0.9 }, 'sidecar')).toEqual({
      mediaType: 'IMAGE_FACE_IMAGE',
      customData: { source: 'app', score: 0.9 },
    });
  });

  it('reads the nested form and merges other top-level keys into it', () => {
    expect(metadataFrom({ custom_data: { a: 1 }, b: 2 }, 'sidecar')).toEqual({ customData: { a: 1, b: 2 } });
  });

  it('leaves out what is absent', () => {
    expect(metadataFrom({}, 'sidecar')).toEqual({});
  });

  it.each([
    [[1, 2], /must hold a JSON object/],
    ['text', /must hold a JSON object/],
    [{ media_type: 7 }, /"media_type" must be a non-empty string/],
    [{ custom_data: [1] }, /"custom_data" must be a JSON object/],
    [{ custom_data: { media_type: 'X' } }, /cannot hold "media_type"/],
  ])('refuses %j', (value, message) => {
    expect(() => metadataFrom(value, 'sidecar')).toThrow(message);
  });
});
