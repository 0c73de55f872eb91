// Randomness only when the `jitter` arg is set, and the declaration says so (!jitter_): the
// finding is conditional on the member that the declaration reads, so they agree.
// expect maybe_jitter: deterministic=conditional stateless=holds io=no
#include <cstdlib>

#include "sluice/pipeline/op.h"

namespace {
using namespace sluice::pipeline;

class MaybeJitterOp final : public MapOp {
 public:
  explicit MaybeJitterOp(OpArgs& args) : jitter_(args.Bool("jitter", false)) {}
  OpProperties properties() const override {
    return {OpKind::kMap, true, /*deterministic=*/!jitter_, true};
  }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    if (jitter_) {
      in.id += static_cast<uint64_t>(random() % 3);  // <- deterministic
    }
    out.push_back(std::move(in));
  }

 private:
  bool jitter_;
};
SLUICE_REGISTER_OP("maybe_jitter", MaybeJitterOp);
}  // namespace
