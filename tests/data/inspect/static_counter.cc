// A function-local static counter numbers the elements: state shared by every worker.
// expect numbered: deterministic=holds stateless=violated io=no race=yes
#include "sluice/pipeline/op.h"

namespace {
using namespace sluice::pipeline;

class NumberedOp final : public MapOp {
 public:
  explicit NumberedOp(OpArgs&) {}
  OpProperties properties() const override { return {OpKind::kMap, true, true, true}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    static uint64_t seen = 0;
    in.id = seen++;  // <- stateless race
    out.push_back(std::move(in));
  }
};
SLUICE_REGISTER_OP("numbered", NumberedOp);
}  // namespace
