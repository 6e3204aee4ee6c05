import { GetObjectCommand, ListObjectsV2Command, S3Client } from '@aws-sdk/client-s3';
import { describe, expect, it } from 'vitest';
import { S3_KEY_ID, startS3 } from '../s3-server.js';

describe('the test S3 server', () => {
  it('answers the SDK on loopback: a put, a listing, a ranged get, and refuses an unknown key id', async () => {
    const s3 = await startS3(['kyc']);
    await s3.put('kyc', 'cust-1/passport.jpg', 'abcdefgh');
    const client = new S3Client({
      endpoint: s3.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: 'AKIAWRONG', secretAccessKey: 'wrong' },
    });
    // s3rver checks the key id, not SigV4 signatures: a wrong key id is what it can refuse.
    await expect(client.send(new ListObjectsV2Command({ Bucket: 'kyc' }))).rejects.toThrow(/Access Key Id/);
    client.destroy();
    const good = new S3Client({
      endpoint: s3.endpoint,
      region: 'us-east-1',
      forcePathStyle: true,
      credentials: { accessKeyId: S3_KEY_ID, secretAccessKey: s3.env.AWS_SECRET_ACCESS_KEY! },
    });
    const listed = await good.send(new ListObjectsV2Command({ Bucket: 'kyc' }));
    expect(listed.Contents?.map((o) => [o.Key, o.Size])).toEqual([['cust-1/passport.jpg', 8]]);
    const ranged = await good.send(
      new GetObjectCommand({ Bucket: 'kyc', Key: 'cust-1/passport.jpg', Range: 'bytes=2-4' }),
    );
    expect(await ranged.Body!.transformToString()).toBe('cde');
    good.destroy();
  });
});
