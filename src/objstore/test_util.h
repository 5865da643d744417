// Test helpers for code that uses an ObjectStore: a temporary directory and a fault-injecting
// decorator. Header-only, for tests.
#pragma once

#include "common/temp_dir.h"

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "objstore/object_store.h"

namespace sluice::objstore::testing {

using TempDir = ::sluice::testing::TempDir;

// Every path below `dir` (files and directories, hidden ones too), relative to it, sorted.
inline std::vector<std::string> AllPathsUnder(const std::string& dir) {
  std::vector<std::string> out;
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    out.push_back(std::filesystem::relative(it->path(), dir).string());
  }
  std::sort(out.begin(), out.end());
  return out;
}

// Forwards to another ObjectStore, failing the operations it is told to fail with IOError
// (before touching the inner store), and optionally misreporting Head's size. Thread-safe.
class FaultyObjectStore final : public ObjectStore {
 public:
  explicit FaultyObjectStore(ObjectStore* inner) : inner_(inner) {}

  std::atomic<bool> fail_put_file{false};
  std::atomic<bool> fail_put_bytes{false};
  std::atomic<bool> fail_head{false};
  std::atomic<bool> fail_list{false};
  std::atomic<bool> fail_delete{false};
  std::atomic<int64_t> head_size_delta{0};  // added to Head's reported size
  std::atomic<int> put_file_calls{0};
  std::atomic<int> put_bytes_calls{0};

  std::string Url() const override { return inner_->Url(); }
  Status PutFile(const std::string& key, const std::string& local_path) override {
    ++put_file_calls;
    if (fail_put_file) return Status::IOError("injected PutFile failure for " + key);
    return inner_->PutFile(key, local_path);
  }
  Status PutBytes(const std::string& key, const std::string& data) override {
    ++put_bytes_calls;
    if (fail_put_bytes) return Status::IOError("injected PutBytes failure for " + key);
    return inner_->PutBytes(key, data);
  }
  Status GetFile(const std::string& key, const std::string& local_path) override {
    return inner_->GetFile(key, local_path);
  }
  Result<std::string> GetBytes(const std::string& key) override { return inner_->GetBytes(key); }
  Result<ObjectInfo> Head(const std::string& key) override {
    if (fail_head) return Status::IOError("injected Head failure for " + key);
    Result<ObjectInfo> r = inner_->Head(key);
    if (r.ok()) r->size = static_cast<uint64_t>(static_cast<int64_t>(r->size) + head_size_delta);
    return r;
  }
  Result<std::vector<ObjectInfo>> List(const std::string& prefix) override {
    if (fail_list) return Status::IOError("injected List failure for " + prefix);
    return inner_->List(prefix);
  }
  Status Delete(const std::string& key) override {
    if (fail_delete) return Status::IOError("injected Delete failure for " + key);
    return inner_->Delete(key);
  }
  std::optional<std::string> LocalPath(const std::string& key) const override {
    return inner_->LocalPath(key);
  }

 private:
  ObjectStore* inner_;
};

}  // namespace sluice::objstore::testing
