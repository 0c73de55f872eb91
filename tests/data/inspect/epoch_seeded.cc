// A local engine seeded from the element and the epoch: reproducible, but different every
// epoch, so a cache would freeze the first epoch's augmentation.
// expect epoch_noise: deterministic=violated stateless=holds io=no
#include <random>

#include "sluice/pipeline/op.h"

namespace {
using namespace sluice::pipeline;

class EpochNoiseOp final : public MapOp {
 public:
  explicit EpochNoiseOp(OpArgs&) {}
  OpProperties properties() const override { return {OpKind::kMap, true, false, true}; }
  void Process(Element in, std::vector<Element>& out, const OpContext& ctx) override {
    const uint64_t seed = in.id * 1000003ULL + static_cast<uint64_t>(ctx.epoch);
    std::minstd_rand rng(static_cast<uint32_t>(seed));
    in.id = rng();  // <- deterministic
    out.push_back(std::move(in));
  }
};
SLUICE_REGISTER_OP("epoch_noise", EpochNoiseOp);
}  // namespace
