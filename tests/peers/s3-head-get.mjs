// An independent S3 client (@aws-sdk/client-s3) reading what Sluice wrote: prints
// {"size":N,"sha256":"…","etag":"…"} for s3://BUCKET/KEY, or {"error":"Code: message"}.
// Usage: node s3-head-get.mjs BUCKET KEY   (endpoint from SLUICE_TEST_S3_ENDPOINT or
// AWS_ENDPOINT_URL; credentials and region from the usual AWS_* variables)
import { createHash } from "node:crypto";
import { S3Client, GetObjectCommand } from "@aws-sdk/client-s3";

const [bucket, key] = process.argv.slice(2);
const endpoint = process.env.SLUICE_TEST_S3_ENDPOINT || process.env.AWS_ENDPOINT_URL;
const client = new S3Client({
  endpoint,
  forcePathStyle: Boolean(endpoint),
  region: process.env.AWS_REGION || "us-east-1",
});
try {
  const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const hash = createHash("sha256");
  let size = 0;
  for await (const chunk of out.Body) {
    hash.update(chunk);
    size += chunk.length;
  }
  console.log(JSON.stringify({ size, sha256: hash.digest("hex"), etag: out.ETag }));
} catch (e) {
  console.log(JSON.stringify({ error: `${e.name}: ${e.message}` }));
  process.exitCode = 1;
}
