// The union of GPU kernel intervals, merged as they arrive and bounded in memory, from which
// busy time over any window is read.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <limits>

namespace sluice::tracer {

// A union of half-open intervals [begin, end) on an integer time line (nanoseconds), kept as a
// sorted list of disjoint, non-touching intervals. Intervals may arrive in any order (CUPTI
// delivers streams and devices out of order); overlapping, nested and touching ones merge, so
// the list holds one entry per stretch of busy time. Not thread-safe: the owner guards it.
class BusyIntervals {
 public:
  struct Interval {
    int64_t begin;
    int64_t end;
  };

  // Adds [begin, end). Empty or reversed intervals are ignored. The part before the horizon
  // (see Prune) is dropped: what it overlapped is forgotten, so it could be counted twice.
  void Add(int64_t begin, int64_t end) {
    begin = std::max(begin, horizon_);
    if (end <= begin) return;
    // Fast path: intervals mostly arrive in time order and after everything held.
    if (intervals_.empty() || intervals_.back().end < begin) {
      intervals_.push_back({begin, end});
      total_ += end - begin;
      return;
    }
    // [first, last) are the held intervals that overlap or touch [begin, end]: ends are sorted
    // like begins because the intervals are disjoint.
    auto first = std::partition_point(intervals_.begin(), intervals_.end(),
                                      [&](const Interval& i) { return i.end < begin; });
    auto last = std::partition_point(first, intervals_.end(),
                                     [&](const Interval& i) { return i.begin <= end; });
    if (first == last) {
      intervals_.insert(first, {begin, end});
      total_ += end - begin;
      return;
    }
    const int64_t merged_begin = std::min(begin, first->begin);
    const int64_t merged_end = std::max(end, std::prev(last)->end);
    int64_t covered = 0;
    for (auto it = first; it != last; ++it) covered += it->end - it->begin;
    total_ += (merged_end - merged_begin) - covered;
    *first = {merged_begin, merged_end};
    intervals_.erase(std::next(first), last);
  }

  // Length of the union within [begin, end); 0 for an empty window. Time before the horizon
  // counts as idle (it has been forgotten).
  int64_t Busy(int64_t begin, int64_t end) const {
    if (end <= begin) return 0;
    auto it = std::partition_point(intervals_.begin(), intervals_.end(),
                                   [&](const Interval& i) { return i.end <= begin; });
    int64_t busy = 0;
    for (; it != intervals_.end() && it->begin < end; ++it) {
      busy += std::min(it->end, end) - std::max(it->begin, begin);
    }
    return busy;
  }

  // Length of the union of everything added, including what Prune has since forgotten.
  int64_t TotalBusy() const { return total_; }

  // Forgets the union before `before` (TotalBusy keeps counting it) and raises the horizon
  // there; later Adds are clipped to it. A horizon never moves back.
  void Prune(int64_t before) {
    if (before <= horizon_) return;
    horizon_ = before;
    while (!intervals_.empty() && intervals_.front().end <= horizon_) intervals_.pop_front();
    if (!intervals_.empty() && intervals_.front().begin < horizon_) {
      intervals_.front().begin = horizon_;
    }
  }

  // Prunes the oldest intervals until at most `max_intervals` remain.
  void PruneToSize(size_t max_intervals) {
    if (intervals_.size() <= max_intervals) return;
    Prune(intervals_[intervals_.size() - max_intervals - 1].end);
  }

  // Time before which the union has been forgotten (the lowest int64_t when nothing has been).
  int64_t horizon() const { return horizon_; }
  // Number of disjoint intervals held: the memory in use is proportional to it.
  size_t size() const { return intervals_.size(); }
  const std::deque<Interval>& intervals() const { return intervals_; }

 private:
  std::deque<Interval> intervals_;  // sorted by begin; disjoint and non-touching
  int64_t horizon_ = std::numeric_limits<int64_t>::min();
  int64_t total_ = 0;
};

}  // namespace sluice::tracer
