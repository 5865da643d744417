#include "objstore/s3.h"

#include <curl/curl.h>
#include <expat.h>
#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <random>
#include <thread>
#include <utility>

#include "common/unique_fd.h"
#include "objstore/local_dir.h"

namespace sluice::objstore {
namespace {

constexpr uint64_t kMinPartSize = 5ull << 20;  // S3's minimum for every part but the last
constexpr uint64_t kMaxPartSize = 5ull << 30;  // S3's maximum part (and single PUT) size
constexpr uint64_t kMaxParts = 10000;          // S3's maximum part count
constexpr size_t kMaxErrorBody = 64 * 1024;    // error documents kept for the message
// curl 7.88 signs whatever x-amz-content-sha256 says (and does not send one itself, which S3
// requires). Bodies are streamed, so they are not hashed in advance: S3 accepts this value for
// every request (TLS protects the body in transit).
constexpr const char* kUnsignedPayload = "x-amz-content-sha256: UNSIGNED-PAYLOAD";

// ---- a small XML tree over expat ------------------------------------------------------------

struct XmlNode {
  std::string name;
  std::string text;
  std::vector<std::unique_ptr<XmlNode>> children;
  XmlNode* parent = nullptr;

  const XmlNode* Child(std::string_view n) const {
    for (const auto& c : children) {
      if (c->name == n) return c.get();
    }
    return nullptr;
  }
  std::string ChildText(std::string_view n) const {
    const XmlNode* c = Child(n);
    return c != nullptr ? c->text : std::string();
  }
};

struct XmlBuilder {
  std::unique_ptr<XmlNode> root;
  XmlNode* current = nullptr;
};

// Element names without a namespace prefix ("s3:Key" -> "Key").
std::string LocalName(const char* name) {
  const char* colon = std::strrchr(name, ':');
  return colon != nullptr ? std::string(colon + 1) : std::string(name);
}

Result<std::unique_ptr<XmlNode>> ParseXml(std::string_view xml) {
  using ParserPtr = std::unique_ptr<XML_ParserStruct, decltype(&XML_ParserFree)>;
  ParserPtr parser(XML_ParserCreate("UTF-8"), &XML_ParserFree);
  if (!parser) return Status::Internal("XML_ParserCreate failed");
  XmlBuilder b;
  XML_SetUserData(parser.get(), &b);
  XML_SetElementHandler(
      parser.get(),
      [](void* data, const XML_Char* name, const XML_Char**) {
        auto* bld = static_cast<XmlBuilder*>(data);
        auto node = std::make_unique<XmlNode>();
        node->name = LocalName(name);
        node->parent = bld->current;
        XmlNode* raw = node.get();
        if (bld->current == nullptr) {
          bld->root = std::move(node);
        } else {
          bld->current->children.push_back(std::move(node));
        }
        bld->current = raw;
      },
      [](void* data, const XML_Char*) {
        auto* bld = static_cast<XmlBuilder*>(data);
        if (bld->current != nullptr) bld->current = bld->current->parent;
      });
  XML_SetCharacterDataHandler(parser.get(), [](void* data, const XML_Char* s, int len) {
    auto* bld = static_cast<XmlBuilder*>(data);
    if (bld->current != nullptr) bld->current->text.append(s, static_cast<size_t>(len));
  });
  // Fed in pieces: XML_Parse takes an int length.
  constexpr size_t kChunk = 1 << 30;
  size_t pos = 0;
  do {
    size_t n = std::min(kChunk, xml.size() - pos);
    bool last = pos + n == xml.size();
    if (XML_Parse(parser.get(), xml.data() + pos, static_cast<int>(n), last ? 1 : 0) !=
        XML_STATUS_OK) {
      return Status::Corruption(std::string("malformed XML from the service: ") +
                                XML_ErrorString(XML_GetErrorCode(parser.get())) + " at line " +
                                std::to_string(XML_GetCurrentLineNumber(parser.get())));
    }
    pos += n;
  } while (pos < xml.size());
  if (!b.root) return Status::Corruption("empty XML document from the service");
  return std::move(b.root);
}

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

// ---- curl handles ---------------------------------------------------------------------------

using CurlPtr = std::unique_ptr<CURL, decltype(&curl_easy_cleanup)>;
using SlistPtr = std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)>;

void GlobalInitOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

bool RetryableCurlCode(CURLcode c) {
  switch (c) {
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
    case CURLE_NOT_BUILT_IN:
    case CURLE_READ_ERROR:   // our file could not be read
    case CURLE_WRITE_ERROR:  // our file could not be written
    case CURLE_ABORTED_BY_CALLBACK:
    case CURLE_OUT_OF_MEMORY:
    case CURLE_BAD_FUNCTION_ARGUMENT:
    case CURLE_UNKNOWN_OPTION:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_LOGIN_DENIED:
      return false;
    default:
      return true;
  }
}

// Everything one transfer's callbacks need.
struct Transfer {
  CURL* curl = nullptr;
  // Body source: `body` (a string) or `fd` from `offset` for `size` bytes.
  const std::string* body = nullptr;
  int fd = -1;
  uint64_t offset = 0;
  uint64_t size = 0;
  uint64_t read_pos = 0;  // bytes of the body handed to curl
  int read_errno = 0;
  // Response sink: a 2xx body goes to `sink_fd` when set, else to `out`; any other status's
  // body goes to `out` (capped), for the error message.
  int sink_fd = -1;
  uint64_t sink_pos = 0;
  int write_errno = 0;
  std::string* out = nullptr;
};

size_t ReadBody(char* buf, size_t size, size_t nitems, void* userdata) {
  auto* t = static_cast<Transfer*>(userdata);
  size_t want = size * nitems;
  uint64_t left = t->size - t->read_pos;
  size_t n = static_cast<size_t>(std::min<uint64_t>(want, left));
  if (n == 0) return 0;
  if (t->body != nullptr) {
    std::memcpy(buf, t->body->data() + t->read_pos, n);
    t->read_pos += n;
    return n;
  }
  for (;;) {
    ssize_t r = ::pread(t->fd, buf, n, static_cast<off_t>(t->offset + t->read_pos));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      t->read_errno = errno;
      return CURL_READFUNC_ABORT;
    }
    if (r == 0) {  // the file shrank under us
      t->read_errno = EIO;
      return CURL_READFUNC_ABORT;
    }
    t->read_pos += static_cast<uint64_t>(r);
    return static_cast<size_t>(r);
  }
}

int SeekBody(void* userdata, curl_off_t offset, int origin) {
  auto* t = static_cast<Transfer*>(userdata);
  if (origin != SEEK_SET || offset < 0 || static_cast<uint64_t>(offset) > t->size) {
    return CURL_SEEKFUNC_CANTSEEK;
  }
  t->read_pos = static_cast<uint64_t>(offset);
  return CURL_SEEKFUNC_OK;
}

size_t WriteBody(char* ptr, size_t size, size_t nmemb, void* userdata) {
  auto* t = static_cast<Transfer*>(userdata);
  size_t n = size * nmemb;
  long status = 0;
  curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &status);
  bool success = status >= 200 && status < 300;
  if (success && t->sink_fd >= 0) {
    size_t done = 0;
    while (done < n) {
      ssize_t w = ::pwrite(t->sink_fd, ptr + done, n - done, static_cast<off_t>(t->sink_pos));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        t->write_errno = errno;
        return CURL_WRITEFUNC_ERROR;
      }
      done += static_cast<size_t>(w);
      t->sink_pos += static_cast<uint64_t>(w);
    }
    return n;
  }
  if (t->out != nullptr) {
    if (success) {
      t->out->append(ptr, n);
    } else if (t->out->size() < kMaxErrorBody) {
      t->out->append(ptr, std::min(n, kMaxErrorBody - t->out->size()));
    }
  }
  return n;
}

std::string HeaderValue(CURL* curl, const char* name) {
  curl_header* h = nullptr;
  if (curl_easy_header(curl, name, 0, CURLH_HEADER, -1, &h) == CURLHE_OK && h != nullptr) {
    return h->value;
  }
  return "";
}

Status StatusForHttp(long status, const std::string& code, std::string message) {
  if (code == "NoSuchBucket") return Status::FailedPrecondition(std::move(message));
  if (status == 404) return Status::NotFound(std::move(message));
  if (status == 401) return Status::Unauthenticated(std::move(message));
  if (status == 403) return Status::PermissionDenied(std::move(message));
  if (status >= 500 || status == 429) return Status::Unavailable(std::move(message));
  if (status >= 400) return Status::InvalidArgument(std::move(message));
  return Status::IOError(std::move(message));
}

}  // namespace

// ---- helpers exposed for tests --------------------------------------------------------------

namespace s3_internal {

std::string UriEncode(std::string_view s, bool keep_slash) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3);
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
        c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 15];
    }
  }
  return out;
}

std::optional<ServiceError> ParseError(std::string_view xml) {
  if (xml.find("<Error") == std::string_view::npos) return std::nullopt;
  Result<std::unique_ptr<XmlNode>> doc = ParseXml(xml);
  if (!doc.ok() || (*doc)->name != "Error") return std::nullopt;
  ServiceError e;
  e.code = (*doc)->ChildText("Code");
  e.message = (*doc)->ChildText("Message");
  return e;
}

Result<ListPage> ParseListPage(std::string_view xml) {
  SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<XmlNode> doc, ParseXml(xml));
  if (doc->name != "ListBucketResult") {
    return Status::Corruption("expected a ListBucketResult from the service, got <" + doc->name +
                              ">");
  }
  ListPage page;
  for (const auto& c : doc->children) {
    if (c->name != "Contents") continue;
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
  SLUICE_ASSIGN_OR_RETURN(std::unique_ptr<XmlNode> doc, ParseXml(xml));
  std::string id = doc->ChildText("UploadId");
  if (doc->name != "InitiateMultipartUploadResult" || id.empty()) {
    return Status::Corruption("expected an InitiateMultipartUploadResult with an UploadId");
  }
  return id;
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

// ---- the handle pool ------------------------------------------------------------------------

// Idle curl handles, reused so that their connections (and TLS sessions) are too.
class S3::HandlePool {
 public:
  CurlPtr Acquire() {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!idle_.empty()) {
        CurlPtr h = std::move(idle_.back());
        idle_.pop_back();
        return h;  // reset by Release
      }
    }
    return CurlPtr(curl_easy_init(), &curl_easy_cleanup);
  }
  void Release(CurlPtr h) {
    if (!h) return;
    // Forget the finished request's options now: they point into its stack frame (error
    // buffer, header list, callback data). The connection cache survives a reset.
    curl_easy_reset(h.get());
    std::lock_guard<std::mutex> lock(mu_);
    if (idle_.size() < kMaxIdle) idle_.push_back(std::move(h));
  }

 private:
  static constexpr size_t kMaxIdle = 16;
  std::mutex mu_;
  // State below is protected by mu_.
  std::vector<CurlPtr> idle_;
};

struct S3::Request {
  std::string method;      // GET PUT POST HEAD DELETE
  std::string object_key;  // for messages
  std::string url;
  std::vector<std::string> headers;
  const std::string* body = nullptr;  // PUT/POST body in memory, or:
  int body_fd = -1;                   // PUT body from a file
  uint64_t body_offset = 0;
  uint64_t body_size = 0;
  int sink_fd = -1;  // GET: a 2xx body goes to this file (truncated per attempt)
};

struct S3::Response {
  long status = 0;
  std::string body;
  std::string etag;
  uint64_t content_length = 0;
};

// ---- S3 -------------------------------------------------------------------------------------

S3::S3(S3Options options) : options_(std::move(options)), pool_(std::make_unique<HandlePool>()) {}
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
  GlobalInitOnce();
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

Status S3::PerformOnce(Request& req, Response* resp, bool* retryable) {
  *retryable = false;
  resp->status = 0;
  resp->body.clear();
  resp->etag.clear();
  resp->content_length = 0;
  const std::string what = "S3 " + req.method + " " + DisplayUrl(req.object_key);

  if (req.sink_fd >= 0) {
    if (::ftruncate(req.sink_fd, 0) != 0) return Status::FromErrno(what + ": truncate", errno);
  }
  CurlPtr curl = pool_->Acquire();
  if (!curl) return Status::Internal(what + ": curl_easy_init failed");
  CURL* h = curl.get();

  Transfer t;
  t.curl = h;
  t.out = &resp->body;
  t.sink_fd = req.sink_fd;

  std::string sigv4 = "aws:amz:" + options_.region + ":s3";
  SlistPtr headers(nullptr, &curl_slist_free_all);
  auto add_header = [&](const std::string& line) {
    curl_slist* n = curl_slist_append(headers.get(), line.c_str());
    if (n != nullptr) {
      headers.release();
      headers.reset(n);
    }
  };
  add_header(kUnsignedPayload);
  if (!options_.session_token.empty()) {
    add_header("x-amz-security-token: " + options_.session_token);
  }
  for (const std::string& line : req.headers) add_header(line);

  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(h, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(h, CURLOPT_AWS_SIGV4, sigv4.c_str());
  curl_easy_setopt(h, CURLOPT_USERNAME, options_.access_key_id.c_str());
  curl_easy_setopt(h, CURLOPT_PASSWORD, options_.secret_access_key.c_str());
  curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, static_cast<long>(options_.connect_timeout.count()));
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, static_cast<long>(options_.stall_timeout.count()));
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &WriteBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "sluice");

  if (req.method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (req.method == "PUT") {
    t.body = req.body;
    t.fd = req.body_fd;
    t.offset = req.body_offset;
    t.size = req.body != nullptr ? req.body->size() : req.body_size;
    curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(t.size));
    curl_easy_setopt(h, CURLOPT_READFUNCTION, &ReadBody);
    curl_easy_setopt(h, CURLOPT_READDATA, &t);
    curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, &SeekBody);
    curl_easy_setopt(h, CURLOPT_SEEKDATA, &t);
  } else if (req.method == "POST") {
    static const std::string kEmpty;
    const std::string& body = req.body != nullptr ? *req.body : kEmpty;
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.c_str());
  } else if (req.method == "DELETE") {
    curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
  }

  CURLcode rc = curl_easy_perform(h);
  if (rc != CURLE_OK) {
    Status s;
    if (t.read_errno != 0) {
      s = Status::FromErrno(what + ": reading the local file", t.read_errno);
    } else if (t.write_errno != 0) {
      s = Status::FromErrno(what + ": writing the local file", t.write_errno);
    } else {
      *retryable = RetryableCurlCode(rc);
      std::string detail = errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc);
      s = Status::Unavailable(what + ": " + detail);
    }
    // A handle whose transfer failed may hold a broken connection: drop it, now, while the
    // buffers its options point to are alive.
    curl.reset();
    return s;
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &resp->status);
  resp->etag = StripQuotes(HeaderValue(h, "ETag"));
  curl_off_t len = -1;
  curl_easy_getinfo(h, CURLINFO_CONTENT_LENGTH_DOWNLOAD_T, &len);
  resp->content_length = len > 0 ? static_cast<uint64_t>(len) : 0;
  pool_->Release(std::move(curl));

  if (resp->status >= 200 && resp->status < 300) return Status::OK();
  std::optional<s3_internal::ServiceError> err = s3_internal::ParseError(resp->body);
  std::string code = err ? err->code : "";
  std::string message = what + ": HTTP " + std::to_string(resp->status);
  if (err) {
    message += " " + err->code + ": " + err->message;
  } else if (req.method == "HEAD" && resp->status == 404) {
    message += ": no such object (or no such bucket)";
  } else if (!resp->body.empty()) {
    message += ": " + resp->body.substr(0, 300);
  }
  *retryable =
      resp->status >= 500 || resp->status == 429 || code == "RequestTimeout" || code == "SlowDown";
  return StatusForHttp(resp->status, code, std::move(message));
}

Status S3::Perform(Request& req, Response* resp) {
  Status last;
  for (int attempt = 0; attempt <= options_.max_retries; ++attempt) {
    if (attempt > 0) {
      ++retries_;
      // Exponential backoff with jitter in [delay/2, delay], capped at 20 s.
      auto delay = options_.retry_base_delay * (1LL << std::min(attempt - 1, 16));
      delay = std::min<std::chrono::milliseconds>(delay, std::chrono::seconds(20));
      thread_local std::mt19937_64 rng{std::random_device{}()};
      auto half = delay.count() / 2;
      std::uniform_int_distribution<long long> jitter(0, std::max<long long>(half, 0));
      std::this_thread::sleep_for(std::chrono::milliseconds(half + jitter(rng)));
    }
    ++requests_;
    bool retryable = false;
    last = PerformOnce(req, resp, &retryable);
    if (last.ok() || !retryable) return last;
  }
  if (options_.max_retries == 0) return last;
  return Status(last.code(), last.message() + " (gave up after " +
                                 std::to_string(options_.max_retries + 1) + " attempts)");
}

Status S3::PutFile(const std::string& key, const std::string& local_path) {
  SLUICE_RETURN_IF_ERROR(ValidateKey(key));
  int raw = ::open(local_path.c_str(), O_RDONLY | O_CLOEXEC);
  if (raw < 0) {
    Status s = Status::FromErrno("open " + local_path, errno);
    if (errno == ENOENT) return Status::NotFound(s.message());
    return s;
  }
  UniqueFd fd(raw);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno("stat " + local_path, errno);
  if (!S_ISREG(st.st_mode)) return Status::InvalidArgument(local_path + " is not a regular file");
  const auto size = static_cast<uint64_t>(st.st_size);
  const std::string object_key = ObjectKey(key);
  if (size > options_.multipart_threshold) return PutFileMultipart(object_key, fd.get(), size);
  return PutFileSingle(object_key, fd.get(), size);
}

Status S3::PutFileSingle(const std::string& object_key, int fd, uint64_t size) {
  Request req;
  req.method = "PUT";
  req.object_key = object_key;
  req.url = RequestUrl(object_key, "");
  req.headers = {"Content-Type: application/octet-stream"};
  req.body_fd = fd;
  req.body_size = size;
  Response resp;
  return Perform(req, &resp);
}

Status S3::PutBytes(const std::string& key, const std::string& data) {
  SLUICE_RETURN_IF_ERROR(ValidateKey(key));
  Request req;
  req.method = "PUT";
  req.object_key = ObjectKey(key);
  req.url = RequestUrl(req.object_key, "");
  req.headers = {"Content-Type: application/octet-stream"};
  req.body = &data;
  Response resp;
  return Perform(req, &resp);
}

void S3::AbortUpload(const std::string& object_key, const std::string& upload_id) {
  ++aborted_uploads_;
  Request req;
  req.method = "DELETE";
  req.object_key = object_key;
  req.url = RequestUrl(object_key, "uploadId=" + UriEncode(upload_id, false));
  Response resp;
  Status s = Perform(req, &resp);
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
    Request req;
    req.method = "POST";
    req.object_key = object_key;
    req.url = RequestUrl(object_key, "uploads=");
    req.headers = {"Content-Type: application/octet-stream"};
    Response resp;
    SLUICE_RETURN_IF_ERROR(Perform(req, &resp));
    Result<std::string> id = s3_internal::ParseUploadId(resp.body);
    if (!id.ok()) return id.status().WithContext(what);
    upload_id = std::move(id).value();
  }

  std::vector<std::string> etags(nparts);
  std::atomic<uint64_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  Status first_error;  // protected by mu
  auto worker = [&] {
    while (!failed.load()) {
      uint64_t i = next.fetch_add(1);
      if (i >= nparts) return;
      Request req;
      req.method = "PUT";
      req.object_key = object_key;
      req.url = RequestUrl(object_key, "partNumber=" + std::to_string(i + 1) +
                                           "&uploadId=" + UriEncode(upload_id, false));
      req.body_fd = fd;
      req.body_offset = i * part_size;
      req.body_size = std::min(part_size, size - req.body_offset);
      Response resp;
      Status s = Perform(req, &resp);
      if (s.ok() && resp.etag.empty()) {
        s = Status::Corruption("S3 PUT " + DisplayUrl(object_key) + " part " +
                               std::to_string(i + 1) + ": the answer has no ETag");
      }
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (first_error.ok()) {
          first_error =
              s.WithContext("part " + std::to_string(i + 1) + " of " + std::to_string(nparts));
        }
        failed = true;
        return;
      }
      etags[i] = std::move(resp.etag);
      ++parts_uploaded_;
    }
  };
  {
    const auto nthreads = static_cast<uint64_t>(
        std::min<uint64_t>(static_cast<uint64_t>(options_.parallel_parts), nparts));
    std::vector<std::jthread> threads;
    for (uint64_t k = 1; k < nthreads; ++k) threads.emplace_back(worker);
    worker();
  }  // joined
  if (failed) {
    AbortUpload(object_key, upload_id);
    std::lock_guard<std::mutex> lock(mu);
    return first_error.WithContext(what);
  }

  std::string xml = "<CompleteMultipartUpload>";
  for (uint64_t i = 0; i < nparts; ++i) {
    xml += "<Part><PartNumber>" + std::to_string(i + 1) + "</PartNumber><ETag>\"" + etags[i] +
           "\"</ETag></Part>";
  }
  xml += "</CompleteMultipartUpload>";
  Request req;
  req.method = "POST";
  req.object_key = object_key;
  req.url = RequestUrl(object_key, "uploadId=" + UriEncode(upload_id, false));
  req.headers = {"Content-Type: application/xml"};
  req.body = &xml;
  Response resp;
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
  static std::atomic<uint64_t> counter{0};
  const std::string temp = local_path + ".sluice-tmp-" + std::to_string(::getpid()) + "-" +
                           std::to_string(counter.fetch_add(1));
  int raw = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC, 0644);
  if (raw < 0) return Status::FromErrno("open " + temp, errno);
  UniqueFd fd(raw);
  Request req;
  req.method = "GET";
  req.object_key = ObjectKey(key);
  req.url = RequestUrl(req.object_key, "");
  req.sink_fd = fd.get();
  Response resp;
  Status s = Perform(req, &resp);
  if (s.ok() && ::fsync(fd.get()) != 0) s = Status::FromErrno("fsync " + temp, errno);
  if (s.ok() && fd.Close() != 0) s = Status::FromErrno("close " + temp, errno);
  if (s.ok() && ::rename(temp.c_str(), local_path.c_str()) != 0) {
    s = Status::FromErrno("rename " + temp + " to " + local_path, errno);
  }
  if (!s.ok()) {
    ::unlink(temp.c_str());
    return s;
  }
  std::string dir = local_path.substr(0, local_path.rfind('/') + 1);
  if (dir.empty()) dir = ".";
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    UniqueFd d(dfd);
    if (::fsync(d.get()) != 0) return Status::FromErrno("fsync " + dir, errno);
  }
  return Status::OK();
}

Result<std::string> S3::GetBytes(const std::string& key) {
  SLUICE_RETURN_IF_ERROR(ValidateKey(key));
  Request req;
  req.method = "GET";
  req.object_key = ObjectKey(key);
  req.url = RequestUrl(req.object_key, "");
  Response resp;
  SLUICE_RETURN_IF_ERROR(Perform(req, &resp));
  return std::move(resp.body);
}

Result<ObjectInfo> S3::Head(const std::string& key) {
  SLUICE_RETURN_IF_ERROR(ValidateKey(key));
  SLUICE_ASSIGN_OR_RETURN(ObjectInfo info, HeadObject(ObjectKey(key)));
  info.key = key;
  return info;
}

Result<ObjectInfo> S3::HeadObject(const std::string& object_key) {
  Request req;
  req.method = "HEAD";
  req.object_key = object_key;
  req.url = RequestUrl(object_key, "");
  Response resp;
  SLUICE_RETURN_IF_ERROR(Perform(req, &resp));
  ObjectInfo info;
  info.key = object_key;
  info.size = resp.content_length;
  info.etag = resp.etag;
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
    Request req;
    req.method = "GET";
    req.object_key = "";
    req.url = RequestUrl("", query);
    Response resp;
    Status s = Perform(req, &resp);
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
  Request req;
  req.method = "DELETE";
  req.object_key = ObjectKey(key);
  req.url = RequestUrl(req.object_key, "");
  Response resp;
  Status s = Perform(req, &resp);
  if (s.code() == StatusCode::kNotFound) return Status::OK();  // already gone
  return s;
}

Status S3::CheckBucket() {
  Request req;
  req.method = "GET";
  req.object_key = "";
  req.url = RequestUrl("", "list-type=2&max-keys=1");
  Response resp;
  return Perform(req, &resp);
}

}  // namespace sluice::objstore
