#include "objstore/s3.h"

#include <curl/curl.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstdlib>
#include <utility>

#include "objstore/http_client.h"
#include "objstore/local_dir.h"

namespace sluice::objstore {
namespace {

constexpr uint64_t kMinPartSize = 5ull << 20;  // S3's minimum for every part but the last
constexpr uint64_t kMaxPartSize = 5ull << 30;  // S3's maximum part (and single PUT) size
constexpr uint64_t kMaxParts = 10000;          // S3's maximum part count
// curl 7.88 signs whatever x-amz-content-sha256 says (and does not send one itself, which S3
// requires). Bodies are streamed, so they are not SHA-256-hashed in advance: S3 accepts this
// value for every request (Content-MD5 protects the bodies that upload object bytes).
constexpr const char* kUnsignedPayload = "x-amz-content-sha256: UNSIGNED-PAYLOAD";

// ETags come quoted ("\"abc\"", or &quot;abc&quot; in XML, which expat decodes): the quotes
// are not part of the tag.
std::string StripQuotes(std::string s) {
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') return s.substr(1, s.size() - 2);
  return s;
}

std::string TrimSlashes(std::string_view s) {
  while (!s.empty() && s.front() == '/') s.remove_prefix(1);
  while (!s.empty() && s.back() == '/') s.remove_suffix(1);
  return std::string(s);
}

Status StatusForHttp(long status, const std::string& code, std::string message) {
  if (code == "NoSuchBucket") return Status::FailedPrecondition(std::move(message));
  if (code == "BadDigest") return Status::Corruption(std::move(message));
  if (status == 404) return Status::NotFound(std::move(message));
  if (status == 401) return Status::Unauthenticated(std::move(message));
  if (status == 403) return Status::PermissionDenied(std::move(message));
  if (status >= 500 || status == 429) return Status::Unavailable(std::move(message));
  if (status >= 400) return Status::InvalidArgument(std::move(message));
  return Status::IOError(std::move(message));
}

// The root element of an answer, which must be `name`.
Result<std::unique_ptr<http::XmlNode>> ParseAnswer(std::string_view xml, std::string_view name) {
  SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<http::XmlNode> doc, http::ParseXml(xml));
  if (doc->children.size() != 1 || doc->children[0]->name != name) {
    return Status::Corruption("expected a " + std::string(name) + " from the service, got <" +
                              (doc->children.empty() ? "" : doc->children[0]->name) + ">");
  }
  return std::move(doc->children[0]);
}

}  // namespace

// ---- helpers exposed for tests --------------------------------------------------------------

namespace s3_internal {

std::string UriEncode(std::string_view s, bool keep_slash) {
  return http::PercentEncode(s, keep_slash);
}

std::optional<ServiceError> ParseError(std::string_view xml) {
  if (xml.find("<Error") == std::string_view::npos) return std::nullopt;
  Result<std::unique_ptr<http::XmlNode>> doc = http::ParseXml(xml);
  if (!doc.ok() || (*doc)->Children("Error").empty()) return std::nullopt;
  const http::XmlNode& e = (*doc)->Child("Error");
  return ServiceError{e.ChildText("Code"), e.ChildText("Message")};
}

Result<ListPage> ParseListPage(std::string_view xml) {
  SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<http::XmlNode> doc, ParseAnswer(xml, "ListBucketResult"));
  ListPage page;
  for (const http::XmlNode* c : doc->Children("Contents")) {
    ObjectInfo info;
    info.key = c->ChildText("Key");
    std::string size = c->ChildText("Size");
    char* end = nullptr;
    info.size = std::strtoull(size.c_str(), &end, 10);
    if (size.empty() || end == nullptr || *end != '\0') {
      return Status::Corruption("ListBucketResult has an object \"" + info.key +
                                "\" with a malformed Size \"" + size + "\"");
    }
    info.etag = StripQuotes(c->ChildText("ETag"));
    page.objects.push_back(std::move(info));
  }
  page.truncated = doc->ChildText("IsTruncated") == "true";
  page.next_token = doc->ChildText("NextContinuationToken");
  if (page.truncated && page.next_token.empty()) {
    return Status::Corruption("ListBucketResult is truncated but has no NextContinuationToken");
  }
  return page;
}

Result<std::string> ParseUploadId(std::string_view xml) {
  Result<std::unique_ptr<http::XmlNode>> doc = ParseAnswer(xml, "InitiateMultipartUploadResult");
  if (!doc.ok() || (*doc)->ChildText("UploadId").empty()) {
    return Status::Corruption("expected an InitiateMultipartUploadResult with an UploadId");
  }
  return (*doc)->ChildText("UploadId");
}

}  // namespace s3_internal

using s3_internal::UriEncode;

// ---- options --------------------------------------------------------------------------------

std::optional<std::string> ProcessEnv(const std::string& name) {
  const char* v = std::getenv(name.c_str());
  if (v == nullptr) return std::nullopt;
  return std::string(v);
}

Result<S3Options> S3OptionsFromUrl(const std::string& url, const EnvLookup& env) {
  if (!url.starts_with("s3://")) {
    return Status::InvalidArgument("object store URL \"" + url +
                                   "\" is not an S3 URL: expected s3://BUCKET[/PREFIX]");
  }
  std::string_view rest = std::string_view(url).substr(5);
  size_t slash = rest.find('/');
  S3Options o;
  o.bucket = std::string(rest.substr(0, slash));
  if (slash != std::string_view::npos) o.prefix = TrimSlashes(rest.substr(slash + 1));
  if (o.bucket.empty()) {
    return Status::InvalidArgument("object store URL \"" + url +
                                   "\" has no bucket: expected s3://BUCKET[/PREFIX]");
  }
  if (o.bucket.find_first_of("@:?#") != std::string::npos) {
    return Status::InvalidArgument(
        "object store URL \"" + url +
        "\": the bucket name has '@', ':', '?' or '#'; credentials go in AWS_ACCESS_KEY_ID and "
        "AWS_SECRET_ACCESS_KEY, not in the URL");
  }
  if (o.prefix.find("//") != std::string::npos) {
    return Status::InvalidArgument("object store URL \"" + url +
                                   "\": the prefix has an empty path segment (\"//\")");
  }
  auto get = [&](const char* name) -> std::string {
    std::optional<std::string> v = env(name);
    return v ? *v : std::string();
  };
  o.access_key_id = get("AWS_ACCESS_KEY_ID");
  o.secret_access_key = get("AWS_SECRET_ACCESS_KEY");
  o.session_token = get("AWS_SESSION_TOKEN");
  if (o.access_key_id.empty() || o.secret_access_key.empty()) {
    std::string missing = o.access_key_id.empty() && o.secret_access_key.empty()
                              ? "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are"
                          : o.access_key_id.empty() ? "AWS_ACCESS_KEY_ID is"
                                                    : "AWS_SECRET_ACCESS_KEY is";
    return Status::InvalidArgument("object store " + url + ": " + missing +
                                   " not set; set both to an access key that may read, write "
                                   "and list the bucket");
  }
  o.endpoint = get("AWS_ENDPOINT_URL_S3");
  if (o.endpoint.empty()) o.endpoint = get("AWS_ENDPOINT_URL");
  while (!o.endpoint.empty() && o.endpoint.back() == '/') o.endpoint.pop_back();
  o.region = get("AWS_REGION");
  if (o.region.empty()) o.region = get("AWS_DEFAULT_REGION");
  if (o.region.empty()) {
    if (o.endpoint.empty()) {
      return Status::InvalidArgument("object store " + url +
                                     ": AWS_REGION (or AWS_DEFAULT_REGION) is not set; set it "
                                     "to the bucket's region, e.g. AWS_REGION=eu-west-1");
    }
    o.region = "us-east-1";  // what MinIO, R2 ("auto" also works there) and s3rver accept
  }
  return o;
}

// ---- S3 -------------------------------------------------------------------------------------

S3::S3(S3Options options)
    : options_(std::move(options)),
      client_(
          std::make_unique<http::Client>("s3", options_.connect_timeout, options_.stall_timeout)) {}
S3::~S3() = default;

Result<std::unique_ptr<S3>> S3::Open(const S3Options& options) {
  auto bad = [](const std::string& why) { return Status::InvalidArgument("S3 options: " + why); };
  if (options.bucket.empty()) return bad("the bucket name is empty");
  if (options.bucket.find('/') != std::string::npos) {
    return bad("the bucket name \"" + options.bucket + "\" has a '/'");
  }
  if (options.access_key_id.empty() || options.secret_access_key.empty()) {
    return bad("no credentials: set the access key id and secret access key");
  }
  if (options.region.empty()) return bad("the region is empty");
  if (!options.endpoint.empty() && !options.endpoint.starts_with("http://") &&
      !options.endpoint.starts_with("https://")) {
    return bad("the endpoint \"" + options.endpoint + "\" is not an http:// or https:// URL");
  }
  if (options.part_size < kMinPartSize || options.part_size > kMaxPartSize) {
    return bad("the part size must be between 5 MiB and 5 GiB");
  }
  if (options.multipart_threshold == 0 || options.multipart_threshold > kMaxPartSize) {
    return bad("the multipart threshold must be between 1 byte and 5 GiB");
  }
  if (options.parallel_parts < 1) return bad("parallel parts must be at least 1");
  if (options.max_retries < 0) return bad("retries must not be negative");
  if (options.list_page_size < 1 || options.list_page_size > 1000) {
    return bad("the list page size must be between 1 and 1000");
  }
  S3Options o = options;
  o.prefix = TrimSlashes(o.prefix);
  while (!o.endpoint.empty() && o.endpoint.back() == '/') o.endpoint.pop_back();
  return std::unique_ptr<S3>(new S3(std::move(o)));
}

std::string S3::Url() const {
  std::string u = "s3://" + options_.bucket;
  if (!options_.prefix.empty()) u += "/" + options_.prefix;
  return u;
}

std::string S3::ObjectKey(std::string_view key) const {
  if (options_.prefix.empty()) return std::string(key);
  return options_.prefix + "/" + std::string(key);
}

std::string S3::DisplayUrl(std::string_view object_key) const {
  return "s3://" + options_.bucket + "/" + std::string(object_key);
}

std::string S3::RequestUrl(std::string_view object_key, std::string_view query) const {
  std::string u;
  if (options_.endpoint.empty()) {
    u = "https://" + options_.bucket + ".s3." + options_.region + ".amazonaws.com/";
  } else {
    u = options_.endpoint + "/" + options_.bucket + "/";
  }
  u += UriEncode(object_key, /*keep_slash=*/true);
  if (!query.empty()) {
    u += '?';
    u += query;
  }
  return u;
}

S3::Counters S3::counters() const {
  Counters c;
  c.requests = requests_.load();
  c.retries = retries_.load();
  c.multipart_uploads = multipart_uploads_.load();
  c.parts_uploaded = parts_uploaded_.load();
  c.aborted_uploads = aborted_uploads_.load();
  return c;
}

http::Request S3::NewRequest(std::string method, std::string_view object_key,
                             std::string_view query) const {
  http::Request req;
  req.what = "S3 " + method + " " + DisplayUrl(object_key);
  req.method = std::move(method);
  req.url = RequestUrl(object_key, query);
  req.headers = {kUnsignedPayload};
  if (!options_.session_token.empty()) {
    req.headers.push_back("x-amz-security-token: " + options_.session_token);
  }
  req.configure = [this](CURL* h) {
    curl_easy_setopt(h, CURLOPT_AWS_SIGV4, ("aws:amz:" + options_.region + ":s3").c_str());
    curl_easy_setopt(h, CURLOPT_USERNAME, options_.access_key_id.c_str());
    curl_easy_setopt(h, CURLOPT_PASSWORD, options_.secret_access_key.c_str());
  };
  return req;
}

Status S3::Perform(const http::Request& req, http::Response* resp) {
  Status last;
  bool retryable = false;
  const int attempts = http::Retry({options_.max_retries, options_.retry_base_delay}, [&] {
    ++requests_;
    last = client_->Send(req, resp);
    retryable = !last.ok() && resp->network_retryable;
    if (!last.ok() || (resp->status >= 200 && resp->status < 300)) return retryable;
    std::optional<s3_internal::ServiceError> err = s3_internal::ParseError(resp->body);
    std::string code = err ? err->code : "";
    std::string message = req.what + ": HTTP " + std::to_string(resp->status);
    if (err) {
      message += " " + err->code + ": " + err->message;
    } else if (req.method == "HEAD" && resp->status == 404) {
      message += ": no such object (or no such bucket)";
    } else if (!resp->body.empty()) {
      message += ": " + resp->body.substr(0, 300);
    }
    // BadDigest: the body was damaged on the way (its Content-MD5 did not match); it is sent
    // again, read afresh from the file.
    retryable = resp->status >= 500 || resp->status == 429 || code == "RequestTimeout" ||
                code == "SlowDown" || code == "BadDigest";
    last = StatusForHttp(resp->status, code, std::move(message));
    return retryable;
  });
  retries_ += static_cast<uint64_t>(attempts - 1);
  if (last.ok() || !retryable || options_.max_retries == 0) return last;
  return Status(last.code(),
                last.message() + " (gave up after " + std::to_string(attempts) + " attempts)");
}

Status S3::PerformUpload(http::Request& req, http::Response* resp, bool verify_etag) {
  Result<std::string> md5 = req.body != nullptr
                                ? http::Md5(*req.body)
                                : http::Md5OfFileRange(req.body_fd, req.body_offset, req.body_size);
  if (!md5.ok()) return md5.status().WithContext(req.what);
  req.headers.push_back("Content-MD5: " + http::Base64Encode(*md5));
  SLUICE_RETURN_IF_ERROR(Perform(req, resp));
  // SSE-KMS and SSE-C ETags are not the body's MD5.
  const std::string etag = StripQuotes(resp->Header("etag"));
  if (verify_etag && !resp->Header("x-amz-server-side-encryption").starts_with("aws:kms") &&
      resp->Header("x-amz-server-side-encryption-customer-algorithm").empty() &&
      etag != http::HexEncode(*md5)) {
    return Status::Corruption(req.what + ": the ETag \"" + etag +
                              "\" of the stored object is not the MD5 \"" + http::HexEncode(*md5) +
                              "\" of the bytes sent");
  }
  return Status::OK();
}

Status S3::PutFile(const std::string& key, const std::string& local_path) {
  SLUICE_RETURN_IF_ERROR(ValidateKey(key));
  SLUICE_ASSIGN_OR_RETURN(http::FileToUpload file, http::OpenFileToUpload(local_path));
  const std::string object_key = ObjectKey(key);
  if (file.size > options_.multipart_threshold) {
    return PutFileMultipart(object_key, file.fd.get(), file.size);
  }
  http::Request req = NewRequest("PUT", object_key, "");
  req.headers.push_back("Content-Type: application/octet-stream");
  req.body_fd = file.fd.get();
  req.body_size = file.size;
  http::Response resp;
  return PerformUpload(req, &resp, /*verify_etag=*/true);
}

Status S3::PutBytes(const std::string& key, const std::string& data) {
  SLUICE_RETURN_IF_ERROR(ValidateKey(key));
  http::Request req = NewRequest("PUT", ObjectKey(key), "");
  req.headers.push_back("Content-Type: application/octet-stream");
  req.body = &data;
  http::Response resp;
  return PerformUpload(req, &resp, /*verify_etag=*/true);
}

void S3::AbortUpload(const std::string& object_key, const std::string& upload_id) {
  ++aborted_uploads_;
  http::Response resp;
  Status s =
      Perform(NewRequest("DELETE", object_key, "uploadId=" + UriEncode(upload_id, false)), &resp);
  if (!s.ok()) {
    spdlog::warn(
        "could not abort the failed multipart upload {} of {}: {} (its parts stay "
        "billed until a lifecycle rule removes them)",
        upload_id, DisplayUrl(object_key), s.message());
  }
}

Status S3::PutFileMultipart(const std::string& object_key, int fd, uint64_t size) {
  const std::string what = "S3 multipart upload to " + DisplayUrl(object_key);
  // At most kMaxParts parts: larger files get larger parts.
  uint64_t part_size = std::max(options_.part_size, (size + kMaxParts - 1) / kMaxParts);
  const uint64_t nparts = (size + part_size - 1) / part_size;

  std::string upload_id;
  {
    http::Request req = NewRequest("POST", object_key, "uploads=");
    req.headers.push_back("Content-Type: application/octet-stream");
    http::Response resp;
    SLUICE_RETURN_IF_ERROR(Perform(req, &resp));
    Result<std::string> id = s3_internal::ParseUploadId(resp.body);
    if (!id.ok()) return id.status().WithContext(what);
    upload_id = std::move(id).value();
  }

  std::vector<std::string> etags(nparts);
  Status parts = http::ParallelFor(nparts, options_.parallel_parts, [&](uint64_t i) {
    const std::string part = "part " + std::to_string(i + 1) + " of " + std::to_string(nparts);
    http::Request req = NewRequest(
        "PUT", object_key,
        "partNumber=" + std::to_string(i + 1) + "&uploadId=" + UriEncode(upload_id, false));
    req.body_fd = fd;
    req.body_offset = i * part_size;
    req.body_size = std::min(part_size, size - req.body_offset);
    http::Response resp;
    // Part ETags are MD5s on AWS, but not under SSE-KMS or SSE-C, nor on every other service.
    Status s = PerformUpload(req, &resp, /*verify_etag=*/false);
    etags[i] = StripQuotes(resp.Header("etag"));
    if (s.ok() && etags[i].empty()) {
      s = Status::Corruption(req.what + " part " + std::to_string(i + 1) +
                             ": the answer has no ETag");
    }
    if (!s.ok()) return s.WithContext(part);
    ++parts_uploaded_;
    return Status::OK();
  });
  if (!parts.ok()) {
    AbortUpload(object_key, upload_id);
    return parts.WithContext(what);
  }

  std::string xml = "<CompleteMultipartUpload>";
  for (uint64_t i = 0; i < nparts; ++i) {
    xml += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>\"" + etags[i] +
           "\"</ETag></Part>";
  }
  xml += "</CompleteMultipartUpload>";
  http::Request req = NewRequest("POST", object_key, "uploadId=" + UriEncode(upload_id, false));
  req.headers.push_back("Content-Type: application/xml");
  req.body = &xml;
  http::Response resp;
  Status s = Perform(req, &resp);
  if (s.ok()) {
    // S3 may answer 200 and still fail the completion: the error is in the body.
    if (std::optional<s3_internal::ServiceError> err = s3_internal::ParseError(resp.body)) {
      s = Status::Unavailable("S3 POST " + DisplayUrl(object_key) + ": " + err->code + ": " +
                              err->message);
    }
  }
  if (!s.ok() && s.message().find("NoSuchUpload") != std::string::npos) {
    // A retried Complete whose first try did complete (the answer was lost): the upload is
    // gone and the object is there. Check that it is ours by its size.
    Result<ObjectInfo> head = HeadObject(object_key);
    if (head.ok() && head->size == size) {
      ++multipart_uploads_;
      return Status::OK();
    }
  }
  if (!s.ok()) {
    AbortUpload(object_key, upload_id);
    return s.WithContext(what);
  }
  ++multipart_uploads_;
  return Status::OK();
}

Status S3::GetFile(const std::string& key, const std::string& local_path) {
  SLUICE_RETURN_IF_ERROR(ValidateKey(key));
  http::Request req = NewRequest("GET", ObjectKey(key), "");
  return http::DownloadToFile(local_path, [&](int fd) {
    req.sink_fd = fd;
    http::Response resp;
    return Perform(req, &resp);
  });
}

Result<std::string> S3::GetBytes(const std::string& key) {
  SLUICE_RETURN_IF_ERROR(ValidateKey(key));
  http::Response resp;
  SLUICE_RETURN_IF_ERROR(Perform(NewRequest("GET", ObjectKey(key), ""), &resp));
  return std::move(resp.body);
}

Result<ObjectInfo> S3::Head(const std::string& key) {
  SLUICE_RETURN_IF_ERROR(ValidateKey(key));
  SLUICE_ASSIGN_OR_RETURN(ObjectInfo info, HeadObject(ObjectKey(key)));
  info.key = key;
  return info;
}

Result<ObjectInfo> S3::HeadObject(const std::string& object_key) {
  http::Response resp;
  SLUICE_RETURN_IF_ERROR(Perform(NewRequest("HEAD", object_key, ""), &resp));
  ObjectInfo info;
  info.key = object_key;
  info.size = std::strtoull(resp.Header("content-length").c_str(), nullptr, 10);
  info.etag = StripQuotes(resp.Header("etag"));
  return info;
}

Result<std::vector<ObjectInfo>> S3::List(const std::string& prefix) {
  if (!prefix.empty() && prefix.front() == '/') {
    return Status::InvalidArgument("invalid list prefix \"" + prefix +
                                   "\": prefixes are relative to the store");
  }
  const std::string root = options_.prefix.empty() ? "" : options_.prefix + "/";
  const std::string full = root + prefix;
  std::vector<ObjectInfo> out;
  std::string token;
  for (;;) {
    // Parameters in canonical (sorted) order: curl 7.88 signs the query as it is.
    std::string query;
    if (!token.empty()) query += "continuation-token=" + UriEncode(token, false) + "&";
    query += "list-type=2&max-keys=" + std::to_string(options_.list_page_size) +
             "&prefix=" + UriEncode(full, false);
    http::Response resp;
    Status s = Perform(NewRequest("GET", "", query), &resp);
    if (!s.ok()) return s.WithContext("listing " + DisplayUrl(full));
    Result<s3_internal::ListPage> page = s3_internal::ParseListPage(resp.body);
    if (!page.ok()) return page.status().WithContext("listing " + DisplayUrl(full));
    for (ObjectInfo& info : page->objects) {
      if (!info.key.starts_with(full)) continue;  // defensive: not below our prefix
      info.key = info.key.substr(root.size());
      out.push_back(std::move(info));
    }
    if (!page->truncated) break;
    token = page->next_token;
  }
  std::sort(out.begin(), out.end(),
            [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
  return out;
}

Status S3::Delete(const std::string& key) {
  SLUICE_RETURN_IF_ERROR(ValidateKey(key));
  http::Response resp;
  Status s = Perform(NewRequest("DELETE", ObjectKey(key), ""), &resp);
  if (s.code() == StatusCode::kNotFound) return Status::OK();  // already gone
  return s;
}

Status S3::CheckBucket() {
  http::Response resp;
  return Perform(NewRequest("GET", "", "list-type=2&max-keys=1"), &resp);
}

}  // namespace sluice::objstore
