// Mutually recursive helpers, one of which draws from drand48(): the analysis must terminate
// and still find the draw.
// expect wobble: deterministic=violated stateless=holds io=no
#include <cstdlib>

#include "sluice/pipeline/op.h"

namespace {
using namespace sluice::pipeline;

uint64_t Odd(uint64_t n);

uint64_t Even(uint64_t n) { return n == 0 ? 1 : Odd(n - 1); }

uint64_t Odd(uint64_t n) {
  if (n == 0) return static_cast<uint64_t>(drand48() * 2);  // <- deterministic
  return Even(n - 1);
}

class WobbleOp final : public MapOp {
 public:
  explicit WobbleOp(OpArgs&) {}
  OpProperties properties() const override { return {OpKind::kMap, true, true, true}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    in.id += Even(in.id % 7);
    out.push_back(std::move(in));
  }
};
SLUICE_REGISTER_OP("wobble", WobbleOp);
}  // namespace
