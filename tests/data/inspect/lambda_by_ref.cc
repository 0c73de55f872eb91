// A lambda capturing by reference ([&]) writes a member from inside std::for_each.
// expect byte_sum: deterministic=holds stateless=violated io=no race=yes
#include <algorithm>

#include "sluice/pipeline/op.h"

namespace {
using namespace sluice::pipeline;

class ByteSumOp final : public MapOp {
 public:
  explicit ByteSumOp(OpArgs&) {}
  OpProperties properties() const override { return {OpKind::kMap, true, true, true}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    if (in.bytes) {
      std::for_each(in.bytes->begin(), in.bytes->end(),
                    [&](char c) { total_ += static_cast<unsigned char>(c); });  // <- stateless race
    }
    in.id = total_;
    out.push_back(std::move(in));
  }

 private:
  uint64_t total_ = 0;
};
SLUICE_REGISTER_OP("byte_sum", ByteSumOp);
}  // namespace
