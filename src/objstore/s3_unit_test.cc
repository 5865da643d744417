// S3 without a real service: s3:// URLs and the AWS environment variables, option checks, S3's
// URI encoding, the XML answers (errors, list pages, multipart initiation); then, against a
// fake S3 of the test's own on 127.0.0.1 (port 0), every request's SigV4 signature recomputed
// as AWS does, retries on 5xx/429 and none on 4xx, and the abort of a failed multipart upload.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <deque>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

#include "common/metrics.h"
#include "common/temp_dir.h"
#include "objstore/s3.h"

namespace sluice::objstore {
namespace {

EnvLookup FakeEnv(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](const std::string& name) -> std::optional<std::string> {
    auto it = vars.find(name);
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

const std::map<std::string, std::string> kCreds = {{"AWS_ACCESS_KEY_ID", "AKID"},
                                                   {"AWS_SECRET_ACCESS_KEY", "SECRET"},
                                                   {"AWS_REGION", "eu-west-1"}};

TEST(S3OptionsFromUrl, BucketAndPrefix) {
  Result<S3Options> o = S3OptionsFromUrl("s3://my-bucket/some/prefix/", FakeEnv(kCreds));
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->bucket, "my-bucket");
  EXPECT_EQ(o->prefix, "some/prefix");
  EXPECT_EQ(o->region, "eu-west-1");
  EXPECT_EQ(o->access_key_id, "AKID");
  EXPECT_EQ(o->secret_access_key, "SECRET");
  EXPECT_EQ(o->endpoint, "");
  EXPECT_EQ(o->multipart_threshold, 64ull << 20);
  EXPECT_EQ(o->part_size, 16ull << 20);
  EXPECT_EQ(o->parallel_parts, 4);
  EXPECT_EQ(o->max_retries, 5);

  o = S3OptionsFromUrl("s3://b", FakeEnv(kCreds));
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->bucket, "b");
  EXPECT_EQ(o->prefix, "");
  o = S3OptionsFromUrl("s3://b/", FakeEnv(kCreds));
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->prefix, "");
}

TEST(S3OptionsFromUrl, MalformedUrls) {
  for (const char* url :
       {"s3://", "s3:///prefix", "file:///x", "s3://user:pw@bucket/p", "s3://b/a//c"}) {
    Result<S3Options> o = S3OptionsFromUrl(url, FakeEnv(kCreds));
    ASSERT_FALSE(o.ok()) << url;
    EXPECT_EQ(o.status().code(), StatusCode::kInvalidArgument) << url;
  }
  EXPECT_NE(S3OptionsFromUrl("s3://", FakeEnv(kCreds)).status().message().find("no bucket"),
            std::string::npos);
}

TEST(S3OptionsFromUrl, MissingCredentialsSaySo) {
  Result<S3Options> o = S3OptionsFromUrl("s3://b/p", FakeEnv({{"AWS_REGION", "us-east-1"}}));
  ASSERT_FALSE(o.ok());
  EXPECT_EQ(o.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(o.status().message().find("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not set"),
            std::string::npos)
      << o.status().message();

  o = S3OptionsFromUrl("s3://b/p", FakeEnv({{"AWS_ACCESS_KEY_ID", "A"}, {"AWS_REGION", "x"}}));
  ASSERT_FALSE(o.ok());
  EXPECT_NE(o.status().message().find("AWS_SECRET_ACCESS_KEY is not set"), std::string::npos)
      << o.status().message();
  EXPECT_EQ(o.status().message().find("AWS_ACCESS_KEY_ID is"), std::string::npos);
}

TEST(S3OptionsFromUrl, SecretNeverInMessages) {
  Result<S3Options> o = S3OptionsFromUrl(
      "s3://b/p", FakeEnv({{"AWS_ACCESS_KEY_ID", "A"}, {"AWS_SECRET_ACCESS_KEY", "TOPSECRET"}}));
  ASSERT_FALSE(o.ok());  // no region
  EXPECT_EQ(o.status().message().find("TOPSECRET"), std::string::npos);
  EXPECT_NE(o.status().message().find("AWS_REGION"), std::string::npos) << o.status().message();
}

TEST(S3OptionsFromUrl, RegionAndEndpoint) {
  auto env = kCreds;
  env.erase("AWS_REGION");
  env["AWS_DEFAULT_REGION"] = "ap-south-1";
  Result<S3Options> o = S3OptionsFromUrl("s3://b", FakeEnv(env));
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->region, "ap-south-1");

  env.erase("AWS_DEFAULT_REGION");
  env["AWS_ENDPOINT_URL"] = "http://127.0.0.1:9000/";
  o = S3OptionsFromUrl("s3://b", FakeEnv(env));
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  EXPECT_EQ(o->endpoint, "http://127.0.0.1:9000");
  EXPECT_EQ(o->region, "us-east-1");  // the default with an endpoint

  env["AWS_ENDPOINT_URL_S3"] = "https://storage.googleapis.com";
  env["AWS_SESSION_TOKEN"] = "tok";
  o = S3OptionsFromUrl("s3://b", FakeEnv(env));
  ASSERT_TRUE(o.ok());
  EXPECT_EQ(o->endpoint, "https://storage.googleapis.com");  // the S3-specific one wins
  EXPECT_EQ(o->session_token, "tok");
}

TEST(S3Open, ChecksOptions) {
  S3Options good;
  good.bucket = "b";
  good.access_key_id = "a";
  good.secret_access_key = "s";
  ASSERT_TRUE(S3::Open(good).ok());

  auto expect_bad = [&](S3Options o, const std::string& words) {
    Result<std::unique_ptr<S3>> s3 = S3::Open(o);
    ASSERT_FALSE(s3.ok()) << words;
    EXPECT_EQ(s3.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(s3.status().message().find(words), std::string::npos) << s3.status().message();
  };
  S3Options o = good;
  o.bucket = "";
  expect_bad(o, "bucket name is empty");
  o = good;
  o.secret_access_key = "";
  expect_bad(o, "no credentials");
  o = good;
  o.part_size = 1 << 20;
  expect_bad(o, "part size");
  o = good;
  o.endpoint = "127.0.0.1:9000";
  expect_bad(o, "not an http:// or https:// URL");
  o = good;
  o.list_page_size = 0;
  expect_bad(o, "list page size");
}

TEST(S3Open, Url) {
  S3Options o;
  o.bucket = "b";
  o.prefix = "/a/b/";
  o.access_key_id = "a";
  o.secret_access_key = "s";
  Result<std::unique_ptr<S3>> s3 = S3::Open(o);
  ASSERT_TRUE(s3.ok());
  EXPECT_EQ((*s3)->Url(), "s3://b/a/b");
  EXPECT_EQ((*s3)->LocalPath("x"), std::nullopt);
  // Keys are validated before any request: no network here.
  EXPECT_EQ((*s3)->PutBytes("../x", "").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ((*s3)->Head("a//b").status().code(), StatusCode::kInvalidArgument);
}

TEST(S3Internal, UriEncode) {
  using s3_internal::UriEncode;
  EXPECT_EQ(UriEncode("events/dt=2024-05-01/hour=12/a b.parquet", true),
            "events/dt%3D2024-05-01/hour%3D12/a%20b.parquet");
  EXPECT_EQ(UriEncode("a/b", false), "a%2Fb");
  EXPECT_EQ(UriEncode("AZaz09-_.~", false), "AZaz09-_.~");
  EXPECT_EQ(UriEncode("é+*", false), "%C3%A9%2B%2A");
}

TEST(S3Internal, ParseError) {
  auto e = s3_internal::ParseError(
      "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>NoSuchBucket</Code>"
      "<Message>The specified bucket does not exist</Message><BucketName>x</BucketName></Error>");
  ASSERT_TRUE(e.has_value());
  EXPECT_EQ(e->code, "NoSuchBucket");
  EXPECT_EQ(e->message, "The specified bucket does not exist");
  EXPECT_FALSE(s3_internal::ParseError("").has_value());
  EXPECT_FALSE(s3_internal::ParseError("<html>Bad Gateway</html>").has_value());
  EXPECT_FALSE(s3_internal::ParseError("<Error><Code>trunc").has_value());
}

TEST(S3Internal, ParseListPage) {
  Result<s3_internal::ListPage> p = s3_internal::ParseListPage(
      "<?xml version=\"1.0\"?><ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
      "<Name>b</Name><Prefix>p/</Prefix><KeyCount>2</KeyCount><MaxKeys>2</MaxKeys>"
      "<IsTruncated>true</IsTruncated>"
      "<Contents><Key>p/a&amp;b</Key><LastModified>2024-01-01T00:00:00.000Z</LastModified>"
      "<ETag>&quot;abc&quot;</ETag><Size>12</Size><StorageClass>STANDARD</StorageClass></Contents>"
      "<Contents><Key>p/c</Key><ETag>\"def-3\"</ETag><Size>0</Size></Contents>"
      "<NextContinuationToken>tok/+=</NextContinuationToken></ListBucketResult>");
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  ASSERT_EQ(p->objects.size(), 2u);
  EXPECT_EQ(p->objects[0].key, "p/a&b");
  EXPECT_EQ(p->objects[0].size, 12u);
  EXPECT_EQ(p->objects[0].etag, "abc");
  EXPECT_EQ(p->objects[1].etag, "def-3");
  EXPECT_TRUE(p->truncated);
  EXPECT_EQ(p->next_token, "tok/+=");

  p = s3_internal::ParseListPage(
      "<ListBucketResult><IsTruncated>false</IsTruncated>"
      "</ListBucketResult>");
  ASSERT_TRUE(p.ok());
  EXPECT_TRUE(p->objects.empty());
  EXPECT_FALSE(p->truncated);

  EXPECT_EQ(s3_internal::ParseListPage("<ListBucketResult><IsTruncated>true</IsTruncated>"
                                       "</ListBucketResult>")
                .status()
                .code(),
            StatusCode::kCorruption);
  EXPECT_EQ(s3_internal::ParseListPage("<ListBucketResult><Contents><Key>k</Key><Size>x</Size>"
                                       "</Contents></ListBucketResult>")
                .status()
                .code(),
            StatusCode::kCorruption);
  EXPECT_EQ(s3_internal::ParseListPage("not xml").status().code(), StatusCode::kCorruption);
}

TEST(S3Internal, ParseUploadId) {
  Result<std::string> id = s3_internal::ParseUploadId(
      "<InitiateMultipartUploadResult><Bucket>b</Bucket><Key>k</Key><UploadId>xyz</UploadId>"
      "</InitiateMultipartUploadResult>");
  ASSERT_TRUE(id.ok());
  EXPECT_EQ(*id, "xyz");
  EXPECT_FALSE(s3_internal::ParseUploadId("<Other/>").ok());
}

// ---- SigV4 as AWS checks it ------------------------------------------------------------------
//
// s3rver does not verify signatures, so this checks them here: a fake S3 on 127.0.0.1 records
// every request S3 sends, and each Authorization header is recomputed from the request as
// received, the way AWS does (decode the path and query, re-encode them canonically, sort the
// query). It catches what curl 7.88's signer leaves to us: the query must already be
// canonical (sorted, "uploads="), the path encoded as S3 encodes it, and the payload hash
// header present.

std::string Hex(const unsigned char* d, size_t n) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (size_t i = 0; i < n; ++i) {
    out += kHex[d[i] >> 4];
    out += kHex[d[i] & 15];
  }
  return out;
}

std::string Sha256Hex(const std::string& s) {
  unsigned char d[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(s.data()), s.size(), d);
  return Hex(d, sizeof d);
}

std::string Hmac(const std::string& key, const std::string& msg) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), d, &n);
  return std::string(reinterpret_cast<char*>(d), n);
}

std::string PercentDecode(std::string_view s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out += static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

struct RecordedRequest {
  std::string method;
  std::string target;                          // path?query as sent
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
};

std::string Md5Raw(const std::string& s) {
  unsigned char d[EVP_MAX_MD_SIZE];
  unsigned int n = 0;
  EVP_Digest(s.data(), s.size(), d, &n, EVP_md5(), nullptr);
  return std::string(reinterpret_cast<char*>(d), n);
}
std::string Md5Hex(const std::string& s) {
  std::string d = Md5Raw(s);
  return Hex(reinterpret_cast<const unsigned char*>(d.data()), d.size());
}
std::string Md5Base64(const std::string& s) {
  std::string d = Md5Raw(s);
  unsigned char out[32];
  int n = EVP_EncodeBlock(out, reinterpret_cast<const unsigned char*>(d.data()),
                          static_cast<int>(d.size()));
  return std::string(reinterpret_cast<char*>(out), static_cast<size_t>(n));
}

// The signature AWS would expect for `r` with `secret` (region and service from the header).
std::string ExpectedSignature(const RecordedRequest& r, const std::string& secret) {
  const std::string auth = r.headers.at("authorization");
  auto field = [&](const std::string& name) {
    size_t p = auth.find(name + "=");
    size_t e = auth.find(',', p);
    return auth.substr(p + name.size() + 1,
                       e == std::string::npos ? std::string::npos : e - p - name.size() - 1);
  };
  const std::string credential = field("Credential");  // AK/date/region/s3/aws4_request
  const std::string signed_headers = field("SignedHeaders");
  std::vector<std::string> scope;
  for (size_t p = 0, e; p != std::string::npos; p = e == std::string::npos ? e : e + 1) {
    e = credential.find('/', p);
    scope.push_back(credential.substr(p, e == std::string::npos ? e : e - p));
  }
  const size_t q = r.target.find('?');
  const std::string path = PercentDecode(r.target.substr(0, q));
  std::vector<std::pair<std::string, std::string>> params;
  if (q != std::string::npos) {
    std::string query = r.target.substr(q + 1);
    for (size_t p = 0, e; p <= query.size(); p = e + 1) {
      e = query.find('&', p);
      if (e == std::string::npos) e = query.size();
      std::string kv = query.substr(p, e - p);
      size_t eq = kv.find('=');
      params.emplace_back(s3_internal::UriEncode(PercentDecode(kv.substr(0, eq)), false),
                          eq == std::string::npos
                              ? ""
                              : s3_internal::UriEncode(PercentDecode(kv.substr(eq + 1)), false));
    }
  }
  std::sort(params.begin(), params.end());
  std::string canonical_query;
  for (const auto& [k, v] : params) {
    if (!canonical_query.empty()) canonical_query += '&';
    canonical_query += k + "=" + v;
  }
  std::string canonical_headers;
  for (size_t p = 0, e; p <= signed_headers.size(); p = e + 1) {
    e = signed_headers.find(';', p);
    if (e == std::string::npos) e = signed_headers.size();
    std::string name = signed_headers.substr(p, e - p);
    canonical_headers += name + ":" + r.headers.at(name) + "\n";
  }
  const std::string canonical = r.method + "\n" + s3_internal::UriEncode(path, true) + "\n" +
                                canonical_query + "\n" + canonical_headers + "\n" + signed_headers +
                                "\n" + r.headers.at("x-amz-content-sha256");
  const std::string date = r.headers.at("x-amz-date");
  const std::string to_sign = "AWS4-HMAC-SHA256\n" + date + "\n" + scope[1] + "/" + scope[2] + "/" +
                              scope[3] + "/" + scope[4] + "\n" + Sha256Hex(canonical);
  std::string key = Hmac("AWS4" + secret, scope[1]);
  key = Hmac(key, scope[2]);
  key = Hmac(key, scope[3]);
  key = Hmac(key, scope[4]);
  const std::string sig = Hmac(key, to_sign);
  return Hex(reinterpret_cast<const unsigned char*>(sig.data()), sig.size());
}

// A fake S3 on 127.0.0.1: answers what S3 needs (an UploadId, part ETags, an empty list page)
// and records every request. Like S3, it answers a PUT whose body does not match its
// Content-MD5 with 400 BadDigest, and gives a PUT the ETag of its body's MD5. One connection at
// a time; "Connection: close" on every answer.
class RecordingServer {
 public:
  RecordingServer() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    EXPECT_EQ(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
    EXPECT_EQ(::listen(fd_, 16), 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~RecordingServer() {
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<RecordedRequest> requests() {
    std::lock_guard<std::mutex> lock(mu_);
    return requests_;
  }
  // The next requests get these answers ("503 Slow Down", body) instead of the usual ones.
  void FailNext(std::vector<std::pair<std::string, std::string>> answers) {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto& a : answers) failures_.push_back(std::move(a));
  }
  // The next `n` request bodies arrive with their first byte flipped, as if damaged in transit.
  void DamageNextBodies(int n) {
    std::lock_guard<std::mutex> lock(mu_);
    damage_bodies_ += n;
  }

 private:
  void Serve() {
    for (;;) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      std::string data;
      char buf[65536];
      size_t header_end;
      while ((header_end = data.find("\r\n\r\n")) == std::string::npos) {
        ssize_t n = ::read(c, buf, sizeof buf);
        if (n <= 0) break;
        data.append(buf, static_cast<size_t>(n));
      }
      if (header_end == std::string::npos) {
        ::close(c);
        continue;
      }
      if (data.find("Expect: 100-continue") < header_end) {
        const char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
        ssize_t w = ::write(c, kContinue, sizeof kContinue - 1);
        (void)w;
      }
      RecordedRequest r;
      std::string head = data.substr(0, header_end);
      size_t eol = head.find("\r\n");
      std::string line = head.substr(0, eol);
      r.method = line.substr(0, line.find(' '));
      r.target = line.substr(r.method.size() + 1, line.rfind(' ') - r.method.size() - 1);
      for (size_t p = eol + 2; p < head.size();) {
        size_t e = head.find("\r\n", p);
        if (e == std::string::npos) e = head.size();
        std::string h = head.substr(p, e - p);
        size_t colon = h.find(':');
        std::string name = h.substr(0, colon);
        std::transform(name.begin(), name.end(), name.begin(), ::tolower);
        std::string value = h.substr(colon + 1);
        value.erase(0, value.find_first_not_of(' '));
        r.headers[name] = value;
        p = e + 2;
      }
      size_t body_len =
          r.headers.count("content-length") ? std::stoul(r.headers["content-length"]) : 0;
      while (data.size() - header_end - 4 < body_len) {
        ssize_t n = ::read(c, buf, sizeof buf);
        if (n <= 0) break;
        data.append(buf, static_cast<size_t>(n));
      }
      r.body = data.substr(header_end + 4, body_len);
      std::string received = r.body;
      {
        std::lock_guard<std::mutex> lock(mu_);
        if (damage_bodies_ > 0 && !received.empty()) {
          --damage_bodies_;
          received[0] = static_cast<char>(received[0] ^ 1);
        }
      }
      const bool bad_digest =
          r.headers.count("content-md5") && r.headers["content-md5"] != Md5Base64(received);
      std::string body;
      if (r.method == "POST" && r.target.find("uploads=") != std::string::npos) {
        body =
            "<InitiateMultipartUploadResult><UploadId>up/1+2</UploadId>"
            "</InitiateMultipartUploadResult>";
      } else if (r.method == "GET" && r.target.find("list-type=2") != std::string::npos) {
        body = "<ListBucketResult><IsTruncated>false</IsTruncated></ListBucketResult>";
      } else if (r.method == "GET") {
        body = "content";
      }
      const std::string etag = r.method == "PUT" ? Md5Hex(received) : "etag1";
      std::string resp = "HTTP/1.1 " +
                         std::string(r.method == "DELETE" ? "204 No Content" : "200 OK") +
                         "\r\nETag: \"" + etag + "\"\r\nConnection: close\r\n";
      if (r.method != "DELETE") resp += "Content-Length: " + std::to_string(body.size()) + "\r\n";
      resp += "\r\n";
      if (r.method != "HEAD") resp += body;
      if (bad_digest) {
        const std::string xml =
            "<Error><Code>BadDigest</Code><Message>The Content-MD5 you specified did not match "
            "what we received.</Message></Error>";
        resp = "HTTP/1.1 400 Bad Request\r\nConnection: close\r\nContent-Length: " +
               std::to_string(xml.size()) + "\r\n\r\n" + xml;
      }
      {
        // Recorded before answering: once the client has its answer, the request is listed.
        std::lock_guard<std::mutex> lock(mu_);
        requests_.push_back(std::move(r));
        if (!failures_.empty()) {
          auto [status, xml] = failures_.front();
          failures_.pop_front();
          resp = "HTTP/1.1 " + status +
                 "\r\nConnection: close\r\nContent-Length: " + std::to_string(xml.size()) +
                 "\r\n\r\n" + xml;
        }
      }
      ssize_t w = ::write(c, resp.data(), resp.size());
      (void)w;
      ::close(c);
    }
  }

  int fd_ = -1;
  int port_ = 0;
  std::thread thread_;
  std::mutex mu_;
  std::vector<RecordedRequest> requests_;                     // protected by mu_
  std::deque<std::pair<std::string, std::string>> failures_;  // protected by mu_
  int damage_bodies_ = 0;                                     // protected by mu_
};

TEST(S3SigV4, EveryRequestVerifiesAsAwsWould) {
  RecordingServer server;
  S3Options o;
  o.endpoint = server.endpoint();
  o.bucket = "bkt";
  o.prefix = "pre fix";
  o.region = "eu-central-1";
  o.access_key_id = "AKIDEXAMPLE";
  o.secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
  o.session_token = "session/token+=";
  o.multipart_threshold = 1;  // a 10-byte file goes up as a multipart upload of one part
  o.max_retries = 0;
  Result<std::unique_ptr<S3>> s3 = S3::Open(o);
  ASSERT_TRUE(s3.ok());
  sluice::testing::TempDir tmp("sluice-s3-sigv4");
  {
    std::ofstream f(tmp.path() + "/f");
    f << "0123456789";
  }
  const std::string key = "events/dt=2024-05-01/hour=12/a b+c~d.parquet";
  EXPECT_TRUE((*s3)->PutBytes(key, "hello").ok());
  EXPECT_TRUE((*s3)->PutFile(key, tmp.path() + "/f").ok());
  EXPECT_TRUE((*s3)->GetBytes(key).ok());
  EXPECT_TRUE((*s3)->Head(key).ok());
  EXPECT_TRUE((*s3)->List("events/dt=2024-05-01/").ok());
  EXPECT_TRUE((*s3)->Delete(key).ok());
  EXPECT_TRUE((*s3)->CheckBucket().ok());

  std::vector<RecordedRequest> reqs = server.requests();
  // PUT, POST uploads, PUT part, POST complete, GET, HEAD, GET list, DELETE, GET list.
  ASSERT_EQ(reqs.size(), 9u);
  for (const RecordedRequest& r : reqs) {
    ASSERT_TRUE(r.headers.count("authorization")) << r.method << " " << r.target;
    ASSERT_TRUE(r.headers.count("x-amz-content-sha256")) << r.method << " " << r.target;
    EXPECT_EQ(r.headers.at("x-amz-security-token"), "session/token+=");
    const std::string auth = r.headers.at("authorization");
    EXPECT_NE(auth.find("/eu-central-1/s3/aws4_request"), std::string::npos) << auth;
    EXPECT_NE(auth.find("x-amz-security-token"), std::string::npos) << auth;
    const std::string got = auth.substr(auth.find("Signature=") + 10);
    EXPECT_EQ(got, ExpectedSignature(r, o.secret_access_key)) << r.method << " " << r.target;
  }
  EXPECT_EQ(reqs[0].target, "/bkt/pre%20fix/events/dt%3D2024-05-01/hour%3D12/a%20b%2Bc~d.parquet");
  EXPECT_NE(reqs[1].target.find("?uploads="), std::string::npos);
  EXPECT_NE(reqs[2].target.find("?partNumber=1&uploadId=up%2F1%2B2"), std::string::npos);
}

S3Options RetryOptions(const std::string& endpoint) {
  S3Options o;
  o.endpoint = endpoint;
  o.bucket = "bkt";
  o.access_key_id = "AK";
  o.secret_access_key = "SK";
  o.max_retries = 2;
  o.retry_base_delay = std::chrono::milliseconds(1);
  return o;
}

std::string ErrorXml(const std::string& code, const std::string& message) {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>" + code + "</Code><Message>" +
         message + "</Message></Error>";
}

TEST(S3Retries, RetriesOn5xxAnd429ThenSucceeds) {
  RecordingServer server;
  Result<std::unique_ptr<S3>> s3 = S3::Open(RetryOptions(server.endpoint()));
  ASSERT_TRUE(s3.ok());
  server.FailNext({{"503 Slow Down", ErrorXml("SlowDown", "Please reduce your request rate.")},
                   {"429 Too Many Requests", ""}});
  Status put = (*s3)->PutBytes("k", "v");
  EXPECT_TRUE(put.ok()) << put.ToString();
  EXPECT_EQ((*s3)->counters().retries, 2u);
  EXPECT_EQ(server.requests().size(), 3u);
}

// Every exchange is counted in /metrics by its answer, and the bytes it moved.
TEST(S3Metrics, RequestsAreCountedByAnswer) {
  RecordingServer server;
  Result<std::unique_ptr<S3>> s3 = S3::Open(RetryOptions(server.endpoint()));
  ASSERT_TRUE(s3.ok());
  auto value = [](const std::string& series) -> uint64_t {
    const std::string text = metrics::Default().RenderPrometheus();
    const size_t at = text.find("\n" + series + " ");
    return at == std::string::npos ? 0 : std::stoull(text.substr(at + series.size() + 2));
  };
  const std::string ok_puts =
      "sluice_objstore_requests_total{service=\"s3\",method=\"PUT\",result=\"2xx\"}";
  const std::string failed_puts =
      "sluice_objstore_requests_total{service=\"s3\",method=\"PUT\",result=\"5xx\"}";
  const std::string sent = "sluice_objstore_sent_bytes_total{service=\"s3\"}";
  const uint64_t ok0 = value(ok_puts), failed0 = value(failed_puts), sent0 = value(sent);
  server.FailNext({{"503 Slow Down", ErrorXml("SlowDown", "Please reduce your request rate.")}});
  ASSERT_TRUE((*s3)->PutBytes("k", std::string(1000, 'x')).ok());
  EXPECT_EQ(value(ok_puts), ok0 + 1);
  EXPECT_EQ(value(failed_puts), failed0 + 1);
  EXPECT_EQ(value(sent), sent0 + 2000);  // the body went twice
  EXPECT_NE(metrics::Default().RenderPrometheus().find(
                "sluice_objstore_requests_in_flight{service=\"s3\"} 0"),
            std::string::npos);
}

TEST(S3Retries, GivesUpWithTheServiceMessage) {
  RecordingServer server;
  Result<std::unique_ptr<S3>> s3 = S3::Open(RetryOptions(server.endpoint()));
  ASSERT_TRUE(s3.ok());
  const std::string xml = ErrorXml("InternalError", "We encountered an internal error.");
  server.FailNext({{"500 Internal Server Error", xml},
                   {"500 Internal Server Error", xml},
                   {"500 Internal Server Error", xml}});
  Result<std::string> got = (*s3)->GetBytes("a/b");
  ASSERT_FALSE(got.ok());
  EXPECT_EQ(got.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(got.status().message(),
            "S3 GET s3://bkt/a/b: HTTP 500 InternalError: We encountered an internal error. "
            "(gave up after 3 attempts)");
}

TEST(S3Retries, ClientErrorsAreNotRetried) {
  RecordingServer server;
  Result<std::unique_ptr<S3>> s3 = S3::Open(RetryOptions(server.endpoint()));
  ASSERT_TRUE(s3.ok());
  server.FailNext({{"403 Forbidden", ErrorXml("AccessDenied", "Access Denied")}});
  Status put = (*s3)->PutBytes("k", "v");
  EXPECT_EQ(put.code(), StatusCode::kPermissionDenied);
  EXPECT_EQ(put.message(), "S3 PUT s3://bkt/k: HTTP 403 AccessDenied: Access Denied");
  EXPECT_EQ((*s3)->counters().retries, 0u);
}

// A part that fails for good aborts the upload (DELETE ?uploadId=), and the error names the
// part.
TEST(S3Retries, FailedPartAbortsTheUpload) {
  RecordingServer server;
  S3Options o = RetryOptions(server.endpoint());
  o.max_retries = 0;
  o.multipart_threshold = 1;
  Result<std::unique_ptr<S3>> s3 = S3::Open(o);
  ASSERT_TRUE(s3.ok());
  sluice::testing::TempDir tmp("sluice-s3-abort");
  {
    std::ofstream f(tmp.path() + "/f");
    f << "0123456789";
  }
  server.FailNext({{"200 OK",
                    "<InitiateMultipartUploadResult><UploadId>u1</UploadId>"
                    "</InitiateMultipartUploadResult>"},
                   {"400 Bad Request", ErrorXml("EntityTooSmall",
                                                "Your proposed upload is "
                                                "smaller than the minimum.")}});
  Status put = (*s3)->PutFile("k", tmp.path() + "/f");
  EXPECT_EQ(put.code(), StatusCode::kInvalidArgument) << put.ToString();
  EXPECT_NE(put.message().find("part 1 of 1"), std::string::npos) << put.message();
  EXPECT_NE(put.message().find("EntityTooSmall"), std::string::npos) << put.message();
  std::vector<RecordedRequest> reqs = server.requests();
  ASSERT_EQ(reqs.size(), 3u);
  EXPECT_EQ(reqs[2].method, "DELETE");
  EXPECT_EQ(reqs[2].target, "/bkt/k?uploadId=u1");
  EXPECT_EQ((*s3)->counters().aborted_uploads, 1u);
}

// ---- checksums on upload ---------------------------------------------------------------------

// Every request with a body that uploads object bytes (PutBytes, a single PutFile, each part of
// a multipart upload) carries the Content-MD5 of exactly that body.
// Against the fake S3, which checks Content-MD5 as S3 does. `Store()` opens the S3 under test
// (with RetryOptions, adjusted by `adjust`).
class S3Checksums : public ::testing::Test {
 protected:
  S3& Store(const std::function<void(S3Options*)>& adjust = nullptr) {
    S3Options o = RetryOptions(server_.endpoint());
    if (adjust) adjust(&o);
    Result<std::unique_ptr<S3>> s3 = S3::Open(o);
    EXPECT_TRUE(s3.ok()) << s3.status().ToString();
    s3_ = std::move(s3).value();
    return *s3_;
  }
  void WriteFile(const std::string& name, const std::string& data) {
    std::ofstream f(tmp_.path() + "/" + name, std::ios::binary);
    f.write(data.data(), static_cast<std::streamsize>(data.size()));
  }
  std::string Path(const std::string& name) const { return tmp_.path() + "/" + name; }

  RecordingServer server_;
  sluice::testing::TempDir tmp_{"sluice-s3-md5"};
  std::unique_ptr<S3> s3_;
};

TEST_F(S3Checksums, EveryUploadSendsTheMd5OfItsBody) {
  S3& s3 = Store([](S3Options* o) {
    o->multipart_threshold = 6ull << 20;
    o->part_size = 5ull << 20;
    o->parallel_parts = 2;
  });
  std::string big((12 << 20) + 7, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 131 + (i >> 20));
  WriteFile("big", big);
  WriteFile("small", "a small file");
  ASSERT_TRUE(s3.PutBytes("bytes", "hello").ok());
  ASSERT_TRUE(s3.PutBytes("empty", "").ok());
  ASSERT_TRUE(s3.PutFile("small", Path("small")).ok());
  Status multipart = s3.PutFile("big", Path("big"));
  ASSERT_TRUE(multipart.ok()) << multipart.ToString();
  EXPECT_EQ(s3.counters().parts_uploaded, 3u);

  std::vector<std::string> put_bodies;
  for (const RecordedRequest& r : server_.requests()) {
    if (r.method != "PUT") {
      EXPECT_EQ(r.headers.count("content-md5"), 0u) << r.method << " " << r.target;
      continue;
    }
    ASSERT_EQ(r.headers.count("content-md5"), 1u) << r.target;
    EXPECT_EQ(r.headers.at("content-md5"), Md5Base64(r.body)) << r.target;
    put_bodies.push_back(r.body);
  }
  std::sort(put_bodies.begin(), put_bodies.end());
  std::vector<std::string> want = {"hello",
                                   "",
                                   "a small file",
                                   big.substr(0, 5 << 20),
                                   big.substr(5 << 20, 5 << 20),
                                   big.substr(10 << 20)};
  std::sort(want.begin(), want.end());
  EXPECT_TRUE(put_bodies == want) << "each PUT sent exactly its body";
}

// A body damaged in transit (S3: 400 BadDigest) is sent again, read afresh from the file.
TEST_F(S3Checksums, BadDigestIsRetried) {
  S3& s3 = Store();
  WriteFile("f", "0123456789");
  server_.DamageNextBodies(2);
  Status put = s3.PutFile("k", Path("f"));
  ASSERT_TRUE(put.ok()) << put.ToString();
  EXPECT_EQ(s3.counters().retries, 2u);
  std::vector<RecordedRequest> reqs = server_.requests();
  ASSERT_EQ(reqs.size(), 3u);
  for (const RecordedRequest& r : reqs) EXPECT_EQ(r.body, "0123456789");

  // Every attempt damaged: Corruption with S3's message, after the retries.
  server_.DamageNextBodies(3);
  put = s3.PutBytes("k", "v");
  EXPECT_EQ(put.code(), StatusCode::kCorruption) << put.ToString();
  EXPECT_EQ(put.message(),
            "S3 PUT s3://bkt/k: HTTP 400 BadDigest: The Content-MD5 you specified did not match "
            "what we received. (gave up after 3 attempts)");
}

// A single PUT's ETag must be the MD5 of what was sent, unless S3 says the object is encrypted
// with SSE-KMS (or SSE-C), whose ETags are not MD5s.
TEST_F(S3Checksums, SinglePutChecksTheEtag) {
  S3& s3 = Store();
  // FailNext's status line may carry headers.
  server_.FailNext({{"200 OK\r\nETag: \"0123456789abcdef0123456789abcdef\"", ""}});
  Status put = s3.PutBytes("k", "v");
  EXPECT_EQ(put.code(), StatusCode::kCorruption) << put.ToString();
  EXPECT_NE(put.message().find("0123456789abcdef0123456789abcdef"), std::string::npos)
      << put.ToString();
  EXPECT_NE(put.message().find(Md5Hex("v")), std::string::npos) << put.ToString();
  EXPECT_EQ(s3.counters().retries, 0u);

  server_.FailNext({{"200 OK\r\nETag: \"opaque\"\r\nx-amz-server-side-encryption: aws:kms", ""},
                    {"200 OK\r\nETag: \"opaque\"\r\n"
                     "x-amz-server-side-encryption-customer-algorithm: AES256",
                     ""}});
  EXPECT_TRUE(s3.PutBytes("k", "v").ok());
  EXPECT_TRUE(s3.PutBytes("k", "v").ok());
}

}  // namespace
}  // namespace sluice::objstore
