#include "history/history_cache.h"

#include <fcntl.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>
#include <thread>

#include "export/sha256.h"

namespace sluice::history {

namespace fs = std::filesystem;
using exporter::ManifestEntry;

namespace {

// "events/dt=…/hour=…/events-STAMP-SHARD.parquet" → "events-STAMP-SHARD.json": the name of
// the object's manifest entry (export/manifest.h) below _manifest/.
std::string EntryName(const std::string& key) {
  std::string base = key.substr(key.rfind('/') + 1);
  if (base.ends_with(".parquet")) base.resize(base.size() - 8);
  return base + ".json";
}

// "1.50 GiB", "12.0 MiB", "800 bytes".
std::string Gib(uint64_t bytes) {
  char buf[32];
  if (bytes >= (1ull << 30)) {
    std::snprintf(buf, sizeof(buf), "%.2f GiB", static_cast<double>(bytes) / (1ull << 30));
  } else if (bytes >= (1ull << 20)) {
    std::snprintf(buf, sizeof(buf), "%.1f MiB", static_cast<double>(bytes) / (1ull << 20));
  } else {
    std::snprintf(buf, sizeof(buf), "%llu bytes", static_cast<unsigned long long>(bytes));
  }
  return buf;
}

Status WriteFileAtomically(const fs::path& path, const std::string& data) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    out << data;
    if (!out.flush()) return Status::IOError("cannot write " + tmp.string());
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  if (ec) return Status::IOError("cannot rename " + tmp.string() + ": " + ec.message());
  return Status::OK();
}

Result<std::string> ReadWholeFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::IOError("cannot read " + path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// Hard link, or a copy where links cannot be made (another file system).
Status LinkOrCopy(const std::string& from, const std::string& to) {
  if (::link(from.c_str(), to.c_str()) == 0) return Status::OK();
  std::error_code ec;
  fs::copy_file(from, to, fs::copy_options::overwrite_existing, ec);
  if (ec) return Status::IOError("cannot copy " + from + " to " + to + ": " + ec.message());
  return Status::OK();
}

}  // namespace

class HistoryCache::Lease final : public query::HistoryLease {
 public:
  // Holds `cache`'s gate shared (taken by the caller) and pins `keys`.
  Lease(HistoryCache* cache, std::vector<std::string> keys)
      : cache_(cache), keys_(std::move(keys)) {}
  ~Lease() override {
    // The gate first: a removal waiting for statements to end may go on.
    const bool last = cache_->gate_.UnlockShared();
    cache_->Unpin(keys_);
    // The last statement ended: a removal given up meanwhile can be done now, at no wait.
    if (last) cache_->MakeRoom(std::chrono::milliseconds(0));
  }

 private:
  HistoryCache* const cache_;
  const std::vector<std::string> keys_;
};

bool HistoryCache::ReadGate::LockShared(std::chrono::steady_clock::time_point deadline) {
  std::unique_lock lock(m_);
  if (!cv_.wait_until(lock, deadline, [&] { return !writer_ && waiting_writers_ == 0; })) {
    return false;
  }
  ++readers_;
  return true;
}

bool HistoryCache::ReadGate::UnlockShared() {
  std::lock_guard lock(m_);
  --readers_;
  if (readers_ == 0) cv_.notify_all();
  return readers_ == 0;
}

bool HistoryCache::ReadGate::LockExclusive(std::chrono::milliseconds wait) {
  std::unique_lock lock(m_);
  ++waiting_writers_;
  const bool ok = cv_.wait_for(lock, wait, [&] { return !writer_ && readers_ == 0; });
  --waiting_writers_;
  if (ok) writer_ = true;
  cv_.notify_all();  // statements held back by this waiting remover may go on
  return ok;
}

void HistoryCache::ReadGate::UnlockExclusive() {
  std::lock_guard lock(m_);
  writer_ = false;
  cv_.notify_all();
}

HistoryCache::HistoryCache(HistoryCacheOptions options, objstore::ObjectStore* remote)
    : options_(std::move(options)),
      remote_(remote),
      bytes_gauge_(metrics::Default().GetGauge("sluice_history_cache_bytes",
                                               "Bytes of Parquet history in the local cache")),
      files_gauge_(metrics::Default().GetGauge("sluice_history_cache_files",
                                               "Parquet history files in the local cache")),
      hits_(metrics::Default().GetCounter(
          "sluice_history_cache_hits_total",
          "History files a query needed that were in the local cache")),
      misses_(metrics::Default().GetCounter(
          "sluice_history_cache_misses_total",
          "History files a query needed that were fetched from the object store")),
      fetched_bytes_(metrics::Default().GetCounter("sluice_history_fetched_bytes_total",
                                                   "Bytes fetched from the object store")),
      evictions_(metrics::Default().GetCounter("sluice_history_evictions_total",
                                               "History files removed from the local cache")),
      fetch_errors_(metrics::Default().GetCounter("sluice_history_fetch_errors_total",
                                                  "History files that could not be fetched")),
      fetch_seconds_(metrics::Default().GetHistogram(
          "sluice_history_fetch_seconds", "Time a query waited for its history files to be fetched",
          {}, {0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300})) {
  metrics::Default()
      .GetGauge("sluice_history_cache_max_bytes", "The local history cache's bound")
      .Set(static_cast<int64_t>(options_.max_bytes));
}

HistoryCache::~HistoryCache() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

Result<std::unique_ptr<HistoryCache>> HistoryCache::Open(HistoryCacheOptions options,
                                                         objstore::ObjectStore* remote) {
  if (options.dir.empty()) return Status::InvalidArgument("history cache: no directory given");
  if (options.max_bytes == 0) {
    return Status::InvalidArgument("--history-cache-bytes must be more than 0");
  }
  if (options.manifest_refresh.count() <= 0) {
    return Status::InvalidArgument("--history-manifest-refresh must be more than 0");
  }
  if (options.parallel_fetches < 1 || options.parallel_fetches > 64) {
    return Status::InvalidArgument("--history-fetch-parallel must be between 1 and 64");
  }
  if (remote == nullptr) return Status::InvalidArgument("history cache: no object store");
  std::unique_ptr<HistoryCache> cache(new HistoryCache(std::move(options), remote));
  SLUICE_RETURN_IF_ERROR(cache->Init());
  return cache;
}

std::string HistoryCache::EventsDir() const { return options_.dir + "/events"; }

std::string HistoryCache::PathOf(const std::string& key) const { return options_.dir + "/" + key; }

Status HistoryCache::Init() {
  std::error_code ec;
  for (const char* sub : {"events", "_manifest", "tmp"}) {
    fs::create_directories(fs::path(options_.dir) / sub, ec);
    if (ec) {
      return Status::IOError("cannot create history cache dir " + options_.dir + "/" + sub + ": " +
                             ec.message());
    }
  }
  SLUICE_RETURN_IF_ERROR(LockDir());
  // Downloads a crash interrupted.
  for (const auto& e : fs::directory_iterator(fs::path(options_.dir) / "tmp", ec)) {
    fs::remove(e.path(), ec);
  }
  SLUICE_RETURN_IF_ERROR(LoadManifest(/*forget=*/false));
  last_refresh_ns_ = std::chrono::steady_clock::now().time_since_epoch().count();

  // Index the files present, oldest use first; drop those no entry names (deleted from the
  // bucket, or an export that never finished) or of another size than their entry says.
  std::map<std::string, const ManifestEntry*> named;
  for (const auto& [start, e] : entries_) named[e.key] = &e;
  struct Found {
    int64_t mtime_ns;
    std::string key;
    uint64_t bytes;
  };
  std::vector<Found> found;
  const fs::path root(options_.dir);
  for (auto it = fs::recursive_directory_iterator(root / "events", ec);
       !ec && it != fs::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    const std::string key = it->path().lexically_relative(root).string();
    auto entry = named.find(key);
    struct stat st {};
    if (entry == named.end() || ::stat(it->path().c_str(), &st) != 0 ||
        uint64_t(st.st_size) != entry->second->bytes) {
      spdlog::info("history cache: removing {} (no manifest entry names it, or of another size)",
                   key);
      fs::remove(it->path(), ec);
      continue;
    }
    found.push_back({int64_t(st.st_mtim.tv_sec) * 1'000'000'000 + st.st_mtim.tv_nsec, key,
                     uint64_t(st.st_size)});
  }
  if (ec) return Status::IOError("cannot list " + options_.dir + "/events: " + ec.message());
  std::sort(found.begin(), found.end(),
            [](const Found& a, const Found& b) { return a.mtime_ns < b.mtime_ns; });
  std::unique_lock lock(mu_);
  for (const Found& f : found) {
    File& file = files_[f.key];
    file.bytes = f.bytes;
    file.sha256 = named[f.key]->sha256;
    file.present = true;
    file.last_use = ++use_clock_;
    bytes_ += f.bytes;
    ++present_files_;
  }
  // An empty cache over a bucket with history: fetch the newest window now, so that the view
  // its owner builds next reads Parquet (see the header).
  if (options_.fetch_newest_at_open && present_files_ == 0 && !entries_.empty()) {
    const ManifestEntry newest = entries_.rbegin()->second;
    lock.unlock();
    if (Status st = Fetch(newest); !st.ok()) {
      spdlog::warn("history cache: fetching the newest window at start: {}", st.ToString());
    }
    lock.lock();
  }
  announced_files_ = present_files_ > 0;  // the view's owner builds it after Open
  PublishGauges();
  spdlog::info("history cache: {} files, {} in {} (bound {}); {} windows in the manifest of {}",
               present_files_, Gib(bytes_), options_.dir, Gib(options_.max_bytes), entries_.size(),
               remote_->Url());
  return Status::OK();
}

Status HistoryCache::LockDir() {
  const std::string path = options_.dir + "/LOCK";
  lock_fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) return Status::FromErrno("open " + path, errno);
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    return Status::FailedPrecondition("the history cache " + options_.dir +
                                      " is in use by another sluice process (" + path +
                                      " is locked); wait for it to end");
  }
  return Status::OK();
}

Status HistoryCache::LoadManifest(bool forget) {
  SLUICE_ASSIGN_OR_RETURN(std::vector<objstore::ObjectInfo> listed,
                          remote_->List(std::string(exporter::kManifestPrefix)));
  const fs::path mirror = fs::path(options_.dir) / "_manifest";
  std::set<std::string> names;
  std::vector<const objstore::ObjectInfo*> to_get;
  std::vector<ManifestEntry> loaded;
  for (const objstore::ObjectInfo& info : listed) {
    if (!info.key.ends_with(".json")) continue;
    const std::string name = info.key.substr(exporter::kManifestPrefix.size());
    if (name.find('/') != std::string::npos) continue;
    names.insert(name);
    {
      std::lock_guard lock(mu_);
      if (known_entries_.contains(name)) continue;  // read before (RefreshManifest)
    }
    std::error_code ec;
    const fs::path local = mirror / name;
    if (fs::file_size(local, ec) == info.size && !ec) {
      if (auto text = ReadWholeFile(local); text.ok()) {
        if (auto e = exporter::FromJson(*text); e.ok()) {
          loaded.push_back(std::move(e).value());
          continue;
        }
      }
    }
    to_get.push_back(&info);
  }
  // Entries not mirrored yet: read in parallel (one GET each).
  std::mutex got_mu;
  Status first_error;
  std::atomic<size_t> next{0};
  auto worker = [&] {
    for (size_t i; (i = next.fetch_add(1)) < to_get.size();) {
      const objstore::ObjectInfo& info = *to_get[i];
      auto text = remote_->GetBytes(info.key);
      Result<ManifestEntry> e =
          text.ok() ? exporter::FromJson(*text) : Result<ManifestEntry>(text.status());
      std::lock_guard lock(got_mu);
      if (!e.ok()) {
        if (first_error.ok()) {
          first_error = e.status().WithContext("history cache: manifest entry " + remote_->Url() +
                                               "/" + info.key);
        }
        continue;
      }
      (void)WriteFileAtomically(mirror / info.key.substr(exporter::kManifestPrefix.size()), *text);
      loaded.push_back(std::move(e).value());
    }
  };
  {
    std::vector<std::jthread> threads;
    const size_t n = std::min<size_t>(to_get.size(), size_t(options_.parallel_fetches) * 2);
    for (size_t i = 0; i < n; ++i) threads.emplace_back(worker);
  }
  SLUICE_RETURN_IF_ERROR(first_error);
  // Mirrors of entries that are gone from the bucket.
  std::error_code ec;
  for (const auto& e : fs::directory_iterator(mirror, ec)) {
    const std::string name = e.path().filename().string();
    if (!names.contains(name)) fs::remove(e.path(), ec);
  }
  std::lock_guard lock(mu_);
  for (ManifestEntry& e : loaded) {
    known_entries_.insert(EntryName(e.key));
    entries_[{e.window_start_us, e.key}] = std::move(e);
  }
  if (forget) {
    for (auto it = entries_.begin(); it != entries_.end();) {
      const std::string name = EntryName(it->second.key);
      if (names.contains(name)) {
        ++it;
      } else {
        spdlog::info("history cache: {} is no longer in the manifest", it->second.key);
        known_entries_.erase(name);
        it = entries_.erase(it);
      }
    }
  }
  return Status::OK();
}

Status HistoryCache::RefreshManifest() {
  std::lock_guard lock(refresh_mu_);
  Status st = LoadManifest(/*forget=*/true);
  last_refresh_ns_ = std::chrono::steady_clock::now().time_since_epoch().count();
  return st;
}

void HistoryCache::MaybeRefreshManifest() {
  const int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
  const int64_t every = std::chrono::nanoseconds(options_.manifest_refresh).count();
  if (now - last_refresh_ns_.load() < every) return;
  std::unique_lock lock(refresh_mu_, std::try_to_lock);
  if (!lock.owns_lock()) return;  // another thread is at it
  if (Status st = LoadManifest(/*forget=*/true); !st.ok()) {
    spdlog::warn("history cache: listing the manifest again: {}", st.ToString());
  }
  last_refresh_ns_ = now;
}

void HistoryCache::Announce() {
  {
    std::lock_guard lock(mu_);
    if (announced_files_ || present_files_ == 0) return;
  }
  if (!options_.on_first_file) return;
  if (Status st = options_.on_first_file(); !st.ok()) {
    spdlog::warn("history cache: rebuilding the events view for the first history file: {}",
                 st.ToString());
    return;  // tried again at the next Acquire
  }
  std::lock_guard lock(mu_);
  announced_files_ = true;
}

void HistoryCache::PublishGauges() {
  bytes_gauge_.Set(static_cast<int64_t>(bytes_));
  files_gauge_.Set(static_cast<int64_t>(present_files_));
}

HistoryCacheStats HistoryCache::Stats() const {
  std::lock_guard lock(mu_);
  HistoryCacheStats s;
  s.files = present_files_;
  s.bytes = bytes_;
  s.entries = entries_.size();
  s.hits = stats_hits_;
  s.misses = stats_misses_;
  s.fetched_bytes = stats_fetched_bytes_;
  s.evictions = stats_evictions_;
  return s;
}

Status HistoryCache::Fetch(const ManifestEntry& entry) {
  static std::atomic<uint64_t> counter{0};
  const std::string tmp = options_.dir + "/tmp/" + EntryName(entry.key) + "." +
                          std::to_string(::getpid()) + "-" + std::to_string(counter.fetch_add(1)) +
                          ".part";
  auto cleanup = [&tmp] { ::unlink(tmp.c_str()); };
  if (Status st = remote_->GetFile(entry.key, tmp); !st.ok()) {
    cleanup();
    return st.WithContext("history cache: fetch " + remote_->Url() + "/" + entry.key);
  }
  auto digest = exporter::DigestFile(tmp);
  if (!digest.ok()) {
    cleanup();
    return digest.status();
  }
  ManifestEntry want = entry;
  if (digest->bytes != want.bytes || digest->sha256 != want.sha256) {
    // The window may have been exported again since its entry was read: read it again.
    const std::string entry_key = std::string(exporter::kManifestPrefix) + EntryName(entry.key);
    auto text = remote_->GetBytes(entry_key);
    auto fresh = text.ok() ? exporter::FromJson(*text) : Result<ManifestEntry>(text.status());
    if (fresh.ok() && fresh->bytes == digest->bytes && fresh->sha256 == digest->sha256) {
      (void)WriteFileAtomically(fs::path(options_.dir) / "_manifest" / EntryName(entry.key), *text);
      want = *fresh;
      std::lock_guard lock(mu_);
      entries_[{want.window_start_us, want.key}] = want;
    } else {
      cleanup();
      return Status::Corruption("history cache: " + remote_->Url() + "/" + entry.key + " has " +
                                std::to_string(digest->bytes) + " bytes, SHA-256 " +
                                digest->sha256 + ", but its manifest entry says " +
                                std::to_string(want.bytes) + " bytes, SHA-256 " + want.sha256);
    }
  }
  const fs::path dest = PathOf(entry.key);
  std::error_code ec;
  fs::create_directories(dest.parent_path(), ec);
  std::lock_guard lock(mu_);
  // The window may have been exported again while it downloaded (AddExported put the new file
  // in place): this download is stale then.
  auto current = entries_.find({want.window_start_us, want.key});
  if (current == entries_.end() || current->second.sha256 != want.sha256) {
    cleanup();
    return Status::Unavailable("history cache: " + entry.key +
                               " was exported again while it was fetched; try again");
  }
  fs::rename(tmp, dest, ec);
  if (ec) {
    cleanup();
    return Status::IOError("history cache: cannot move " + tmp + " to " + dest.string() + ": " +
                           ec.message());
  }
  File& f = files_[entry.key];
  if (f.present) bytes_ -= f.bytes;
  if (!f.present) ++present_files_;
  f.present = true;
  f.bytes = digest->bytes;
  f.sha256 = digest->sha256;
  bytes_ += f.bytes;
  stats_fetched_bytes_ += f.bytes;
  fetched_bytes_.Inc(f.bytes);
  PublishGauges();
  return Status::OK();
}

void HistoryCache::MakeRoom(std::chrono::milliseconds wait) {
  std::vector<std::string> victims;
  {
    std::lock_guard lock(mu_);
    if (bytes_ <= options_.max_bytes) return;
    std::vector<std::pair<uint64_t, const std::string*>> candidates;
    for (const auto& [key, f] : files_) {
      if (f.present && f.pins == 0 && !f.fetching) candidates.emplace_back(f.last_use, &key);
    }
    std::sort(candidates.begin(), candidates.end());
    // The most recently used file stays: the view's glob must keep matching something.
    if (!candidates.empty() && present_files_ == candidates.size()) candidates.pop_back();
    uint64_t over = bytes_ - options_.max_bytes;
    for (const auto& [use, key] : candidates) {
      if (over == 0) break;
      victims.push_back(*key);
      const uint64_t b = files_[*key].bytes;
      over = b >= over ? 0 : over - b;
    }
  }
  if (victims.empty()) return;
  if (!gate_.LockExclusive(wait)) {
    spdlog::debug("history cache: statements kept running for {} ms; removal postponed",
                  wait.count());
    return;
  }
  std::lock_guard lock(mu_);
  for (const std::string& key : victims) {
    File& f = files_[key];
    if (!f.present || f.pins != 0 || f.fetching) continue;  // leased meanwhile
    if (present_files_ <= 1) break;
    if (::unlink(PathOf(key).c_str()) != 0 && errno != ENOENT) {
      spdlog::warn("history cache: cannot remove {}: {}", PathOf(key), std::strerror(errno));
      continue;
    }
    f.present = false;
    bytes_ -= f.bytes;
    --present_files_;
    ++stats_evictions_;
    evictions_.Inc();
  }
  PublishGauges();
  gate_.UnlockExclusive();
}

Result<std::unique_ptr<query::HistoryLease>> HistoryCache::Acquire(
    int64_t from_us, int64_t to_us, std::chrono::steady_clock::time_point deadline) {
  const auto t0 = std::chrono::steady_clock::now();
  MaybeRefreshManifest();
  std::vector<std::string> pinned;
  std::vector<ManifestEntry> to_fetch;
  std::vector<std::string> to_wait;
  {
    std::lock_guard lock(mu_);
    uint64_t total = 0;
    std::vector<const ManifestEntry*> needed;
    for (const auto& [k, e] : entries_) {
      if (from_us >= to_us || e.window_start_us >= to_us) break;
      if (e.window_end_us <= from_us) continue;
      needed.push_back(&e);
      total += e.bytes;
    }
    if (total > options_.max_bytes) {
      return Status::ResourceExhausted(
          "the query reads " + std::to_string(needed.size()) + " history files of " + Gib(total) +
          " but the local history cache holds " + Gib(options_.max_bytes) +
          " (--history-cache-bytes): narrow the query with a WHERE on received_at, or raise "
          "--history-cache-bytes");
    }
    for (const ManifestEntry* e : needed) {
      File& f = files_[e->key];
      ++f.pins;
      pinned.push_back(e->key);
      if (f.present && f.sha256 == e->sha256) {
        f.last_use = ++use_clock_;
        ++stats_hits_;
        hits_.Inc();
      } else if (f.fetching) {
        to_wait.push_back(e->key);
      } else {
        f.fetching = true;
        to_fetch.push_back(*e);
        ++stats_misses_;
        misses_.Inc();
      }
    }
  }
  auto fail = [&](Status st) -> Result<std::unique_ptr<query::HistoryLease>> {
    Unpin(pinned);
    return st;
  };

  if (!to_fetch.empty()) {
    std::mutex err_mu;
    Status first_error;
    std::atomic<size_t> next{0};
    auto worker = [&] {
      for (size_t i; (i = next.fetch_add(1)) < to_fetch.size();) {
        Status st = std::chrono::steady_clock::now() >= deadline
                        ? Status::DeadlineExceeded(
                              "the query's time ran out while its history "
                              "files were being fetched")
                        : Fetch(to_fetch[i]);
        {
          std::lock_guard lock(mu_);
          files_[to_fetch[i].key].fetching = false;
        }
        fetched_cv_.notify_all();
        if (!st.ok()) {
          fetch_errors_.Inc();
          std::lock_guard lock(err_mu);
          if (first_error.ok()) first_error = st;
        }
      }
    };
    {
      std::vector<std::jthread> threads;
      const size_t n = std::min<size_t>(to_fetch.size(), size_t(options_.parallel_fetches));
      for (size_t i = 1; i < n; ++i) threads.emplace_back(worker);
      worker();
    }
    fetch_seconds_.Observe(
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
    // Room is made after the downloads, so the bound holds again when Acquire returns (the
    // downloads are pinned, so they stay).
    MakeRoom(options_.evict_wait);
    if (!first_error.ok()) return fail(first_error);
  }
  if (!to_wait.empty()) {
    std::unique_lock lock(mu_);
    for (const std::string& key : to_wait) {
      if (!fetched_cv_.wait_until(lock, deadline, [&] { return !files_[key].fetching; })) {
        lock.unlock();
        return fail(Status::DeadlineExceeded(
            "the query's time ran out while its history files were being fetched"));
      }
      if (!files_[key].present) {
        lock.unlock();
        return fail(Status::Unavailable("history cache: " + key +
                                        " could not be fetched for another query; try again"));
      }
    }
  }
  Announce();
  if (!gate_.LockShared(deadline)) {
    return fail(Status::DeadlineExceeded(
        "the query's time ran out while the history cache was removing files"));
  }
  return std::unique_ptr<query::HistoryLease>(new Lease(this, std::move(pinned)));
}

void HistoryCache::Unpin(const std::vector<std::string>& keys) {
  std::vector<std::string> used;
  {
    std::lock_guard lock(mu_);
    for (const std::string& key : keys) {
      File& f = files_[key];
      if (f.pins > 0) --f.pins;
      f.last_use = ++use_clock_;
      if (f.present) used.push_back(PathOf(key));
    }
  }
  // The modification time is the use order across restarts (see Init).
  for (const std::string& path : used) (void)::utimensat(AT_FDCWD, path.c_str(), nullptr, 0);
}

Status HistoryCache::AddExported(const ManifestEntry& entry, const std::string& local_file) {
  const std::string name = EntryName(entry.key);
  SLUICE_RETURN_IF_ERROR(
      WriteFileAtomically(fs::path(options_.dir) / "_manifest" / name, exporter::ToJson(entry)));
  {
    std::lock_guard lock(mu_);
    // A re-export replaces the entry of the same key.
    std::erase_if(entries_, [&](const auto& kv) { return kv.second.key == entry.key; });
    entries_[{entry.window_start_us, entry.key}] = entry;
    known_entries_.insert(name);
  }
  static std::atomic<uint64_t> counter{0};
  const std::string tmp = options_.dir + "/tmp/" + name + ".add." + std::to_string(::getpid()) +
                          "-" + std::to_string(counter.fetch_add(1));
  if (Status st = LinkOrCopy(local_file, tmp); !st.ok()) {
    ::unlink(tmp.c_str());
    return st;
  }
  const fs::path dest = PathOf(entry.key);
  std::error_code ec;
  fs::create_directories(dest.parent_path(), ec);
  fs::rename(tmp, dest, ec);
  if (ec) {
    ::unlink(tmp.c_str());
    return Status::IOError("history cache: cannot move " + tmp + " to " + dest.string() + ": " +
                           ec.message());
  }
  {
    std::lock_guard lock(mu_);
    File& f = files_[entry.key];
    if (f.present) bytes_ -= f.bytes;
    if (!f.present) ++present_files_;
    f.present = true;
    f.bytes = entry.bytes;
    f.sha256 = entry.sha256;
    f.last_use = ++use_clock_;
    bytes_ += f.bytes;
    PublishGauges();
  }
  MakeRoom(options_.evict_wait);
  Announce();
  return Status::OK();
}

}  // namespace sluice::history
