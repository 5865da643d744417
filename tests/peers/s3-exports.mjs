// An independent S3 client (@aws-sdk/client-s3) reading what Sluice's exporter wrote under
// s3://BUCKET/PREFIX: every manifest entry (_manifest/*.json), and, with OUT_DIR, each entry's
// Parquet object downloaded to OUT_DIR/<its key> with its size and SHA-256 checked against the
// entry. Prints {"entries":[{…entry, "sha256_ok":true|false}], "parquet_keys":[…]} where
// parquet_keys lists every object under events/ (with or without an entry), or
// {"error":"Code: message"}.
// Usage: node s3-exports.mjs BUCKET PREFIX [OUT_DIR]   (endpoint from SLUICE_TEST_S3_ENDPOINT
// or AWS_ENDPOINT_URL; credentials and region from the usual AWS_* variables)
import { createHash } from "node:crypto";
import { mkdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { S3Client, GetObjectCommand, ListObjectsV2Command } from "@aws-sdk/client-s3";

const [bucket, prefixArg, outDir] = process.argv.slice(2);
const prefix = prefixArg ? prefixArg.replace(/\/+$/, "") + "/" : "";
const endpoint = process.env.SLUICE_TEST_S3_ENDPOINT || process.env.AWS_ENDPOINT_URL;
const client = new S3Client({
  endpoint,
  forcePathStyle: Boolean(endpoint),
  region: process.env.AWS_REGION || "us-east-1",
});

async function list(p) {
  const keys = [];
  let token;
  do {
    const out = await client.send(
      new ListObjectsV2Command({ Bucket: bucket, Prefix: p, ContinuationToken: token }));
    for (const o of out.Contents ?? []) keys.push(o.Key);
    token = out.IsTruncated ? out.NextContinuationToken : undefined;
  } while (token);
  return keys;
}

async function get(key) {
  const out = await client.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  const chunks = [];
  for await (const chunk of out.Body) chunks.push(chunk);
  return Buffer.concat(chunks);
}

try {
  const entries = [];
  for (const key of await list(prefix + "_manifest/")) {
    if (!key.endsWith(".json")) continue;
    const entry = JSON.parse((await get(key)).toString("utf8"));
    if (outDir) {
      const body = await get(prefix + entry.key);
      const sha = createHash("sha256").update(body).digest("hex");
      entry.sha256_ok = sha === entry.sha256 && body.length === entry.bytes;
      const path = join(outDir, entry.key);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, body);
    }
    entries.push(entry);
  }
  const parquet_keys = (await list(prefix + "events/")).map((k) => k.slice(prefix.length));
  console.log(JSON.stringify({ entries, parquet_keys }));
} catch (e) {
  console.log(JSON.stringify({ error: `${e.name}: ${e.message}` }));
  process.exitCode = 1;
}
