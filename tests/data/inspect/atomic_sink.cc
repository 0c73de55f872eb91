// An atomic member that Process only ever stores to (a sink keeping a computation alive, as
// the built-in burn does): nothing flows from one element to the next, so stateless.
// expect checksum_sink: deterministic=holds stateless=holds io=no
#include <atomic>

#include "sluice/pipeline/op.h"

namespace {
using namespace sluice::pipeline;

class ChecksumSinkOp final : public MapOp {
 public:
  explicit ChecksumSinkOp(OpArgs&) {}
  OpProperties properties() const override { return {OpKind::kMap, true, true, true}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    uint64_t acc = in.id;
    for (int i = 0; i < 64; ++i) acc = acc * 6364136223846793005ULL + 1;
    sink_.store(acc, std::memory_order_relaxed);
    out.push_back(std::move(in));
  }

 private:
  std::atomic<uint64_t> sink_{0};
};
SLUICE_REGISTER_OP("checksum_sink", ChecksumSinkOp);
}  // namespace
