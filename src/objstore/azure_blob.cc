#include "objstore/azure_blob.h"

#include <curl/curl.h>
#include <expat.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <map>
#include <random>
#include <thread>

#include "common/unique_fd.h"
#include "objstore/local_dir.h"

namespace sluice::objstore {
namespace {

constexpr const char* kApiVersion = "2021-08-06";
constexpr uint64_t kMaxBlocks = 50'000;
constexpr std::string_view kTempPrefix = ".sluice-tmp";

using CurlEasy = std::unique_ptr<CURL, decltype(&curl_easy_cleanup)>;
using CurlSlist = std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)>;

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string Trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

bool Unreserved(unsigned char c) {
  return std::isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~';
}

// Percent-encodes all but unreserved characters (and '/' when `keep_slash`).
std::string PercentEncode(std::string_view s, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (Unreserved(c) || (keep_slash && c == '/')) {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::string Base64Encode(std::string_view in) {
  std::string out(4 * ((in.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

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

void InitCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// A small element tree of an XML response (the service's answers are a few KB to a few MB):
// element names, their direct text, their children. Attributes are not kept.
struct XmlNode {
  std::string name;
  std::string text;
  std::vector<std::unique_ptr<XmlNode>> children;

  // The first child element `n`; an empty node when there is none.
  const XmlNode& Child(std::string_view n) const {
    static const XmlNode kEmpty;
    for (const auto& c : children) {
      if (c->name == n) return *c;
    }
    return kEmpty;
  }
  std::vector<const XmlNode*> Children(std::string_view n) const {
    std::vector<const XmlNode*> out;
    for (const auto& c : children) {
      if (c->name == n) out.push_back(c.get());
    }
    return out;
  }
};

struct XmlBuilder {
  XmlNode root;  // the document: its one child is the root element
  std::vector<XmlNode*> stack{&root};
};

void XMLCALL OnXmlStart(void* user, const XML_Char* name, const XML_Char** /*attrs*/) {
  auto* b = static_cast<XmlBuilder*>(user);
  auto node = std::make_unique<XmlNode>();
  node->name = name;
  XmlNode* raw = node.get();
  b->stack.back()->children.push_back(std::move(node));
  b->stack.push_back(raw);
}

void XMLCALL OnXmlEnd(void* user, const XML_Char* /*name*/) {
  auto* b = static_cast<XmlBuilder*>(user);
  if (b->stack.size() > 1) b->stack.pop_back();
}

void XMLCALL OnXmlText(void* user, const XML_Char* s, int len) {
  auto* b = static_cast<XmlBuilder*>(user);
  b->stack.back()->text.append(s, static_cast<size_t>(len));
}

// The document node of `xml`, or the parser's message.
Result<std::unique_ptr<XmlNode>> ParseXml(std::string_view xml) {
  if (xml.size() > static_cast<size_t>(INT_MAX)) return Status::Corruption("XML too large");
  std::unique_ptr<XML_ParserStruct, decltype(&XML_ParserFree)> parser(XML_ParserCreate(nullptr),
                                                                      &XML_ParserFree);
  if (!parser) return Status::Internal("XML_ParserCreate failed");
  XmlBuilder b;
  XML_SetUserData(parser.get(), &b);
  XML_SetElementHandler(parser.get(), &OnXmlStart, &OnXmlEnd);
  XML_SetCharacterDataHandler(parser.get(), &OnXmlText);
  if (XML_Parse(parser.get(), xml.data(), static_cast<int>(xml.size()), 1) != XML_STATUS_OK) {
    return Status::Corruption(std::string("not XML: ") +
                              XML_ErrorString(XML_GetErrorCode(parser.get())) + " at line " +
                              std::to_string(XML_GetCurrentLineNumber(parser.get())));
  }
  auto doc = std::make_unique<XmlNode>(std::move(b.root));
  return doc;
}

// Text of the first child element `name` of `node` ("" when missing).
std::string ChildText(const XmlNode& node, const char* name) { return node.Child(name).text; }

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

struct AzureBlob::Response {
  long status = 0;
  std::string reason;
  std::string body;
  std::map<std::string, std::string> headers;  // lower-case names
};

class AzureBlob::HandlePool {
 public:
  CurlEasy Take() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!idle_.empty()) {
        CurlEasy h = std::move(idle_.back());
        idle_.pop_back();
        curl_easy_reset(h.get());  // keeps its connections
        return h;
      }
    }
    return CurlEasy(curl_easy_init(), &curl_easy_cleanup);
  }
  void Give(CurlEasy h) {
    if (!h) return;
    std::lock_guard<std::mutex> lock(mu_);
    idle_.push_back(std::move(h));
  }

 private:
  std::mutex mu_;
  // State below is protected by mu_.
  std::vector<CurlEasy> idle_;
};

namespace {

struct Transfer {
  AzureBlob::Request* req = nullptr;
  AzureBlob::Response* resp = nullptr;
  uint64_t read_pos = 0;
  uint64_t sink_pos = 0;
  Status local_error;  // a local file failed: not retried
};

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * n);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.starts_with("HTTP/")) {
    // A new response (after "100 Continue", or a retried connection): start over.
    t->resp->headers.clear();
    size_t sp = line.find(' ');
    if (sp != std::string_view::npos) {
      t->resp->status = std::strtol(std::string(line.substr(sp + 1, 3)).c_str(), nullptr, 10);
      size_t sp2 = line.find(' ', sp + 1);
      t->resp->reason = sp2 == std::string_view::npos ? "" : std::string(line.substr(sp2 + 1));
    }
    return size * n;
  }
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    t->resp->headers[Lower(Trim(line.substr(0, colon)))] = Trim(line.substr(colon + 1));
  }
  return size * n;
}

size_t OnWrite(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  if (t->req->sink_fd >= 0 && t->resp->status >= 200 && t->resp->status < 300) {
    size_t done = 0;
    while (done < len) {
      ssize_t w = ::pwrite(t->req->sink_fd, data + done, len - done,
                           static_cast<off_t>(t->sink_pos + done));
      if (w < 0) {
        if (errno == EINTR) continue;
        t->local_error = Status::FromErrno("write downloaded blob", errno);
        return 0;
      }
      done += static_cast<size_t>(w);
    }
    t->sink_pos += len;
    return len;
  }
  t->resp->body.append(data, len);
  return len;
}

size_t OnRead(char* buf, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const AzureBlob::Request& req = *t->req;
  size_t want = size * n;
  if (req.body != nullptr) {
    size_t left = req.body->size() - static_cast<size_t>(t->read_pos);
    size_t k = std::min(want, left);
    std::memcpy(buf, req.body->data() + t->read_pos, k);
    t->read_pos += k;
    return k;
  }
  if (req.body_fd < 0) return 0;
  uint64_t left = req.body_size - t->read_pos;
  size_t k = static_cast<size_t>(std::min<uint64_t>(want, left));
  if (k == 0) return 0;
  for (;;) {
    ssize_t r = ::pread(req.body_fd, buf, k, static_cast<off_t>(req.body_offset + t->read_pos));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      t->local_error = Status::FromErrno("read file to upload", errno);
      return CURL_READFUNC_ABORT;
    }
    if (r == 0) {
      t->local_error = Status::IOError("file to upload shrank while it was read");
      return CURL_READFUNC_ABORT;
    }
    t->read_pos += static_cast<uint64_t>(r);
    return static_cast<size_t>(r);
  }
}

int OnSeek(void* user, curl_off_t offset, int origin) {
  auto* t = static_cast<Transfer*>(user);
  if (origin != SEEK_SET || offset < 0) return CURL_SEEKFUNC_CANTSEEK;
  t->read_pos = static_cast<uint64_t>(offset);
  return CURL_SEEKFUNC_OK;
}

bool Transient(long status) { return status >= 500 || status == 429; }

// The service's error: "HTTP 404 BlobNotFound: The specified blob does not exist."
std::string ServiceError(const AzureBlob::Response& resp) {
  std::string code, message;
  if (!resp.body.empty()) {
    Result<std::unique_ptr<XmlNode>> doc = ParseXml(resp.body);
    if (doc.ok()) {
      const XmlNode& err = (*doc)->Child("Error");
      code = ChildText(err, "Code");
      message = CollapseLines(ChildText(err, "Message"));
    }
  }
  if (code.empty()) {
    auto it = resp.headers.find("x-ms-error-code");
    if (it != resp.headers.end()) code = it->second;
  }
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

std::string ParentDir(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

Status FsyncPath(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno("open " + path, errno);
  UniqueFd owned(fd);
  if (::fsync(fd) != 0) return Status::FromErrno("fsync " + path, errno);
  return Status::OK();
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
  InitCurlOnce();
  std::unique_ptr<AzureBlob> store(new AzureBlob(std::move(o), std::move(*key)));
  return store;
}

AzureBlob::AzureBlob(AzureBlobOptions options, std::string key_bytes)
    : options_(std::move(options)),
      key_bytes_(std::move(key_bytes)),
      pool_(std::make_unique<HandlePool>()) {
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

Result<AzureBlob::Response> AzureBlob::SendOnce(Request& req) {
  CurlEasy h = pool_->Take();
  if (!h) return Status::Internal("curl_easy_init failed");
  CURL* c = h.get();
  Response resp;
  Transfer t;
  t.req = &req;
  t.resp = &resp;
  if (req.sink_fd >= 0 && ::ftruncate(req.sink_fd, 0) != 0) {
    return Status::FromErrno("truncate download file", errno);
  }

  std::string url = base_url_ + req.path;
  for (size_t i = 0; i < req.query.size(); ++i) {
    url += i == 0 ? '?' : '&';
    url +=
        PercentEncode(req.query[i].first, false) + "=" + PercentEncode(req.query[i].second, false);
  }
  const bool upload = req.method == "PUT";
  const uint64_t body_size = req.body != nullptr ? req.body->size() : req.body_size;
  std::vector<std::pair<std::string, std::string>> headers = req.headers;
  headers.emplace_back("x-ms-date", HttpDate(std::time(nullptr)));
  headers.emplace_back("x-ms-version", kApiVersion);
  if (upload) headers.emplace_back("Content-Length", std::to_string(body_size));
  SharedKeyRequest sk{req.method, options_.account, req.path, req.query, headers};
  std::string signature = HmacSha256Base64(key_bytes_, SharedKeyStringToSign(sk));
  headers.emplace_back("Authorization", "SharedKey " + options_.account + ":" + signature);

  CurlSlist list(nullptr, &curl_slist_free_all);
  for (const auto& [k, v] : headers) {
    if (Lower(k) == "content-length") continue;  // curl sends it from CURLOPT_INFILESIZE
    curl_slist* next = curl_slist_append(list.get(), (k + ": " + v).c_str());
    if (next == nullptr) return Status::Internal("curl_slist_append failed");
    (void)list.release();
    list.reset(next);
  }
  // No "Expect: 100-continue" round trip before each upload.
  if (curl_slist* next = curl_slist_append(list.get(), "Expect:"); next != nullptr) {
    (void)list.release();
    list.reset(next);
  } else {
    return Status::Internal("curl_slist_append failed");
  }

  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, list.get());
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, static_cast<long>(options_.connect_timeout.count()));
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, static_cast<long>(options_.stall_timeout.count()));
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &OnWrite);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  if (upload) {
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(body_size));
    curl_easy_setopt(c, CURLOPT_READFUNCTION, &OnRead);
    curl_easy_setopt(c, CURLOPT_READDATA, &t);
    curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, &OnSeek);
    curl_easy_setopt(c, CURLOPT_SEEKDATA, &t);
  } else if (req.method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (req.method == "GET") {
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  }
  CURLcode rc = curl_easy_perform(c);
  long status = 0;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
  // Unset what points into this frame before the handle goes back to the pool.
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, nullptr);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, nullptr);
  pool_->Give(std::move(h));
  if (!t.local_error.ok()) return t.local_error.WithContext("Azure Blob " + req.what);
  if (rc != CURLE_OK) {
    std::string msg = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
    return Status::Unavailable("Azure Blob " + req.what + ": " + msg);
  }
  if (status != 0) resp.status = status;
  return resp;
}

Result<AzureBlob::Response> AzureBlob::Send(Request& req, std::vector<long> ok_statuses) {
  auto backoff = options_.initial_backoff;
  int attempts = 0;
  for (;;) {
    ++attempts;
    Result<Response> r = SendOnce(req);
    bool transient = r.ok() ? Transient(r->status) : r.status().code() == StatusCode::kUnavailable;
    if (!transient || attempts > options_.max_retries) {
      std::string after = attempts > 1 ? " (after " + std::to_string(attempts) + " attempts)" : "";
      if (!r.ok()) {
        Status s = r.status();
        if (transient) return Status(s.code(), s.message() + after);
        return s;
      }
      long st = r->status;
      bool ok = (st >= 200 && st < 300) ||
                std::find(ok_statuses.begin(), ok_statuses.end(), st) != ok_statuses.end();
      if (ok) return r;
      return StatusForHttp(st, "Azure Blob " + req.what + ": " + ServiceError(*r) + after);
    }
    std::this_thread::sleep_for(backoff);
    backoff *= 2;
  }
}

Status AzureBlob::CreateContainer() {
  Request req;
  req.method = "PUT";
  req.path = ContainerPath();
  req.query = {{"restype", "container"}};
  req.what = "create container " + options_.container;
  std::string empty;
  req.body = &empty;
  SLUICE_ASSIGN_OR_RETURN(Response r, Send(req, {409}));
  if (r.status == 409) {
    auto it = r.headers.find("x-ms-error-code");
    if (it == r.headers.end() || it->second != "ContainerAlreadyExists") {
      return Status::FailedPrecondition("Azure Blob " + req.what + ": " + ServiceError(r));
    }
  }
  return Status::OK();
}

Status AzureBlob::PutBytes(const std::string& key, const std::string& data) {
  SLUICE_RETURN_IF_ERROR(ValidateKey(key));
  Request req;
  req.method = "PUT";
  req.path = BlobPath(key);
  req.headers = {{"x-ms-blob-type", "BlockBlob"}, {"Content-Type", "application/octet-stream"}};
  req.body = &data;
  req.what = "PUT " + Url() + "/" + key;
  return Send(req).status();
}

Status AzureBlob::PutBlockBlob(const std::string& key, int fd, uint64_t size) {
  Request req;
  req.method = "PUT";
  req.path = BlobPath(key);
  req.headers = {{"x-ms-blob-type", "BlockBlob"}, {"Content-Type", "application/octet-stream"}};
  req.body_fd = fd;
  req.body_size = size;
  req.what = "PUT " + Url() + "/" + key;
  return Send(req).status();
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

  std::atomic<uint64_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex err_mu;
  Status first_error;  // protected by err_mu
  auto worker = [&] {
    for (;;) {
      if (failed.load()) return;
      uint64_t i = next.fetch_add(1);
      if (i >= count) return;
      Request req;
      req.method = "PUT";
      req.path = BlobPath(key);
      req.query = {{"comp", "block"}, {"blockid", ids[i]}};
      req.headers = {{"Content-Type", "application/octet-stream"}};
      req.body_fd = fd;
      req.body_offset = i * bs;
      req.body_size = std::min(bs, size - i * bs);
      req.what = "PUT " + Url() + "/" + key + " (block " + std::to_string(i) + " of " +
                 std::to_string(count) + ")";
      Status s = Send(req).status();
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(err_mu);
        if (first_error.ok()) first_error = s;
        failed.store(true);
        return;
      }
      if (options_.after_block_for_test) options_.after_block_for_test(static_cast<int>(i));
    }
  };
  {
    const uint64_t n =
        std::min<uint64_t>(static_cast<uint64_t>(options_.upload_parallelism), count);
    std::vector<std::jthread> threads;
    for (uint64_t i = 1; i < n; ++i) threads.emplace_back(worker);
    worker();
  }
  if (failed.load()) return first_error;

  std::string xml = "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>";
  for (const std::string& id : ids) xml += "<Latest>" + id + "</Latest>";
  xml += "</BlockList>";
  Request req;
  req.method = "PUT";
  req.path = BlobPath(key);
  req.query = {{"comp", "blocklist"}};
  req.headers = {{"Content-Type", "application/xml"},
                 {"x-ms-blob-content-type", "application/octet-stream"}};
  req.body = &xml;
  req.what =
      "PUT " + Url() + "/" + key + " (Put Block List of " + std::to_string(count) + " blocks)";
  return Send(req).status();
}

Status AzureBlob::PutFile(const std::string& key, const std::string& local_path) {
  SLUICE_RETURN_IF_ERROR(ValidateKey(key));
  int raw = ::open(local_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (raw < 0) {
    Status s = Status::FromErrno("open " + local_path, errno);
    return errno == ENOENT ? Status::NotFound(s.message()) : s;
  }
  UniqueFd fd(raw);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno("stat " + local_path, errno);
  const auto size = static_cast<uint64_t>(st.st_size);
  if (size <= options_.single_put_max_bytes) return PutBlockBlob(key, fd.get(), size);
  return PutBlocks(key, fd.get(), size);
}

Status AzureBlob::GetFile(const std::string& key, const std::string& local_path) {
  SLUICE_RETURN_IF_ERROR(ValidateKey(key));
  static std::atomic<uint64_t> counter{0};
  const std::string dir = ParentDir(local_path);
  const std::string temp = dir + "/" + std::string(kTempPrefix) + "-" + std::to_string(::getpid()) +
                           "-" + std::to_string(counter++);
  int raw = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC, 0644);
  if (raw < 0) return Status::FromErrno("open " + temp, errno);
  UniqueFd fd(raw);
  Request req;
  req.method = "GET";
  req.path = BlobPath(key);
  req.sink_fd = fd.get();
  req.what = "GET " + Url() + "/" + key;
  Status s = Send(req).status();
  if (s.ok() && ::fsync(fd.get()) != 0) s = Status::FromErrno("fsync " + temp, errno);
  if (s.ok() && fd.Close() != 0) s = Status::FromErrno("close " + temp, errno);
  if (s.ok() && ::rename(temp.c_str(), local_path.c_str()) != 0) {
    s = Status::FromErrno("rename " + temp + " to " + local_path, errno);
  }
  if (!s.ok()) {
    ::unlink(temp.c_str());
    return s;
  }
  return FsyncPath(dir, O_RDONLY | O_DIRECTORY);
}

Result<std::string> AzureBlob::GetBytes(const std::string& key) {
  SLUICE_RETURN_IF_ERROR(ValidateKey(key));
  Request req;
  req.method = "GET";
  req.path = BlobPath(key);
  req.what = "GET " + Url() + "/" + key;
  SLUICE_ASSIGN_OR_RETURN(Response r, Send(req));
  return std::move(r.body);
}

Result<ObjectInfo> AzureBlob::Head(const std::string& key) {
  SLUICE_RETURN_IF_ERROR(ValidateKey(key));
  Request req;
  req.method = "HEAD";
  req.path = BlobPath(key);
  req.what = "HEAD " + Url() + "/" + key;
  SLUICE_ASSIGN_OR_RETURN(Response r, Send(req));
  ObjectInfo info;
  info.key = key;
  auto len = r.headers.find("content-length");
  if (len == r.headers.end()) {
    return Status::Internal("Azure Blob " + req.what + ": the response has no Content-Length");
  }
  info.size = std::strtoull(len->second.c_str(), nullptr, 10);
  auto etag = r.headers.find("etag");
  if (etag != r.headers.end()) {
    info.etag = etag->second;
    std::erase(info.etag, '"');
  }
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
    SLUICE_ASSIGN_OR_RETURN(Response r, Send(req));
    Result<std::unique_ptr<XmlNode>> doc = ParseXml(r.body);
    if (!doc.ok()) return doc.status().WithContext("Azure Blob " + req.what);
    const XmlNode& root = (*doc)->Child("EnumerationResults");
    for (const XmlNode* b : root.Child("Blobs").Children("Blob")) {
      std::string name = ChildText(*b, "Name");
      if (!name.starts_with(base)) continue;
      ObjectInfo info;
      info.key = name.substr(base.size());
      const XmlNode& props = b->Child("Properties");
      info.size = std::strtoull(ChildText(props, "Content-Length").c_str(), nullptr, 10);
      info.etag = ChildText(props, "Etag");
      std::erase(info.etag, '"');
      out.push_back(std::move(info));
    }
    marker = ChildText(root, "NextMarker");
    if (marker.empty()) break;
  }
  std::sort(out.begin(), out.end(),
            [](const ObjectInfo& a, const ObjectInfo& b) { return a.key < b.key; });
  return out;
}

Status AzureBlob::Delete(const std::string& key) {
  SLUICE_RETURN_IF_ERROR(ValidateKey(key));
  Request req;
  req.method = "DELETE";
  req.path = BlobPath(key);
  req.headers = {{"x-ms-delete-snapshots", "include"}};
  req.what = "DELETE " + Url() + "/" + key;
  SLUICE_ASSIGN_OR_RETURN(Response r, Send(req, {404}));
  if (r.status == 404) {
    auto it = r.headers.find("x-ms-error-code");
    if (it != r.headers.end() && it->second != "BlobNotFound") {
      return Status::NotFound("Azure Blob " + req.what + ": " + ServiceError(r));
    }
  }
  return Status::OK();
}

Result<std::vector<uint64_t>> AzureBlob::CommittedBlockSizes(const std::string& key) {
  SLUICE_RETURN_IF_ERROR(ValidateKey(key));
  Request req;
  req.method = "GET";
  req.path = BlobPath(key);
  req.query = {{"comp", "blocklist"}, {"blocklisttype", "committed"}};
  req.what = "get block list of " + Url() + "/" + key;
  SLUICE_ASSIGN_OR_RETURN(Response r, Send(req));
  Result<std::unique_ptr<XmlNode>> doc = ParseXml(r.body);
  if (!doc.ok()) return doc.status().WithContext("Azure Blob " + req.what);
  std::vector<uint64_t> sizes;
  for (const XmlNode* b : (*doc)->Child("BlockList").Child("CommittedBlocks").Children("Block")) {
    sizes.push_back(std::strtoull(ChildText(*b, "Size").c_str(), nullptr, 10));
  }
  return sizes;
}

}  // namespace sluice::objstore
