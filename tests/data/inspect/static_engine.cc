// A function-local static engine with a fixed seed, shared by every worker: its draws depend on
// how many came before (stateful) and continue across epochs (non-deterministic).
// expect static_engine: deterministic=violated stateless=violated io=no
#include <random>

#include "sluice/pipeline/op.h"

namespace {
using namespace sluice::pipeline;

class StaticEngineOp final : public MapOp {
 public:
  explicit StaticEngineOp(OpArgs&) {}
  OpProperties properties() const override { return {OpKind::kMap, false, false, false}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    static std::mt19937 rng(42);
    in.id = rng();  // <- deterministic stateless
    out.push_back(std::move(in));
  }
};
SLUICE_REGISTER_OP("static_engine", StaticEngineOp);
}  // namespace
