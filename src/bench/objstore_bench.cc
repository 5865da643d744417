// objstore_bench: times uploads and downloads of one file through objstore::ObjectStore — the
// exporter's PutFile and the history cache's GetFile — for bench/history_bucket.sh (not a test,
// not part of `sluice`).
//
// Usage:
//   objstore_bench [OPTIONS] put URL FILE RUNS
//       PutFile(KEY, FILE) RUNS times (KEY: --key, default the file's name), each run followed by
//       a Head that must report the file's size (outside the timing).
//   objstore_bench [OPTIONS] get URL KEY FILE RUNS
//       GetFile(KEY, FILE) RUNS times; the first download's size and SHA-256 are printed, and
//       every later one must have the same size.
// URL is what --object-store takes (s3://BUCKET/PREFIX, az://…, file://…). OPTIONS (each also
// from the environment variable in brackets; the flag wins), as `sluice serve` has them:
//   --endpoint URL             [OBJSTORE_BENCH_ENDPOINT]   --object-store-endpoint
//   --region REGION            [OBJSTORE_BENCH_REGION]     --object-store-region
//   --multipart-threshold B    [OBJSTORE_BENCH_MULTIPART_THRESHOLD]  (64MiB, 1GiB, 1000000)
//   --part-size B              [OBJSTORE_BENCH_PART_SIZE]
//   --parallel N               [OBJSTORE_BENCH_PARALLEL]
//   --key KEY                  [OBJSTORE_BENCH_KEY]        put only
// Unset options are the store's defaults (S3: 64 MiB threshold, 16 MiB parts, 4 in flight);
// credentials come from the environment as for `sluice serve`.
//
// Output: one line per run ("put run 1: 4.213 s, 212.4 MB/s"), then
// "put median: 4.213 s, 212.4 MB/s (FILE_BYTES bytes, N runs)". MB = 10^6 bytes; the median
// MB/s is the file's size over the median time. Exit 0 when every run succeeded, 1 at the first
// failure (the store's message on stderr), 2 on bad usage.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/units.h"
#include "export/sha256.h"
#include "objstore/object_store.h"

namespace {

using sluice::Result;
using sluice::Status;
using sluice::objstore::ObjectStore;
using sluice::objstore::ObjectStoreOptions;

constexpr const char* kUsage =
    "usage: objstore_bench [--endpoint URL] [--region R] [--multipart-threshold BYTES]\n"
    "                      [--part-size BYTES] [--parallel N] [--key KEY]\n"
    "                      put URL FILE RUNS | get URL KEY FILE RUNS\n";

double SecondsSince(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

double MegabytesPerSecond(uint64_t bytes, double seconds) {
  return seconds > 0 ? static_cast<double>(bytes) / 1e6 / seconds : 0.0;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

struct Args {
  ObjectStoreOptions options;
  std::string key;
  std::vector<std::string> positional;
};

// The flag's value, else the environment variable's, else "".
class OptionSource {
 public:
  void Set(const std::string& flag, std::string value) { flags_.emplace_back(flag, value); }
  std::string Get(const std::string& flag, const char* env) const {
    for (const auto& [name, value] : flags_) {
      if (name == flag) return value;
    }
    const char* v = std::getenv(env);
    return v != nullptr ? v : "";
  }

 private:
  std::vector<std::pair<std::string, std::string>> flags_;
};

Result<Args> ParseArgs(int argc, char** argv) {
  OptionSource src;
  Args args;
  static const char* const kFlags[] = {"--endpoint", "--region", "--multipart-threshold",
                                       "--part-size", "--parallel", "--key"};
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a.rfind("--", 0) != 0) {
      args.positional.push_back(a);
      continue;
    }
    std::string name = a, value;
    bool has_value = false;
    if (size_t eq = a.find('='); eq != std::string::npos) {
      name = a.substr(0, eq);
      value = a.substr(eq + 1);
      has_value = true;
    }
    if (std::find(std::begin(kFlags), std::end(kFlags), name) == std::end(kFlags)) {
      return Status::InvalidArgument("unknown option " + name);
    }
    if (!has_value) {
      if (i + 1 >= argc) return Status::InvalidArgument(name + " needs a value");
      value = argv[++i];
    }
    src.Set(name, value);
  }
  args.options.endpoint = src.Get("--endpoint", "OBJSTORE_BENCH_ENDPOINT");
  args.options.region = src.Get("--region", "OBJSTORE_BENCH_REGION");
  args.key = src.Get("--key", "OBJSTORE_BENCH_KEY");
  auto bytes = [&](const char* flag, const char* env, uint64_t* out) -> Status {
    const std::string v = src.Get(flag, env);
    if (v.empty()) return Status::OK();
    Result<uint64_t> parsed = sluice::ParseBytes(v);
    if (!parsed.ok()) return parsed.status().WithContext(flag);
    *out = *parsed;
    return Status::OK();
  };
  if (Status s = bytes("--multipart-threshold", "OBJSTORE_BENCH_MULTIPART_THRESHOLD",
                       &args.options.multipart_threshold);
      !s.ok()) {
    return s;
  }
  if (Status s = bytes("--part-size", "OBJSTORE_BENCH_PART_SIZE", &args.options.part_size);
      !s.ok()) {
    return s;
  }
  if (const std::string p = src.Get("--parallel", "OBJSTORE_BENCH_PARALLEL"); !p.empty()) {
    const int n = std::atoi(p.c_str());
    if (n < 1 || n > 64) return Status::InvalidArgument("--parallel must be between 1 and 64");
    args.options.parallel_parts = n;
  }
  return args;
}

std::optional<int> ParseRuns(const std::string& s) {
  const int n = std::atoi(s.c_str());
  if (n < 1) return std::nullopt;
  return n;
}

int Fail(const std::string& what, const Status& s) {
  std::fprintf(stderr, "objstore_bench: %s: %s\n", what.c_str(), s.ToString().c_str());
  return 1;
}

void PrintSummary(const char* op, const std::vector<double>& seconds, uint64_t bytes) {
  const double median = Median(seconds);
  std::printf("%s median: %.3f s, %.1f MB/s (%llu bytes, %zu runs)\n", op, median,
              MegabytesPerSecond(bytes, median), static_cast<unsigned long long>(bytes),
              seconds.size());
}

int Put(ObjectStore& store, const std::string& key, const std::string& file, int runs) {
  // The same read-and-hash pass the exporter makes before its upload: the local disk's rate.
  const auto t0 = std::chrono::steady_clock::now();
  Result<sluice::exporter::FileDigest> digest = sluice::exporter::DigestFile(file);
  if (!digest.ok()) return Fail("read " + file, digest.status());
  const double digest_s = SecondsSince(t0);
  std::printf("local read + SHA-256 of %s: %.3f s, %.1f MB/s\n", file.c_str(), digest_s,
              MegabytesPerSecond(digest->bytes, digest_s));
  std::vector<double> seconds;
  for (int run = 1; run <= runs; ++run) {
    const auto start = std::chrono::steady_clock::now();
    if (Status s = store.PutFile(key, file); !s.ok()) {
      return Fail("put " + store.Url() + "/" + key, s);
    }
    const double took = SecondsSince(start);
    seconds.push_back(took);
    std::printf("put run %d: %.3f s, %.1f MB/s\n", run, took,
                MegabytesPerSecond(digest->bytes, took));
    std::fflush(stdout);
    Result<sluice::objstore::ObjectInfo> head = store.Head(key);
    if (!head.ok()) return Fail("head " + key, head.status());
    if (head->size != digest->bytes) {
      return Fail("put " + key, Status::Corruption("the object holds " +
                                                   std::to_string(head->size) + " bytes, not " +
                                                   std::to_string(digest->bytes)));
    }
  }
  PrintSummary("put", seconds, digest->bytes);
  return 0;
}

int Get(ObjectStore& store, const std::string& key, const std::string& file, int runs) {
  std::vector<double> seconds;
  uint64_t bytes = 0;
  for (int run = 1; run <= runs; ++run) {
    const auto start = std::chrono::steady_clock::now();
    if (Status s = store.GetFile(key, file); !s.ok()) {
      return Fail("get " + store.Url() + "/" + key, s);
    }
    const double took = SecondsSince(start);
    std::error_code ec;
    const uint64_t size = std::filesystem::file_size(file, ec);
    if (ec) return Fail("size of " + file, Status::IOError(ec.message()));
    if (run == 1) {
      Result<sluice::exporter::FileDigest> digest = sluice::exporter::DigestFile(file);
      if (!digest.ok()) return Fail("read " + file, digest.status());
      bytes = digest->bytes;
      std::printf("got %s: %llu bytes, sha256 %s\n", key.c_str(),
                  static_cast<unsigned long long>(bytes), digest->sha256.c_str());
    } else if (size != bytes) {
      return Fail("get " + key, Status::Corruption("download " + std::to_string(run) + " has " +
                                                   std::to_string(size) + " bytes, the first " +
                                                   std::to_string(bytes)));
    }
    seconds.push_back(took);
    std::printf("get run %d: %.3f s, %.1f MB/s\n", run, took, MegabytesPerSecond(size, took));
    std::fflush(stdout);
  }
  PrintSummary("get", seconds, bytes);
  return 0;
}

int Run(int argc, char** argv) {
  Result<Args> parsed = ParseArgs(argc, argv);
  if (!parsed.ok()) {
    std::fprintf(stderr, "objstore_bench: %s\n%s", parsed.status().message().c_str(), kUsage);
    return 2;
  }
  Args& args = *parsed;
  const std::vector<std::string>& pos = args.positional;
  const bool put = pos.size() == 4 && pos[0] == "put";
  const bool get = pos.size() == 5 && pos[0] == "get";
  const std::optional<int> runs = put || get ? ParseRuns(pos.back()) : std::nullopt;
  if (!runs) {
    std::fprintf(stderr, "%s", kUsage);
    return 2;
  }
  Result<std::unique_ptr<ObjectStore>> store =
      sluice::objstore::MakeObjectStore(pos[1], args.options);
  if (!store.ok()) return Fail("open " + pos[1], store.status());
  if (put) {
    const std::string key =
        args.key.empty() ? std::filesystem::path(pos[2]).filename().string() : args.key;
    return Put(**store, key, pos[2], *runs);
  }
  return Get(**store, pos[2], pos[3], *runs);
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }
