#include "objstore/local_dir.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "objstore/object_store.h"
#include "objstore/test_util.h"

namespace sluice::objstore {
namespace {

using testing::AllPathsUnder;
using testing::TempDir;

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

std::vector<std::string> Keys(const std::vector<ObjectInfo>& infos) {
  std::vector<std::string> keys;
  for (const ObjectInfo& i : infos) keys.push_back(i.key);
  return keys;
}

std::unique_ptr<LocalDir> OpenOrDie(const std::string& root) {
  auto r = LocalDir::Open(root);
  EXPECT_TRUE(r.ok()) << r.status().ToString();
  return std::move(r).value();
}

TEST(LocalDirTest, PutBytesGetHeadListDeleteRoundTrip) {
  TempDir dir;
  auto store = OpenOrDie(dir.path() + "/objects");
  const std::string key = "events/dt=2024-05-01/hour=12/a.parquet";

  ASSERT_TRUE(store->PutBytes(key, "hello").ok());
  auto bytes = store->GetBytes(key);
  ASSERT_TRUE(bytes.ok()) << bytes.status().ToString();
  EXPECT_EQ(*bytes, "hello");

  auto head = store->Head(key);
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(head->key, key);
  EXPECT_EQ(head->size, 5u);
  EXPECT_TRUE(head->etag.starts_with("5-")) << head->etag;

  // The object is the plain file under the root.
  auto local = store->LocalPath(key);
  ASSERT_TRUE(local.has_value());
  EXPECT_EQ(*local, dir.path() + "/objects/" + key);
  EXPECT_EQ(ReadFile(*local), "hello");

  auto list = store->List("");
  ASSERT_TRUE(list.ok()) << list.status().ToString();
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].key, key);
  EXPECT_EQ((*list)[0].size, 5u);

  ASSERT_TRUE(store->Delete(key).ok());
  EXPECT_EQ(store->Head(key).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store->GetBytes(key).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(store->Delete(key).ok()) << "deleting a missing object is OK";
  EXPECT_TRUE(store->List("")->empty());
}

TEST(LocalDirTest, PutFileAndGetFileCopy) {
  TempDir dir;
  auto store = OpenOrDie(dir.path() + "/objects");
  const std::string src = dir.path() + "/src.bin";
  std::string content(3 << 20, '\0');
  for (size_t i = 0; i < content.size(); ++i) content[i] = static_cast<char>(i * 7 + i / 4096);
  WriteFile(src, content);

  ASSERT_TRUE(store->PutFile("a/b/c.bin", src).ok());
  EXPECT_EQ(ReadFile(dir.path() + "/objects/a/b/c.bin"), content);
  EXPECT_EQ(ReadFile(src), content) << "the source is copied, not consumed";

  const std::string dst = dir.path() + "/dst.bin";
  WriteFile(dst, "old content");
  ASSERT_TRUE(store->GetFile("a/b/c.bin", dst).ok());
  EXPECT_EQ(ReadFile(dst), content);

  // No temporary files anywhere.
  EXPECT_EQ(AllPathsUnder(dir.path()),
            (std::vector<std::string>{"dst.bin", "objects", "objects/a", "objects/a/b",
                                      "objects/a/b/c.bin", "src.bin"}));
}

// On one file system PutFile links the file into place (no second copy of a window's bytes);
// across file systems (here /dev/shm, a tmpfs, when it is one) it copies. Either way the
// object outlives the source.
TEST(LocalDirTest, PutFileLinksOnTheSameFileSystemAndCopiesAcross) {
  TempDir dir;
  auto store = OpenOrDie(dir.path() + "/objects");
  const std::string src = dir.path() + "/src.bin";
  const std::string content(1 << 20, 'x');
  WriteFile(src, content);
  ASSERT_TRUE(store->PutFile("w/one.bin", src).ok());
  struct stat a {}, b {};
  ASSERT_EQ(::stat(src.c_str(), &a), 0);
  ASSERT_EQ(::stat((dir.path() + "/objects/w/one.bin").c_str(), &b), 0);
  EXPECT_EQ(a.st_ino, b.st_ino) << "linked, not copied";
  EXPECT_EQ(b.st_nlink, 2u);
  ASSERT_EQ(::unlink(src.c_str()), 0);
  EXPECT_EQ(ReadFile(dir.path() + "/objects/w/one.bin"), content);

  struct stat shm {}, tmp {};
  if (::stat("/dev/shm", &shm) != 0 || ::stat(dir.path().c_str(), &tmp) != 0 ||
      shm.st_dev == tmp.st_dev) {
    GTEST_SKIP() << "no second file system at /dev/shm to copy across";
  }
  const std::string far = "/dev/shm/sluice-local-dir-test-" + std::to_string(::getpid());
  WriteFile(far, content);
  Status put = store->PutFile("w/two.bin", far);
  ::unlink(far.c_str());
  ASSERT_TRUE(put.ok()) << put.ToString();
  ASSERT_EQ(::stat((dir.path() + "/objects/w/two.bin").c_str(), &b), 0);
  EXPECT_EQ(b.st_nlink, 1u) << "copied";
  EXPECT_EQ(ReadFile(dir.path() + "/objects/w/two.bin"), content);
  EXPECT_EQ(AllPathsUnder(dir.path()),
            (std::vector<std::string>{"objects", "objects/w", "objects/w/one.bin",
                                      "objects/w/two.bin"}));
}

TEST(LocalDirTest, PutReplacesExistingObject) {
  TempDir dir;
  auto store = OpenOrDie(dir.path());
  ASSERT_TRUE(store->PutBytes("k", std::string(1000, 'x')).ok());
  ASSERT_TRUE(store->PutBytes("k", "short").ok());
  EXPECT_EQ(*store->GetBytes("k"), "short");
  EXPECT_EQ(store->Head("k")->size, 5u);
  EXPECT_EQ(AllPathsUnder(dir.path()), std::vector<std::string>{"k"});
}

// A reader running beside a writer that keeps replacing the object must always see one whole
// version: the old one or the new one, never a truncated or mixed file.
TEST(LocalDirTest, ReplaceIsAtomicForConcurrentReaders) {
  TempDir dir;
  auto store = OpenOrDie(dir.path());
  constexpr size_t kSize = 2 << 20;
  const std::string a(kSize, 'a');
  const std::string b(kSize, 'b');
  ASSERT_TRUE(store->PutBytes("obj", a).ok());
  const std::string path = *store->LocalPath("obj");

  std::atomic<bool> done{false};
  std::atomic<int> reads{0};
  std::atomic<int> bad{0};
  std::thread reader([&] {
    while (!done.load() || reads.load() < 20) {
      ++reads;
      auto got = store->GetBytes("obj");
      if (!got.ok()) {
        ++bad;
        continue;
      }
      std::string direct = ReadFile(path);
      for (const std::string* s : {&*got, &direct}) {
        bool whole = s->size() == kSize &&
                     (s->find_first_not_of(s->front()) == std::string::npos);
        if (!whole) ++bad;
      }
    }
  });
  for (int i = 0; i < 20; ++i) {
    ASSERT_TRUE(store->PutBytes("obj", i % 2 == 0 ? b : a).ok());
  }
  done = true;
  reader.join();
  EXPECT_EQ(bad.load(), 0) << "a reader saw a partial object in " << reads.load() << " reads";
  EXPECT_EQ(AllPathsUnder(dir.path()), std::vector<std::string>{"obj"})
      << "temporary files left behind";
}

TEST(LocalDirTest, FailedPutLeavesOldObjectAndNoTempFile) {
  TempDir dir;
  auto store = OpenOrDie(dir.path() + "/objects");
  ASSERT_TRUE(store->PutBytes("x/k", "old").ok());
  const std::string missing = dir.path() + "/no-such-source";
  Status s = store->PutFile("x/k", missing);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.code(), StatusCode::kNotFound);
  EXPECT_NE(s.message().find(missing), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("No such file or directory"), std::string::npos) << s.ToString();
  EXPECT_EQ(*store->GetBytes("x/k"), "old");
  EXPECT_EQ(AllPathsUnder(dir.path() + "/objects"), (std::vector<std::string>{"x", "x/k"}));
}

TEST(LocalDirTest, PutFailsWhenDirectoryIsAFile) {
  TempDir dir;
  auto store = OpenOrDie(dir.path());
  ASSERT_TRUE(store->PutBytes("a", "file, not a directory").ok());
  Status s = store->PutBytes("a/b", "x");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.message().find(dir.path() + "/a"), std::string::npos) << s.ToString();
  EXPECT_NE(s.message().find("Not a directory"), std::string::npos) << s.ToString();
}

TEST(LocalDirTest, GetFileFailureLeavesDestinationAlone) {
  TempDir dir;
  auto store = OpenOrDie(dir.path() + "/objects");
  const std::string dst = dir.path() + "/dst";
  WriteFile(dst, "keep");
  Status s = store->GetFile("missing", dst);
  EXPECT_EQ(s.code(), StatusCode::kNotFound) << s.ToString();
  EXPECT_NE(s.message().find(dir.path() + "/objects/missing"), std::string::npos);
  EXPECT_EQ(ReadFile(dst), "keep");
  Status s2 = store->GetFile("missing", dir.path() + "/no-dir/dst");
  EXPECT_FALSE(s2.ok());
  EXPECT_EQ(AllPathsUnder(dir.path()), (std::vector<std::string>{"dst", "objects"}));
}

TEST(LocalDirTest, ListFiltersByPrefixSortedAndSkipsTempFiles) {
  TempDir dir;
  auto store = OpenOrDie(dir.path());
  for (const char* k : {"events/dt=2024-05-02/hour=00/e3", "events/dt=2024-05-01/hour=13/e2",
                        "events/dt=2024-05-01/hour=12/e1", "_manifest/m1.json",
                        "events-not-a-dir", "eventsX/y"}) {
    ASSERT_TRUE(store->PutBytes(k, k).ok()) << k;
  }
  // Debris of a crashed Put and an empty directory are not objects.
  WriteFile(dir.path() + "/events/.sluice-tmp-1-2", "partial");
  std::filesystem::create_directories(dir.path() + "/events/empty");

  EXPECT_EQ(Keys(*store->List("events/")),
            (std::vector<std::string>{"events/dt=2024-05-01/hour=12/e1",
                                      "events/dt=2024-05-01/hour=13/e2",
                                      "events/dt=2024-05-02/hour=00/e3"}));
  EXPECT_EQ(Keys(*store->List("events/dt=2024-05-01")),
            (std::vector<std::string>{"events/dt=2024-05-01/hour=12/e1",
                                      "events/dt=2024-05-01/hour=13/e2"}));
  EXPECT_EQ(Keys(*store->List("events")),
            (std::vector<std::string>{"events-not-a-dir", "events/dt=2024-05-01/hour=12/e1",
                                      "events/dt=2024-05-01/hour=13/e2",
                                      "events/dt=2024-05-02/hour=00/e3", "eventsX/y"}));
  EXPECT_EQ(Keys(*store->List("_manifest/")), std::vector<std::string>{"_manifest/m1.json"});
  EXPECT_EQ(store->List("")->size(), 6u);
  EXPECT_TRUE(store->List("nothing/here/")->empty());
  EXPECT_EQ(store->List("/etc").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store->List("../").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store->List("events/../../").status().code(), StatusCode::kInvalidArgument);
}

TEST(LocalDirTest, BadKeysAreRefusedBeforeTouchingFiles) {
  TempDir dir;
  auto store = OpenOrDie(dir.path() + "/root");
  WriteFile(dir.path() + "/outside", "secret");
  const std::string src = dir.path() + "/src";
  WriteFile(src, "data");
  for (const std::string& key :
       {std::string(), std::string("/abs"), std::string("/") + dir.path() + "/outside",
        std::string("a//b"), std::string("a/"), std::string("../outside"),
        std::string("a/../../outside"), std::string(".."), std::string("a/./b"),
        std::string("."), std::string(".sluice-tmp-1-1"), std::string("a/.sluice-tmp"),
        std::string("a\0b", 3), std::string(2000, 'k')}) {
    SCOPED_TRACE("key: " + key);
    EXPECT_EQ(ValidateKey(key).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(store->PutBytes(key, "x").code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(store->PutFile(key, src).code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(store->GetBytes(key).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(store->GetFile(key, dir.path() + "/got").code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(store->Head(key).status().code(), StatusCode::kInvalidArgument);
    EXPECT_EQ(store->Delete(key).code(), StatusCode::kInvalidArgument);
    EXPECT_FALSE(store->LocalPath(key).has_value());
  }
  EXPECT_EQ(ReadFile(dir.path() + "/outside"), "secret");
  EXPECT_EQ(AllPathsUnder(dir.path()), (std::vector<std::string>{"outside", "root", "src"}));
  // Dots inside a segment are fine.
  EXPECT_TRUE(ValidateKey("a/..b/c..d/.hidden/x.parquet").ok());
}

TEST(LocalDirTest, OpenRefusesAFile) {
  TempDir dir;
  WriteFile(dir.path() + "/file", "x");
  auto r = LocalDir::Open(dir.path() + "/file");
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find(dir.path() + "/file"), std::string::npos)
      << r.status().ToString();
}

TEST(MakeObjectStoreTest, FileUrlAbsolute) {
  TempDir dir;
  auto r = MakeObjectStore("file://" + dir.path() + "/objs");
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ((*r)->Url(), "file://" + dir.path() + "/objs");
  EXPECT_TRUE(std::filesystem::is_directory(dir.path() + "/objs"));
  ASSERT_TRUE((*r)->PutBytes("k", "v").ok());
  EXPECT_EQ(ReadFile(dir.path() + "/objs/k"), "v");

  auto localhost = MakeObjectStore("file://localhost" + dir.path() + "/objs");
  ASSERT_TRUE(localhost.ok()) << localhost.status().ToString();
  EXPECT_EQ((*localhost)->Url(), "file://" + dir.path() + "/objs");
}

TEST(MakeObjectStoreTest, PlainPaths) {
  TempDir dir;
  auto abs = MakeObjectStore(dir.path() + "/plain/");
  ASSERT_TRUE(abs.ok()) << abs.status().ToString();
  EXPECT_EQ((*abs)->Url(), "file://" + dir.path() + "/plain");
  EXPECT_EQ(*(*abs)->LocalPath("a/b"), dir.path() + "/plain/a/b");

  const auto cwd = std::filesystem::current_path();
  std::filesystem::current_path(dir.path());
  auto rel = MakeObjectStore("rel/objs");
  std::filesystem::current_path(cwd);
  ASSERT_TRUE(rel.ok()) << rel.status().ToString();
  EXPECT_EQ((*rel)->Url(), "file://" + dir.path() + "/rel/objs");
  EXPECT_TRUE(std::filesystem::is_directory(dir.path() + "/rel/objs"));
}

TEST(MakeObjectStoreTest, UnsupportedAndMalformedUrls) {
  // s3:// and az:// open real clients (tests/integration/history_bucket_test.cc runs them
  // against s3rver and azurite); without a bucket or container they are refused before any
  // request.
  for (const char* url : {"s3://", "az://", "s3:///prefix"}) {
    auto r = MakeObjectStore(url);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << url;
    EXPECT_FALSE(r.status().message().empty());
  }
  auto gs = MakeObjectStore("gs://bucket/prefix");
  EXPECT_NE(gs.status().message().find("--object-store-endpoint"), std::string::npos)
      << gs.status().ToString();
  for (const char* url : {"", "file://relative/dir", "ftp://host/dir", "gs://b/p"}) {
    auto r = MakeObjectStore(url);
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << url;
    EXPECT_FALSE(r.status().message().empty());
  }
}

}  // namespace
}  // namespace sluice::objstore
