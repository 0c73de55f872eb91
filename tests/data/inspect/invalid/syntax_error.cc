// Does not compile: a missing semicolon and an undeclared name. `sluice inspect` must print the
// compiler's diagnostics and exit 1.
#include "sluice/pipeline/op.h"

namespace {
using namespace sluice::pipeline;

class BrokenOp final : public MapOp {
 public:
  explicit BrokenOp(OpArgs&) {}
  OpProperties properties() const override {
    return { OpKind::kMap, true, true, true }
  }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    out.push_back(undeclared_name);
  }
};
SLUICE_REGISTER_OP("broken", BrokenOp);
}  // namespace
