import { createServer, request, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { DeleteObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import { closeAfter, tempDir } from './helpers.js';

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
  remove(bucket: string, key: string): Promise<void>;
  close(): Promise<void>;
}

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

/** Starts s3rver on 127.0.0.1 on a free port with these buckets; closed after the test. */
export async function startS3(buckets: readonly string[]): Promise<TestS3> {
  const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: await tempDir(), vhostBuckets: false, configureBuckets: buckets.map((name) => ({ name })) });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  // The suite's own client: the SDK's notice about Node 20 is not what a test is about.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  const client = new S3Client({ endpoint, region: 'us-east-1', forcePathStyle: true, credentials: { accessKeyId: S3_KEY_ID, secretAccessKey: S3_SECRET } });
  return closeAfter<TestS3>({
    endpoint,
    env: s3Env(endpoint),
    put: async (bucket, key, body) => void (await client.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }))),
    remove: async (bucket, key) => void (await client.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }))),
    close: async () => {
      client.destroy();
      await server.close();
    },
  });
}

/** What the fault proxy does to a request: answer 503 SlowDown, cut the connection mid-answer, or pass it on. */
export type S3Fault = 'slowdown' | 'reset' | undefined;

const SLOW_DOWN = '<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>';

/**
 * A loopback proxy in front of a test S3 server that injects faults as `fault` decides for each
 * request (its method, URL and headers), after whatever the hook does first (replace an object,
 * say); the requests it saw are counted by what it did.
 */
export async function faultyS3(target: string, fault: (req: IncomingMessage) => S3Fault | Promise<S3Fault>): Promise<{ endpoint: string; seen: Record<'slowdown' | 'reset' | 'passed', number>; close(): Promise<void> }> {
  const seen = { slowdown: 0, reset: 0, passed: 0 };
  const server: Server = createServer((req, res) => {
    // Held while the hook runs (it may change the bucket first): its body waits unread.
    req.pause();
    void Promise.resolve(fault(req)).then((what) => answer(req, res, what));
  });
  const answer = (req: IncomingMessage, res: ServerResponse, what: S3Fault) => {
    if (what === 'slowdown') {
      seen.slowdown++;
      req.resume();
      res.writeHead(503, { 'content-type': 'application/xml' }).end(SLOW_DOWN);
      return;
    }
    if (what === 'reset') seen.reset++;
    else seen.passed++;
    const upstream = request(new URL(req.url!, target), { method: req.method, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode!, answer.headers);
      if (what !== 'reset') return void answer.pipe(res);
      // Some bytes of the answer, then the connection is cut.
      answer.once('data', (chunk: Buffer) => {
        res.write(chunk.subarray(0, Math.max(1, chunk.length >> 1)));
        answer.destroy();
        res.socket?.destroy();
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
