// The local S3 server of the benchmarks: s3rver on 127.0.0.1 (as the tests start it), its
// objects kept under .bench/s3/ and put there once, through the SDK, from files the other
// sections generate.
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import S3rver from 's3rver';
import { JPEGS_DONE } from './lib.mjs';

/** What a client needs to read it: the keys s3rver signs with and a region; no instance metadata lookups (loopback only). */
export const S3_ENV = {
  AWS_ACCESS_KEY_ID: 'S3RVER',
  AWS_SECRET_ACCESS_KEY: 'S3RVER',
  AWS_REGION: 'us-east-1',
  AWS_EC2_METADATA_DISABLED: 'true',
  AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED: 'true',
};

/**
 * Starts s3rver on a free port with one bucket, kept in `dir`; `sets` maps a prefix to the local
 * files to hold under it, put once (a later run finds them there). Returns its endpoint and `close()`.
 */
export async function startS3(dir, bucket, sets) {
  // The bench's own client: the SDK's notice about Node 20 is not what the figures are about.
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = 'true';
  const server = new S3rver({
    address: '127.0.0.1',
    port: 0,
    silent: true,
    directory: join(dir, 'store'),
    vhostBuckets: false,
    configureBuckets: [{ name: bucket }],
  });
  const { port } = await server.run();
  const endpoint = `http://127.0.0.1:${port}`;
  const client = new S3Client({
    endpoint,
    region: S3_ENV.AWS_REGION,
    forcePathStyle: true,
    credentials: { accessKeyId: S3_ENV.AWS_ACCESS_KEY_ID, secretAccessKey: S3_ENV.AWS_SECRET_ACCESS_KEY },
  });
  for (const [prefix, paths] of Object.entries(sets)) {
    // Put again when the files were made anew (see JPEGS_DONE).
    const done = join(dir, `${prefix}.${JPEGS_DONE}`);
    if (existsSync(done)) continue;
    console.log(`putting ${paths.length} objects under s3://${bucket}/${prefix}/ …`);
    const queue = [...paths];
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        for (let path = queue.shift(); path; path = queue.shift())
          await client.send(
            new PutObjectCommand({ Bucket: bucket, Key: `${prefix}/${basename(path)}`, Body: readFileSync(path) }),
          );
      }),
    );
    mkdirSync(dir, { recursive: true });
    writeFileSync(done, '');
  }
  client.destroy();
  return { endpoint, close: () => server.close() };
}
