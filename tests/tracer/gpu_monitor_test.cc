// Tests for the GPU monitor: the unavailable path (no driver, device or libcupti, or built
// without CUPTI) and the interval union behind BusyFraction, checked against a bitmap.
// With SLUICE_REQUIRE_GPU=1 (set where a GPU is known to be present) the monitor must record.
#include "sluice/tracer/gpu_monitor.h"

#include <dlfcn.h>

#include <cstdint>
#include <cstdlib>
#include <random>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include <gtest/gtest.h>

#include "sluice/common/clock.h"
#include "tracer/busy_intervals.h"
#include "tracer/gpu_backend.h"

namespace sluice::tracer {
namespace {

// The statuses of a monitor that records nothing for want of something on the machine.
bool IsUnavailable(std::string_view status) {
  for (std::string_view unavailable :
       {"no_driver", "no_device", "no_libcupti", "insufficient_privileges", "not_built"}) {
    if (status == unavailable) return true;
  }
  return false;
}

// Whether the environment says this machine has a usable GPU (SLUICE_REQUIRE_GPU=1): then an
// unavailable monitor is a failure, not a pass.
bool GpuRequired() {
  const char* require = std::getenv("SLUICE_REQUIRE_GPU");
  return require != nullptr && std::string_view(require) == "1";
}

// Whether an NVIDIA driver library is present, which decides what StartGpuMonitor can reach.
bool HaveDriver() {
  void* cuda = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
  if (cuda == nullptr) return false;
  dlclose(cuda);
  return true;
}

TEST(GpuMonitorTest, WithoutDriverSaysWhyAndRecordsNothing) {
  if (GpuRequired()) {
    EXPECT_TRUE(HaveDriver()) << "SLUICE_REQUIRE_GPU=1 but libcuda.so.1 cannot be loaded";
  }
  if (HaveDriver()) GTEST_SKIP() << "libcuda.so.1 is present: covered by RecordsOrSaysWhy";
  auto monitor = StartGpuMonitor();
  ASSERT_NE(monitor, nullptr);
  const trace::GpuTrace summary = monitor->Summary(1.0);
#ifdef SLUICE_HAVE_CUPTI
  EXPECT_EQ(summary.status, "no_driver");
  EXPECT_NE(summary.reason.find("libcuda.so.1"), std::string::npos) << summary.reason;
#else
  EXPECT_EQ(summary.status, "not_built");
  EXPECT_NE(summary.reason.find("CUPTI"), std::string::npos) << summary.reason;
#endif
  EXPECT_EQ(summary.kernels, 0);
  EXPECT_EQ(summary.kernel_busy_seconds, 0);
  EXPECT_EQ(summary.h2d_bytes, 0);
  EXPECT_EQ(monitor->BusyFraction(0, 1'000'000), -1);
  monitor->Flush();
  EXPECT_EQ(monitor->BusyFraction(0, 1'000'000), -1);
  monitor->Stop();
  monitor->Stop();  // idempotent
  EXPECT_EQ(monitor->Summary(1.0).status, summary.status);
}

// Holds on any machine: with a usable GPU the monitor records, otherwise it says why.
TEST(GpuMonitorTest, RecordsOrSaysWhy) {
  auto monitor = StartGpuMonitor();
  ASSERT_NE(monitor, nullptr);
  const int64_t begin = MonotonicNanos();
  monitor->Flush();
  const int64_t end = MonotonicNanos() + 1'000'000;
  const trace::GpuTrace summary = monitor->Summary(1.0);
  if (GpuRequired()) {
    EXPECT_EQ(summary.status, "ok") << "SLUICE_REQUIRE_GPU=1 but: " << summary.reason;
  }
  if (summary.status == "ok") {
    EXPECT_FALSE(summary.device_name.empty());
    const double fraction = monitor->BusyFraction(begin, end);
    EXPECT_GE(fraction, 0);
    EXPECT_LE(fraction, 1);
  } else {
    EXPECT_TRUE(IsUnavailable(summary.status)) << summary.status << ": " << summary.reason;
    EXPECT_FALSE(summary.reason.empty());
    EXPECT_EQ(monitor->BusyFraction(begin, end), -1);
  }
  monitor->Stop();
  monitor->Stop();
  monitor->Flush();  // after Stop: no effect
  EXPECT_EQ(monitor->Summary(1.0).status, summary.status);
}

TEST(GpuMonitorTest, MonitorsCanBeStartedAgain) {
  for (int i = 0; i < 3; ++i) {
    auto monitor = StartGpuMonitor();
    const std::string status = monitor->Summary(1.0).status;
    EXPECT_NE(status, "error") << monitor->Summary(1.0).reason;
    if (GpuRequired()) {
      EXPECT_EQ(status, "ok") << monitor->Summary(1.0).reason;
    }
    monitor->Stop();
  }
}

TEST(UnavailableGpuMonitorTest, ReturnsItsReasonAndRecordsNothing) {
  trace::GpuTrace why;
  why.status = "no_libcupti";
  why.reason = "libcupti not found";
  why.device_name = "Some GPU";
  auto monitor = internal::MakeUnavailableGpuMonitor(why);
  monitor->Flush();
  EXPECT_EQ(monitor->BusyFraction(0, 100), -1);
  const trace::GpuTrace summary = monitor->Summary(10.0);
  EXPECT_EQ(summary.status, "no_libcupti");
  EXPECT_EQ(summary.reason, "libcupti not found");
  EXPECT_EQ(summary.device_name, "Some GPU");
  EXPECT_EQ(summary.busy_fraction, 0);
  monitor->Stop();
  monitor->Stop();
}

// The reference: one bit per time unit on [0, kSpan), as BusyIntervals should behave.
constexpr int64_t kSpan = 8;

struct Bitmap {
  std::vector<bool> bits = std::vector<bool>(kSpan, false);
  int64_t horizon = 0;  // bits below it are forgotten
  int64_t total = 0;

  void Add(int64_t begin, int64_t end) {
    for (int64_t t = std::max(begin, horizon); t < end; ++t) {
      if (!bits[t]) {
        bits[t] = true;
        ++total;
      }
    }
  }
  void Prune(int64_t before) { horizon = std::max(horizon, before); }
  int64_t Busy(int64_t begin, int64_t end) const {
    int64_t busy = 0;
    for (int64_t t = std::max(begin, horizon); t < end; ++t) busy += bits[t] ? 1 : 0;
    return busy;
  }
  // Maximal runs of busy time at or after the horizon: what BusyIntervals must hold.
  size_t Runs() const {
    size_t runs = 0;
    for (int64_t t = horizon; t < kSpan; ++t) {
      if (bits[t] && (t == horizon || !bits[t - 1])) ++runs;
    }
    return runs;
  }
};

// Checks every window on [-1, kSpan + 1], the total, and that the list is sorted, disjoint and
// merged down to the bitmap's runs.
void ExpectSame(const BusyIntervals& intervals, const Bitmap& bitmap, const std::string& what) {
  for (int64_t begin = -1; begin <= kSpan + 1; ++begin) {
    for (int64_t end = -1; end <= kSpan + 1; ++end) {
      const int64_t expected =
          end > begin ? bitmap.Busy(std::max<int64_t>(begin, 0), std::min<int64_t>(end, kSpan)) : 0;
      ASSERT_EQ(intervals.Busy(begin, end), expected)
          << what << " window [" << begin << ", " << end << ")";
    }
  }
  ASSERT_EQ(intervals.TotalBusy(), bitmap.total) << what;
  ASSERT_EQ(intervals.size(), bitmap.Runs()) << what;
  const auto& held = intervals.intervals();
  for (size_t i = 0; i < held.size(); ++i) {
    ASSERT_LT(held[i].begin, held[i].end) << what;
    if (i > 0) {
      ASSERT_LT(held[i - 1].end, held[i].begin) << what << ": not merged";
    }
  }
}

// "[0,3)[2,5)" (a stream, not string concatenation, which trips GCC 12's -Wrestrict at -O3).
std::string Describe(const std::vector<BusyIntervals::Interval>& added) {
  std::ostringstream text;
  for (const auto& i : added) text << "[" << i.begin << "," << i.end << ")";
  return text.str();
}

// Every sequence of three intervals on [0, 8), in every order, empty and reversed ones included:
// overlapping, nested, touching, disjoint and out-of-order arrivals all occur.
TEST(BusyIntervalsTest, MatchesBitmapForEveryThreeIntervals) {
  std::vector<BusyIntervals::Interval> all;
  for (int64_t begin = 0; begin <= kSpan; ++begin) {
    for (int64_t end = 0; end <= kSpan; ++end) all.push_back({begin, end});
  }
  for (const auto& a : all) {
    for (const auto& b : all) {
      if (b.end <= b.begin && b.begin != 0) continue;  // one empty shape is enough
      for (const auto& c : all) {
        if (c.end <= c.begin && c.begin != 0) continue;
        BusyIntervals intervals;
        Bitmap bitmap;
        for (const auto& i : {a, b, c}) {
          intervals.Add(i.begin, i.end);
          bitmap.Add(i.begin, i.end);
        }
        ASSERT_EQ(intervals.TotalBusy(), bitmap.total) << Describe({a, b, c});
        ASSERT_EQ(intervals.size(), bitmap.Runs()) << Describe({a, b, c});
        for (int64_t begin = 0; begin <= kSpan; ++begin) {
          for (int64_t end = begin; end <= kSpan; ++end) {
            ASSERT_EQ(intervals.Busy(begin, end), bitmap.Busy(begin, end))
                << Describe({a, b, c}) << " window [" << begin << ", " << end << ")";
          }
        }
      }
    }
  }
}

// Random sequences mixing Add and Prune, checked after every step (windows clipped at both
// ends included).
TEST(BusyIntervalsTest, MatchesBitmapWithPruning) {
  std::mt19937 rng(12345);
  std::uniform_int_distribution<int64_t> point(0, kSpan);
  std::uniform_int_distribution<int> op(0, 9);
  for (int sequence = 0; sequence < 3000; ++sequence) {
    BusyIntervals intervals;
    Bitmap bitmap;
    std::ostringstream what;
    for (int step = 0; step < 12; ++step) {
      if (op(rng) == 0) {
        const int64_t before = point(rng);
        intervals.Prune(before);
        bitmap.Prune(before);
        what << "prune(" << before << ")";
      } else {
        const int64_t begin = point(rng);
        const int64_t end = point(rng);
        intervals.Add(begin, end);
        bitmap.Add(begin, end);
        what << "[" << begin << "," << end << ")";
      }
      ExpectSame(intervals, bitmap, what.str());
      if (HasFatalFailure()) return;
    }
  }
}

TEST(BusyIntervalsTest, PruneKeepsTheTotalAndForgetsTheRest) {
  BusyIntervals intervals;
  intervals.Add(0, 10);
  intervals.Add(20, 30);
  intervals.Prune(25);
  EXPECT_EQ(intervals.horizon(), 25);
  EXPECT_EQ(intervals.TotalBusy(), 20);
  EXPECT_EQ(intervals.Busy(0, 100), 5);
  intervals.Add(22, 40);  // clipped to the horizon: [25, 40) adds 10
  EXPECT_EQ(intervals.TotalBusy(), 30);
  intervals.Prune(10);  // a horizon never moves back
  EXPECT_EQ(intervals.horizon(), 25);
  ASSERT_EQ(intervals.size(), 1u);
  EXPECT_EQ(intervals.intervals().front().begin, 25);
  EXPECT_EQ(intervals.intervals().front().end, 40);
}

TEST(BusyIntervalsTest, PruneToSizeDropsTheOldest) {
  BusyIntervals intervals;
  for (int64_t i = 0; i < 10; ++i) intervals.Add(10 * i, 10 * i + 5);
  intervals.PruneToSize(4);
  ASSERT_EQ(intervals.size(), 4u);
  EXPECT_EQ(intervals.intervals().front().begin, 60);
  EXPECT_EQ(intervals.TotalBusy(), 50);
  EXPECT_EQ(intervals.Busy(0, 100), 20);
  intervals.PruneToSize(4);  // already small enough
  EXPECT_EQ(intervals.size(), 4u);
}

// Nanosecond-scale values as the monitor uses them: many back-to-back kernels with gaps, and
// one long kernel from another stream arriving late and covering several of them.
TEST(BusyIntervalsTest, LateOverlappingKernelMergesWithManyShortOnes) {
  BusyIntervals intervals;
  const int64_t base = int64_t{1} << 40;
  for (int64_t i = 0; i < 1000; ++i) intervals.Add(base + 100 * i, base + 100 * i + 60);
  EXPECT_EQ(intervals.size(), 1000u);
  EXPECT_EQ(intervals.TotalBusy(), 60'000);
  // Overlaps kernels 1 ([100, 160)) to 100 ([10000, 10060)): they become [100, 10060).
  intervals.Add(base + 150, base + 10'030);
  EXPECT_EQ(intervals.size(), 1000u - 99);
  EXPECT_EQ(intervals.TotalBusy(), 60'000 + (10'060 - 100) - 100 * 60);
  EXPECT_EQ(intervals.Busy(base, base + 100'000), intervals.TotalBusy());
  EXPECT_EQ(intervals.Busy(base + 150, base + 10'030), 10'030 - 150);
  EXPECT_EQ(intervals.Busy(base + 10'060, base + 10'100), 0);
}

}  // namespace
}  // namespace sluice::tracer
