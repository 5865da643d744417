#include "objstore/http_client.h"

#include <expat.h>
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <climits>
#include <cstring>
#include <random>
#include <thread>

namespace sluice::objstore::http {
namespace {

constexpr size_t kMaxIdleHandles = 16;
constexpr size_t kMaxErrorBody = 64 * 1024;  // of an error answer, kept for the message

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
  const Request* req = nullptr;
  Response* resp = nullptr;
  uint64_t read_pos = 0;  // bytes of the body handed to curl
  uint64_t sink_pos = 0;
  Status local_error;  // the local file failed: not worth a retry
};

uint64_t BodySize(const Request& req) {
  return req.body != nullptr ? req.body->size() : req.body_size;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * n);
  while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
  if (line.starts_with("HTTP/")) {
    // A new answer (after "100 Continue"): start over.
    t->resp->headers.clear();
    size_t sp = line.find(' ');
    if (sp != std::string_view::npos) {
      t->resp->status = std::strtol(std::string(line.substr(sp + 1, 3)).c_str(), nullptr, 10);
      size_t sp2 = line.find(' ', sp + 1);
      t->resp->reason = sp2 == std::string_view::npos ? "" : std::string(line.substr(sp2 + 1));
    }
  } else if (size_t colon = line.find(':'); colon != std::string_view::npos) {
    t->resp->headers[Lower(Trim(line.substr(0, colon)))] = Trim(line.substr(colon + 1));
  }
  return size * n;
}

size_t OnWrite(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t len = size * n;
  const bool success = t->resp->status >= 200 && t->resp->status < 300;
  if (success && t->req->sink_fd >= 0) {
    for (size_t done = 0; done < len;) {
      ssize_t w = ::pwrite(t->req->sink_fd, data + done, len - done,
                           static_cast<off_t>(t->sink_pos + done));
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) {
        t->local_error = Status::FromErrno(t->req->what + ": writing the local file", errno);
        return 0;
      }
      done += static_cast<size_t>(w);
    }
    t->sink_pos += len;
  } else if (success) {
    t->resp->body.append(data, len);
  } else if (t->resp->body.size() < kMaxErrorBody) {
    t->resp->body.append(data, std::min(len, kMaxErrorBody - t->resp->body.size()));
  }
  return len;
}

size_t OnRead(char* buf, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const Request& req = *t->req;
  const auto k = static_cast<size_t>(std::min<uint64_t>(size * n, BodySize(req) - t->read_pos));
  if (k == 0) return 0;
  if (req.body != nullptr) {
    std::memcpy(buf, req.body->data() + t->read_pos, k);
    t->read_pos += k;
    return k;
  }
  for (;;) {
    ssize_t r = ::pread(req.body_fd, buf, k, static_cast<off_t>(req.body_offset + t->read_pos));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      t->local_error = r < 0 ? Status::FromErrno(req.what + ": reading the local file", errno)
                             : Status::IOError(req.what +
                                               ": the local file shrank while it was "
                                               "read");
      return CURL_READFUNC_ABORT;
    }
    t->read_pos += static_cast<uint64_t>(r);
    return static_cast<size_t>(r);
  }
}

int OnSeek(void* user, curl_off_t offset, int origin) {
  auto* t = static_cast<Transfer*>(user);
  if (origin != SEEK_SET || offset < 0 || static_cast<uint64_t>(offset) > BodySize(*t->req)) {
    return CURL_SEEKFUNC_CANTSEEK;
  }
  t->read_pos = static_cast<uint64_t>(offset);
  return CURL_SEEKFUNC_OK;
}

Status FsyncPath(const std::string& path, int flags) {
  int fd = ::open(path.c_str(), flags | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno("open " + path, errno);
  UniqueFd owned(fd);
  if (::fsync(fd) != 0) return Status::FromErrno("fsync " + path, errno);
  return Status::OK();
}

}  // namespace

// ---- one exchange ---------------------------------------------------------------------------

std::string Response::Header(const std::string& lower_case_name) const {
  auto it = headers.find(lower_case_name);
  return it != headers.end() ? it->second : "";
}

Client::Client(std::string service, std::chrono::seconds connect_timeout,
               std::chrono::seconds stall_timeout)
    : service_(std::move(service)),
      in_flight_(metrics::Default().GetGauge("sluice_objstore_requests_in_flight",
                                             "Object store requests being sent or answered",
                                             {{"service", service_}})),
      connect_timeout_(connect_timeout),
      stall_timeout_(stall_timeout) {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

Client::~Client() = default;

Client::Handle Client::Acquire() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (!idle_.empty()) {
      Handle h = std::move(idle_.back());
      idle_.pop_back();
      return h;  // reset by Release
    }
  }
  return Handle(curl_easy_init(), &curl_easy_cleanup);
}

void Client::Release(Handle h) {
  // Forget the finished request's options now: they point into its stack frame (error buffer,
  // header list, callback data). The connection cache survives a reset.
  curl_easy_reset(h.get());
  std::lock_guard<std::mutex> lock(mu_);
  if (idle_.size() < kMaxIdleHandles) idle_.push_back(std::move(h));
}

void Client::Count(const Request& req, const std::string& result, double seconds, CURL* c) {
  metrics::Registry& reg = metrics::Default();
  reg.GetCounter("sluice_objstore_requests_total",
                 "Object store requests (each retry counts), by answer",
                 {{"service", service_}, {"method", req.method}, {"result", result}})
      .Inc();
  reg.GetHistogram("sluice_objstore_request_seconds", "Time of one object store request",
                   {{"service", service_}, {"method", req.method}},
                   {0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120})
      .Observe(seconds);
  curl_off_t up = 0, down = 0;
  curl_easy_getinfo(c, CURLINFO_SIZE_UPLOAD_T, &up);
  curl_easy_getinfo(c, CURLINFO_SIZE_DOWNLOAD_T, &down);
  if (up > 0) {
    reg.GetCounter("sluice_objstore_sent_bytes_total", "Body bytes sent to the object store",
                   {{"service", service_}})
        .Inc(static_cast<uint64_t>(up));
  }
  if (down > 0) {
    reg.GetCounter("sluice_objstore_received_bytes_total",
                   "Body bytes received from the object store", {{"service", service_}})
        .Inc(static_cast<uint64_t>(down));
  }
}

Status Client::Send(const Request& req, Response* resp) {
  *resp = Response();
  if (req.sink_fd >= 0 && ::ftruncate(req.sink_fd, 0) != 0) {
    return Status::FromErrno(req.what + ": truncating the local file", errno);
  }
  Handle h = Acquire();
  if (!h) return Status::Internal(req.what + ": curl_easy_init failed");
  CURL* c = h.get();
  std::unique_ptr<curl_slist, decltype(&curl_slist_free_all)> headers(nullptr,
                                                                      &curl_slist_free_all);
  for (const std::string& line : req.headers) {
    curl_slist* next = curl_slist_append(headers.get(), line.c_str());
    if (next == nullptr) return Status::Internal(req.what + ": curl_slist_append failed");
    (void)headers.release();
    headers.reset(next);
  }
  Transfer t;
  t.req = &req;
  t.resp = resp;
  char errbuf[CURL_ERROR_SIZE] = {0};
  curl_easy_setopt(c, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers.get());
  curl_easy_setopt(c, CURLOPT_USERAGENT, "sluice");
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, static_cast<long>(connect_timeout_.count()));
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
  curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, static_cast<long>(stall_timeout_.count()));
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &OnWrite);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  if (req.configure) req.configure(c);
  static const std::string kEmpty;
  if (req.method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (req.method == "PUT") {
    curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(BodySize(req)));
    curl_easy_setopt(c, CURLOPT_READFUNCTION, &OnRead);
    curl_easy_setopt(c, CURLOPT_READDATA, &t);
    curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, &OnSeek);
    curl_easy_setopt(c, CURLOPT_SEEKDATA, &t);
  } else if (req.method == "POST") {
    const std::string& body = req.body != nullptr ? *req.body : kEmpty;
    curl_easy_setopt(c, CURLOPT_POST, 1L);
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.c_str());
  } else if (req.method != "GET") {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  }
  in_flight_.Add(1);
  const auto t0 = std::chrono::steady_clock::now();
  CURLcode rc = curl_easy_perform(c);
  in_flight_.Add(-1);
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  // After a failure the handle is dropped, with a connection that may be broken.
  if (!t.local_error.ok() || rc != CURLE_OK) Count(req, "network", seconds, c);
  if (!t.local_error.ok()) return t.local_error;
  if (rc != CURLE_OK) {
    resp->network_retryable = RetryableCurlCode(rc);
    return Status::Unavailable(req.what + ": " +
                               (errbuf[0] != '\0' ? errbuf : curl_easy_strerror(rc)));
  }
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &resp->status);
  Count(req, std::to_string(resp->status / 100) + "xx", seconds, c);
  Release(std::move(h));
  return Status::OK();
}

// ---- retries --------------------------------------------------------------------------------

int Retry(const RetryPolicy& policy, const std::function<bool()>& attempt) {
  int attempts = 1;
  for (; attempt() && attempts <= policy.max_retries; ++attempts) {
    auto delay = policy.base_delay * (1LL << std::min(attempts - 1, 16));
    delay = std::min<std::chrono::milliseconds>(delay, std::chrono::seconds(20));
    thread_local std::mt19937_64 rng{std::random_device{}()};
    const auto half = delay.count() / 2;
    std::uniform_int_distribution<long long> jitter(0, std::max<long long>(half, 0));
    std::this_thread::sleep_for(std::chrono::milliseconds(half + jitter(rng)));
  }
  return attempts;
}

// ---- files ----------------------------------------------------------------------------------

Result<FileToUpload> OpenFileToUpload(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) {
    Status s = Status::FromErrno("open " + path, errno);
    return errno == ENOENT ? Status::NotFound(s.message()) : s;
  }
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno("stat " + path, errno);
  if (!S_ISREG(st.st_mode)) return Status::InvalidArgument(path + " is not a regular file");
  return FileToUpload{std::move(fd), static_cast<uint64_t>(st.st_size)};
}

Status DownloadToFile(const std::string& local_path,
                      const std::function<Status(int fd)>& download) {
  static std::atomic<uint64_t> counter{0};
  const size_t slash = local_path.rfind('/');
  const std::string dir = slash == std::string::npos ? "."
                          : slash == 0               ? "/"
                                                     : local_path.substr(0, slash);
  // ".sluice-tmp" names are reserved (ValidateKey), so no object is ever mistaken for one.
  const std::string temp = dir + "/.sluice-tmp-" + std::to_string(::getpid()) + "-" +
                           std::to_string(counter.fetch_add(1));
  UniqueFd fd(::open(temp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_TRUNC | O_CLOEXEC, 0644));
  if (!fd.valid()) return Status::FromErrno("open " + temp, errno);
  Status s = download(fd.get());
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

Status ParallelFor(uint64_t count, int parallelism, const std::function<Status(uint64_t)>& fn) {
  std::atomic<uint64_t> next{0};
  std::atomic<bool> failed{false};
  std::mutex mu;
  Status first_error;  // protected by mu
  auto worker = [&] {
    while (!failed.load()) {
      uint64_t i = next.fetch_add(1);
      if (i >= count) return;
      Status s = fn(i);
      if (!s.ok()) {
        std::lock_guard<std::mutex> lock(mu);
        if (first_error.ok()) first_error = std::move(s);
        failed = true;
      }
    }
  };
  {
    const uint64_t threads = std::min<uint64_t>(static_cast<uint64_t>(parallelism), count);
    std::vector<std::jthread> others;
    for (uint64_t k = 1; k < threads; ++k) others.emplace_back(worker);
    worker();
  }  // joined
  return first_error;
}

// ---- checksums and encodings ----------------------------------------------------------------

std::string Md5(std::string_view data) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), digest, &len, EVP_md5(), nullptr);
  return std::string(reinterpret_cast<const char*>(digest), len);
}

Result<std::string> Md5OfFileRange(int fd, uint64_t offset, uint64_t size) {
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!ctx || EVP_DigestInit_ex(ctx.get(), EVP_md5(), nullptr) != 1) {
    return Status::Internal("EVP_DigestInit_ex(MD5) failed");
  }
  std::string buf(std::min<uint64_t>(size, 1 << 20), '\0');
  for (uint64_t done = 0; done < size;) {
    const auto want = static_cast<size_t>(std::min<uint64_t>(buf.size(), size - done));
    ssize_t r = ::pread(fd, buf.data(), want, static_cast<off_t>(offset + done));
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) return Status::FromErrno("reading the local file", errno);
    if (r == 0) return Status::IOError("the local file shrank while it was read");
    EVP_DigestUpdate(ctx.get(), buf.data(), static_cast<size_t>(r));
    done += static_cast<uint64_t>(r);
  }
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx.get(), digest, &len);
  return std::string(reinterpret_cast<const char*>(digest), len);
}

std::string Base64Encode(std::string_view data) {
  std::string out(4 * ((data.size() + 2) / 3), '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(data.data()),
                          static_cast<int>(data.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string HexEncode(std::string_view data) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (char ch : data) {
    auto c = static_cast<unsigned char>(ch);
    out += kHex[c >> 4];
    out += kHex[c & 15];
  }
  return out;
}

std::string PercentEncode(std::string_view s, bool keep_slash) {
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

// ---- XML answers ----------------------------------------------------------------------------

const XmlNode& XmlNode::Child(std::string_view n) const {
  static const XmlNode kEmpty;
  for (const auto& c : children) {
    if (c->name == n) return *c;
  }
  return kEmpty;
}

std::vector<const XmlNode*> XmlNode::Children(std::string_view n) const {
  std::vector<const XmlNode*> out;
  for (const auto& c : children) {
    if (c->name == n) out.push_back(c.get());
  }
  return out;
}

Result<std::unique_ptr<XmlNode>> ParseXml(std::string_view xml) {
  if (xml.size() > static_cast<size_t>(INT_MAX)) return Status::Corruption("XML too large");
  std::unique_ptr<XML_ParserStruct, decltype(&XML_ParserFree)> parser(XML_ParserCreate("UTF-8"),
                                                                      &XML_ParserFree);
  if (!parser) return Status::Internal("XML_ParserCreate failed");
  struct Builder {
    std::unique_ptr<XmlNode> doc = std::make_unique<XmlNode>();
    std::vector<XmlNode*> open{doc.get()};
  } b;
  XML_SetUserData(parser.get(), &b);
  XML_SetElementHandler(
      parser.get(),
      [](void* user, const XML_Char* name, const XML_Char**) {
        auto* bld = static_cast<Builder*>(user);
        const char* colon = std::strrchr(name, ':');  // "s3:Key" is "Key"
        auto node = std::make_unique<XmlNode>();
        node->name = colon != nullptr ? colon + 1 : name;
        bld->open.push_back(node.get());
        bld->open[bld->open.size() - 2]->children.push_back(std::move(node));
      },
      [](void* user, const XML_Char*) {
        auto* bld = static_cast<Builder*>(user);
        if (bld->open.size() > 1) bld->open.pop_back();
      });
  XML_SetCharacterDataHandler(parser.get(), [](void* user, const XML_Char* s, int len) {
    static_cast<Builder*>(user)->open.back()->text.append(s, static_cast<size_t>(len));
  });
  if (XML_Parse(parser.get(), xml.data(), static_cast<int>(xml.size()), 1) != XML_STATUS_OK) {
    return Status::Corruption(std::string("malformed XML from the service: ") +
                              XML_ErrorString(XML_GetErrorCode(parser.get())) + " at line " +
                              std::to_string(XML_GetCurrentLineNumber(parser.get())));
  }
  return std::move(b.doc);
}

}  // namespace sluice::objstore::http
