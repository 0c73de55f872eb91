// The new user's op: a member engine drawn from through a distribution, declared parallelizable.
// Every draw advances the member engine (state), two workers drawing at once race on it, and the
// draws continue from epoch to epoch (non-deterministic).
// expect noisy_label: deterministic=violated stateless=violated io=no race=yes
#include <random>

#include "sluice/pipeline/op.h"

namespace {
using namespace sluice::pipeline;

class NoisyLabelOp final : public MapOp {
 public:
  explicit NoisyLabelOp(OpArgs& args) : engine_(static_cast<unsigned>(args.Int("seed", 1))) {}
  OpProperties properties() const override { return {OpKind::kMap, true, false, true}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    std::uniform_int_distribution<int> noise(0, 9);
    in.id += static_cast<uint64_t>(noise(engine_));  // <- deterministic stateless race
    out.push_back(std::move(in));
  }

 private:
  std::mt19937 engine_;
};
SLUICE_REGISTER_OP("noisy_label", NoisyLabelOp);
}  // namespace
