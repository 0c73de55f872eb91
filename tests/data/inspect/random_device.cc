// std::random_device read per element.
// expect entropy: deterministic=violated stateless=holds io=no
#include <random>

#include "sluice/pipeline/op.h"

namespace {
using namespace sluice::pipeline;

class EntropyOp final : public MapOp {
 public:
  explicit EntropyOp(OpArgs&) {}
  OpProperties properties() const override { return {OpKind::kMap, true, false, true}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    std::random_device rd;  // <- deterministic
    in.id ^= rd();
    out.push_back(std::move(in));
  }
};
SLUICE_REGISTER_OP("entropy", EntropyOp);
}  // namespace
