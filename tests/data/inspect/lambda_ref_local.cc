// A lambda capturing by reference that writes only a local of Process: no state survives the
// call, so the op is stateless.
// expect local_sum: deterministic=holds stateless=holds io=no
#include <algorithm>

#include "sluice/pipeline/op.h"

namespace {
using namespace sluice::pipeline;

class LocalSumOp final : public MapOp {
 public:
  explicit LocalSumOp(OpArgs&) {}
  OpProperties properties() const override { return {OpKind::kMap, true, true, true}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    uint64_t sum = 0;
    if (in.bytes) {
      std::for_each(in.bytes->begin(), in.bytes->end(),
                    [&](char c) { sum += static_cast<unsigned char>(c); });
    }
    in.id = sum;
    out.push_back(std::move(in));
  }
};
SLUICE_REGISTER_OP("local_sum", LocalSumOp);
}  // namespace
