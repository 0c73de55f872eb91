// A member mutex taken per element to guard a shared histogram.
// expect histogram: deterministic=holds stateless=violated io=no
#include <mutex>

#include "sluice/pipeline/op.h"

namespace {
using namespace sluice::pipeline;

class HistogramOp final : public MapOp {
 public:
  explicit HistogramOp(OpArgs&) {}
  OpProperties properties() const override { return {OpKind::kMap, true, true, true}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    {
      std::lock_guard<std::mutex> lock(mu_);  // <- stateless
      ++counts_[in.ByteSize() % 16];          // <- stateless
    }
    out.push_back(std::move(in));
  }

 private:
  std::mutex mu_;
  uint64_t counts_[16] = {};
};
SLUICE_REGISTER_OP("histogram", HistogramOp);
}  // namespace
