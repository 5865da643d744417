#include "export/manifest.h"

#include <gtest/gtest.h>

#include <fstream>
#include <string>

#include "export/sha256.h"
#include "objstore/local_dir.h"
#include "objstore/test_util.h"

namespace sluice::exporter {
namespace {

constexpr int64_t kSec = 1'000'000;
constexpr int64_t k20240501T1200 = 1714564800 * kSec;

ManifestEntry SampleEntry(int64_t start_us) {
  ManifestEntry e;
  e.window_start_us = start_us;
  e.window_end_us = start_us + 600 * kSec;
  e.key = ParquetKey(start_us, "disk");
  e.rows = 12345;
  e.bytes = 678901;
  e.sha256 = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
  e.exported_at_us = start_us + 630 * kSec + 123456;
  return e;
}

TEST(ManifestKeysTest, NamesFollowTheHiveLayout) {
  EXPECT_EQ(WindowStamp(k20240501T1200), "20240501T1200Z");
  EXPECT_EQ(ParquetKey(k20240501T1200, "disk"),
            "events/dt=2024-05-01/hour=12/events-20240501T1200Z-disk.parquet");
  EXPECT_EQ(ManifestKey(k20240501T1200, "disk"), "_manifest/events-20240501T1200Z-disk.json");
  // Minutes, a day boundary, another shard.
  const int64_t t = 1735689000 * kSec;  // 2024-12-31T23:50:00Z
  EXPECT_EQ(ParquetKey(t, "redis-0"),
            "events/dt=2024-12-31/hour=23/events-20241231T2350Z-redis-0.parquet");
  EXPECT_EQ(ParquetKey(t + 10 * 60 * kSec, "disk"),
            "events/dt=2025-01-01/hour=00/events-20250101T0000Z-disk.parquet");
  EXPECT_EQ(ParquetKey(0, "disk"), "events/dt=1970-01-01/hour=00/events-19700101T0000Z-disk.parquet");
  // A sub-minute window (tests use seconds) shows its seconds.
  EXPECT_EQ(WindowStamp(k20240501T1200 + 30 * kSec), "20240501T120030Z");
  EXPECT_EQ(ParquetKey(k20240501T1200 + 5 * kSec, "disk"),
            "events/dt=2024-05-01/hour=12/events-20240501T120005Z-disk.parquet");
}

TEST(ManifestKeysTest, ShardNames) {
  EXPECT_TRUE(ValidateShard("disk").ok());
  EXPECT_TRUE(ValidateShard("redis_0-a").ok());
  for (const char* bad : {"", "a/b", "..", "a.b", "disk ", "é"}) {
    EXPECT_EQ(ValidateShard(bad).code(), StatusCode::kInvalidArgument) << bad;
  }
  EXPECT_FALSE(ValidateShard(std::string(65, 'a')).ok());
}

TEST(ManifestJsonTest, RoundTripAndFieldNames) {
  const ManifestEntry e = SampleEntry(k20240501T1200);
  const std::string json = ToJson(e);
  EXPECT_NE(json.find(R"("window_start":"2024-05-01T12:00:00Z")"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("window_end":"2024-05-01T12:10:00Z")"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("exported_at":"2024-05-01T12:10:30.123456Z")"), std::string::npos)
      << json;
  EXPECT_NE(json.find(R"("rows":12345)"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("bytes":678901)"), std::string::npos) << json;
  EXPECT_NE(json.find(R"("key":"events/dt=2024-05-01/hour=12/events-20240501T1200Z-disk.parquet")"),
            std::string::npos)
      << json;
  auto back = FromJson(json);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, e);
}

TEST(ManifestJsonTest, UnknownFieldsAreIgnored) {
  std::string json = ToJson(SampleEntry(k20240501T1200));
  json.insert(1, R"("future_field":{"x":[1,2]},)");
  auto back = FromJson(json);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, SampleEntry(k20240501T1200));
}

TEST(ManifestJsonTest, BadEntriesAreRefusedWithTheReason) {
  const std::string good = ToJson(SampleEntry(k20240501T1200));
  auto replace = [&](const std::string& from, const std::string& to) {
    std::string s = good;
    size_t pos = s.find(from);
    EXPECT_NE(pos, std::string::npos) << from;
    return s.replace(pos, from.size(), to);
  };
  struct Case {
    std::string json;
    std::string expect;
  };
  const std::vector<Case> cases = {
      {"not json", "not JSON"},
      {"[1,2]", "not a JSON object"},
      {replace(R"("rows":12345)", R"("rows":-1)"), "\"rows\""},
      {replace(R"("rows":12345,)", ""), "\"rows\""},
      {replace(R"("bytes":678901)", R"("bytes":"678901")"), "\"bytes\""},
      {replace("ba7816bf", "BA7816BF"), "sha256"},
      {replace("ba7816bf", "ba78"), "sha256"},
      {replace("2024-05-01T12:00:00Z", "yesterday"), "window_start"},
      {replace("2024-05-01T12:10:00Z", "2024-05-01T11:00:00Z"), "window_end"},
      {replace(R"("key":)", R"("kee":)"), "\"key\""},
  };
  for (const Case& c : cases) {
    auto r = FromJson(c.json);
    ASSERT_FALSE(r.ok()) << c.json;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument);
    EXPECT_NE(r.status().message().find(c.expect), std::string::npos)
        << r.status().ToString() << " for " << c.json;
  }
}

TEST(ReadManifestTest, ReadsEveryEntrySorted) {
  objstore::testing::TempDir dir;
  auto store = objstore::LocalDir::Open(dir.path());
  ASSERT_TRUE(store.ok());
  const ManifestEntry late = SampleEntry(k20240501T1200 + 600 * kSec);
  const ManifestEntry early = SampleEntry(k20240501T1200);
  ASSERT_TRUE((*store)->PutBytes(ManifestKey(late.window_start_us, "disk"), ToJson(late)).ok());
  ASSERT_TRUE((*store)->PutBytes(ManifestKey(early.window_start_us, "disk"), ToJson(early)).ok());
  ASSERT_TRUE((*store)->PutBytes("_manifest/README.txt", "not an entry").ok());
  ASSERT_TRUE((*store)->PutBytes(early.key, "parquet bytes").ok());

  auto entries = ReadManifest(**store);
  ASSERT_TRUE(entries.ok()) << entries.status().ToString();
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ((*entries)[0], early);
  EXPECT_EQ((*entries)[1], late);
}

TEST(ReadManifestTest, EmptyStoreHasNoEntries) {
  objstore::testing::TempDir dir;
  auto store = objstore::LocalDir::Open(dir.path());
  ASSERT_TRUE(store.ok());
  auto entries = ReadManifest(**store);
  ASSERT_TRUE(entries.ok()) << entries.status().ToString();
  EXPECT_TRUE(entries->empty());
}

TEST(ReadManifestTest, CorruptEntryIsNamed) {
  objstore::testing::TempDir dir;
  auto store = objstore::LocalDir::Open(dir.path());
  ASSERT_TRUE(store.ok());
  ASSERT_TRUE((*store)->PutBytes("_manifest/events-20240501T1200Z-disk.json", "{\"rows\":").ok());
  auto entries = ReadManifest(**store);
  ASSERT_FALSE(entries.ok());
  EXPECT_EQ(entries.status().code(), StatusCode::kCorruption);
  EXPECT_NE(entries.status().message().find("_manifest/events-20240501T1200Z-disk.json"),
            std::string::npos)
      << entries.status().ToString();
}

TEST(ReadManifestTest, ListFailureIsReported) {
  objstore::testing::TempDir dir;
  auto store = objstore::LocalDir::Open(dir.path());
  ASSERT_TRUE(store.ok());
  objstore::testing::FaultyObjectStore faulty(store->get());
  faulty.fail_list = true;
  EXPECT_EQ(ReadManifest(faulty).status().code(), StatusCode::kIOError);
}

TEST(Sha256Test, KnownVectors) {
  EXPECT_EQ(Sha256Hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Sha256Test, DigestFileReadsTheWholeFile) {
  objstore::testing::TempDir dir;
  const std::string path = dir.path() + "/million-a";
  {
    std::ofstream out(path, std::ios::binary);
    out << std::string(1'000'000, 'a');  // FIPS 180-2 test vector; spans several reads
  }
  auto d = DigestFile(path);
  ASSERT_TRUE(d.ok()) << d.status().ToString();
  EXPECT_EQ(d->bytes, 1'000'000u);
  EXPECT_EQ(d->sha256, "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");

  auto missing = DigestFile(dir.path() + "/nope");
  EXPECT_EQ(missing.status().code(), StatusCode::kNotFound);
  EXPECT_NE(missing.status().message().find(dir.path() + "/nope"), std::string::npos);
}

}  // namespace
}  // namespace sluice::exporter
