import { UsageError } from '../shared/errors.js';
import { maskUserInfo } from '../shared/mask-user-info.js';

/** How a path names an object in S3 or a store that speaks its API. */
export const S3_SCHEME = 's3://';

/** Whether a path (an argument, a manifest row) names objects in a bucket rather than files on disk. */
export const isS3Url = (path: string): boolean => path.startsWith(S3_SCHEME);

/** A bucket and a key (or a key prefix, or a glob over keys). */
export interface S3Location {
  bucket: string;
  key: string;
}

// Bucket names as S3 takes them (3 to 63 of a-z 0-9 . -), and the underscores older buckets and other stores allow.
const BUCKET = /^[a-z0-9][a-z0-9._-]{1,62}$/;

/** `s3://bucket/key` as its bucket and key, or why it is not one. */
export function parseS3Url(url: string): S3Location | { problem: string } {
  const rest = url.slice(S3_SCHEME.length);
  const slash = rest.indexOf('/');
  const bucket = slash === -1 ? rest : rest.slice(0, slash);
  const key = slash === -1 ? '' : rest.slice(slash + 1);
  if (!BUCKET.test(bucket)) return { problem: `"${bucket}" is not a bucket name; write s3://<bucket>/<key or prefix>` };
  return { bucket, key };
}

/** The URL of an object, as events, reports and the journal name it. */
export const s3Url = (bucket: string, key: string): string => `${S3_SCHEME}${bucket}/${key}`;

/** --s3-endpoint (or AWS_ENDPOINT_URL_S3), checked: an http:// or https:// address of a store, with nothing after the host. */
export function checkedS3Endpoint(endpoint: string): string {
  let url: URL | undefined;
  try {
    url = new URL(endpoint);
  } catch {
    url = undefined;
  }
  // Credentials in the address would be printed wherever the endpoint is named: the SDK takes them from its own chain.
  if (
    !url ||
    (url.protocol !== 'http:' && url.protocol !== 'https:') ||
    url.username ||
    url.password ||
    url.pathname !== '/' ||
    url.search ||
    url.hash
  ) {
    throw new UsageError(
      `--s3-endpoint / AWS_ENDPOINT_URL_S3: "${maskUserInfo(endpoint)}" is not the address of a store`,
      'give it as http[s]://host[:port], e.g. https://minio.example.com:9000, with credentials in the AWS variables or profile',
    );
  }
  return endpoint;
}
