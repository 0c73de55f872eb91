// A source op counting its elements in a member, reset in BeginEpoch; declared stateful.
// expect countdown: deterministic=holds stateless=violated io=no
#include "sluice/pipeline/op.h"

namespace {
using namespace sluice::pipeline;

class CountdownOp final : public SourceOp {
 public:
  explicit CountdownOp(OpArgs& args) : count_(args.Int("count", 10)) {}
  OpProperties properties() const override { return {OpKind::kSource, false, true, false}; }
  void BeginEpoch(int64_t) override { left_ = count_; }  // <- stateless
  bool Next(Element* out, const OpContext&) override {
    if (left_ == 0) return false;
    *out = Element{};
    out->id = static_cast<uint64_t>(--left_);  // <- stateless
    return true;
  }

 private:
  int64_t count_;
  int64_t left_ = 0;
};
SLUICE_REGISTER_OP("countdown", CountdownOp);
}  // namespace
