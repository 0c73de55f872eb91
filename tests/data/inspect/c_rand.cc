// C's rand() straight in Process, declared non-deterministic: inspection agrees.
// expect coin: deterministic=violated stateless=holds io=no
#include <cstdlib>

#include "sluice/pipeline/op.h"

namespace {
using namespace sluice::pipeline;

class CoinOp final : public MapOp {
 public:
  explicit CoinOp(OpArgs&) {}
  OpProperties properties() const override {
    return {.kind = OpKind::kMap, .parallelizable = true, .deterministic = false};
  }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    if (rand() % 2 == 0) out.push_back(std::move(in));  // <- deterministic
  }
};
SLUICE_REGISTER_OP("coin", CoinOp);
}  // namespace
