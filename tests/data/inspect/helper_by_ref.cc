// Helpers of the user's own taking a member by non-const reference: Bump writes it (stateful at
// the call), Peek only reads it (proven not to write: no finding).
// expect tally: deterministic=holds stateless=violated io=no race=no
#include <cstdint>

#include "sluice/pipeline/op.h"

namespace {
using namespace sluice::pipeline;

void Bump(uint64_t& n) { ++n; }
uint64_t Peek(uint64_t& n) { return n + 1; }
void BumpTwice(uint64_t* n) {
  Bump(*n);
  Bump(*n);
}

class TallyOp final : public MapOp {
 public:
  explicit TallyOp(OpArgs&) {}
  OpProperties properties() const override { return {OpKind::kMap, false, true, false}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    in.id += Peek(total_);
    Bump(total_);        // <- stateless
    BumpTwice(&calls_);  // <- stateless
    out.push_back(std::move(in));
  }

 private:
  uint64_t total_ = 0;
  uint64_t calls_ = 0;
};
SLUICE_REGISTER_OP("tally", TallyOp);
}  // namespace
