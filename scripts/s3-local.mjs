#!/usr/bin/env node
// A local S3-compatible server (s3rver, a devDependency) on 127.0.0.1, for
// trying the remote cache without a cloud account and for CI's reproduction:
//   node scripts/s3-local.mjs DIR [BUCKET]
// prints `endpoint http://127.0.0.1:PORT` once it listens, and serves until
// killed. Clients sign with the key pair s3rver accepts: AWS_ACCESS_KEY_ID=S3RVER,
// AWS_SECRET_ACCESS_KEY=S3RVER.
import S3rver from 's3rver';

const [dir, bucket = 'smke'] = process.argv.slice(2);
if (!dir) {
  process.stderr.write('usage: node scripts/s3-local.mjs DIR [BUCKET]\n');
  process.exit(2);
}
const server = new S3rver({ port: Number(process.env.PORT ?? 0), address: '127.0.0.1', silent: true, directory: dir, configureBuckets: [{ name: bucket, configs: [] }] });
const { port } = await server.run();
process.stdout.write(`endpoint http://127.0.0.1:${port}\n`);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => server.close().then(() => process.exit(0)));
