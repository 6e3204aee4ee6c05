/**
 * What a failure on the storage side means to the user, with the fix: from the error's name
 * (S3's error code) and HTTP status only, never its text, which may echo request headers. The
 * message does not name the object: the problem or event it goes in does (its `path`).
 */
export function storageMessage(error: unknown): { code: string; message: string } {
  const err = error as { name?: string; Code?: string; $metadata?: { httpStatusCode?: number }; code?: string };
  const code = err.Code ?? err.name ?? err.code ?? 'storage_error';
  const status = err.$metadata?.httpStatusCode;
  // The proxy's answer to CONNECT, passed on as the store's.
  if (status === 407)
    return {
      code: 'proxy_refused',
      message: `the proxy refused the credentials (HTTP 407); check the proxy URL's user and password (--proxy, HTTPS_PROXY)`,
    };
  switch (code) {
    case 'NoSuchKey':
    case 'NotFound':
      return { code, message: `no such object; check the key (keys are case-sensitive)` };
    case 'NoSuchBucket':
      return {
        code,
        message: `the bucket does not exist; check its name, and the endpoint (--s3-endpoint, AWS_ENDPOINT_URL_S3) and region (AWS_REGION)`,
      };
    case 'AccessDenied':
    case 'Forbidden':
      return {
        code,
        message: `access denied; the credentials in use need s3:ListBucket on the bucket and s3:GetObject on its keys`,
      };
    case 'InvalidAccessKeyId':
    case 'SignatureDoesNotMatch':
    case 'InvalidToken':
    case 'ExpiredToken':
      return {
        code,
        message: `the storage refused the credentials (${code}); check AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or the role the run is given`,
      };
    case 'CredentialsProviderError':
      return {
        code: 'no_credentials',
        message: `no AWS credentials found; set AWS_PROFILE, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or run with a role (instance, ECS task, Kubernetes service account)`,
      };
    case 'PermanentRedirect':
    case 'AuthorizationHeaderMalformed':
      return { code, message: `the bucket is in another region; set AWS_REGION to the bucket's region` };
    default:
      return {
        code,
        message: `the storage failed (${code}${status ? `, HTTP ${status}` : ''}); try again, or check the endpoint (--s3-endpoint, AWS_ENDPOINT_URL_S3)`,
      };
  }
}

/** An error met reading an object, as the run's file errors are: its code, the object's URL as `path`, and a message with the fix. */
export function objectError(error: unknown, url: string): NodeJS.ErrnoException {
  const { code, message } = storageMessage(error);
  return Object.assign(new Error(message), { code, path: url });
}

/**
 * An error met reading an object a listing found: one gone since is said to be deleted, one
 * denied names the permission its read needs; others as objectError.
 */
export function readError(error: unknown, url: string): NodeJS.ErrnoException {
  const { code } = storageMessage(error);
  if (code === 'NoSuchKey' || code === 'NotFound')
    return Object.assign(
      new Error(
        `the object was deleted after it was listed (${code}), so it was not sent; if it should be, put it back and run again`,
      ),
      { code, path: url },
    );
  if (code === 'AccessDenied' || code === 'Forbidden')
    return Object.assign(
      new Error(
        `access denied reading the object (${code}); the credentials in use need s3:GetObject on it (and kms:Decrypt on its key if it is encrypted with KMS)`,
      ),
      { code, path: url },
    );
  return objectError(error, url);
}

// Connection faults and answers that say to come back: the SDK retries them before the body;
// these are met while a body is read, or once its retries are spent.
const TRANSIENT = new Set([
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ECONNREFUSED',
  'TimeoutError',
  'RequestTimeout',
  'SlowDown',
  'ServiceUnavailable',
  'InternalError',
  'ERR_STREAM_PREMATURE_CLOSE',
  'UND_ERR_SOCKET',
]);

/** Whether reading an object again may succeed: a connection cut or timed out, or the storage asking to slow down. */
export function isTransient(error: unknown): boolean {
  const err = error as { name?: string; code?: string; $metadata?: { httpStatusCode?: number }; message?: string };
  const status = err.$metadata?.httpStatusCode;
  return (
    TRANSIENT.has(err.code ?? '') ||
    TRANSIENT.has(err.name ?? '') ||
    status === 503 ||
    status === 500 ||
    /socket hang up|aborted/i.test(err.message ?? '')
  );
}
