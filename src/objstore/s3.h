// S3: an ObjectStore in an Amazon S3 bucket, or any service speaking S3's REST API (MinIO,
// Cloudflare R2, GCS through its S3-interoperable endpoint with HMAC keys, s3rver), over
// libcurl with its built-in SigV4 signing (CURLOPT_AWS_SIGV4).
//
// URLs: s3://BUCKET[/PREFIX]. Object key K is stored as PREFIX/K (or K without a prefix).
// Addressing: virtual-hosted https://BUCKET.s3.REGION.amazonaws.com/… on AWS; path-style
// ENDPOINT/BUCKET/… when an endpoint is given.
//
// Guarantees:
//   - Put is atomic for readers, as S3 is: a single PUT, or above `multipart_threshold` a
//     multipart upload whose object appears only on CompleteMultipartUpload. A failed multipart
//     upload is aborted (AbortMultipartUpload, best effort: a bucket lifecycle rule for
//     incomplete uploads is the backstop), so no partial object is ever visible.
//   - PutFile streams from the file (pread of at most one part per parallel upload in flight,
//     through curl's buffers): it never holds the file in memory. GetFile streams to a temporary
//     file beside the destination, fsyncs it and renames it into place.
//   - Put verifies what it uploaded: every request with a body (a single PUT, each UploadPart)
//     sends Content-MD5, the MD5 of exactly that body (a file range is hashed in a read pass
//     before it is streamed), so S3 refuses a body damaged in transit (400 BadDigest); that
//     refusal is retried like a transient error, the body read afresh from the file. A single
//     PUT also checks that the stored object's ETag is that MD5 (Corruption otherwise; skipped
//     when S3 says the object is encrypted with SSE-KMS or SSE-C, whose ETags are not MD5s, and
//     for multipart uploads, whose ETags never are).
//   - Requests that fail with HTTP 5xx, 429, 400 BadDigest, or a network error (refused, reset,
//     timed out) are retried `max_retries` times with exponential backoff (with jitter, each
//     wait at most 20 s) from `retry_base_delay`; a multipart upload retries each part on its own.
//     A retried CompleteMultipartUpload that finds the upload gone (NoSuchUpload: the first try did
//     complete, its answer was lost) is OK when the object has the file's size.
//   - Every error names the operation and the s3:// URL and carries the service's XML Code and
//     Message ("S3 GET s3://b/p/k: HTTP 404 NoSuchKey: The specified key does not exist.") or
//     curl's description of the network failure. Codes: NotFound for a missing object (404
//     other than NoSuchBucket), FailedPrecondition for a missing bucket, PermissionDenied
//     (403), Unauthenticated (401), InvalidArgument (other 4xx), Unavailable (5xx, 429 and
//     network errors, after the retries), Corruption (BadDigest after the retries, or an ETag
//     that is not the MD5 of what was sent).
//   - Keys are validated as LocalDir validates them (ValidateKey), so a key means the same
//     object in every store.
//
// Concurrency: thread-safe. Requests share a pool of curl handles (and so their connections).
//
// Limits: Head cannot tell a missing bucket from a missing key (a HEAD response has no body):
// both are NotFound. ETags are S3's (MD5 of a single PUT's body; opaque for multipart). Bodies
// are signed as UNSIGNED-PAYLOAD: SigV4 does not cover them, Content-MD5 does. A file that
// changes while it is uploaded fails with BadDigest (its MD5 was taken first). curl 7.88 signs
// the query string as written, so every request writes it canonically (sorted, "key=value",
// S3's encoding); s3_unit_test checks each signature as AWS computes it. Credentials are read
// once: no refresh of temporary ones.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "objstore/object_store.h"

namespace sluice::objstore {

namespace http {
class Client;
struct Request;
struct Response;
}  // namespace http

struct S3Options {
  std::string bucket;
  std::string prefix;  // without leading or trailing '/'; "" for the bucket's root
  std::string region = "us-east-1";
  // "http://127.0.0.1:9000", "https://storage.googleapis.com": path-style addressing. Empty:
  // AWS, virtual-hosted.
  std::string endpoint;
  std::string access_key_id;
  std::string secret_access_key;
  std::string session_token;  // temporary credentials (x-amz-security-token); may be empty

  uint64_t multipart_threshold = 64ull << 20;  // files above this go up in parts
  uint64_t part_size = 16ull << 20;            // at least 5 MiB (S3's minimum but for the last)
  int parallel_parts = 4;                      // parts in flight per PutFile
  int max_retries = 5;                         // retries after the first try
  std::chrono::milliseconds retry_base_delay{200};  // doubled per retry
  int list_page_size = 1000;                        // ListObjectsV2 max-keys (tests use less)
  std::chrono::seconds connect_timeout{10};
  // A transfer slower than 1 byte/s for this long fails (and is retried).
  std::chrono::seconds stall_timeout{60};
};

// Looks up an environment variable; nullopt when unset. Tests inject their own.
using EnvLookup = std::function<std::optional<std::string>(const std::string& name)>;
// The process environment (std::getenv).
std::optional<std::string> ProcessEnv(const std::string& name);

// Options for `url` ("s3://BUCKET[/PREFIX]") with credentials, region and endpoint from the
// AWS SDKs' environment variables: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_SESSION_TOKEN (optional), AWS_REGION or else AWS_DEFAULT_REGION (required without an
// endpoint; "us-east-1" with one), AWS_ENDPOINT_URL_S3 or else AWS_ENDPOINT_URL (optional).
// InvalidArgument with a sentence for a malformed URL or a missing variable. The URL is echoed
// in messages; the secret never is.
Result<S3Options> S3OptionsFromUrl(const std::string& url, const EnvLookup& env = ProcessEnv);

class S3 final : public ObjectStore {
 public:
  // Checks the options (InvalidArgument with a sentence: empty bucket, no credentials, a part
  // size under 5 MiB, …) and initialises libcurl. Makes no request: CheckBucket() does.
  static Result<std::unique_ptr<S3>> Open(const S3Options& options);
  ~S3() override;

  S3(const S3&) = delete;
  S3& operator=(const S3&) = delete;

  std::string Url() const override;  // "s3://bucket/prefix"
  Status PutFile(const std::string& key, const std::string& local_path) override;
  Status PutBytes(const std::string& key, const std::string& data) override;
  Status GetFile(const std::string& key, const std::string& local_path) override;
  Result<std::string> GetBytes(const std::string& key) override;
  // etag without its quotes.
  Result<ObjectInfo> Head(const std::string& key) override;
  // ListObjectsV2 pages of `list_page_size` keys, following continuation tokens.
  Result<std::vector<ObjectInfo>> List(const std::string& prefix) override;
  Status Delete(const std::string& key) override;
  std::optional<std::string> LocalPath(const std::string&) const override { return std::nullopt; }

  // One ListObjectsV2 request of one key: OK when the bucket exists and the credentials may
  // list it; otherwise the service's error (for a start-up check with a clear message).
  Status CheckBucket();

  // Counters since Open, for metrics and tests.
  struct Counters {
    uint64_t requests = 0;           // HTTP requests sent, retries included
    uint64_t retries = 0;            // requests that were retries
    uint64_t multipart_uploads = 0;  // completed multipart uploads
    uint64_t parts_uploaded = 0;     // parts of those (and of failed ones) that succeeded
    uint64_t aborted_uploads = 0;    // multipart uploads that failed and were aborted
  };
  Counters counters() const;

  const S3Options& options() const { return options_; }

 private:
  explicit S3(S3Options options);

  // The full object key (prefix applied) of `key`, and its request URL (`query` is an
  // already-canonical query string, "" for none).
  std::string ObjectKey(std::string_view key) const;
  std::string RequestUrl(std::string_view object_key, std::string_view query) const;
  std::string DisplayUrl(std::string_view object_key) const;  // s3://bucket/object_key
  // A request for `object_key` ("" for the bucket), signed with SigV4 when sent.
  http::Request NewRequest(std::string method, std::string_view object_key,
                           std::string_view query) const;
  // Sends `req` with retries; OK only for a 2xx answer (the error's message otherwise).
  Status Perform(const http::Request& req, http::Response* resp);
  // Perform for a request with a body: sends its Content-MD5 (hashed from the body first) and,
  // when `verify_etag`, checks that the stored object's ETag is that MD5.
  Status PerformUpload(http::Request& req, http::Response* resp, bool verify_etag);
  Status PutFileMultipart(const std::string& object_key, int fd, uint64_t size);
  Result<ObjectInfo> HeadObject(const std::string& object_key);  // key: the full object key
  void AbortUpload(const std::string& object_key, const std::string& upload_id);

  const S3Options options_;
  const std::unique_ptr<http::Client> client_;
  std::atomic<uint64_t> requests_{0};
  std::atomic<uint64_t> retries_{0};
  std::atomic<uint64_t> multipart_uploads_{0};
  std::atomic<uint64_t> parts_uploaded_{0};
  std::atomic<uint64_t> aborted_uploads_{0};
};

// Helpers of S3 exposed for unit tests.
namespace s3_internal {

// S3's URI encoding (SigV4): every byte but A-Z a-z 0-9 - _ . ~ as %XX (upper-case hex);
// '/' kept when `keep_slash`.
std::string UriEncode(std::string_view s, bool keep_slash);

// The Code and Message of an S3 <Error> document; nullopt when `xml` is not one.
struct ServiceError {
  std::string code;
  std::string message;
};
std::optional<ServiceError> ParseError(std::string_view xml);

// One ListObjectsV2 page.
struct ListPage {
  std::vector<ObjectInfo> objects;  // keys as the service returned them (prefix included)
  bool truncated = false;
  std::string next_token;
};
Result<ListPage> ParseListPage(std::string_view xml);

// The UploadId of an InitiateMultipartUpload answer.
Result<std::string> ParseUploadId(std::string_view xml);

}  // namespace s3_internal

}  // namespace sluice::objstore
