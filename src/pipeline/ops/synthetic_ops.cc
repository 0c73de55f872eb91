// Synthetic ops of known cost for tests and benchmarks: burn (CPU) and sleep (latency), each
// with an optional schedule of costs over time.
#include <atomic>
#include <random>
#include <string_view>
#include <utility>
#include <vector>

#include <fmt/format.h>

#include <thread>

#include "sluice/common/clock.h"
#include "sluice/common/error.h"
#include "sluice/pipeline/op.h"

namespace sluice::pipeline {
namespace {

// A cost that changes at set times since the pipeline started: "schedule": [[seconds, value],
// ...] (a synthetic phase change for tests and benchmarks). Before the first entry, the base.
class Schedule {
 public:
  Schedule(OpArgs& args, std::string_view value_key, double base) : base_(base) {
    steps_ = args.Pairs("schedule");
    for (size_t i = 0; i < steps_.size(); ++i) {
      if (steps_[i].first < 0 || steps_[i].second < 0 ||
          (i > 0 && steps_[i].first <= steps_[i - 1].first)) {
        args.Fail("schedule",
                  fmt::format("expected [seconds, {}] pairs with times rising from 0 and values "
                              ">= 0",
                              value_key));
      }
    }
  }
  // The pipeline started: times count from here (its first epoch's start).
  void Start() {
    int64_t none = 0;
    start_ns_.compare_exchange_strong(none, MonotonicNanos());
  }
  double Now() const {
    if (steps_.empty()) return base_;
    const double t = (MonotonicNanos() - start_ns_.load(std::memory_order_relaxed)) * 1e-9;
    double value = base_;
    for (const auto& [at, v] : steps_) {
      if (t >= at) value = v;
    }
    return value;
  }

 private:
  double base_;
  std::vector<std::pair<double, double>> steps_;
  std::atomic<int64_t> start_ns_{0};
};

// Spins `cpu_us` of this thread's CPU per element. With "random": true it also draws from an
// unseeded RNG, and so declares itself non-deterministic. With a schedule it keeps its start
// time and reads the clock: it declares itself stateful and (conservatively) non-deterministic,
// though only its cost changes, never its outputs.
class BurnOp final : public MapOp {
 public:
  explicit BurnOp(OpArgs& args) : cpu_us_(args, "cpu_us", args.Double("cpu_us")) {
    base_us_ = args.Double("cpu_us");
    if (base_us_ < 0) args.Fail("cpu_us", "expected a CPU time >= 0");
    random_ = args.Bool("random", false);
    scheduled_ = args.Has("schedule");
  }
  void BeginEpoch(int64_t) override {
    if (scheduled_) cpu_us_.Start();
  }
  OpProperties properties() const override {
    return {OpKind::kMap, true, /*deterministic=*/!random_ && !scheduled_,
            /*stateless=*/!scheduled_};
  }
  std::optional<int64_t> EpochOutputs(std::optional<int64_t> in) const override { return in; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    uint64_t acc = in.id;
    if (random_) {
      thread_local std::mt19937_64 rng(std::random_device{}());
      acc ^= rng();
    }
    double cpu_us = base_us_;
    if (scheduled_) cpu_us = cpu_us_.Now();
    const auto cpu_ns = static_cast<int64_t>(cpu_us * 1000.0);
    if (cpu_ns > 0) {
      // The thread CPU clock (not wall time) decides, so the cost holds under contention.
      const int64_t until = ThreadCpuNanos() + cpu_ns;
      do {
        for (int i = 0; i < 256; ++i) acc = acc * 6364136223846793005ULL + 1442695040888963407ULL;
      } while (ThreadCpuNanos() < until);
    }
    sink_.store(acc, std::memory_order_relaxed);  // keeps the loop from being optimized away
    out.push_back(std::move(in));
  }

 private:
  Schedule cpu_us_;
  double base_us_ = 0;
  bool random_ = false;
  bool scheduled_ = false;
  std::atomic<uint64_t> sink_{0};
};
SLUICE_REGISTER_OP("burn", BurnOp);

// Blocks `us` microseconds per element without using CPU, like I/O latency. A schedule makes it
// stateful and (conservatively) non-deterministic, as for burn.
class SleepOp final : public MapOp {
 public:
  explicit SleepOp(OpArgs& args) : us_(args, "us", args.Double("us")) {
    base_us_ = args.Double("us");
    if (base_us_ < 0) args.Fail("us", "expected a time >= 0");
    scheduled_ = args.Has("schedule");
  }
  void BeginEpoch(int64_t) override {
    if (scheduled_) us_.Start();
  }
  OpProperties properties() const override {
    return {OpKind::kMap, true, /*deterministic=*/!scheduled_, /*stateless=*/!scheduled_};
  }
  std::optional<int64_t> EpochOutputs(std::optional<int64_t> in) const override { return in; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    double us = base_us_;
    if (scheduled_) us = us_.Now();
    if (us > 0) {
      std::this_thread::sleep_for(std::chrono::nanoseconds(static_cast<int64_t>(us * 1000)));
    }
    out.push_back(std::move(in));
  }

 private:
  Schedule us_;
  double base_us_ = 0;
  bool scheduled_ = false;
};
SLUICE_REGISTER_OP("sleep", SleepOp);

}  // namespace
}  // namespace sluice::pipeline
