#include "buffer/shard_router.h"

#include <gtest/gtest.h>

#include <future>

#include "buffer/memory_buffer.h"

namespace sluice::buffer {
namespace {

Status AppendAndWait(ShardRouter& router, std::vector<std::string> records) {
  std::promise<Status> done;
  router.Append(std::move(records), [&](Status st) { done.set_value(st); });
  return done.get_future().get();
}

TEST(ShardRouter, KeepsEachAppendWholeAndTakesTheShardsInTurn) {
  MemoryBuffer a(1 << 20), b(1 << 20);
  ShardRouter router({&a, &b});
  ASSERT_TRUE(AppendAndWait(router, {"a1", "a2", "a3"}).ok());
  ASSERT_TRUE(AppendAndWait(router, {"b1"}).ok());
  ASSERT_TRUE(AppendAndWait(router, {"a4"}).ok());
  auto ra = a.Read(0, 100, 1 << 20, std::chrono::milliseconds(0));
  auto rb = b.Read(0, 100, 1 << 20, std::chrono::milliseconds(0));
  ASSERT_TRUE(ra.ok() && rb.ok());
  std::vector<std::string> got_a, got_b;
  for (auto& r : *ra) got_a.push_back(r.payload);
  for (auto& r : *rb) got_b.push_back(r.payload);
  EXPECT_EQ(got_a, (std::vector<std::string>{"a1", "a2", "a3", "a4"}));
  EXPECT_EQ(got_b, (std::vector<std::string>{"b1"}));
  BufferStats s = router.Stats();
  EXPECT_EQ(s.depth_records, 5u);
  EXPECT_EQ(s.capacity_bytes, 2u << 20);
}

TEST(ShardRouter, AFullShardAnswersForItsAppendOnly) {
  MemoryBuffer small(8), big(1 << 20);
  ShardRouter router({&small, &big});
  EXPECT_EQ(AppendAndWait(router, {std::string(64, 'x')}).code(),
            StatusCode::kResourceExhausted);
  EXPECT_TRUE(AppendAndWait(router, {std::string(64, 'y')}).ok());
  EXPECT_EQ(small.Stats().depth_records, 0u);
  EXPECT_EQ(big.Stats().depth_records, 1u);
}

TEST(ShardRouter, ARefusedAppendGoesWholeToTheSpill) {
  MemoryBuffer small(16), spill(1 << 20);  // holds one 1-byte record (+8 framing)
  ShardRouter router({&small}, &spill);
  ASSERT_TRUE(AppendAndWait(router, {std::string(64, 'x'), "second"}).ok());
  EXPECT_EQ(small.Stats().depth_records, 0u);
  auto spilled = spill.Read(0, 100, 1 << 20, std::chrono::milliseconds(0));
  ASSERT_TRUE(spilled.ok());
  ASSERT_EQ(spilled->size(), 2u);
  EXPECT_EQ((*spilled)[0].payload, std::string(64, 'x'));
  EXPECT_EQ((*spilled)[1].payload, "second");
  EXPECT_EQ(router.spilled_appends(), 1u);
  EXPECT_EQ(router.spilled_records(), 2u);

  // What the shard takes stays there; a closed shard (Unavailable) spills too.
  ASSERT_TRUE(AppendAndWait(router, {"y"}).ok());
  EXPECT_EQ(small.Stats().depth_records, 1u);
  small.Close();
  ASSERT_TRUE(AppendAndWait(router, {"z"}).ok());
  EXPECT_EQ(spill.Stats().depth_records, 3u);

  // The spill's own refusal is the caller's answer.
  spill.Close();
  EXPECT_EQ(AppendAndWait(router, {"w"}).code(), StatusCode::kUnavailable);
}

}  // namespace
}  // namespace sluice::buffer
