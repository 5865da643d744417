// S3 against a real s3rver (scripts/s3rver.sh): put/get/head/list/delete, multipart upload, a
// missing bucket, and a server that is down before or stops during an upload.
//
// Runs when SLUICE_TEST_S3_ENDPOINT (http://127.0.0.1:PORT) and SLUICE_TEST_S3_BUCKET are set,
// as scripts/test.sh does (with AWS_ACCESS_KEY_ID=S3RVER and AWS_SECRET_ACCESS_KEY=S3RVER); it
// exports SLUICE_REQUIRE_S3=1 too, so that the tests fail rather than skip without them. Every
// test writes below a prefix of its own. The outage tests start s3rvers of their own.
#include "objstore/s3.h"

#include <gtest/gtest.h>
#include <signal.h>
#include <stdio.h>
#include <sys/wait.h>

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <thread>

#include "common/temp_dir.h"
#include "objstore/s3rver_test_server.h"

namespace sluice::objstore {
namespace {

using ::sluice::testing::TempDir;

using testing::EnvOr;
using testing::S3rverProcess;
using testing::UniquePrefix;

S3Options TestOptions(const std::string& endpoint, const std::string& bucket,
                      const std::string& prefix) {
  S3Options o;
  o.endpoint = endpoint;
  o.bucket = bucket;
  o.prefix = prefix;
  o.region = EnvOr("AWS_REGION", "us-east-1");
  o.access_key_id = EnvOr("AWS_ACCESS_KEY_ID", "S3RVER");
  o.secret_access_key = EnvOr("AWS_SECRET_ACCESS_KEY", "S3RVER");
  o.retry_base_delay = std::chrono::milliseconds(10);
  return o;
}

std::unique_ptr<S3> OpenOrDie(const S3Options& o) {
  Result<std::unique_ptr<S3>> s3 = S3::Open(o);
  EXPECT_TRUE(s3.ok()) << s3.status().ToString();
  return s3.ok() ? std::move(s3).value() : nullptr;
}

std::string RandomBytes(size_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::string s(n, '\0');
  for (size_t i = 0; i + 8 <= n; i += 8) {
    uint64_t v = rng();
    std::memcpy(s.data() + i, &v, 8);
  }
  return s;
}

void WriteFile(const std::string& path, const std::string& data) {
  std::ofstream f(path, std::ios::binary);
  f.write(data.data(), static_cast<std::streamsize>(data.size()));
  ASSERT_TRUE(f.good());
}

std::string ReadFile(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

class S3Test : public ::testing::Test {
 protected:
  void SetUp() override {
    SLUICE_S3_OR_SKIP();
    endpoint_ = EnvOr("SLUICE_TEST_S3_ENDPOINT");
    bucket_ = EnvOr("SLUICE_TEST_S3_BUCKET");
  }
  std::string endpoint_;
  std::string bucket_;
  TempDir tmp_{"sluice-s3-test"};
};

TEST_F(S3Test, PutGetHeadListDelete) {
  S3Options o = TestOptions(endpoint_, bucket_, UniquePrefix("basic"));
  o.list_page_size = 3;  // 10 keys: four pages
  std::unique_ptr<S3> s3 = OpenOrDie(o);
  ASSERT_NE(s3, nullptr);
  ASSERT_TRUE(s3->CheckBucket().ok()) << s3->CheckBucket().ToString();
  EXPECT_EQ(s3->Url(), "s3://" + bucket_ + "/" + o.prefix);

  // Keys with the characters the Hive layout and odd names bring.
  const std::string key = "events/dt=2024-05-01/hour=12/events-20240501T1200Z-a b+c.parquet";
  ASSERT_TRUE(s3->PutBytes(key, "hello parquet").ok());
  Result<std::string> got = s3->GetBytes(key);
  ASSERT_TRUE(got.ok()) << got.status().ToString();
  EXPECT_EQ(*got, "hello parquet");
  Result<ObjectInfo> head = s3->Head(key);
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(head->key, key);
  EXPECT_EQ(head->size, 13u);
  EXPECT_FALSE(head->etag.empty());
  EXPECT_EQ(head->etag.find('"'), std::string::npos);

  // A Put replaces.
  ASSERT_TRUE(s3->PutBytes(key, "v2").ok());
  EXPECT_EQ(*s3->GetBytes(key), "v2");

  // PutFile / GetFile.
  const std::string data = RandomBytes(300 * 1024 + 7, 1);
  WriteFile(tmp_.path() + "/in", data);
  ASSERT_TRUE(s3->PutFile("files/one", tmp_.path() + "/in").ok());
  ASSERT_TRUE(s3->GetFile("files/one", tmp_.path() + "/out").ok());
  EXPECT_EQ(ReadFile(tmp_.path() + "/out"), data);
  EXPECT_EQ(s3->Head("files/one")->size, data.size());

  // Missing objects.
  Result<ObjectInfo> missing = s3->Head("no/such/key");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound) << missing.status().ToString();
  Result<std::string> missing_get = s3->GetBytes("no/such/key");
  EXPECT_EQ(missing_get.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing_get.status().message().find("NoSuchKey"), std::string::npos)
      << missing_get.status().message();
  Status missing_file = s3->GetFile("no/such/key", tmp_.path() + "/nothing");
  EXPECT_EQ(missing_file.code(), StatusCode::kNotFound);
  EXPECT_FALSE(std::ifstream(tmp_.path() + "/nothing").good());
  EXPECT_EQ(s3->PutFile("x", tmp_.path() + "/no-such-file").code(), StatusCode::kNotFound);

  // List across pages, sorted, relative to the store's prefix.
  std::vector<std::string> keys;
  for (int i = 0; i < 10; ++i) {
    keys.push_back("list/k" + std::to_string(i));
    ASSERT_TRUE(s3->PutBytes(keys.back(), std::string(static_cast<size_t>(i), 'x')).ok());
  }
  Result<std::vector<ObjectInfo>> listed = s3->List("list/");
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  ASSERT_EQ(listed->size(), 10u);
  for (size_t i = 0; i < 10; ++i) {
    EXPECT_EQ((*listed)[i].key, keys[i]);
    EXPECT_EQ((*listed)[i].size, i);
  }
  Result<std::vector<ObjectInfo>> all = s3->List("");
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->size(), 12u);
  Result<std::vector<ObjectInfo>> partial = s3->List("events/dt=2024-05");
  ASSERT_TRUE(partial.ok());
  ASSERT_EQ(partial->size(), 1u);
  EXPECT_EQ((*partial)[0].key, key);
  EXPECT_TRUE(s3->List("nothing/")->empty());

  // Delete; deleting what is gone is OK.
  ASSERT_TRUE(s3->Delete(key).ok());
  EXPECT_EQ(s3->Head(key).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(s3->Delete(key).ok());
  EXPECT_EQ(s3->List("")->size(), 11u);
  EXPECT_EQ(s3->counters().retries, 0u);
}

// The options an operator gets from s3://BUCKET/PREFIX and the AWS SDKs' variables
// (AWS_ENDPOINT_URL pointed at s3rver) work as they are.
TEST_F(S3Test, OptionsFromUrlAndSdkEnvironment) {
  const std::string endpoint = endpoint_;
  EnvLookup env = [endpoint](const std::string& name) -> std::optional<std::string> {
    if (name == "AWS_ENDPOINT_URL") return endpoint;
    if (name == "AWS_ENDPOINT_URL_S3") return std::nullopt;
    std::optional<std::string> v = ProcessEnv(name);
    if (!v && name == "AWS_ACCESS_KEY_ID") return "S3RVER";
    if (!v && name == "AWS_SECRET_ACCESS_KEY") return "S3RVER";
    return v;
  };
  const std::string prefix = UniquePrefix("fromurl");
  Result<S3Options> o = S3OptionsFromUrl("s3://" + bucket_ + "/" + prefix + "/", env);
  ASSERT_TRUE(o.ok()) << o.status().ToString();
  std::unique_ptr<S3> s3 = OpenOrDie(*o);
  ASSERT_NE(s3, nullptr);
  EXPECT_EQ(s3->Url(), "s3://" + bucket_ + "/" + prefix);
  ASSERT_TRUE(s3->CheckBucket().ok());
  ASSERT_TRUE(s3->PutBytes("_manifest/x.json", "{}").ok());
  EXPECT_EQ(*s3->GetBytes("_manifest/x.json"), "{}");
}

TEST_F(S3Test, MultipartUploadAboveThreshold) {
  S3Options o = TestOptions(endpoint_, bucket_, UniquePrefix("multipart"));
  o.multipart_threshold = 5 << 20;
  o.part_size = 5 << 20;
  std::unique_ptr<S3> s3 = OpenOrDie(o);
  ASSERT_NE(s3, nullptr);
  const std::string data = RandomBytes((13 << 20) + 123, 2);  // parts of 5, 5 and 3 MiB
  WriteFile(tmp_.path() + "/big", data);

  ASSERT_TRUE(s3->PutFile("big.parquet", tmp_.path() + "/big").ok());
  S3::Counters c = s3->counters();
  EXPECT_EQ(c.multipart_uploads, 1u);
  EXPECT_EQ(c.parts_uploaded, 3u);
  EXPECT_EQ(c.aborted_uploads, 0u);

  Result<ObjectInfo> head = s3->Head("big.parquet");
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(head->size, data.size());
  // AWS and MinIO tag a multipart object "<md5 of the part md5s>-<parts>"; s3rver gives the
  // whole object's MD5.
  if (head->etag.find('-') != std::string::npos) {
    EXPECT_TRUE(head->etag.ends_with("-3")) << head->etag;
  }
  ASSERT_TRUE(s3->GetFile("big.parquet", tmp_.path() + "/back").ok());
  EXPECT_TRUE(ReadFile(tmp_.path() + "/back") == data) << "downloaded bytes differ";

  // A file at the threshold goes up in one PUT.
  WriteFile(tmp_.path() + "/at", data.substr(0, 5 << 20));
  ASSERT_TRUE(s3->PutFile("at-threshold", tmp_.path() + "/at").ok());
  EXPECT_EQ(s3->counters().multipart_uploads, 1u);
  EXPECT_EQ(s3->Head("at-threshold")->size, 5u << 20);
}

TEST_F(S3Test, MissingBucketSaysSo) {
  S3Options o = TestOptions(endpoint_, "sluice-no-such-bucket", "p");
  std::unique_ptr<S3> s3 = OpenOrDie(o);
  ASSERT_NE(s3, nullptr);
  Status check = s3->CheckBucket();
  EXPECT_EQ(check.code(), StatusCode::kFailedPrecondition) << check.ToString();
  EXPECT_NE(check.message().find("NoSuchBucket"), std::string::npos) << check.message();
  EXPECT_NE(check.message().find("The specified bucket does not exist"), std::string::npos)
      << check.message();
  Status put = s3->PutBytes("k", "v");
  EXPECT_EQ(put.code(), StatusCode::kFailedPrecondition) << put.ToString();
  EXPECT_NE(put.message().find("s3://sluice-no-such-bucket/p/k"), std::string::npos)
      << put.message();
  EXPECT_NE(put.message().find("NoSuchBucket"), std::string::npos) << put.message();
  Result<std::string> get = s3->GetBytes("k");
  EXPECT_EQ(get.status().code(), StatusCode::kFailedPrecondition) << get.status().ToString();
  Result<std::vector<ObjectInfo>> list = s3->List("");
  EXPECT_NE(list.status().message().find("NoSuchBucket"), std::string::npos)
      << list.status().ToString();
  EXPECT_EQ(s3->Head("k").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(s3->counters().retries, 0u);  // a 404 is not retried
}

// Runs `command` (no s3rver.sh), returns its stdout.
std::string Output(const std::string& command) {
  std::string out;
  FILE* p = ::popen(command.c_str(), "r");
  if (p == nullptr) return out;
  char buf[4096];
  size_t n;
  while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
  ::pclose(p);
  return out;
}

// What S3 writes is read back by an independent client (@aws-sdk/client-s3 in
// tests/peers/s3-head-get.mjs): same size, same SHA-256, single PUT and multipart alike.
TEST_F(S3Test, IndependentClientReadsTheObjects) {
  S3Options o = TestOptions(endpoint_, bucket_, UniquePrefix("independent"));
  o.multipart_threshold = 5 << 20;
  o.part_size = 5 << 20;
  std::unique_ptr<S3> s3 = OpenOrDie(o);
  ASSERT_NE(s3, nullptr);
  for (size_t size : {size_t{1000}, size_t{(12 << 20) + 5}}) {
    const std::string path = tmp_.path() + "/f" + std::to_string(size);
    WriteFile(path, RandomBytes(size, size));
    const std::string key = "dt=2024-05-01/f " + std::to_string(size) + ".parquet";
    ASSERT_TRUE(s3->PutFile(key, path).ok());
    std::string sha = Output("sha256sum '" + path + "'");
    sha = sha.substr(0, sha.find(' '));
    std::string json = Output("node " SLUICE_SOURCE_DIR "/tests/peers/s3-head-get.mjs '" + bucket_ +
                              "' '" + o.prefix + "/" + key + "' 2>/dev/null");
    EXPECT_NE(json.find("\"size\":" + std::to_string(size) + ","), std::string::npos) << json;
    EXPECT_NE(json.find("\"sha256\":\"" + sha + "\""), std::string::npos) << json;
  }
  EXPECT_EQ(s3->counters().multipart_uploads, 1u);
}

// The server is down when the upload starts: the error names the network failure, nothing is
// visible, and once the server is back the same Put succeeds.
TEST_F(S3Test, ServerDownThenBack) {
  S3rverProcess server(tmp_.path() + "/s3rver");
  S3Options o = TestOptions(server.endpoint(), "private", "down");
  o.multipart_threshold = 5 << 20;
  o.part_size = 5 << 20;
  o.max_retries = 2;
  std::unique_ptr<S3> s3 = OpenOrDie(o);
  ASSERT_NE(s3, nullptr);
  const std::string data = RandomBytes(11 << 20, 3);
  WriteFile(tmp_.path() + "/f", data);
  ASSERT_TRUE(server.Stop());

  Status put = s3->PutFile("obj", tmp_.path() + "/f");
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.code(), StatusCode::kUnavailable) << put.ToString();
  EXPECT_NE(put.message().find("127.0.0.1"), std::string::npos) << put.message();
  EXPECT_NE(put.message().find("gave up after 3 attempts"), std::string::npos) << put.message();
  EXPECT_EQ(s3->counters().retries, 2u);
  Status small = s3->PutBytes("small", "x");
  EXPECT_EQ(small.code(), StatusCode::kUnavailable) << small.ToString();

  ASSERT_TRUE(server.Start());
  EXPECT_EQ(s3->Head("obj").status().code(), StatusCode::kNotFound);
  ASSERT_TRUE(s3->PutFile("obj", tmp_.path() + "/f").ok());
  EXPECT_TRUE(*s3->GetBytes("obj") == data);
}

// The server dies (kill -9) between parts of a multipart upload: the Put fails with the
// network error, no partial object is visible after a restart, and a retry succeeds.
TEST_F(S3Test, ServerKilledMidMultipartUpload) {
  S3rverProcess server(tmp_.path() + "/s3rver");
  S3Options o = TestOptions(server.endpoint(), "private", "mid");
  o.multipart_threshold = 5 << 20;
  o.part_size = 5 << 20;
  o.parallel_parts = 1;  // parts in order, so the kill lands with parts still to go
  o.max_retries = 2;
  std::unique_ptr<S3> s3 = OpenOrDie(o);
  ASSERT_NE(s3, nullptr);
  const std::string data = RandomBytes(60 << 20, 4);  // 12 parts
  WriteFile(tmp_.path() + "/f", data);

  Status put;
  std::thread uploader([&] { put = s3->PutFile("obj", tmp_.path() + "/f"); });
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  while (s3->counters().parts_uploaded < 1 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::microseconds(200));
  }
  server.Kill9();
  uploader.join();
  ASSERT_LT(s3->counters().parts_uploaded, 12u) << "the upload finished before the kill";
  ASSERT_FALSE(put.ok());
  EXPECT_EQ(put.code(), StatusCode::kUnavailable) << put.ToString();
  EXPECT_NE(put.message().find("multipart upload to s3://private/mid/obj"), std::string::npos)
      << put.message();
  EXPECT_NE(put.message().find("part "), std::string::npos) << put.message();
  EXPECT_EQ(s3->counters().multipart_uploads, 0u);
  EXPECT_EQ(s3->counters().aborted_uploads, 1u);

  ASSERT_TRUE(server.Start());
  EXPECT_EQ(s3->Head("obj").status().code(), StatusCode::kNotFound);
  Result<std::vector<ObjectInfo>> listed = s3->List("");
  ASSERT_TRUE(listed.ok()) << listed.status().ToString();
  EXPECT_TRUE(listed->empty());

  ASSERT_TRUE(s3->PutFile("obj", tmp_.path() + "/f").ok());
  EXPECT_EQ(s3->counters().multipart_uploads, 1u);
  ASSERT_TRUE(s3->GetFile("obj", tmp_.path() + "/back").ok());
  EXPECT_TRUE(ReadFile(tmp_.path() + "/back") == data);
}

}  // namespace
}  // namespace sluice::objstore
