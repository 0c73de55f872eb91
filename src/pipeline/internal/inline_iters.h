// The iterators of stages that run inline on the thread that pulls them.
#pragma once

#include <algorithm>
#include <cstdint>
#include <utility>
#include <vector>

#include "pipeline/internal/stage.h"

namespace sluice::pipeline::internal {

// The view of an upstream iterator a stage pulls through: counts inputs and time blocked.
class CountingInput final : public Input {
 public:
  CountingInput(Iter* upstream, WorkerCounters* c) : upstream_(upstream), c_(c) {}
  bool Next(Element* out) override {
    int64_t busy0 = tl_busy_ns;
    int64_t t0 = MonotonicNanos();
    bool ok = upstream_->Next(out);
    int64_t spent = MonotonicNanos() - t0;
    pulled_ns_ += spent;
    c_->blocked_in_ns.Add(std::max<int64_t>(0, spent - (tl_busy_ns - busy0)));
    if (ok) c_->elements_in.Add(1);
    return ok;
  }
  int64_t TakePulledNanos() { return std::exchange(pulled_ns_, 0); }
  void set_counters(WorkerCounters* c) { c_ = c; }

 private:
  Iter* upstream_;
  WorkerCounters* c_;
  int64_t pulled_ns_ = 0;
};

class SourceIter final : public Iter {
 public:
  // `count_out`: false when an asynchronous stage counts outputs as it queues them.
  SourceIter(Stage& s, int64_t epoch, int worker, bool count_out = true)
      : s_(s),
        op_(static_cast<SourceOp*>(s.op.get())),
        c_(s.workers[worker].get()),
        count_out_(count_out) {
    ctx_ = {epoch, worker, s.name};
  }
  bool Next(Element* out) override {
    CallTimer timer(c_, true);
    bool ok = CallOp(s_, [&] { return op_->Next(out, ctx_); });
    timer.Finish();
    if (ok && count_out_) CountOut(c_, *out);
    return ok;
  }

 private:
  Stage& s_;
  SourceOp* op_;
  WorkerCounters* c_;
  bool count_out_;
  OpContext ctx_;
};

class MapIter final : public Iter {
 public:
  MapIter(Stage& s, Iter* upstream, int64_t epoch)
      : s_(s), op_(static_cast<MapOp*>(s.op.get())), c_(s.workers[0].get()), in_(upstream, c_) {
    ctx_ = {epoch, 0, s.name};
  }
  bool Next(Element* out) override {
    while (pending_pos_ == pending_.size()) {
      pending_.clear();
      pending_pos_ = 0;
      Element e;
      if (!in_.Next(&e)) return false;
      CallTimer timer(c_, true);
      CallOp(s_, [&] { op_->Process(std::move(e), pending_, ctx_); });
      timer.Finish();
    }
    *out = std::move(pending_[pending_pos_++]);
    CountOut(c_, *out);
    return true;
  }
  // Outputs of the last input not yet delivered.
  bool HasPending() const { return pending_pos_ < pending_.size(); }

 private:
  Stage& s_;
  MapOp* op_;
  WorkerCounters* c_;
  CountingInput in_;
  OpContext ctx_;
  std::vector<Element> pending_;
  size_t pending_pos_ = 0;
};

class StreamIter final : public Iter {
 public:
  StreamIter(Stage& s, Iter* upstream, int64_t epoch, int worker, bool count_out = true)
      : s_(s),
        op_(static_cast<StreamOp*>(s.op.get())),
        c_(s.workers[worker].get()),
        count_out_(count_out),
        in_(upstream, c_) {
    ctx_ = {epoch, worker, s.name};
  }
  bool Next(Element* out) override {
    // Stream ops pull inside their call, so CPU is apportioned rather than timed exactly.
    CallTimer timer(c_, false);
    bool ok = CallOp(s_, [&] { return op_->Next(in_, out, ctx_); });
    timer.Finish(in_.TakePulledNanos());
    if (ok && count_out_) CountOut(c_, *out);
    return ok;
  }

 private:
  Stage& s_;
  StreamOp* op_;
  WorkerCounters* c_;
  bool count_out_;
  CountingInput in_;
  OpContext ctx_;
};

}  // namespace sluice::pipeline::internal
