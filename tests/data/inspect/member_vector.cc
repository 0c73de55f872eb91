// push_back on a member container: the op remembers every element it has seen.
// expect remember: deterministic=holds stateless=violated io=no
#include "sluice/pipeline/op.h"

namespace {
using namespace sluice::pipeline;

class RememberOp final : public MapOp {
 public:
  explicit RememberOp(OpArgs&) {}
  OpProperties properties() const override { return {OpKind::kMap, false, true, false}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    seen_.push_back(in.id);  // <- stateless
    out.push_back(std::move(in));
  }

 private:
  std::vector<uint64_t> seen_;
};
SLUICE_REGISTER_OP("remember", RememberOp);
}  // namespace
