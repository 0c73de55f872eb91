// A member engine seeded from the config and advanced per element: stateful, and its draws
// continue from epoch to epoch, so epoch 2 differs from epoch 1 (non-deterministic).
// expect member_engine: deterministic=violated stateless=violated io=no
#include <random>

#include "sluice/pipeline/op.h"

namespace {
using namespace sluice::pipeline;

class MemberEngineOp final : public MapOp {
 public:
  explicit MemberEngineOp(OpArgs& args) : rng_(static_cast<uint64_t>(args.Int("seed", 7))) {}
  OpProperties properties() const override { return {OpKind::kMap, false, false, false}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    in.id ^= rng_();  // <- deterministic stateless
    out.push_back(std::move(in));
  }

 private:
  std::mt19937_64 rng_;
};
SLUICE_REGISTER_OP("member_engine", MemberEngineOp);
}  // namespace
