// A thread_local engine seeded from std::random_device: non-deterministic, but each worker owns
// its engine, so it is no shared state.
// expect tl_noise: deterministic=violated stateless=holds io=no
#include <random>

#include "sluice/pipeline/op.h"

namespace {
using namespace sluice::pipeline;

class TlNoiseOp final : public MapOp {
 public:
  explicit TlNoiseOp(OpArgs&) {}
  OpProperties properties() const override { return {OpKind::kMap, true, false, true}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    thread_local std::mt19937 rng(std::random_device{}());  // <- deterministic
    std::bernoulli_distribution flip(0.5);
    if (flip(rng)) in.id = ~in.id;  // <- deterministic
    out.push_back(std::move(in));
  }
};
SLUICE_REGISTER_OP("tl_noise", TlNoiseOp);
}  // namespace
