// The shared plumbing of S3 and AzureBlob without a server: retries, parallel parts, downloads
// to a temporary file, checksums of file ranges, encodings, XML. The exchanges themselves are
// tested through the stores (s3_unit_test's fake S3, azure_blob_test's scripted server).
#include "objstore/http_client.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <fstream>
#include <set>

#include "objstore/test_util.h"

namespace sluice::objstore::http {
namespace {

TEST(HttpRetry, StopsWhenAnAttemptSaysSoOrTheRetriesAreSpent) {
  RetryPolicy policy{3, std::chrono::milliseconds(1)};
  int calls = 0;
  EXPECT_EQ(Retry(policy, [&] { return ++calls < 2; }), 2);
  EXPECT_EQ(calls, 2);
  calls = 0;
  EXPECT_EQ(Retry(policy, [&] { return ++calls > 0; }), 4);  // always "retry": 1 + 3
  EXPECT_EQ(calls, 4);
  calls = 0;
  EXPECT_EQ(Retry({0, std::chrono::milliseconds(1)}, [&] { return ++calls > 0; }), 1);
}

TEST(HttpParallelFor, RunsEveryIndexOnceAndStopsAfterAFailure) {
  std::mutex mu;
  std::multiset<uint64_t> seen;
  Status s = ParallelFor(100, 4, [&](uint64_t i) {
    std::lock_guard<std::mutex> lock(mu);
    seen.insert(i);
    return Status::OK();
  });
  EXPECT_TRUE(s.ok());
  ASSERT_EQ(seen.size(), 100u);
  for (uint64_t i = 0; i < 100; ++i) EXPECT_EQ(seen.count(i), 1u);

  std::atomic<int> calls{0};
  s = ParallelFor(1000, 1, [&](uint64_t i) {
    ++calls;
    return i == 3 ? Status::IOError("part 3 failed") : Status::OK();
  });
  EXPECT_EQ(s.message(), "part 3 failed");
  EXPECT_EQ(calls.load(), 4) << "no index starts after the failure";
  EXPECT_TRUE(ParallelFor(0, 4, [](uint64_t) { return Status::IOError("never"); }).ok());
}

TEST(HttpDownloadToFile, RenamesOnSuccessAndLeavesNothingOnFailure) {
  sluice::testing::TempDir dir;
  const std::string dst = dir.path() + "/out";
  Status s = DownloadToFile(dst, [](int fd) {
    return ::write(fd, "abc", 3) == 3 ? Status::OK() : Status::IOError("write");
  });
  ASSERT_TRUE(s.ok()) << s.ToString();
  std::ifstream in(dst);
  std::string got((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(got, "abc");

  s = DownloadToFile(dst, [](int fd) {
    const bool wrote = ::write(fd, "partial", 7) == 7;
    return Status::Unavailable(wrote ? "connection reset" : "write failed");
  });
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_EQ(objstore::testing::AllPathsUnder(dir.path()), std::vector<std::string>{"out"});
  std::ifstream again(dst);
  got.assign((std::istreambuf_iterator<char>(again)), std::istreambuf_iterator<char>());
  EXPECT_EQ(got, "abc") << "the destination is untouched";
}

TEST(HttpChecksums, Md5OfAFileRangeIsTheMd5OfThoseBytes) {
  sluice::testing::TempDir dir;
  std::string data(3 << 20, '\0');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7 + (i >> 12));
  {
    std::ofstream out(dir.path() + "/f", std::ios::binary);
    out.write(data.data(), static_cast<std::streamsize>(data.size()));
  }
  Result<FileToUpload> file = OpenFileToUpload(dir.path() + "/f");
  ASSERT_TRUE(file.ok()) << file.status().ToString();
  EXPECT_EQ(file->size, data.size());
  Result<std::string> md5 = Md5OfFileRange(file->fd.get(), 12345, (2 << 20) + 17);
  ASSERT_TRUE(md5.ok()) << md5.status().ToString();
  EXPECT_EQ(*md5, Md5(std::string_view(data).substr(12345, (2 << 20) + 17)));
  EXPECT_EQ(Md5OfFileRange(file->fd.get(), data.size() - 1, 2).status().code(),
            StatusCode::kIOError);

  EXPECT_EQ(HexEncode(Md5("")), "d41d8cd98f00b204e9800998ecf8427e");
  EXPECT_EQ(Base64Encode(Md5("")), "1B2M2Y8AsgTpgAmY7PhCfg==");
  EXPECT_EQ(OpenFileToUpload(dir.path() + "/missing").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(OpenFileToUpload(dir.path()).status().code(), StatusCode::kInvalidArgument);
}

TEST(HttpEncodings, PercentEncodeLowerTrim) {
  EXPECT_EQ(PercentEncode("a b/c=d~é", false), "a%20b%2Fc%3Dd~%C3%A9");
  EXPECT_EQ(PercentEncode("a b/c", true), "a%20b/c");
  EXPECT_EQ(Lower("Content-MD5"), "content-md5");
  EXPECT_EQ(Trim(" \t x y \r\n"), "x y");
}

TEST(HttpXml, TreeWithoutNamespacePrefixes) {
  Result<std::unique_ptr<XmlNode>> doc = ParseXml(
      "<?xml version=\"1.0\"?><s3:R xmlns:s3=\"u\"><s3:K>a&amp;b</s3:K><K>c</K><L/></s3:R>");
  ASSERT_TRUE(doc.ok()) << doc.status().ToString();
  const XmlNode& root = (*doc)->Child("R");
  EXPECT_EQ(root.ChildText("K"), "a&b");
  EXPECT_EQ(root.Children("K").size(), 2u);
  EXPECT_EQ(root.Child("missing").Child("deeper").text, "");
  EXPECT_EQ(ParseXml("<a><b></a>").status().code(), StatusCode::kCorruption);
  EXPECT_EQ(ParseXml("").status().code(), StatusCode::kCorruption);
}

}  // namespace
}  // namespace sluice::objstore::http
