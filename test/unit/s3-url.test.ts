import { describe, expect, it } from 'vitest';
import { UsageError } from '../../src/core/shared/errors.js';
import { checkedS3Endpoint, parseS3Url } from '../../src/core/s3/url.js';

describe('s3:// URLs', () => {
  it('splits a bucket from its key, and names a bucket S3 would refuse', () => {
    expect(parseS3Url('s3://kyc-export/2024/a b.jpg')).toEqual({ bucket: 'kyc-export', key: '2024/a b.jpg' });
    expect(parseS3Url('s3://kyc')).toEqual({ bucket: 'kyc', key: '' });
    expect(parseS3Url('s3://b/k.pdf')).toEqual({ problem: expect.stringContaining('"b" is not a bucket name') });
    expect(parseS3Url('s3://Upper/k.pdf')).toEqual({ problem: expect.stringContaining('"Upper"') });
  });
});

describe('--s3-endpoint', () => {
  it('takes an http:// or https:// address of a store', () => {
    for (const endpoint of [
      'https://minio.example.com:9000',
      'http://127.0.0.1:9000/',
      'https://s3.eu-central-1.wasabisys.com',
    ])
      expect(checkedS3Endpoint(endpoint)).toBe(endpoint);
  });

  it('refuses anything else with the fix, never showing credentials written into it', () => {
    for (const endpoint of [
      'not a url',
      'minio:9000',
      'ftp://store.example',
      'https://store.example/bucket',
      'https://store.example?x=1',
      'https://user:s3cr3t-pw@store.example',
      'http://user:s3cr3t-pw/x@minio:9000',
    ]) {
      let error: unknown;
      try {
        checkedS3Endpoint(endpoint);
      } catch (e) {
        error = e;
      }
      expect(error, endpoint).toBeInstanceOf(UsageError);
      const text = `${(error as UsageError).message} ${(error as UsageError).hint ?? ''}`;
      expect(text).toContain('--s3-endpoint');
      expect(text).toContain('http[s]://host[:port]');
      expect(text).not.toContain('s3cr3t-pw');
    }
  });
});
