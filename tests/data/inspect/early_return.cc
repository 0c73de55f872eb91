// Early returns guard what follows them: `if (!random_) { ...; return; }` makes the rest of
// Process conditional on random_, and `if (!noisy_) return;` in a method makes its draw
// conditional on noisy_, as `if (random_) { ... }` would.
// expect maybe_random: deterministic=conditional stateless=holds io=no
// expect maybe_noisy: deterministic=conditional stateless=holds io=no
#include <cstdlib>

#include "sluice/pipeline/op.h"

namespace {
using namespace sluice::pipeline;

class MaybeRandomOp final : public MapOp {
 public:
  explicit MaybeRandomOp(OpArgs& args) : random_(args.Bool("random", false)) {}
  OpProperties properties() const override {
    return {OpKind::kMap, true, /*deterministic=*/!random_, true};
  }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    if (!random_) {
      out.push_back(std::move(in));
      return;
    }
    in.id += static_cast<uint64_t>(rand() % 3);  // <- deterministic
    out.push_back(std::move(in));
  }

 private:
  bool random_;
};
SLUICE_REGISTER_OP("maybe_random", MaybeRandomOp);

class MaybeNoisyOp final : public MapOp {
 public:
  explicit MaybeNoisyOp(OpArgs& args) : noisy_(args.Bool("noisy", false)) {}
  OpProperties properties() const override {
    return {OpKind::kMap, true, /*deterministic=*/!noisy_, true};
  }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    AddNoise(in);
    out.push_back(std::move(in));
  }

 private:
  void AddNoise(Element& e) const {
    if (!noisy_) return;
    e.id ^= static_cast<uint64_t>(random());  // <- deterministic
  }
  bool noisy_;
};
SLUICE_REGISTER_OP("maybe_noisy", MaybeNoisyOp);
}  // namespace
