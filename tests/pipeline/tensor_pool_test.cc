// The tensor buffer pool: reuse by exact size, the bound on idle bytes, and its use by
// Tensor::Allocate.
#include "pipeline/internal/tensor_pool.h"

#include <gtest/gtest.h>

#include <thread>
#include <vector>

#include "sluice/pipeline/element.h"

namespace sluice::pipeline::internal {
namespace {

TEST(TensorPoolTest, AReturnedBufferIsHandedOutAgainForTheSameSizeOnly) {
  TensorPool pool(1000, 1 << 20);
  uint8_t* first = nullptr;
  {
    std::shared_ptr<uint8_t[]> a = pool.Get(5000);
    first = a.get();
    EXPECT_EQ(pool.idle_buffers(), 0u);
  }
  EXPECT_EQ(pool.idle_buffers(), 1u);
  EXPECT_EQ(pool.idle_bytes(), 5000u);
  {
    std::shared_ptr<uint8_t[]> other = pool.Get(6000);  // another size: a new buffer
    EXPECT_NE(other.get(), first);
    EXPECT_EQ(pool.reused(), 0u);
  }
  std::shared_ptr<uint8_t[]> again = pool.Get(5000);
  EXPECT_EQ(again.get(), first);
  EXPECT_EQ(pool.reused(), 1u);
  EXPECT_EQ(pool.idle_buffers(), 1u);  // the 6000-byte one
}

TEST(TensorPoolTest, BuffersBelowTheMinimumAreNotKept) {
  TensorPool pool(1000, 1 << 20);
  { std::shared_ptr<uint8_t[]> small = pool.Get(999); }
  { std::shared_ptr<uint8_t[]> empty = pool.Get(0); }
  EXPECT_EQ(pool.idle_buffers(), 0u);
}

TEST(TensorPoolTest, IdleBytesStayWithinTheBoundTheOldestDroppedFirst) {
  TensorPool pool(1000, 10000);
  std::vector<std::shared_ptr<uint8_t[]>> held;
  for (size_t bytes : {3000, 3000, 3000, 2000}) held.push_back(pool.Get(bytes));
  const uint8_t* oldest = held[0].get();
  held.clear();  // returned in order: 3000, 3000, 3000, 2000 (11000 bytes, over the bound)
  EXPECT_EQ(pool.idle_bytes(), 8000u);
  EXPECT_EQ(pool.idle_buffers(), 3u);
  // The first returned was dropped; the two other 3000-byte buffers are still there.
  std::shared_ptr<uint8_t[]> a = pool.Get(3000);
  std::shared_ptr<uint8_t[]> b = pool.Get(3000);
  EXPECT_NE(a.get(), oldest);
  EXPECT_NE(b.get(), oldest);
  EXPECT_EQ(pool.reused(), 2u);
  // A buffer larger than the bound is never kept.
  { std::shared_ptr<uint8_t[]> huge = pool.Get(20000); }
  EXPECT_EQ(pool.idle_bytes(), 2000u);
}

TEST(TensorPoolTest, ThreadsThatAllocateAndFreeConcurrentlyKeepItConsistent) {
  TensorPool pool(1000, 64 * 4096);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&pool, t] {
      std::vector<std::shared_ptr<uint8_t[]>> held;
      for (int i = 0; i < 2000; ++i) {
        const size_t bytes = 4096 * (1 + (i + t) % 5);
        held.push_back(pool.Get(bytes));
        held.back()[bytes - 1] = static_cast<uint8_t>(i);  // the whole buffer is writable
        if (held.size() > 8) held.erase(held.begin());
      }
    });
  }
  for (std::thread& th : threads) th.join();
  EXPECT_LE(pool.idle_bytes(), 64u * 4096);
  EXPECT_GT(pool.reused(), 0u);
}

// Tensor::Allocate draws from the process's pool: an image-sized tensor's buffer, once
// released, backs the next tensor of that size.
TEST(TensorPoolTest, ImageSizedTensorsReuseTheirBuffers) {
#if defined(__SANITIZE_ADDRESS__)
  GTEST_SKIP() << "the process's pool is off under AddressSanitizer";
#endif
  const uint8_t* first = nullptr;
  {
    Tensor t = Tensor::Allocate(DType::kUInt8, {224, 224, 3});
    first = t.data<uint8_t>();
  }
  Tensor again = Tensor::Allocate(DType::kUInt8, {224, 224, 3});
  EXPECT_EQ(again.data<uint8_t>(), first);
  Tensor other = Tensor::Allocate(DType::kUInt8, {224, 224, 3});
  EXPECT_NE(other.data<uint8_t>(), first);
}

}  // namespace
}  // namespace sluice::pipeline::internal
