// Declares itself deterministic and stateless, but is neither: the inspector must say so.
// expect false_claim: deterministic=violated stateless=violated io=no race=yes
#include <chrono>

#include "sluice/pipeline/op.h"

namespace {
using namespace sluice::pipeline;

class FalseClaimOp final : public MapOp {
 public:
  explicit FalseClaimOp(OpArgs&) {}
  OpProperties properties() const override { return {OpKind::kMap, true, true, true}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    const auto now = std::chrono::steady_clock::now();  // <- deterministic
    last_ = now.time_since_epoch().count();             // <- stateless race
    in.id = static_cast<uint64_t>(last_);
    out.push_back(std::move(in));
  }

 private:
  int64_t last_ = 0;
};
SLUICE_REGISTER_OP("false_claim", FalseClaimOp);
}  // namespace
