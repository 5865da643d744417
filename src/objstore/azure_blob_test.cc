// AzureBlob: server-less tests of connection strings and Shared Key signing, and tests against
// a real azurite. The azurite tests run when SLUICE_TEST_AZURE_CONNECTION_STRING is set
// (scripts/test.sh starts azurite and sets it, with SLUICE_REQUIRE_AZURE=1 so that they fail
// rather than skip without it). The mid-upload stop test starts a private azurite with
// scripts/azurite.sh.
#include "objstore/azure_blob.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <mutex>
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "objstore/http_client.h"
#include "objstore/s3rver_test_server.h"
#include "objstore/test_util.h"

namespace sluice::objstore {
namespace {

using testing::TempDir;

constexpr const char* kAzuriteKey =
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";
constexpr const char* kAzuriteConnectionString =
    "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
    "AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/"
    "K1SZFPTOtr/KBHBeksoGMGw==;BlobEndpoint=http://127.0.0.1:10000/devstoreaccount1;"
    "QueueEndpoint=http://127.0.0.1:10001/devstoreaccount1;"
    "TableEndpoint=http://127.0.0.1:10002/devstoreaccount1;";

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? v : "";
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << data;
}

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (char& c : s) c = static_cast<char>(rng() & 0xff);
  return s;
}

std::vector<std::string> Keys(const std::vector<ObjectInfo>& infos) {
  std::vector<std::string> keys;
  for (const ObjectInfo& i : infos) keys.push_back(i.key);
  return keys;
}

// ---------------------------------------------------------------------------------------------
// Without a server

TEST(AzureConnectionStringTest, AzuriteDevelopmentStringWorksUnchanged) {
  AzureBlobOptions o;
  ASSERT_TRUE(ApplyConnectionString(kAzuriteConnectionString, &o).ok());
  EXPECT_EQ(o.account, "devstoreaccount1");
  EXPECT_EQ(o.account_key, kAzuriteKey);
  EXPECT_EQ(o.endpoint, "http://127.0.0.1:10000/devstoreaccount1");
}

TEST(AzureConnectionStringTest, EndpointFromProtocolAndSuffix) {
  AzureBlobOptions o;
  ASSERT_TRUE(ApplyConnectionString("DefaultEndpointsProtocol=https;AccountName=acme;"
                                    "AccountKey=a2V5;EndpointSuffix=core.chinacloudapi.cn",
                                    &o)
                  .ok());
  EXPECT_EQ(o.account, "acme");
  EXPECT_EQ(o.account_key, "a2V5");
  EXPECT_EQ(o.endpoint, "https://acme.blob.core.chinacloudapi.cn");

  AzureBlobOptions d;
  ASSERT_TRUE(ApplyConnectionString("AccountName=acme;AccountKey=a2V5", &d).ok());
  EXPECT_EQ(d.endpoint, "https://acme.blob.core.windows.net");

  AzureBlobOptions dev;
  ASSERT_TRUE(ApplyConnectionString("UseDevelopmentStorage=true", &dev).ok());
  EXPECT_EQ(dev.account, "devstoreaccount1");
  EXPECT_EQ(dev.endpoint, "http://127.0.0.1:10000/devstoreaccount1");
}

TEST(AzureConnectionStringTest, MissingOrMalformedFieldsAreRefusedWithoutEchoingTheKey) {
  AzureBlobOptions o;
  Status s = ApplyConnectionString("AccountName=acme", &o);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("AccountKey"), std::string::npos) << s.ToString();

  s = ApplyConnectionString("AccountKey=c2VjcmV0", &o);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message().find("c2VjcmV0"), std::string::npos) << s.ToString();

  s = ApplyConnectionString("AccountName=acme;garbage;AccountKey=c2VjcmV0", &o);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message().find("c2VjcmV0"), std::string::npos) << s.ToString();
}

TEST(AzureConnectionStringTest, OptionsFromUrlAndEnvironment) {
  std::string saved = Env("AZURE_STORAGE_CONNECTION_STRING");
  std::string saved_account = Env("AZURE_STORAGE_ACCOUNT");
  std::string saved_key = Env("AZURE_STORAGE_KEY");
  ::setenv("AZURE_STORAGE_CONNECTION_STRING", kAzuriteConnectionString, 1);
  auto r = AzureBlobOptionsFromUrl("az://events/sluice/prod/");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->container, "events");
  EXPECT_EQ(r->prefix, "sluice/prod");
  EXPECT_EQ(r->account, "devstoreaccount1");
  EXPECT_EQ(r->endpoint, "http://127.0.0.1:10000/devstoreaccount1");

  ::unsetenv("AZURE_STORAGE_CONNECTION_STRING");
  ::setenv("AZURE_STORAGE_ACCOUNT", "acme", 1);
  ::setenv("AZURE_STORAGE_KEY", "a2V5", 1);
  r = AzureBlobOptionsFromUrl("az://c");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->container, "c");
  EXPECT_EQ(r->prefix, "");
  EXPECT_EQ(r->account, "acme");
  EXPECT_EQ(r->endpoint, "");  // Open derives https://acme.blob.core.windows.net

  EXPECT_EQ(AzureBlobOptionsFromUrl("az:///x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(AzureBlobOptionsFromUrl("s3://x").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(AzureBlobOptionsFromUrl("az://c/a/../b").status().code(), StatusCode::kInvalidArgument);
  ::unsetenv("AZURE_STORAGE_KEY");
  EXPECT_EQ(AzureBlobOptionsFromUrl("az://c").status().code(), StatusCode::kInvalidArgument);

  auto restore = [](const char* name, const std::string& v) {
    if (v.empty()) {
      ::unsetenv(name);
    } else {
      ::setenv(name, v.c_str(), 1);
    }
  };
  restore("AZURE_STORAGE_CONNECTION_STRING", saved);
  restore("AZURE_STORAGE_ACCOUNT", saved_account);
  restore("AZURE_STORAGE_KEY", saved_key);
}

TEST(AzureSharedKeyTest, StringToSignAndSignatureOfAFixedRequest) {
  SharedKeyRequest req;
  req.method = "PUT";
  req.account = "myaccount";
  req.path = "/mycontainer/dir/my%20blob.txt";
  req.query = {{"comp", "block"}, {"blockid", "QUJD+/=="}};
  req.headers = {{"x-ms-version", "2021-08-06"},
                 {"Content-Type", "text/plain; charset=UTF-8"},
                 {"X-MS-Date", "Fri, 26 Jun 2015 23:39:12 GMT"},
                 {"x-ms-blob-type", " BlockBlob "},
                 {"Content-Length", "11"},
                 {"Accept", "*/*"}};
  const std::string expected =
      "PUT\n"
      "\n"                           // Content-Encoding
      "\n"                           // Content-Language
      "11\n"                         // Content-Length
      "\n"                           // Content-MD5
      "text/plain; charset=UTF-8\n"  // Content-Type
      "\n"                           // Date
      "\n\n\n\n\n"                   // If-Modified-Since … Range
      "x-ms-blob-type:BlockBlob\n"
      "x-ms-date:Fri, 26 Jun 2015 23:39:12 GMT\n"
      "x-ms-version:2021-08-06\n"
      "/myaccount/mycontainer/dir/my%20blob.txt\n"
      "blockid:QUJD+/==\n"
      "comp:block";
  std::string sts = SharedKeyStringToSign(req);
  EXPECT_EQ(sts, expected);
  // Computed independently (Python: base64(hmac.new(b64decode(key), sts, sha256))).
  auto sig = SharedKeySignature(kAzuriteKey, sts);
  ASSERT_TRUE(sig.ok()) << sig.status().ToString();
  EXPECT_EQ(*sig, "SovK4mrM0mfbIOS4ZVaPWKx57XW1VVizHp+UEFrgbGw=");

  // A zero Content-Length signs as empty; repeated parameters are sorted and joined.
  SharedKeyRequest get;
  get.method = "GET";
  get.account = "devstoreaccount1";
  get.path = "/devstoreaccount1/c";
  get.query = {{"restype", "container"}, {"comp", "list"}, {"Include", "b"}, {"include", "a"}};
  get.headers = {{"Content-Length", "0"}, {"x-ms-date", "D"}};
  EXPECT_EQ(SharedKeyStringToSign(get),
            "GET\n\n\n\n\n\n\n\n\n\n\n\nx-ms-date:D\n/devstoreaccount1/devstoreaccount1/c\n"
            "comp:list\ninclude:a,b\nrestype:container");
  EXPECT_EQ(SharedKeySignature("not base64!", "x").status().code(), StatusCode::kInvalidArgument);
}

TEST(AzureBlobOpenTest, RefusesMissingFields) {
  AzureBlobOptions o;
  o.account = "a";
  o.account_key = kAzuriteKey;
  EXPECT_EQ(AzureBlob::Open(o).status().code(), StatusCode::kInvalidArgument);  // no container
  o.container = "c";
  o.account_key = "***";
  EXPECT_EQ(AzureBlob::Open(o).status().code(), StatusCode::kInvalidArgument);
  o.account_key = kAzuriteKey;
  o.prefix = "/p/";
  auto s = AzureBlob::Open(o);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ((*s)->Url(), "az://c/p");
  EXPECT_FALSE((*s)->LocalPath("k").has_value());
}

// ---------------------------------------------------------------------------------------------
// Retries, against a scripted HTTP server

// Answers each request (one per connection) with the next scripted response, then with
// `fallback`. Records every request's head and body. Thread-safe.
class ScriptedServer {
 public:
  ScriptedServer(std::deque<std::string> script, std::string fallback)
      : script_(std::move(script)), fallback_(std::move(fallback)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof(addr);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 || ::listen(fd_, 16) != 0 ||
        ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      ADD_FAILURE() << "cannot listen on 127.0.0.1";
      return;
    }
    port_ = ntohs(addr.sin_port);
    thread_ = std::jthread([this](std::stop_token st) { Serve(st); });
  }
  ~ScriptedServer() {
    thread_.request_stop();
    ::shutdown(fd_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_) + "/acct"; }
  std::vector<std::string> requests() const {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  static std::string Response(int status, const std::string& reason, const std::string& body) {
    return "HTTP/1.1 " + std::to_string(status) + " " + reason +
           "\r\nContent-Type: application/xml\r\nContent-Length: " + std::to_string(body.size()) +
           "\r\nConnection: close\r\n\r\n" + body;
  }

 private:
  void Serve(std::stop_token st) {
    while (!st.stop_requested()) {
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      std::string req;
      char buf[65536];
      size_t need = std::string::npos;
      for (;;) {
        ssize_t n = ::recv(c, buf, sizeof(buf), 0);
        if (n <= 0) break;
        req.append(buf, static_cast<size_t>(n));
        size_t end = req.find("\r\n\r\n");
        if (end != std::string::npos && need == std::string::npos) {
          size_t len = 0;
          std::string head = req.substr(0, end);
          for (std::string name : {"Content-Length: ", "content-length: "}) {
            size_t at = head.find(name);
            if (at != std::string::npos) len = std::stoul(head.substr(at + name.size()));
          }
          need = end + 4 + len;
        }
        if (need != std::string::npos && req.size() >= need) break;
      }
      std::string resp;
      {
        std::lock_guard<std::mutex> lock(mu_);
        requests_.push_back(req);
        if (!script_.empty()) {
          resp = script_.front();
          script_.pop_front();
        } else {
          resp = fallback_;
        }
      }
      ::send(c, resp.data(), resp.size(), MSG_NOSIGNAL);
      ::close(c);
    }
  }

  int fd_ = -1;
  int port_ = 0;
  mutable std::mutex mu_;
  // State below is protected by mu_.
  std::deque<std::string> script_;
  std::string fallback_;
  std::vector<std::string> requests_;
  std::jthread thread_;
};

AzureBlobOptions ScriptedOptions(const ScriptedServer& server) {
  AzureBlobOptions o;
  o.account = "acct";
  o.account_key = kAzuriteKey;
  o.endpoint = server.endpoint();
  o.container = "c";
  o.max_retries = 3;
  o.initial_backoff = std::chrono::milliseconds(1);
  return o;
}

const std::string kBusy = ScriptedServer::Response(
    503, "Service Unavailable",
    "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>ServerBusy</Code><Message>The "
    "server is busy.\nRequestId:1</Message></Error>");

TEST(AzureBlobRetryTest, RetriesServerErrorsAndThrottlingThenSucceeds) {
  ScriptedServer server({kBusy, ScriptedServer::Response(429, "Too Many Requests", ""),
                         ScriptedServer::Response(500, "Internal Server Error", "")},
                        ScriptedServer::Response(201, "Created", ""));
  auto store = AzureBlob::Open(ScriptedOptions(server));
  ASSERT_TRUE(store.ok());
  Status s = (*store)->PutBytes("dir/k=1", "payload");
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::vector<std::string> reqs = server.requests();
  ASSERT_EQ(reqs.size(), 4u);
  for (const std::string& r : reqs) {
    EXPECT_TRUE(r.starts_with("PUT /acct/c/dir/k%3D1 HTTP/1.1\r\n")) << r;
    EXPECT_NE(r.find("Authorization: SharedKey acct:"), std::string::npos) << r;
    EXPECT_NE(r.find("x-ms-blob-type: BlockBlob"), std::string::npos) << r;
    EXPECT_TRUE(r.ends_with("\r\n\r\npayload")) << "every attempt sends the whole body: " << r;
  }
}

TEST(AzureBlobRetryTest, PersistentErrorsCarryTheServiceMessageAfterTheRetries) {
  ScriptedServer server({}, kBusy);
  auto store = AzureBlob::Open(ScriptedOptions(server));
  ASSERT_TRUE(store.ok());
  Result<std::string> r = (*store)->GetBytes("k");
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find(
                "HTTP 503 ServerBusy: The server is busy.; RequestId:1 (after 4 attempts)"),
            std::string::npos)
      << r.status().ToString();
  EXPECT_EQ(server.requests().size(), 4u);
}

TEST(AzureBlobRetryTest, ClientErrorsAreNotRetried) {
  ScriptedServer server(
      {},
      ScriptedServer::Response(403, "Forbidden",
                               "<Error><Code>AuthenticationFailed</Code><Message>Signature did not "
                               "match.</Message></Error>"));
  auto store = AzureBlob::Open(ScriptedOptions(server));
  ASSERT_TRUE(store.ok());
  Status s = (*store)->Delete("k");
  EXPECT_EQ(s.code(), StatusCode::kPermissionDenied);
  EXPECT_NE(s.message().find("HTTP 403 AuthenticationFailed: Signature did not match."),
            std::string::npos)
      << s.ToString();
  EXPECT_EQ(server.requests().size(), 1u);
}

TEST(AzureBlobRetryTest, ADownloadCutShortIsRetriedFromTheStart) {
  // The first answer promises 20 bytes and sends 8: curl reports a partial transfer.
  std::string cut = "HTTP/1.1 200 OK\r\nContent-Length: 20\r\nConnection: close\r\n\r\nAAAAAAAA";
  ScriptedServer server({cut, cut}, ScriptedServer::Response(200, "OK", "0123456789abcdefghij"));
  auto store = AzureBlob::Open(ScriptedOptions(server));
  ASSERT_TRUE(store.ok());
  TempDir dir;
  Status s = (*store)->GetFile("k", dir.path() + "/out");
  ASSERT_TRUE(s.ok()) << s.ToString();
  EXPECT_EQ(ReadFile(dir.path() + "/out"), "0123456789abcdefghij");
  EXPECT_EQ(testing::AllPathsUnder(dir.path()), std::vector<std::string>{"out"});
  EXPECT_EQ(server.requests().size(), 3u);
  auto bytes = (*store)->GetBytes("k");
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  EXPECT_EQ(*bytes, "0123456789abcdefghij");
}

TEST(AzureBlobRetryTest, NetworkErrorsAreRetriedAndReported) {
  int port = 0;
  {
    ScriptedServer gone({}, "");  // take a free port, then close it
    port = std::atoi(gone.endpoint().substr(gone.endpoint().rfind(':') + 1).c_str());
  }
  AzureBlobOptions o;
  o.account = "acct";
  o.account_key = kAzuriteKey;
  o.endpoint = "http://127.0.0.1:" + std::to_string(port) + "/acct";
  o.container = "c";
  o.max_retries = 2;
  o.initial_backoff = std::chrono::milliseconds(1);
  auto store = AzureBlob::Open(o);
  ASSERT_TRUE(store.ok());
  Result<ObjectInfo> r = (*store)->Head("k");
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable);
  EXPECT_NE(r.status().message().find("Couldn't connect to server"), std::string::npos)
      << r.status().ToString();
  EXPECT_NE(r.status().message().find("after 3 attempts"), std::string::npos)
      << r.status().ToString();
}

std::string Md5Base64(const std::string& data) { return http::Base64Encode(http::Md5(data)); }

// The value of header `name` in a raw request ("" when absent), and the request's body.
std::string RequestHeader(const std::string& request, const std::string& name) {
  size_t at = request.find("\r\n" + name + ": ");
  if (at == std::string::npos || at > request.find("\r\n\r\n")) return "";
  at += name.size() + 4;
  return request.substr(at, request.find("\r\n", at) - at);
}
std::string RequestBody(const std::string& request) {
  return request.substr(request.find("\r\n\r\n") + 4);
}

const std::string kMd5Mismatch = ScriptedServer::Response(
    400,
    "The MD5 value specified in the request did not match with the MD5 value calculated by "
    "the server.\r\nx-ms-error-code: Md5Mismatch",
    "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>Md5Mismatch</Code><Message>The MD5 "
    "value specified in the request did not match with the MD5 value calculated by the "
    "server.</Message></Error>");

// Put Blob and every Put Block carry the Content-MD5 of exactly their body; a body the service
// finds damaged (400 Md5Mismatch) is sent again, in full.
TEST(AzureBlobChecksumTest, UploadsSendContentMd5AndAMismatchIsRetried) {
  ScriptedServer server({kMd5Mismatch}, ScriptedServer::Response(201, "Created", ""));
  AzureBlobOptions o = ScriptedOptions(server);
  o.single_put_max_bytes = 10;
  o.block_size = 4;
  o.upload_parallelism = 1;
  auto store = AzureBlob::Open(o);
  ASSERT_TRUE(store.ok());
  Status s = (*store)->PutBytes("k", "payload");
  ASSERT_TRUE(s.ok()) << s.ToString();
  TempDir dir;
  WriteFile(dir.path() + "/f", "0123456789abcdefghij");  // 5 blocks of 4 bytes
  s = (*store)->PutFile("f", dir.path() + "/f");
  ASSERT_TRUE(s.ok()) << s.ToString();

  std::vector<std::string> reqs = server.requests();
  ASSERT_EQ(reqs.size(), 2u + 5u + 1u);
  for (size_t i = 0; i < 2; ++i) {
    EXPECT_EQ(RequestBody(reqs[i]), "payload");
    EXPECT_EQ(RequestHeader(reqs[i], "Content-MD5"), Md5Base64("payload")) << reqs[i];
  }
  for (size_t i = 2; i < 7; ++i) {
    EXPECT_NE(reqs[i].find("comp=block&"), std::string::npos) << reqs[i];
    const std::string body = RequestBody(reqs[i]);
    EXPECT_EQ(body, std::string("0123456789abcdefghij").substr((i - 2) * 4, 4));
    EXPECT_EQ(RequestHeader(reqs[i], "Content-MD5"), Md5Base64(body)) << reqs[i];
  }
  EXPECT_NE(reqs[7].find("comp=blocklist"), std::string::npos) << reqs[7];
}

TEST(AzureBlobChecksumTest, PersistentMismatchIsCorruptionWithTheServiceMessage) {
  ScriptedServer server({}, kMd5Mismatch);
  auto store = AzureBlob::Open(ScriptedOptions(server));
  ASSERT_TRUE(store.ok());
  Status s = (*store)->PutBytes("k", "payload");
  EXPECT_EQ(s.code(), StatusCode::kCorruption) << s.ToString();
  EXPECT_NE(s.message().find("HTTP 400 Md5Mismatch: The MD5 value specified in the request did "
                             "not match with the MD5 value calculated by the server. (after 4 "
                             "attempts)"),
            std::string::npos)
      << s.ToString();
  EXPECT_EQ(server.requests().size(), 4u);
}

// ---------------------------------------------------------------------------------------------
// Against azurite

// Runs `command` in bash after sourcing scripts/azurite.sh; returns its exit status and puts
// its output (stdout and stderr) in `out`.
int AzuriteSh(const std::string& command, std::string* out) {
  return testing::RunShell(
      "bash -c 'source " SLUICE_SOURCE_DIR "/scripts/azurite.sh && " + command + "'", out);
}

// An azurite of the test's own (scripts/azurite.sh), on a free port with its data in `dir`.
class AzuriteProcess {
 public:
  explicit AzuriteProcess(std::string dir) : dir_(std::move(dir)) {
    std::string out;
    if (AzuriteSh("azurite_free_port", &out) != 0) {
      ADD_FAILURE() << "azurite_free_port: " << out;
      return;
    }
    port_ = std::atoi(out.c_str());
    Start();
  }
  ~AzuriteProcess() { Stop(); }
  bool Start() {
    std::string out;
    bool ok = AzuriteSh("azurite_start " + dir_ + " " + std::to_string(port_), &out) == 0;
    if (!ok) ADD_FAILURE() << "azurite_start: " << out;
    return ok;
  }
  bool Stop() {
    std::string out;
    bool ok = AzuriteSh("azurite_stop " + dir_, &out) == 0;
    if (!ok) ADD_FAILURE() << "azurite_stop: " << out;
    return ok;
  }
  std::string endpoint() const {
    return "http://127.0.0.1:" + std::to_string(port_) + "/devstoreaccount1";
  }

 private:
  std::string dir_;
  int port_ = 0;
};

#define SLUICE_AZURE_OR_SKIP()                                                                 \
  if (Env("SLUICE_TEST_AZURE_CONNECTION_STRING").empty()) {                                    \
    if (Env("SLUICE_REQUIRE_AZURE") == "1") {                                                  \
      FAIL() << "SLUICE_TEST_AZURE_CONNECTION_STRING is not set, but SLUICE_REQUIRE_AZURE=1: " \
                "Azure tests must run";                                                        \
    }                                                                                          \
    GTEST_SKIP() << "SLUICE_TEST_AZURE_CONNECTION_STRING is not set: start azurite with "      \
                    "scripts/azurite.sh and set it to run Azure tests";                        \
  }

// A fresh container name per test.
std::string ContainerName(const std::string& tag) {
  static std::atomic<int> n{0};
  std::mt19937_64 rng(std::random_device{}());
  return "sluice-" + tag + "-" + std::to_string(rng() % 1'000'000'000) + "-" + std::to_string(n++);
}

class AzureBlobTest : public ::testing::Test {
 protected:
  void SetUp() override {
    SLUICE_AZURE_OR_SKIP();
    ASSERT_TRUE(ApplyConnectionString(Env("SLUICE_TEST_AZURE_CONNECTION_STRING"), &base_).ok());
    base_.container = ContainerName("t");
    base_.initial_backoff = std::chrono::milliseconds(20);
  }

  std::unique_ptr<AzureBlob> Open(const AzureBlobOptions& o, bool create = true) {
    auto r = AzureBlob::Open(o);
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    if (!r.ok()) return nullptr;
    if (create) {
      Status s = (*r)->CreateContainer();
      EXPECT_TRUE(s.ok()) << s.ToString();
    }
    return std::move(r).value();
  }

  AzureBlobOptions base_;
  TempDir dir_;
};

TEST_F(AzureBlobTest, PutGetHeadListDeleteRoundTrip) {
  auto store = Open(base_);
  ASSERT_NE(store, nullptr);
  EXPECT_TRUE(store->CreateContainer().ok()) << "creating an existing container is OK";
  const std::string key = "events/dt=2024-05-01/hour=12/a b+c.parquet";

  ASSERT_TRUE(store->PutBytes(key, "hello").ok());
  auto bytes = store->GetBytes(key);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  EXPECT_EQ(*bytes, "hello");

  auto head = store->Head(key);
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(head->key, key);
  EXPECT_EQ(head->size, 5u);
  EXPECT_FALSE(head->etag.empty());

  // Replace it with a file; read it back to a file.
  const std::string src = dir_.path() + "/src";
  const std::string payload = RandomBytes(300'000, 1);
  WriteFile(src, payload);
  ASSERT_TRUE(store->PutFile(key, src).ok());
  const std::string dst = dir_.path() + "/dst";
  Status got = store->GetFile(key, dst);
  ASSERT_TRUE(got.ok()) << got.ToString();
  EXPECT_EQ(ReadFile(dst), payload);
  EXPECT_EQ(testing::AllPathsUnder(dir_.path()), (std::vector<std::string>{"dst", "src"}))
      << "no temporary file is left";
  EXPECT_EQ(store->Head(key)->size, payload.size());

  ASSERT_TRUE(store->PutBytes("events/empty", "").ok());
  EXPECT_EQ(store->GetBytes("events/empty").value(), "");

  auto list = store->List("");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  EXPECT_EQ(Keys(*list), (std::vector<std::string>{"events/dt=2024-05-01/hour=12/a b+c.parquet",
                                                   "events/empty"}));
  EXPECT_EQ((*list)[0].size, payload.size());
  EXPECT_EQ((*list)[0].etag, store->Head(key)->etag);

  ASSERT_TRUE(store->Delete(key).ok());
  Result<ObjectInfo> missing = store->Head(key);
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find("BlobNotFound"), std::string::npos)
      << missing.status().ToString();
  Result<std::string> missing_bytes = store->GetBytes(key);
  EXPECT_EQ(missing_bytes.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing_bytes.status().message().find("BlobNotFound"), std::string::npos)
      << missing_bytes.status().ToString();
  EXPECT_EQ(store->GetFile(key, dir_.path() + "/nope").code(), StatusCode::kNotFound);
  EXPECT_FALSE(std::filesystem::exists(dir_.path() + "/nope"));
  EXPECT_TRUE(store->Delete(key).ok()) << "deleting a missing object is OK";
  EXPECT_EQ(Keys(*store->List("")), std::vector<std::string>{"events/empty"});
  EXPECT_EQ(store->PutBytes("../x", "x").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store->PutFile("x", dir_.path() + "/no-such-file").code(), StatusCode::kNotFound);
}

TEST_F(AzureBlobTest, ListFollowsMarkersAndStaysUnderThePrefix) {
  AzureBlobOptions o = base_;
  o.list_page_size = 3;
  auto root = Open(o);
  ASSERT_NE(root, nullptr);
  o.prefix = "sluice/prod";
  auto store = Open(o);
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->Url(), "az://" + o.container + "/sluice/prod");

  std::vector<std::string> want;
  for (int i = 0; i < 11; ++i) {
    std::string k = "events/dt=2024-05-01/f" + std::to_string(100 + i);
    ASSERT_TRUE(store->PutBytes(k, std::string(static_cast<size_t>(i), 'x')).ok());
    want.push_back(k);
  }
  ASSERT_TRUE(store->PutBytes("events/dt=2024-05-02/g", "y").ok());
  ASSERT_TRUE(store->PutBytes("_manifest/m", "z").ok());
  ASSERT_TRUE(root->PutBytes("sluice/prodx/outside", "o").ok());
  ASSERT_TRUE(root->PutBytes("other", "o").ok());

  auto day = store->List("events/dt=2024-05-01");
  ASSERT_TRUE(day.ok()) << day.status().ToString();
  EXPECT_EQ(Keys(*day), want);
  for (size_t i = 0; i < day->size(); ++i) EXPECT_EQ((*day)[i].size, i);

  auto all = store->List("");
  ASSERT_TRUE(all.ok()) << all.status().ToString();
  EXPECT_EQ(all->size(), 13u);
  EXPECT_EQ(all->front().key, "_manifest/m");
  EXPECT_EQ(root->List("")->size(), 15u);
  EXPECT_EQ(Keys(*root->List("sluice/prodx")), std::vector<std::string>{"sluice/prodx/outside"});
  EXPECT_TRUE(store->List("nothing")->empty());
}

TEST_F(AzureBlobTest, LargeFileIsUploadedAsCommittedBlocks) {
  AzureBlobOptions o = base_;
  o.single_put_max_bytes = 1 << 20;
  o.block_size = 256 << 10;
  o.upload_parallelism = 4;
  std::atomic<int> blocks{0};
  o.after_block_for_test = [&](int) { ++blocks; };
  auto store = Open(o);
  ASSERT_NE(store, nullptr);

  const std::string src = dir_.path() + "/big";
  const std::string payload = RandomBytes((9 << 18) + 12345, 2);  // 9 full blocks + a tail
  WriteFile(src, payload);
  Status put = store->PutFile("big/file.parquet", src);
  ASSERT_TRUE(put.ok()) << put.ToString();
  EXPECT_EQ(blocks.load(), 10);

  auto sizes = store->CommittedBlockSizes("big/file.parquet");
  ASSERT_TRUE(sizes.ok()) << sizes.status().ToString();
  ASSERT_EQ(sizes->size(), 10u);
  for (size_t i = 0; i < 9; ++i) EXPECT_EQ((*sizes)[i], 256u << 10);
  EXPECT_EQ(sizes->back(), 12345u);

  const std::string dst = dir_.path() + "/back";
  ASSERT_TRUE(store->GetFile("big/file.parquet", dst).ok());
  EXPECT_TRUE(ReadFile(dst) == payload) << "downloaded bytes differ";
  EXPECT_EQ(store->Head("big/file.parquet")->size, payload.size());

  // At the threshold exactly: one Put Blob, no blocks.
  blocks = 0;
  WriteFile(src, payload.substr(0, 1 << 20));
  ASSERT_TRUE(store->PutFile("small", src).ok());
  EXPECT_EQ(blocks.load(), 0);
  EXPECT_EQ(store->GetBytes("small").value(), payload.substr(0, 1 << 20));
}

TEST_F(AzureBlobTest, ErrorsCarryTheServiceCodeAndMessage) {
  AzureBlobOptions o = base_;
  auto missing = Open(o, /*create=*/false);
  ASSERT_NE(missing, nullptr);
  Result<std::vector<ObjectInfo>> list = missing->List("");
  EXPECT_EQ(list.status().code(), StatusCode::kNotFound);
  EXPECT_NE(list.status().message().find("ContainerNotFound"), std::string::npos)
      << list.status().ToString();
  Status put = missing->PutBytes("k", "v");
  EXPECT_EQ(put.code(), StatusCode::kNotFound);
  EXPECT_NE(put.message().find("The specified container does not exist"), std::string::npos)
      << put.ToString();

  o.account_key = "d3Jvbmcga2V5";  // "wrong key"
  auto wrong = Open(o, /*create=*/false);
  ASSERT_NE(wrong, nullptr);
  Status denied = wrong->PutBytes("k", "v");
  EXPECT_EQ(denied.code(), StatusCode::kPermissionDenied) << denied.ToString();
  EXPECT_NE(denied.message().find("HTTP 403"), std::string::npos) << denied.ToString();
  EXPECT_NE(denied.message().find("Authorization"), std::string::npos) << denied.ToString();
}

// Azurite checks Content-MD5 (it answers 400 InvalidOperation "Provided contentMD5 doesn't
// match.", where Azure says Md5Mismatch): a wrong one, on every attempt, fails the Put after the
// retries and stores nothing.
TEST_F(AzureBlobTest, AWrongContentMd5IsRefused) {
  AzureBlobOptions o = base_;
  o.single_put_max_bytes = 64 << 10;
  o.block_size = 16 << 10;
  o.max_retries = 1;
  o.content_md5_for_test = [](std::string* md5) { *md5 = Md5Base64("something else"); };
  auto store = Open(o);
  ASSERT_NE(store, nullptr);
  Status put = store->PutBytes("bytes", "v");
  EXPECT_EQ(put.code(), StatusCode::kCorruption) << put.ToString();
  EXPECT_NE(put.message().find("HTTP 400"), std::string::npos) << put.ToString();
  EXPECT_NE(put.message().find("(after 2 attempts)"), std::string::npos) << put.ToString();
  const std::string src = dir_.path() + "/f";
  WriteFile(src, RandomBytes(100'000, 4));
  Status blocks = store->PutFile("blocks", src);
  EXPECT_EQ(blocks.code(), StatusCode::kCorruption) << blocks.ToString();
  EXPECT_NE(blocks.message().find(" of 7)"), std::string::npos) << blocks.ToString();
  EXPECT_NE(blocks.message().find("contentMD5"), std::string::npos) << blocks.ToString();
  auto list = store->List("");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  EXPECT_TRUE(list->empty());
}

TEST_F(AzureBlobTest, ConcurrentCallsFromManyThreads) {
  AzureBlobOptions o = base_;
  o.single_put_max_bytes = 64 << 10;
  o.block_size = 16 << 10;
  auto store = Open(o);
  ASSERT_NE(store, nullptr);
  std::vector<std::string> files;
  for (int t = 0; t < 8; ++t) {
    files.push_back(dir_.path() + "/f" + std::to_string(t));
    WriteFile(files.back(), RandomBytes(100'000 + static_cast<size_t>(t), 10 + t));
  }
  std::atomic<int> failures{0};
  {
    std::vector<std::jthread> threads;
    for (int t = 0; t < 8; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < 3; ++i) {
          std::string key = "t" + std::to_string(t) + "/o" + std::to_string(i);
          Status s = i % 2 == 0 ? store->PutFile(key, files[static_cast<size_t>(t)])
                                : store->PutBytes(key, "x" + key);
          if (!s.ok()) {
            ADD_FAILURE() << s.ToString();
            ++failures;
          }
          Result<ObjectInfo> h = store->Head(key);
          if (!h.ok()) ++failures;
        }
      });
    }
  }
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(store->List("")->size(), 24u);
  EXPECT_TRUE(store->GetBytes("t3/o0").value() == ReadFile(files[3]));
  EXPECT_EQ(store->GetBytes("t5/o1").value(), "xt5/o1");
}

// A private azurite is stopped while a block upload is under way: the upload fails with the
// network error once the retries are spent and leaves no blob; after a restart the same
// upload succeeds. A short outage inside the retry window is ridden out by the retries.
TEST(AzureBlobOutageTest, ServerStoppedInTheMiddleOfAnUpload) {
  SLUICE_AZURE_OR_SKIP();
  TempDir dir;
  AzuriteProcess azurite(dir.path() + "/azurite");
  AzureBlobOptions o;
  ASSERT_TRUE(ApplyConnectionString(kAzuriteConnectionString, &o).ok());
  o.endpoint = azurite.endpoint();
  o.container = "outage";
  o.single_put_max_bytes = 256 << 10;
  o.block_size = 128 << 10;
  o.upload_parallelism = 2;
  o.max_retries = 2;
  o.initial_backoff = std::chrono::milliseconds(50);
  o.connect_timeout = std::chrono::seconds(2);
  std::atomic<bool> stop_at_block_3{true};
  o.after_block_for_test = [&](int block) {
    if (block == 3 && stop_at_block_3.exchange(false)) azurite.Stop();
  };
  auto opened = AzureBlob::Open(o);
  ASSERT_TRUE(opened.ok()) << opened.status().ToString();
  auto& store = *opened;
  ASSERT_TRUE(store->CreateContainer().ok());

  const std::string src = dir.path() + "/big";
  const std::string payload = RandomBytes(4 << 20, 3);  // 32 blocks
  WriteFile(src, payload);
  Status failed = store->PutFile("events/big.parquet", src);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.code(), StatusCode::kUnavailable) << failed.ToString();
  EXPECT_NE(failed.message().find("block"), std::string::npos) << failed.ToString();
  EXPECT_NE(failed.message().find("after 3 attempts"), std::string::npos) << failed.ToString();
  // curl's message ("Couldn't connect to server", "Connection reset by peer", …).
  EXPECT_TRUE(failed.message().find("onnect") != std::string::npos ||
              failed.message().find("Recv failure") != std::string::npos ||
              failed.message().find("Send failure") != std::string::npos ||
              failed.message().find("Empty reply") != std::string::npos)
      << "the network error's message: " << failed.ToString();

  ASSERT_TRUE(azurite.Start());
  EXPECT_EQ(store->Head("events/big.parquet").status().code(), StatusCode::kNotFound)
      << "no partial blob is visible";
  auto list = store->List("");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  EXPECT_TRUE(list->empty()) << list->size() << " objects, first " << list->front().key;

  Status retried = store->PutFile("events/big.parquet", src);
  ASSERT_TRUE(retried.ok()) << retried.ToString();
  EXPECT_TRUE(store->GetBytes("events/big.parquet").value() == payload);

  // An outage well inside the retries' backoff (50+100+…+6400 ms) does not fail the upload:
  // the thread that stored block 3 stops azurite and starts it again (about a second) while
  // the other upload thread retries.
  AzureBlobOptions patient = o;
  patient.max_retries = 8;
  std::atomic<bool> bounce{true};
  patient.after_block_for_test = [&](int block) {
    if (block == 3 && bounce.exchange(false)) {
      azurite.Stop();
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      azurite.Start();
    }
  };
  auto patient_store = AzureBlob::Open(patient);
  ASSERT_TRUE(patient_store.ok());
  Status ridden = (*patient_store)->PutFile("events/bounced.parquet", src);
  ASSERT_TRUE(ridden.ok()) << ridden.ToString();
  EXPECT_TRUE((*patient_store)->GetBytes("events/bounced.parquet").value() == payload);
  EXPECT_EQ((*patient_store)->CommittedBlockSizes("events/bounced.parquet")->size(), 32u);
}

}  // namespace
}  // namespace sluice::objstore
