// AzureBlob: an ObjectStore on Azure Blob Storage (or azurite), for URLs
// az://CONTAINER[/PREFIX]. Object key K is the block blob PREFIX/K in CONTAINER. Requests go
// over libcurl with Shared Key authorization (HMAC-SHA256 of the canonicalized request,
// x-ms-version 2021-08-06).
//
// Guarantees:
//   - Put is atomic for readers: PutFile/PutBytes up to `single_put_max_bytes` is one Put Blob;
//     a larger file is uploaded as uncommitted blocks (Put Block, `upload_parallelism` at a
//     time, `block_size` each, streamed from the file) and made visible at once by Put Block
//     List. A failed upload leaves the old blob (or no blob) visible; its uncommitted blocks
//     are discarded by the service (Azure: after a week; a later Put replaces them).
//   - Put verifies what it uploaded: Put Blob and every Put Block send Content-MD5, the MD5 of
//     exactly that request's body (a file range is hashed in a read pass before it is streamed),
//     so the service refuses a body damaged in transit (400 Md5Mismatch); that refusal is
//     retried like a transient error, the body read afresh from the file.
//   - GetFile writes a temporary file beside `local_path`, fsyncs it and renames it into place.
//   - Every request is retried (max_retries times, exponential backoff with jitter from
//     initial_backoff, each wait at most 20 s) on a network error, HTTP 5xx, 429 and 400
//     Md5Mismatch (azurite: 400 InvalidOperation "Provided contentMD5 doesn't match."). Errors
//     carry the HTTP status and the service's XML Code and Message (or curl's message for network
//     errors): NotFound for 404, PermissionDenied for 401/403, Corruption for Md5Mismatch after the
//     retries, InvalidArgument for other 400s, Unavailable for 5xx/429/network errors after the
//     retries, FailedPrecondition for other statuses.
//   - Keys are checked with ValidateKey (local_dir.h), so every store accepts the same keys.
//
// Concurrency: thread-safe. Curl handles are pooled (connections are reused); each call uses
// its own handles.
//
// Limits: no SAS tokens or Azure AD credentials (Shared Key only); the container must exist
// (CreateContainer makes it); at most 50,000 blocks per blob (800 GB at 16 MiB blocks).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "objstore/object_store.h"

namespace sluice::objstore {

namespace http {
class Client;
struct Response;
}  // namespace http

struct AzureBlobOptions {
  std::string account;      // storage account name
  std::string account_key;  // base64, as the portal and connection strings show it
  // Blob service base URL without a trailing '/': "https://ACCOUNT.blob.core.windows.net", or
  // azurite's path-style "http://127.0.0.1:10000/devstoreaccount1". Empty: derived from the
  // account ("https://ACCOUNT.blob.core.windows.net").
  std::string endpoint;
  std::string container;
  std::string prefix;  // no leading or trailing '/'; "" for the container's root

  uint64_t single_put_max_bytes = 64ull << 20;  // above this PutFile uploads blocks
  uint64_t block_size = 16ull << 20;
  int upload_parallelism = 4;                      // blocks in flight per PutFile
  int list_page_size = 5000;                       // maxresults of one List Blobs request
  int max_retries = 5;                             // further attempts after the first
  std::chrono::milliseconds initial_backoff{200};  // doubled after each failed attempt
  std::chrono::seconds connect_timeout{10};
  // A transfer is abandoned (and retried) when it moves less than 1 byte/s for this long.
  std::chrono::seconds stall_timeout{60};
  // Tests only: called after each block of a block upload is stored (from upload threads).
  std::function<void(int block_index)> after_block_for_test;
  // Tests only: may rewrite the Content-MD5 (base64) of each Put Blob and Put Block before it is
  // sent, as if the body had been damaged in transit.
  std::function<void(std::string* content_md5)> content_md5_for_test;
};

// Connection-string fields (AccountName, AccountKey, BlobEndpoint, DefaultEndpointsProtocol,
// EndpointSuffix; "UseDevelopmentStorage=true" means azurite on 127.0.0.1:10000). Fills
// account, account_key and endpoint of `options`. InvalidArgument with a sentence (never
// echoing the key) when the string lacks a name or key or is malformed.
Status ApplyConnectionString(const std::string& connection_string, AzureBlobOptions* options);

// Options for az://CONTAINER[/PREFIX], with credentials from the environment:
// AZURE_STORAGE_CONNECTION_STRING, else AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY.
// InvalidArgument for a malformed URL or missing credentials.
Result<AzureBlobOptions> AzureBlobOptionsFromUrl(const std::string& url);

// The parts of a request that Shared Key signs. Exposed for tests.
struct SharedKeyRequest {
  std::string method;  // "GET", "PUT", …
  std::string account;
  std::string path;  // the URI path as sent (percent-encoded), e.g. "/devstoreaccount1/c/b"
  // Query parameters, not encoded.
  std::vector<std::pair<std::string, std::string>> query;
  // Headers as sent (names in any case). Content-Length "0" signs as "".
  std::vector<std::pair<std::string, std::string>> headers;
};
// The string to sign for the Blob service (version 2009-09-19 and later).
std::string SharedKeyStringToSign(const SharedKeyRequest& request);
// base64(HMAC-SHA256(base64decode(account_key), string_to_sign)); InvalidArgument when the key
// is not base64.
Result<std::string> SharedKeySignature(const std::string& account_key,
                                       const std::string& string_to_sign);

class AzureBlob final : public ObjectStore {
 public:
  // Checks the options (no request is made). InvalidArgument for a missing account, key or
  // container, or a key that is not base64.
  static Result<std::unique_ptr<AzureBlob>> Open(const AzureBlobOptions& options);
  ~AzureBlob() override;

  AzureBlob(const AzureBlob&) = delete;
  AzureBlob& operator=(const AzureBlob&) = delete;

  std::string Url() const override;  // "az://container/prefix" (no credentials)
  Status PutFile(const std::string& key, const std::string& local_path) override;
  Status PutBytes(const std::string& key, const std::string& data) override;
  Status GetFile(const std::string& key, const std::string& local_path) override;
  Result<std::string> GetBytes(const std::string& key) override;
  // etag is the service's ETag (quotes removed).
  Result<ObjectInfo> Head(const std::string& key) override;
  Result<std::vector<ObjectInfo>> List(const std::string& prefix) override;
  // OK when the blob is gone or never existed; NotFound when the container does not exist.
  Status Delete(const std::string& key) override;
  std::optional<std::string> LocalPath(const std::string&) const override { return std::nullopt; }

  // Creates the container; OK when it already exists.
  Status CreateContainer();
  // Get Block List (committed blocks): each block's size, in order. For checks and tests.
  Result<std::vector<uint64_t>> CommittedBlockSizes(const std::string& key);

  struct Request;

 private:
  AzureBlob(AzureBlobOptions options, std::string key_bytes);
  std::string BlobPath(const std::string& key) const;  // encoded URI path of a key's blob
  std::string ContainerPath() const;
  // A request for the blob of `key`, named "METHOD az://container/prefix/key" in errors.
  Request BlobRequest(std::string method, const std::string& key) const;
  // Sends `req` with retries; a non-2xx status (other than those in `ok_statuses`) becomes an
  // error Status.
  Result<http::Response> Send(const Request& req, std::vector<long> ok_statuses = {});
  Status SendOnce(const Request& req, http::Response* resp);  // signs and sends one attempt
  // Send for a request that uploads blob bytes: adds the Content-MD5 of its body first (a file
  // range is hashed in a read pass before it is streamed).
  Status SendUpload(Request& req);
  Status PutBlocks(const std::string& key, int fd, uint64_t size);

  const AzureBlobOptions options_;
  const std::string key_bytes_;  // decoded account key
  std::string base_url_;         // scheme://host[:port]
  std::string base_path_;        // endpoint's path ("" or "/devstoreaccount1")
  const std::unique_ptr<http::Client> client_;
};

}  // namespace sluice::objstore
