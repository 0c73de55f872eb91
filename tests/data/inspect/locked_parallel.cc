// Declared parallelizable and stateful, and every write to shared state is under the member
// mutex or on an atomic: stateful, but no data race. The shuffle under the lock writes the
// member order (through its iterators) and the member engine.
// expect locked_stats: deterministic=violated stateless=violated io=no race=no
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <mutex>
#include <random>
#include <vector>

#include "sluice/pipeline/op.h"

namespace {
using namespace sluice::pipeline;

class LockedStatsOp final : public MapOp {
 public:
  explicit LockedStatsOp(OpArgs&) : order_{1, 2, 3, 4} {}
  OpProperties properties() const override { return {OpKind::kMap, true, false, false}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    seen_.fetch_add(1, std::memory_order_relaxed);  // <- stateless
    {
      std::lock_guard<std::mutex> lock(mu_);                // <- stateless
      std::shuffle(order_.begin(), order_.end(), engine_);  // <- deterministic stateless
      in.id += static_cast<uint64_t>(order_[0]);
    }
    out.push_back(std::move(in));
  }

 private:
  std::mutex mu_;
  std::vector<int> order_;
  std::mt19937 engine_;
  std::atomic<uint64_t> seen_{0};
};
SLUICE_REGISTER_OP("locked_stats", LockedStatsOp);
}  // namespace
