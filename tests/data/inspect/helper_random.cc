// Randomness behind a helper function: Process looks clean, Jitter() calls rand().
// expect jitter: deterministic=violated stateless=holds io=no
#include <cstdlib>

#include "sluice/pipeline/op.h"

namespace {
using namespace sluice::pipeline;

int Jitter(int range) { return std::rand() % range; }  // <- deterministic

class JitterOp final : public MapOp {
 public:
  explicit JitterOp(OpArgs&) {}
  OpProperties properties() const override { return {OpKind::kMap, true, true, true}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    in.id += static_cast<uint64_t>(Jitter(4));
    out.push_back(std::move(in));
  }
};
SLUICE_REGISTER_OP("jitter", JitterOp);
}  // namespace
