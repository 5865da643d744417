#include "objstore/azure_blob.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstdlib>
#include <ctime>
#include <map>
#include <random>

#include "objstore/http_client.h"
#include "objstore/local_dir.h"

namespace sluice::objstore {
namespace {

using http::Base64Encode;
using http::Lower;
using http::PercentEncode;
using http::Trim;
using http::XmlNode;

constexpr const char* kApiVersion = "2021-08-06";
constexpr uint64_t kMaxBlocks = 50'000;

std::optional<std::string> Base64Decode(std::string_view in) {
  std::string s = Trim(in);
  if (s.empty() || s.size() % 4 != 0) return std::nullopt;
  std::string out(3 * s.size() / 4, '\0');
  int n =
      EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                      reinterpret_cast<const unsigned char*>(s.data()), static_cast<int>(s.size()));
  if (n < 0) return std::nullopt;
  size_t len = static_cast<size_t>(n);
  // EVP_DecodeBlock counts padding as zero bytes.
  if (s.ends_with("==")) {
    len -= 2;
  } else if (s.ends_with("=")) {
    len -= 1;
  }
  out.resize(len);
  return out;
}

// RFC 1123 date in GMT, independent of the locale: "Sun, 11 Oct 2009 21:49:13 GMT".
std::string HttpDate(std::time_t t) {
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%s, %02d %s %04d %02d:%02d:%02d GMT", kDays[tm.tm_wday],
                tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return buf;
}

const std::string* FindHeader(const std::vector<std::pair<std::string, std::string>>& headers,
                              std::string_view name) {
  for (const auto& [k, v] : headers) {
    if (Lower(k) == Lower(name)) return &v;
  }
  return nullptr;
}

std::string Getenv(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

std::string CollapseLines(std::string s) {
  std::string out;
  for (char c : s) {
    if (c == '\r') continue;
    if (c == '\n') {
      out += "; ";
    } else {
      out += c;
    }
  }
  return Trim(out);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Connection strings and URLs

Status ApplyConnectionString(const std::string& connection_string, AzureBlobOptions* options) {
  std::map<std::string, std::string> fields;  // lower-case names
  size_t pos = 0;
  while (pos <= connection_string.size()) {
    size_t end = connection_string.find(';', pos);
    if (end == std::string::npos) end = connection_string.size();
    std::string part = Trim(std::string_view(connection_string).substr(pos, end - pos));
    pos = end + 1;
    if (part.empty()) continue;
    size_t eq = part.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Status::InvalidArgument(
          "Azure connection string: expected Name=Value pairs separated by ';', found a part "
          "without '='");
    }
    fields[Lower(Trim(part.substr(0, eq)))] = Trim(part.substr(eq + 1));
  }
  auto field = [&](const char* name) -> std::string {
    auto it = fields.find(name);
    return it == fields.end() ? "" : it->second;
  };
  if (Lower(field("usedevelopmentstorage")) == "true") {
    // Azurite's defaults, as the Azure SDKs define them.
    options->account = "devstoreaccount1";
    options->account_key =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/"
        "KBHBeksoGMGw==";
    std::string proxy = field("developmentstorageproxyuri");
    options->endpoint = (proxy.empty() ? "http://127.0.0.1" : proxy) + ":10000/devstoreaccount1";
    return Status::OK();
  }
  std::string account = field("accountname");
  std::string key = field("accountkey");
  if (account.empty()) {
    return Status::InvalidArgument("Azure connection string has no AccountName");
  }
  if (key.empty()) {
    return Status::InvalidArgument(
        "Azure connection string has no AccountKey (only Shared Key authorization is "
        "supported, not SharedAccessSignature)");
  }
  options->account = account;
  options->account_key = key;
  std::string endpoint = field("blobendpoint");
  if (endpoint.empty()) {
    std::string protocol = field("defaultendpointsprotocol");
    if (protocol.empty()) protocol = "https";
    std::string suffix = field("endpointsuffix");
    if (suffix.empty()) suffix = "core.windows.net";
    endpoint = protocol + "://" + account + ".blob." + suffix;
  }
  while (endpoint.ends_with('/')) endpoint.pop_back();
  options->endpoint = endpoint;
  return Status::OK();
}

Result<AzureBlobOptions> AzureBlobOptionsFromUrl(const std::string& url) {
  if (!url.starts_with("az://")) {
    return Status::InvalidArgument("Azure Blob URL must start with az:// (az://CONTAINER/PREFIX)");
  }
  std::string rest = url.substr(5);
  AzureBlobOptions options;
  size_t slash = rest.find('/');
  options.container = rest.substr(0, slash);
  if (slash != std::string::npos) options.prefix = rest.substr(slash + 1);
  while (options.prefix.ends_with('/')) options.prefix.pop_back();
  while (options.prefix.starts_with('/')) options.prefix.erase(0, 1);
  if (options.container.empty()) {
    return Status::InvalidArgument("Azure Blob URL " + url +
                                   " names no container: expected "
                                   "az://CONTAINER[/PREFIX]");
  }
  if (!options.prefix.empty()) {
    Status s = ValidateKey(options.prefix);
    if (!s.ok()) return Status::InvalidArgument("Azure Blob URL prefix: " + s.message());
  }
  std::string cs = Getenv("AZURE_STORAGE_CONNECTION_STRING");
  if (!cs.empty()) {
    SLUICE_RETURN_IF_ERROR(
        ApplyConnectionString(cs, &options).WithContext("AZURE_STORAGE_CONNECTION_STRING"));
  } else {
    options.account = Getenv("AZURE_STORAGE_ACCOUNT");
    options.account_key = Getenv("AZURE_STORAGE_KEY");
    if (options.account.empty() || options.account_key.empty()) {
      return Status::InvalidArgument(
          "Azure Blob credentials missing: set AZURE_STORAGE_CONNECTION_STRING, or "
          "AZURE_STORAGE_ACCOUNT and AZURE_STORAGE_KEY");
    }
  }
  return options;
}

// ---------------------------------------------------------------------------------------------
// Shared Key

std::string SharedKeyStringToSign(const SharedKeyRequest& request) {
  auto header = [&](std::string_view name) -> std::string {
    const std::string* v = FindHeader(request.headers, name);
    return v != nullptr ? Trim(*v) : "";
  };
  std::string content_length = header("Content-Length");
  if (content_length == "0") content_length.clear();
  std::string s = request.method + "\n";
  s += header("Content-Encoding") + "\n";
  s += header("Content-Language") + "\n";
  s += content_length + "\n";
  s += header("Content-MD5") + "\n";
  s += header("Content-Type") + "\n";
  s += header("Date") + "\n";
  s += header("If-Modified-Since") + "\n";
  s += header("If-Match") + "\n";
  s += header("If-None-Match") + "\n";
  s += header("If-Unmodified-Since") + "\n";
  s += header("Range") + "\n";
  // Canonicalized headers: x-ms-*, lower-case, sorted by name.
  std::vector<std::pair<std::string, std::string>> ms;
  for (const auto& [k, v] : request.headers) {
    std::string name = Lower(Trim(k));
    if (name.starts_with("x-ms-")) ms.emplace_back(name, Trim(v));
  }
  std::sort(ms.begin(), ms.end());
  for (const auto& [k, v] : ms) s += k + ":" + v + "\n";
  // Canonicalized resource: /account/path, then each parameter (lower-case, sorted) with its
  // values sorted and joined by ','.
  s += "/" + request.account + (request.path.empty() ? "/" : request.path);
  std::map<std::string, std::vector<std::string>> params;
  for (const auto& [k, v] : request.query) params[Lower(k)].push_back(v);
  for (auto& [k, values] : params) {
    std::sort(values.begin(), values.end());
    s += "\n" + k + ":";
    for (size_t i = 0; i < values.size(); ++i) {
      if (i > 0) s += ',';
      s += values[i];
    }
  }
  return s;
}

namespace {
std::string HmacSha256Base64(const std::string& key_bytes, const std::string& data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key_bytes.data(), static_cast<int>(key_bytes.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  return Base64Encode(std::string_view(reinterpret_cast<const char*>(mac), len));
}
}  // namespace

Result<std::string> SharedKeySignature(const std::string& account_key,
                                       const std::string& string_to_sign) {
  std::optional<std::string> key = Base64Decode(account_key);
  if (!key) return Status::InvalidArgument("Azure account key is not valid base64");
  return HmacSha256Base64(*key, string_to_sign);
}

// ---------------------------------------------------------------------------------------------
// HTTP

struct AzureBlob::Request {
  std::string method;
  std::string path;  // percent-encoded
  std::vector<std::pair<std::string, std::string>> query;
  std::vector<std::pair<std::string, std::string>> headers;
  // Request body: `body`, or `body_size` bytes of `body_fd` from `body_offset`. Only PUT sends
  // a body (possibly empty).
  const std::string* body = nullptr;
  int body_fd = -1;
  uint64_t body_offset = 0;
  uint64_t body_size = 0;
  // When >= 0, a 2xx response body is written to this file (truncated on each attempt).
  int sink_fd = -1;
  std::string what;  // for errors: "PUT az://c/p/key"
};

namespace {

bool Transient(long status) { return status >= 500 || status == 429; }

// The service refused the body's Content-MD5: the body was damaged on the way, and is resent
// from a fresh read. Azure says 400 Md5Mismatch; azurite 400 InvalidOperation "Provided
// contentMD5 doesn't match.".
bool Md5Refused(const http::Response& resp) {
  if (resp.status != 400) return false;
  return resp.Header("x-ms-error-code") == "Md5Mismatch" ||
         resp.body.find("Md5Mismatch") != std::string::npos ||
         resp.body.find("contentMD5 doesn't match") != std::string::npos;
}

// The service's error: "HTTP 404 BlobNotFound: The specified blob does not exist."
std::string ServiceError(const http::Response& resp) {
  std::string code, message;
  if (!resp.body.empty()) {
    Result<std::unique_ptr<XmlNode>> doc = http::ParseXml(resp.body);
    if (doc.ok()) {
      const XmlNode& err = (*doc)->Child("Error");
      code = err.ChildText("Code");
      message = CollapseLines(err.ChildText("Message"));
    }
  }
  if (code.empty()) code = resp.Header("x-ms-error-code");
  if (message.empty()) message = resp.reason;
  std::string out = "HTTP " + std::to_string(resp.status);
  if (!code.empty()) out += " " + code;
  if (!message.empty()) out += ": " + message;
  return out;
}

Status StatusForHttp(long status, std::string message) {
  if (status == 404) return Status::NotFound(std::move(message));
  if (status == 401 || status == 403) return Status::PermissionDenied(std::move(message));
  if (status == 400) return Status::InvalidArgument(std::move(message));
  if (Transient(status)) return Status::Unavailable(std::move(message));
  return Status::FailedPrecondition(std::move(message));
}

std::string RandomHex(size_t n) {
  static thread_local std::mt19937_64 rng{std::random_device{}()};
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (size_t i = 0; i < n; ++i) s += kHex[rng() & 15];
  return s;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// AzureBlob

Result<std::unique_ptr<AzureBlob>> AzureBlob::Open(const AzureBlobOptions& options) {
  if (options.account.empty()) return Status::InvalidArgument("Azure Blob: no account name");
  if (options.container.empty()) return Status::InvalidArgument("Azure Blob: no container");
  std::optional<std::string> key = Base64Decode(options.account_key);
  if (!key) return Status::InvalidArgument("Azure Blob: the account key is not valid base64");
  if (options.block_size == 0 || options.upload_parallelism < 1 || options.list_page_size < 1 ||
      options.max_retries < 0) {
    return Status::InvalidArgument(
        "Azure Blob: block_size, upload_parallelism and list_page_size must be positive");
  }
  AzureBlobOptions o = options;
  if (o.endpoint.empty()) o.endpoint = "https://" + o.account + ".blob.core.windows.net";
  while (o.endpoint.ends_with('/')) o.endpoint.pop_back();
  size_t scheme = o.endpoint.find("://");
  if (scheme == std::string::npos) {
    return Status::InvalidArgument("Azure Blob endpoint " + o.endpoint +
                                   " is not a URL (expected https://HOST[/PATH])");
  }
  while (o.prefix.ends_with('/')) o.prefix.pop_back();
  while (o.prefix.starts_with('/')) o.prefix.erase(0, 1);
  std::unique_ptr<AzureBlob> store(new AzureBlob(std::move(o), std::move(*key)));
  return store;
}

AzureBlob::AzureBlob(AzureBlobOptions options, std::string key_bytes)
    : options_(std::move(options)),
      key_bytes_(std::move(key_bytes)),
      client_(std::make_unique<http::Client>("azure", options_.connect_timeout,
                                             options_.stall_timeout)) {
  size_t path_start = options_.endpoint.find('/', options_.endpoint.find("://") + 3);
  base_url_ = options_.endpoint.substr(0, path_start);
  if (path_start != std::string::npos) base_path_ = options_.endpoint.substr(path_start);
}

AzureBlob::~AzureBlob() = default;

std::string AzureBlob::Url() const {
  return "az://" + options_.container + (options_.prefix.empty() ? "" : "/" + options_.prefix);
}

std::string AzureBlob::ContainerPath() const {
  return base_path_ + "/" + PercentEncode(options_.container, false);
}

std::string AzureBlob::BlobPath(const std::string& key) const {
  std::string name = options_.prefix.empty() ? key : options_.prefix + "/" + key;
  return ContainerPath() + "/" + PercentEncode(name, true);
}

Status AzureBlob::SendOnce(const Request& req, http::Response* resp) {
  http::Request h;
  h.method = req.method;
  h.url = base_url_ + req.path;
  for (size_t i = 0; i < req.query.size(); ++i) {
    h.url += i == 0 ? '?' : '&';
    h.url +=
        PercentEncode(req.query[i].first, false) + "=" + PercentEncode(req.query[i].second, false);
  }
  h.body = req.body;
  h.body_fd = req.body_fd;
  h.body_offset = req.body_offset;
  h.body_size = req.body_size;
  h.sink_fd = req.sink_fd;
  h.what = "Azure Blob " + req.what;
  std::vector<std::pair<std::string, std::string>> headers = req.headers;
  headers.emplace_back("x-ms-date", HttpDate(std::time(nullptr)));
  headers.emplace_back("x-ms-version", kApiVersion);
  if (req.method == "PUT") {
    // Signed, and sent by curl from the body's size.
    headers.emplace_back("Content-Length",
                         std::to_string(req.body != nullptr ? req.body->size() : req.body_size));
  }
  SharedKeyRequest sk{req.method, options_.account, req.path, req.query, headers};
  std::string signature = HmacSha256Base64(key_bytes_, SharedKeyStringToSign(sk));
  headers.emplace_back("Authorization", "SharedKey " + options_.account + ":" + signature);
  for (const auto& [k, v] : headers) {
    if (Lower(k) != "content-length") h.headers.push_back(k + ": " + v);
  }
  h.headers.emplace_back("Expect:");  // no "100-continue" round trip before each upload
  return client_->Send(h, resp);
}

Result<http::Response> AzureBlob::Send(const Request& req, std::vector<long> ok_statuses) {
  http::Response resp;
  Status sent;
  bool transient = false;
  const int attempts = http::Retry({options_.max_retries, options_.initial_backoff}, [&] {
    sent = SendOnce(req, &resp);
    transient = sent.ok() ? Transient(resp.status) || Md5Refused(resp)
                          : sent.code() == StatusCode::kUnavailable;
    return transient;
  });
  std::string after = attempts > 1 ? " (after " + std::to_string(attempts) + " attempts)" : "";
  if (!sent.ok()) return transient ? Status(sent.code(), sent.message() + after) : sent;
  const long st = resp.status;
  if ((st >= 200 && st < 300) ||
      std::find(ok_statuses.begin(), ok_statuses.end(), st) != ok_statuses.end()) {
    return resp;
  }
  std::string message = "Azure Blob " + req.what + ": " + ServiceError(resp) + after;
  if (Md5Refused(resp)) return Status::Corruption(std::move(message));
  return StatusForHttp(st, std::move(message));
}

AzureBlob::Request AzureBlob::BlobRequest(std::string method, const std::string& key) const {
  Request req;
  req.what = method + " " + Url() + "/" + key;
  req.method = std::move(method);
  req.path = BlobPath(key);
  return req;
}

Status AzureBlob::CreateContainer() {
  Request req;
  req.method = "PUT";
  req.path = ContainerPath();
  req.query = {{"restype", "container"}};
  req.what = "create container " + options_.container;
  std::string empty;
  req.body = &empty;
  SLUICE_ASSIGN_OR_RETURN(http::Response r, Send(req, {409}));
  if (r.status == 409 && r.Header("x-ms-error-code") != "ContainerAlreadyExists") {
    return Status::FailedPrecondition("Azure Blob " + req.what + ": " + ServiceError(r));
  }
  return Status::OK();
}

Status AzureBlob::SendUpload(Request& req) {
  Result<std::string> md5 = req.body != nullptr
                                ? http::Md5(*req.body)
                                : http::Md5OfFileRange(req.body_fd, req.body_offset, req.body_size);
  if (!md5.ok()) return md5.status().WithContext("Azure Blob " + req.what);
  std::string header = Base64Encode(*md5);
  if (options_.content_md5_for_test) options_.content_md5_for_test(&header);
  req.headers.emplace_back("Content-MD5", std::move(header));
  return Send(req).status();
}

Status AzureBlob::PutBytes(const std::string& key, const std::string& data) {
  SLUICE_RETURN_IF_ERROR(ValidateKey(key));
  Request req = BlobRequest("PUT", key);
  req.headers = {{"x-ms-blob-type", "BlockBlob"}, {"Content-Type", "application/octet-stream"}};
  req.body = &data;
  return SendUpload(req);
}

Status AzureBlob::PutFile(const std::string& key, const std::string& local_path) {
  SLUICE_RETURN_IF_ERROR(ValidateKey(key));
  SLUICE_ASSIGN_OR_RETURN(http::FileToUpload file, http::OpenFileToUpload(local_path));
  if (file.size > options_.single_put_max_bytes) return PutBlocks(key, file.fd.get(), file.size);
  Request req = BlobRequest("PUT", key);
  req.headers = {{"x-ms-blob-type", "BlockBlob"}, {"Content-Type", "application/octet-stream"}};
  req.body_fd = file.fd.get();
  req.body_size = file.size;
  return SendUpload(req);
}

Status AzureBlob::PutBlocks(const std::string& key, int fd, uint64_t size) {
  const uint64_t bs = options_.block_size;
  const uint64_t count = (size + bs - 1) / bs;
  if (count > kMaxBlocks) {
    return Status::InvalidArgument("Azure Blob PUT " + Url() + "/" + key + ": " +
                                   std::to_string(size) + " bytes need " + std::to_string(count) +
                                   " blocks, over Azure's 50,000; raise block_size");
  }
  // Block ids are unique per upload, so concurrent uploads of one key do not mix blocks; all
  // ids of a blob must have the same length.
  const std::string upload_id = RandomHex(16);
  std::vector<std::string> ids(count);
  for (uint64_t i = 0; i < count; ++i) {
    char idx[32];
    std::snprintf(idx, sizeof(idx), "%06llu", static_cast<unsigned long long>(i));
    ids[i] = Base64Encode(upload_id + "-" + idx);
  }
  Status blocks = http::ParallelFor(count, options_.upload_parallelism, [&](uint64_t i) {
    Request req = BlobRequest("PUT", key);
    req.what += " (block " + std::to_string(i) + " of " + std::to_string(count) + ")";
    req.query = {{"comp", "block"}, {"blockid", ids[i]}};
    req.headers = {{"Content-Type", "application/octet-stream"}};
    req.body_fd = fd;
    req.body_offset = i * bs;
    req.body_size = std::min(bs, size - i * bs);
    SLUICE_RETURN_IF_ERROR(SendUpload(req));
    if (options_.after_block_for_test) options_.after_block_for_test(static_cast<int>(i));
    return Status::OK();
  });
  if (!blocks.ok()) return blocks;

  std::string xml = "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>";
  for (const std::string& id : ids) xml += "<Latest>" + id + "</Latest>";
  xml += "</BlockList>";
  Request req = BlobRequest("PUT", key);
  req.what += " (Put Block List of " + std::to_string(count) + " blocks)";
  req.query = {{"comp", "blocklist"}};
  req.headers = {{"Content-Type", "application/xml"},
                 {"x-ms-blob-content-type", "application/octet-stream"}};
  req.body = &xml;
  return Send(req).status();
}

Status AzureBlob::GetFile(const std::string& key, const std::string& local_path) {
  SLUICE_RETURN_IF_ERROR(ValidateKey(key));
  Request req = BlobRequest("GET", key);
  return http::DownloadToFile(local_path, [&](int fd) {
    req.sink_fd = fd;
    return Send(req).status();
  });
}

Result<std::string> AzureBlob::GetBytes(const std::string& key) {
  SLUICE_RETURN_IF_ERROR(ValidateKey(key));
  SLUICE_ASSIGN_OR_RETURN(http::Response r, Send(BlobRequest("GET", key)));
  return std::move(r.body);
}

Result<ObjectInfo> AzureBlob::Head(const std::string& key) {
  SLUICE_RETURN_IF_ERROR(ValidateKey(key));
  Request req = BlobRequest("HEAD", key);
  SLUICE_ASSIGN_OR_RETURN(http::Response r, Send(req));
  if (r.headers.count("content-length") == 0) {
    return Status::Internal("Azure Blob " + req.what + ": the response has no Content-Length");
  }
  ObjectInfo info;
  info.key = key;
  info.size = std::strtoull(r.Header("content-length").c_str(), nullptr, 10);
  info.etag = r.Header("etag");
  std::erase(info.etag, '"');
  return info;
}

Result<std::vector<ObjectInfo>> AzureBlob::List(const std::string& prefix) {
  if (prefix.starts_with('/') || prefix.find('\0') != std::string::npos) {
    return Status::InvalidArgument("invalid list prefix \"" + prefix +
                                   "\": prefixes are relative to the store");
  }
  const std::string base = options_.prefix.empty() ? "" : options_.prefix + "/";
  const std::string full_prefix = base + prefix;
  std::vector<ObjectInfo> out;
  std::string marker;
  for (;;) {
    Request req;
    req.method = "GET";
    req.path = ContainerPath();
    req.query = {{"restype", "container"},
                 {"comp", "list"},
                 {"maxresults", std::to_string(options_.list_page_size)}};
    if (!full_prefix.empty()) req.query.emplace_back("prefix", full_prefix);
    if (!marker.empty()) req.query.emplace_back("marker", marker);
    req.what = "list " + Url() + " prefix \"" + prefix + "\"";
    SLUICE_ASSIGN_OR_RETURN(http::Response r, Send(req));
    Result<std::unique_ptr<XmlNode>> doc = http::ParseXml(r.body);
    if (!doc.ok()) return doc.status().WithContext("Azure Blob " + req.what);
    const XmlNode& root = (*doc)->Child("EnumerationResults");
    for (const XmlNode* b : root.Child("Blobs").Children("Blob")) {
      std::string name = b->ChildText("Name");
      if (!name.starts_with(base)) continue;
      ObjectInfo info;
      info.key = name.substr(base.size());
      const XmlNode& props = b->Child("Properties");
      info.size = std::strtoull(props.ChildText("Content-Length").c_str(), nullptr, 10);
      info.etag = props.ChildText("Etag");
      std::erase(info.etag, '"');
      out.push_back(std::move(info));
    }
    marker = root.ChildText("NextMarker");
    if (marker.empty()) break;
  }
  std::sort(out.begin(), out.end(),
            [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
  return out;
}

Status AzureBlob::Delete(const std::string& key) {
  SLUICE_RETURN_IF_ERROR(ValidateKey(key));
  Request req = BlobRequest("DELETE", key);
  req.headers = {{"x-ms-delete-snapshots", "include"}};
  SLUICE_ASSIGN_OR_RETURN(http::Response r, Send(req, {404}));
  if (r.status == 404 && r.headers.count("x-ms-error-code") != 0 &&
      r.Header("x-ms-error-code") != "BlobNotFound") {
    return Status::NotFound("Azure Blob " + req.what + ": " + ServiceError(r));
  }
  return Status::OK();
}

Result<std::vector<uint64_t>> AzureBlob::CommittedBlockSizes(const std::string& key) {
  SLUICE_RETURN_IF_ERROR(ValidateKey(key));
  Request req = BlobRequest("GET", key);
  req.query = {{"comp", "blocklist"}, {"blocklisttype", "committed"}};
  req.what = "get block list of " + Url() + "/" + key;
  SLUICE_ASSIGN_OR_RETURN(http::Response r, Send(req));
  Result<std::unique_ptr<XmlNode>> doc = http::ParseXml(r.body);
  if (!doc.ok()) return doc.status().WithContext("Azure Blob " + req.what);
  std::vector<uint64_t> sizes;
  for (const XmlNode* b : (*doc)->Child("BlockList").Child("CommittedBlocks").Children("Block")) {
    sizes.push_back(std::strtoull(b->ChildText("Size").c_str(), nullptr, 10));
  }
  return sizes;
}

}  // namespace sluice::objstore
