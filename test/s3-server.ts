import crypto, { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { dirname, join } from 'node:path';
import { DeleteObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import type { Sandbox } from '../src/sandbox/server.js';
import { closeAfter, tempDir, toSandbox } from './helpers.js';

/** The keys s3rver signs with; any other pair is refused as S3 refuses it. */
export const S3_KEY_ID = 'S3RVER';
export const S3_SECRET = 'S3RVER';

/** A real S3 HTTP server on loopback, its objects in a test's temporary folder. */
export interface TestS3 {
  /** http://127.0.0.1:<port> */
  endpoint: string;
  /** What a run needs to read it: credentials, region and endpoint, and no instance metadata lookups (loopback only). */
  env: Record<string, string>;
  put(bucket: string, key: string, body: Buffer | string): Promise<void>;
  /** Writes an object straight into the server's folder, as its PUT leaves it there: fast enough for thousands. */
  write(bucket: string, key: string, body: Buffer | string): Promise<void>;
  remove(bucket: string, key: string): Promise<void>;
  close(): Promise<void>;
}

/** The flags of a test's run from a bucket to the sandbox `server`: --json, no journal. */
export const target = (server: Pick<Sandbox, 'org' | 'url'>) => [...toSandbox(server), '--json', '--no-journal'];

/** A PDF over the head the check reads, so that its send reads it again from the start. */
export const largePdf = (fill: string) => `%PDF-1.4\n${fill.repeat(20_000)}\n%%EOF\n`;

/** Environment for a run against `endpoint`: the SDK's own variables, nothing from the developer's shell. */
export function s3Env(endpoint: string, keys = { id: S3_KEY_ID, secret: S3_SECRET }): Record<string, string> {
  return {
    AWS_ACCESS_KEY_ID: keys.id,
    AWS_SECRET_ACCESS_KEY: keys.secret,
    AWS_REGION: 'us-east-1',
    AWS_ENDPOINT_URL_S3: endpoint,
    AWS_EC2_METADATA_DISABLED: 'true',
  };
}

/**
 * s3rver's continuation tokens (a listing's next page) are enciphered with single DES, which
 * OpenSSL 3 leaves out: every listing past its first page fails with HTTP 500. Its DES becomes
 * triple DES (the same 8-byte blocks, in OpenSSL's default provider) with the key thrice; the
 * token is opaque to clients, so only the server reads it.
 */
function desAsTripleDes(): void {
  const patched = crypto as typeof crypto & { desPatched?: true };
  if (patched.desPatched) return;
  patched.desPatched = true;
  const { createCipheriv, createDecipheriv } = crypto;
  const swap = (algorithm: string, key: Buffer): [string, Buffer] =>
    algorithm === 'des' ? ['des-ede3-cbc', Buffer.concat([key, key, key])] : [algorithm, key];
  crypto.createCipheriv = ((algorithm: string, key: Buffer, iv: Buffer) =>
    createCipheriv(...swap(algorithm, key), iv)) as typeof createCipheriv;
  crypto.createDecipheriv = ((algorithm: string, key: Buffer, iv: Buffer) =>
    createDecipheriv(...swap(algorithm, key), iv)) as typeof createDecipheriv;
}

/** Starts s3rver on 127.0.0.1 on a free port with these buckets; closed after the test. */
export async function startS3(buckets: readonly string[]): Promise<TestS3> {
  desAsTripleDes();
  const directory = await tempDir();
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory,
    vhostBuckets: false,
    configureBuckets: buckets.map((name) => ({ name })),
  });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  // The suite's own client: the SDK's notice about Node 20 is not what a test is about.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  const client = new S3Client({
    endpoint,
    region: 'us-east-1',
    forcePathStyle: true,
    credentials: { accessKeyId: S3_KEY_ID, secretAccessKey: S3_SECRET },
  });
  return closeAfter<TestS3>({
    endpoint,
    env: s3Env(endpoint),
    put: async (bucket, key, body) =>
      void (await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }))),
    write: async (bucket, key, body) => {
      // s3rver's layout: <bucket>/<key>._S3rver_object and its MD5 (the ETag) beside it; metadata it has none of is optional.
      const path = join(directory, bucket, `${key}._S3rver_object`);
      await mkdir(dirname(path), { recursive: true });
      await Promise.all([
        writeFile(path, body),
        writeFile(`${path}.md5`, createHash('md5').update(body).digest('hex')),
      ]);
    },
    remove: async (bucket, key) => void (await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }))),
    close: async () => {
      client.destroy();
      await server.close();
    },
  });
}

/**
 * What the fault proxy does to a request: answer 503 SlowDown or 403 AccessDenied, cut the
 * connection mid-answer, stall mid-answer (some bytes, then silence until the client gives up),
 * or pass it on.
 */
export type S3Fault = 'slowdown' | 'denied' | 'reset' | 'stall' | undefined;

const errorXml = (code: string, message: string) =>
  `<?xml version="1.0" encoding="UTF-8"?><Error><Code>${code}</Code><Message>${message}</Message></Error>`;
const ANSWERS = {
  slowdown: [503, errorXml('SlowDown', 'Please reduce your request rate.')],
  denied: [403, errorXml('AccessDenied', 'Access Denied')],
} as const;

/**
 * A loopback proxy in front of a test S3 server that injects faults as `fault` decides for each
 * request (its method, URL and headers), after whatever the hook does first (replace an object,
 * say); the requests it saw are counted by what it did.
 */
export async function faultyS3(
  target: string,
  fault: (req: IncomingMessage) => S3Fault | Promise<S3Fault>,
): Promise<{ endpoint: string; seen: Record<NonNullable<S3Fault> | 'passed', number>; close(): Promise<void> }> {
  const seen = { slowdown: 0, denied: 0, reset: 0, stall: 0, passed: 0 };
  const server: Server = createServer((req, res) => {
    // Held while the hook runs (it may change the bucket first): its body waits unread.
    req.pause();
    void Promise.resolve(fault(req)).then((what) => answer(req, res, what));
  });
  const answer = (req: IncomingMessage, res: ServerResponse, what: S3Fault) => {
    seen[what ?? 'passed']++;
    if (what === 'slowdown' || what === 'denied') {
      req.resume();
      const [status, body] = ANSWERS[what];
      res.writeHead(status, { 'content-type': 'application/xml' }).end(body);
      return;
    }
    const upstream = request(new URL(req.url!, target), { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode!, answer.headers);
      if (what === undefined) return void answer.pipe(res);
      // Some bytes of the answer, then the connection is cut, or goes silent (kept open until closed).
      answer.once('data', (chunk: Buffer) => {
        res.write(chunk.subarray(0, Math.max(1, chunk.length >> 1)));
        answer.destroy();
        if (what === 'reset') res.socket?.destroy();
      });
    });
    upstream.on('error', () => res.socket?.destroy());
    req.pipe(upstream);
  };
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return closeAfter({
    endpoint: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  });
}
