// Reads every record of a stopped server's DiskLog (DATA_DIR/buffer) for assertions.
#pragma once

#include <string>
#include <vector>

#include "buffer/buffer_factory.h"
#include "event/event.h"

namespace sluice::testing {

struct LogContents {
  std::vector<event::Event> events;
  std::vector<event::Rejection> rejections;
};

inline LogContents ReadLog(const std::string& data_dir) {
  LogContents out;
  buffer::BufferConfig bc;
  bc.kind = "disk";
  bc.dir = data_dir + "/buffer";
  bc.max_bytes = 1ull << 40;
  bc.segment_bytes = 64ull << 20;
  bc.fsync = true;
  auto buf = buffer::MakeBuffer(bc);
  SLUICE_CHECK_MSG(buf.ok(), buf.status().ToString());
  uint64_t next = 0;
  for (;;) {
    auto recs = (*buf)->Read(next, 10'000, 64 << 20, std::chrono::milliseconds(0));
    SLUICE_CHECK_MSG(recs.ok(), recs.status().ToString());
    if (recs->empty()) break;
    for (auto& r : *recs) {
      auto dec = event::DecodeRecord(r.payload);
      SLUICE_CHECK_MSG(dec.ok(), dec.status().ToString());
      if (auto* e = std::get_if<event::Event>(&*dec)) {
        out.events.push_back(std::move(*e));
      } else {
        out.rejections.push_back(std::get<event::Rejection>(std::move(*dec)));
      }
      next = r.offset + 1;
    }
  }
  (*buf)->Close();
  return out;
}

}  // namespace sluice::testing
