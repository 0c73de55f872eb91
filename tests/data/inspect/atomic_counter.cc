// An atomic member counter read back into the element: race-free, but still state.
// expect ticket: deterministic=holds stateless=violated io=no
#include <atomic>

#include "sluice/pipeline/op.h"

namespace {
using namespace sluice::pipeline;

class TicketOp final : public MapOp {
 public:
  explicit TicketOp(OpArgs&) {}
  OpProperties properties() const override { return {OpKind::kMap, true, true, true}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    in.id = next_.fetch_add(1, std::memory_order_relaxed);  // <- stateless
    out.push_back(std::move(in));
  }

 private:
  std::atomic<uint64_t> next_{0};
};
SLUICE_REGISTER_OP("ticket", TicketOp);
}  // namespace
