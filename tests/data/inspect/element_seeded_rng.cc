// An engine constructed per element and seeded from the element itself: the same draws for the
// same element every epoch, so deterministic (and stateless: the engine is a local).
// expect element_noise: deterministic=holds stateless=holds io=no
#include <random>

#include "sluice/pipeline/op.h"

namespace {
using namespace sluice::pipeline;

class ElementNoiseOp final : public MapOp {
 public:
  explicit ElementNoiseOp(OpArgs& args) : seed_(static_cast<uint64_t>(args.Int("seed", 1))) {}
  OpProperties properties() const override { return {OpKind::kMap, true, true, true}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    std::mt19937_64 rng(in.id ^ seed_);
    std::uniform_int_distribution<uint64_t> pick(0, 9);
    in.id = in.id * 10 + pick(rng);
    out.push_back(std::move(in));
  }

 private:
  uint64_t seed_;
};
SLUICE_REGISTER_OP("element_noise", ElementNoiseOp);
}  // namespace
