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
