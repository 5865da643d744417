// The plumbing shared by the object stores that speak a REST API over libcurl (S3, AzureBlob):
// a client that sends one request over pooled curl handles, its body streamed from a string or
// a file range and its answer captured (status, headers, body, or a file); a retry loop with
// exponential backoff; uploads from a file (open, parallel parts) and downloads to one
// (temporary file, fsync, rename); checksums, encodings and a small XML tree. Signing, URLs,
// the services' error documents and which failures are worth a retry stay with each store.
//
// Concurrency: Client is thread-safe; the rest are free functions or per-call data.
#pragma once

#include <curl/curl.h>

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "common/metrics.h"
#include "common/status.h"
#include "common/unique_fd.h"

namespace sluice::objstore::http {

// ---- one exchange ---------------------------------------------------------------------------

struct Request {
  std::string method;  // GET HEAD PUT POST DELETE
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  // The body of a PUT or POST: `body`, or (PUT) `body_size` bytes of `body_fd` from
  // `body_offset`, read from the file as curl sends them (again on every attempt).
  const std::string* body = nullptr;
  int body_fd = -1;
  uint64_t body_offset = 0;
  uint64_t body_size = 0;
  // When >= 0, a 2xx answer's body is written to this file (truncated first) instead of
  // Response::body.
  int sink_fd = -1;
  std::string what;  // names the request in errors: "S3 GET s3://b/k"
  // Service-specific options for the handle (S3: curl's SigV4 signing); may be empty.
  std::function<void(CURL*)> configure;
};

struct Response {
  long status = 0;
  std::string reason;                          // of the status line
  std::map<std::string, std::string> headers;  // the final answer's, names in lower case
  std::string body;  // a 2xx body that did not go to sink_fd; of another status, 64 KiB at most
  // After a network failure: whether another try can help (not after a malformed URL, a
  // refused certificate, …).
  bool network_retryable = false;

  std::string Header(const std::string& lower_case_name) const;  // "" when absent
};

// Sends requests over a pool of curl handles, so that connections (and TLS sessions) are
// reused. Thread-safe.
//
// Metrics (metrics::Default(), label service = `service`): sluice_objstore_requests_total
// {service, method, result = 2xx|3xx|4xx|5xx|network}, sluice_objstore_requests_in_flight,
// sluice_objstore_sent_bytes_total, sluice_objstore_received_bytes_total,
// sluice_objstore_request_seconds {service, method}.
class Client {
 public:
  // `service` labels the metrics: "s3", "azure".
  Client(std::string service, std::chrono::seconds connect_timeout,
         std::chrono::seconds stall_timeout);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sends `req` once. OK when an answer came back, whatever its status (in `resp`); IOError
  // when the local file could not be read or written; Unavailable with curl's message for a
  // network failure or a transfer that stalled for `stall_timeout` (moving < 1 byte/s).
  Status Send(const Request& req, Response* resp);

 private:
  using Handle = std::unique_ptr<CURL, decltype(&curl_easy_cleanup)>;
  Handle Acquire();
  void Release(Handle h);

  // Counts one finished exchange in the metrics.
  void Count(const Request& req, const std::string& result, double seconds, CURL* c);

  const std::string service_;
  metrics::Gauge& in_flight_;
  const std::chrono::seconds connect_timeout_;
  const std::chrono::seconds stall_timeout_;
  std::mutex mu_;
  // State below is protected by mu_.
  std::vector<Handle> idle_;
};

// ---- retries --------------------------------------------------------------------------------

struct RetryPolicy {
  int max_retries = 5;  // further attempts after the first
  std::chrono::milliseconds base_delay{200};
};
// Calls `attempt` until it returns false (done, or not worth another try) or the retries are
// spent. Before retry n it sleeps base_delay * 2^(n-1), capped at 20 s, with jitter (a random
// point of the upper half). Returns the number of attempts made.
int Retry(const RetryPolicy& policy, const std::function<bool()>& attempt);

// ---- files ----------------------------------------------------------------------------------

struct FileToUpload {
  UniqueFd fd;
  uint64_t size = 0;
};
// Opens `path` for reading. NotFound when it does not exist, InvalidArgument when it is not a
// regular file, IOError otherwise.
Result<FileToUpload> OpenFileToUpload(const std::string& path);

// Calls `download(fd)` with a new temporary file beside `local_path`; when it succeeds, fsyncs
// the file, renames it to `local_path` and fsyncs the directory. On failure the temporary file
// is removed and `local_path` is untouched.
Status DownloadToFile(const std::string& local_path, const std::function<Status(int fd)>& download);

// Calls fn(0) … fn(count - 1) on up to `parallelism` threads (the caller's among them); after a
// failure no further index is started. Returns the first failure, or OK.
Status ParallelFor(uint64_t count, int parallelism, const std::function<Status(uint64_t)>& fn);

// ---- checksums and encodings ----------------------------------------------------------------

// The raw 16-byte MD5 of `data`.
std::string Md5(std::string_view data);
// The raw MD5 of `size` bytes of `fd` from `offset` (pread: the file position is untouched).
// IOError when the file cannot be read or is shorter.
Result<std::string> Md5OfFileRange(int fd, uint64_t offset, uint64_t size);
std::string Base64Encode(std::string_view data);
std::string HexEncode(std::string_view data);  // lower case
// Every byte but A-Z a-z 0-9 - _ . ~ (and '/' when `keep_slash`) as %XX, upper-case hex: the
// encoding both SigV4 and Azure's URLs use.
std::string PercentEncode(std::string_view s, bool keep_slash);
std::string Lower(std::string_view s);
std::string Trim(std::string_view s);  // without leading and trailing white space

// ---- XML answers ----------------------------------------------------------------------------

// An element tree of an answer (a few KB to a few MB): names without their namespace prefix,
// each element's direct text, its children. Attributes are not kept.
struct XmlNode {
  std::string name;
  std::string text;
  std::vector<std::unique_ptr<XmlNode>> children;

  // The first child element named `n`; an empty node when there is none.
  const XmlNode& Child(std::string_view n) const;
  std::vector<const XmlNode*> Children(std::string_view n) const;
  std::string ChildText(std::string_view n) const { return Child(n).text; }
};
// The document node of `xml` (its one child is the root element); Corruption with expat's
// message when `xml` is not well-formed.
Result<std::unique_ptr<XmlNode>> ParseXml(std::string_view xml);

}  // namespace sluice::objstore::http
