// A namespace-scope counter updated per element.
// expect global_count: deterministic=holds stateless=violated io=no race=yes
#include "sluice/pipeline/op.h"

namespace {
using namespace sluice::pipeline;

int64_t g_elements = 0;

class GlobalCountOp final : public MapOp {
 public:
  explicit GlobalCountOp(OpArgs&) {}
  OpProperties properties() const override { return {OpKind::kMap, true, true, true}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    g_elements += 1;  // <- stateless race
    out.push_back(std::move(in));
  }
};
SLUICE_REGISTER_OP("global_count", GlobalCountOp);
}  // namespace
