// Ad hoc measurements of PostgresStore (not a test); bench/postgres_store.sh runs them against
// its own PostgreSQL primary and replica. Events are realistic ~2 KB web-shop events
// (bench/event_generator.h, parsed by the real parser), stamped 12,000/s of received_at.
//
//   postgres_store_bench commit URL READ_URL EVENTS BATCH SHARDS EXPORT_DIR
//       PostgresStore::CommitBatch from SHARDS threads (one buffer shard each) into a fresh
//       database, then exports the first window from READ_URL ("" = the primary) to EXPORT_DIR.
//   postgres_store_bench layout URL TYPE EVENTS BATCH [TOAST_TUPLE_TARGET]
//       Binary COPY of the same rows, BATCH per transaction, one connection, into a table laid
//       out as the store's `events` with properties/traits/context as TYPE (json|jsonb|text)
//       and the partition's toast_tuple_target (PostgreSQL's default: 2032 bytes, above which
//       a row's values are compressed): the payload type comparison.
//   postgres_store_bench dump FILE EVENTS
//       Writes the same rows as a binary COPY file (for psql \copy: the physical limit).
//   postgres_store_bench prepare URL
//       Migrates URL's database and creates the partitions the rows above fall in.
// Each prints one line; the machine's other load counts too (it is shared).
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "event/parser.h"
#include "pg/copy.h"
#include "store/postgres_store.h"
#include "store/store_bench_util.h"

using namespace sluice;

namespace {

using store::bench_util::kT0;
using store::bench_util::MakeEvent;

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

void EncodeEvent(const event::Event& e, bool jsonb, pg::CopyEncoder* enc) {
  enc->BeginRow(12);
  auto text = [&](const std::string& s) {
    if (s.empty()) {
      enc->AddNull();
    } else {
      enc->AddText(s);
    }
  };
  auto json = [&](const std::string& s) {
    if (s.empty()) {
      enc->AddNull();
    } else if (jsonb) {
      enc->AddJsonb(s);
    } else {
      enc->AddText(s);
    }
  };
  text(e.event_id);
  text(e.type);
  text(e.event);
  text(e.user_id);
  text(e.anonymous_id);
  enc->AddTimestamp(e.event_time_us);
  if (e.sent_at_us) {
    enc->AddTimestamp(*e.sent_at_us);
  } else {
    enc->AddNull();
  }
  enc->AddTimestamp(e.received_at_us);
  json(e.properties);
  json(e.traits);
  json(e.context);
  text(e.source);
}

std::unique_ptr<pg::Connection> Connect(const std::string& url) {
  auto c = pg::Connection::Open(url);
  if (!c.ok()) {
    std::fprintf(stderr, "%s\n", c.status().ToString().c_str());
    std::exit(1);
  }
  return std::move(*c);
}

void Check(const Status& st, const char* what) {
  if (!st.ok()) {
    std::fprintf(stderr, "%s: %s\n", what, st.ToString().c_str());
    std::exit(1);
  }
}

int64_t Scalar(pg::Connection& c, const std::string& sql) {
  auto r = c.Query(sql);
  Check(r.status(), sql.c_str());
  return *r->Int64(0, 0);
}

// The store's partitioned tables, on disk: heap, TOAST and indexes.
constexpr const char* kPartitionsBytes =
    "SELECT COALESCE(sum(pg_total_relation_size(inhrelid)), 0) FROM pg_inherits "
    "WHERE inhparent = '%s'::regclass";

int Commit(const std::string& url, const std::string& read_url, size_t total, size_t batch_size,
           int shards, const std::string& export_dir) {
  double mean_bytes = 0;
  const auto pool = store::bench_util::EventPool(20'000, &mean_bytes);
  ManualClock clock(kT0);
  store::PostgresStoreOptions o;
  o.url = url;
  o.read_url = read_url;
  o.clock = &clock;
  o.tmp_dir = export_dir + "/tmp";
  auto opened = store::PostgresStore::Open(o);
  Check(opened.status(), "open");
  auto& s = **opened;

  std::vector<std::vector<double>> commit_s(static_cast<size_t>(shards));
  auto loader = [&](int shard) {
    store::Batch b;
    b.shard = "shard-" + std::to_string(shard);
    // Shard k stores events k, k + shards, k + 2 * shards, …: interleaved received_at.
    const size_t mine = (total - static_cast<size_t>(shard) + static_cast<size_t>(shards) - 1) /
                        static_cast<size_t>(shards);
    size_t done = 0;
    while (done < mine) {
      const size_t n = std::min(batch_size, mine - done);
      b.events.resize(n);
      for (size_t i = 0; i < n; ++i) {
        MakeEvent(pool, (done + i) * static_cast<size_t>(shards) + static_cast<size_t>(shard),
                  &b.events[i]);
      }
      b.rollups = store::bench_util::RollupsOf(b.events);
      b.end_offset = done + n;
      auto c0 = std::chrono::steady_clock::now();
      Check(s.CommitBatch(b), "commit");
      commit_s[static_cast<size_t>(shard)].push_back(Seconds(c0));
      done += n;
    }
  };
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int k = 0; k < shards; ++k) threads.emplace_back(loader, k);
  for (auto& t : threads) t.join();
  const double secs = Seconds(start);
  std::vector<double> all;
  for (const auto& v : commit_s) all.insert(all.end(), v.begin(), v.end());
  std::sort(all.begin(), all.end());
  auto conn = Connect(url);
  char sql[256];
  std::snprintf(sql, sizeof sql, kPartitionsBytes, "events");
  const double table_mb = double(Scalar(*conn, sql)) / 1e6;
  std::printf(
      "commit: %zu events (%.0f B mean) in batches of %zu from %d shard%s: %.2f s = %.0f "
      "events/s, %.1f MB/s; commit p50 %.0f ms, max %.0f ms; events tables %.0f MB\n",
      total, mean_bytes, batch_size, shards, shards == 1 ? "" : "s", secs, double(total) / secs,
      double(total) * mean_bytes / secs / 1e6, all[all.size() / 2] * 1e3, all.back() * 1e3,
      table_mb);

  // The first window's export, from the replica when there is one.
  auto windows = s.Windows();
  Check(windows.status(), "windows");
  const store::WindowInfo w = windows->front();
  std::filesystem::create_directories(export_dir);
  const std::string path = export_dir + "/window.parquet";
  auto e0 = std::chrono::steady_clock::now();
  auto rows = s.ExportWindowToParquet(w.start_us, path, {});
  Check(rows.status(), "export");
  const double esecs = Seconds(e0);
  std::printf("export: window %s, %llu rows in %.2f s = %.0f rows/s from the %s; Parquet %.0f "
              "MB (zstd 1)\n",
              event::FormatTimestamp(w.start_us).c_str(),
              static_cast<unsigned long long>(*rows), esecs, double(*rows) / esecs,
              read_url.empty() ? "primary" : "replica",
              double(std::filesystem::file_size(path)) / 1e6);
  return 0;
}

int Layout(const std::string& url, const std::string& type, size_t total, size_t batch_size,
           int toast_target) {
  if (type != "json" && type != "jsonb" && type != "text") {
    std::fprintf(stderr, "layout: TYPE must be json, jsonb or text, not %s\n", type.c_str());
    return 2;
  }
  double mean_bytes = 0;
  const auto pool = store::bench_util::EventPool(20'000, &mean_bytes);
  auto conn = Connect(url);
  const std::string t = "bench_" + type + (toast_target > 0 ? "_" + std::to_string(toast_target) : "");
  const std::string p = " " + type + " COMPRESSION lz4";
  Check(conn->Exec("DROP TABLE IF EXISTS " + t + "; CREATE TABLE " + t +
                   " (event_id text, type text, event text, user_id text, anonymous_id text, "
                   "event_time timestamptz, sent_at timestamptz, received_at timestamptz NOT "
                   "NULL, properties" + p + ", traits" + p + ", context" + p +
                   ", source text) PARTITION BY RANGE (received_at); CREATE INDEX ON " + t +
                   " (received_at); CREATE TABLE " + t + "_p PARTITION OF " + t +
                   " FOR VALUES FROM ('2024-05-01T00:00:00Z') TO ('2024-05-02T00:00:00Z')" +
                   (toast_target > 0
                        ? " WITH (toast_tuple_target = " + std::to_string(toast_target) + ")"
                        : "")),
        "create");
  auto start = std::chrono::steady_clock::now();
  event::Event e;
  for (size_t done = 0; done < total;) {
    const size_t n = std::min(batch_size, total - done);
    Check(conn->Exec("BEGIN"), "begin");
    auto in = pg::CopyIn::Start(*conn, "COPY " + t + " FROM STDIN (FORMAT binary)");
    Check(in.status(), "copy");
    for (size_t i = 0; i < n; ++i) {
      MakeEvent(pool, done + i, &e);
      EncodeEvent(e, type == "jsonb", &(*in)->encoder());
      Check((*in)->MaybeFlush(), "copy data");
    }
    Check((*in)->Finish().status(), "copy end");
    Check(conn->Exec("COMMIT"), "commit");
    done += n;
  }
  const double secs = Seconds(start);
  char sql[256];
  std::snprintf(sql, sizeof sql, kPartitionsBytes, t.c_str());
  std::printf("layout %-5s toast_tuple_target %4s: %zu events (%.0f B mean), binary COPY in "
              "batches of %zu: %.2f s = %.0f events/s; table %.0f MB\n",
              type.c_str(), toast_target > 0 ? std::to_string(toast_target).c_str() : "2032",
              total, mean_bytes, batch_size, secs, double(total) / secs,
              double(Scalar(*conn, sql)) / 1e6);
  return 0;
}

int Dump(const std::string& file, size_t total) {
  double mean_bytes = 0;
  const auto pool = store::bench_util::EventPool(20'000, &mean_bytes);
  std::ofstream out(file, std::ios::binary | std::ios::trunc);
  pg::CopyEncoder enc;
  event::Event e;
  for (size_t i = 0; i < total; ++i) {
    MakeEvent(pool, i, &e);
    EncodeEvent(e, false, &enc);
    if (enc.size() > (1 << 20)) {
      out.write(enc.data().data(), static_cast<std::streamsize>(enc.size()));
      enc.Clear();
    }
  }
  enc.AddTrailer();
  out.write(enc.data().data(), static_cast<std::streamsize>(enc.size()));
  out.close();
  if (!out) {
    std::fprintf(stderr, "dump: writing %s failed\n", file.c_str());
    return 1;
  }
  std::printf("dump: %zu events (%.0f B mean) to %s\n", total, mean_bytes, file.c_str());
  return 0;
}

int Prepare(const std::string& url) {
  ManualClock clock(kT0);  // the partitions of the rows above: 12:00 and the next two hours
  store::PostgresStoreOptions o;
  o.url = url;
  o.clock = &clock;
  auto s = store::PostgresStore::Open(o);
  Check(s.status(), "prepare");
  return 0;
}

int Usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s commit URL READ_URL EVENTS BATCH SHARDS EXPORT_DIR\n"
               "       %s layout URL json|jsonb|text EVENTS BATCH [TOAST_TUPLE_TARGET]\n"
               "       %s dump FILE EVENTS\n"
               "       %s prepare URL\n",
               argv0, argv0, argv0, argv0);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) return Usage(argv[0]);
  const std::string mode = argv[1];
  try {
    if (mode == "commit" && argc == 8) {
      return Commit(argv[2], argv[3], std::stoul(argv[4]), std::stoul(argv[5]),
                    std::stoi(argv[6]), argv[7]);
    }
    if (mode == "layout" && (argc == 6 || argc == 7)) {
      return Layout(argv[2], argv[3], std::stoul(argv[4]), std::stoul(argv[5]),
                    argc == 7 ? std::stoi(argv[6]) : 0);
    }
    if (mode == "dump" && argc == 4) return Dump(argv[2], std::stoul(argv[3]));
    if (mode == "prepare" && argc == 3) return Prepare(argv[2]);
  } catch (const std::exception& e) {  // std::stoul on a bad number
    std::fprintf(stderr, "bad number: %s\n", e.what());
    return Usage(argv[0]);
  }
  return Usage(argv[0]);
}
