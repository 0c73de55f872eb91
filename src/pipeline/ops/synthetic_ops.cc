// Synthetic ops of known cost for tests and benchmarks: burn (CPU) and sleep (latency).
#include <random>
#include <thread>

#include "sluice/common/clock.h"
#include "sluice/common/error.h"
#include "sluice/pipeline/op.h"

namespace sluice::pipeline {
namespace {

// Spins `cpu_us` of this thread's CPU per element. With "random": true it also draws from an
// unseeded RNG, and so declares itself non-deterministic.
class BurnOp final : public MapOp {
 public:
  explicit BurnOp(OpArgs& args) {
    cpu_ns_ = static_cast<int64_t>(args.Double("cpu_us") * 1000.0);
    if (cpu_ns_ < 0) args.Fail("cpu_us", "expected a CPU time >= 0");
    random_ = args.Bool("random", false);
  }
  OpProperties properties() const override {
    return {OpKind::kMap, true, /*deterministic=*/!random_, true};
  }
  std::optional<int64_t> EpochOutputs(std::optional<int64_t> in) const override { return in; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    uint64_t acc = in.id;
    if (random_) {
      thread_local std::mt19937_64 rng(std::random_device{}());
      acc ^= rng();
    }
    if (cpu_ns_ > 0) {
      // The thread CPU clock (not wall time) decides, so the cost holds under contention.
      const int64_t until = ThreadCpuNanos() + cpu_ns_;
      do {
        for (int i = 0; i < 256; ++i) acc = acc * 6364136223846793005ULL + 1442695040888963407ULL;
      } while (ThreadCpuNanos() < until);
    }
    sink_.store(acc, std::memory_order_relaxed);  // keeps the loop from being optimized away
    out.push_back(std::move(in));
  }

 private:
  int64_t cpu_ns_ = 0;
  bool random_ = false;
  std::atomic<uint64_t> sink_{0};
};
SLUICE_REGISTER_OP("burn", BurnOp);

// Blocks `us` microseconds per element without using CPU, like I/O latency.
class SleepOp final : public MapOp {
 public:
  explicit SleepOp(OpArgs& args) {
    us_ = args.Double("us");
    if (us_ < 0) args.Fail("us", "expected a time >= 0");
  }
  OpProperties properties() const override { return {OpKind::kMap, true, true, true}; }
  std::optional<int64_t> EpochOutputs(std::optional<int64_t> in) const override { return in; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    if (us_ > 0) {
      std::this_thread::sleep_for(std::chrono::nanoseconds(static_cast<int64_t>(us_ * 1000)));
    }
    out.push_back(std::move(in));
  }

 private:
  double us_ = 0;
};
SLUICE_REGISTER_OP("sleep", SleepOp);

}  // namespace
}  // namespace sluice::pipeline
