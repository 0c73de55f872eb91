// Test ops of the runtime's tests, registered the way user-defined ops are (once per binary,
// hence here and not in a header).
#include <chrono>
#include <cstdint>
#include <stdexcept>
#include <thread>
#include <vector>

#include <fmt/format.h>

#include "sluice/pipeline/op.h"

namespace sluice::pipeline {
namespace {

// Passes elements through and throws std::runtime_error at the element whose id is `at`.
class ThrowAtOp final : public MapOp {
 public:
  explicit ThrowAtOp(OpArgs& args) : at_(static_cast<uint64_t>(args.Int("at"))) {}
  OpProperties properties() const override { return {OpKind::kMap, true, true, true}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    if (in.id == at_) throw std::runtime_error(fmt::format("throw_at exploded at element {}", at_));
    out.push_back(std::move(in));
  }

 private:
  uint64_t at_;
};
SLUICE_REGISTER_OP("throw_at", ThrowAtOp);

// Sleeps long on every third element and not at all on the others, so that parallel workers
// finish out of order.
class JitterOp final : public MapOp {
 public:
  explicit JitterOp(OpArgs& args) : us_(args.Int("us", 300)) {}
  OpProperties properties() const override { return {OpKind::kMap, true, true, true}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    if (in.id % 3 == 0) std::this_thread::sleep_for(std::chrono::microseconds(us_));
    out.push_back(std::move(in));
  }

 private:
  int64_t us_;
};
SLUICE_REGISTER_OP("jitter", JitterOp);

// A stream op that ends its epoch after `n` elements, leaving the rest of its input unread.
class TakeOp final : public StreamOp {
 public:
  explicit TakeOp(OpArgs& args) : n_(args.Int("n")) {}
  OpProperties properties() const override { return {OpKind::kStream, false, true, false}; }
  void BeginEpoch(int64_t) override { taken_ = 0; }
  bool Next(Input& in, Element* out, const OpContext&) override {
    if (taken_ == n_ || !in.Next(out)) return false;
    ++taken_;
    return true;
  }

 private:
  int64_t n_;
  int64_t taken_ = 0;
};
SLUICE_REGISTER_OP("take", TakeOp);

// A source that (wrongly) claims to be parallelizable: sources always run on one thread.
class ParallelClaimingSourceOp final : public SourceOp {
 public:
  explicit ParallelClaimingSourceOp(OpArgs&) {}
  OpProperties properties() const override { return {OpKind::kSource, true, true, false}; }
  bool Next(Element*, const OpContext&) override { return false; }
};
SLUICE_REGISTER_OP("parallel_claiming_source", ParallelClaimingSourceOp);
}  // namespace
}  // namespace sluice::pipeline
