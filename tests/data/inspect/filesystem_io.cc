// Drops elements whose file vanished, asking std::filesystem per element.
// expect exists_filter: deterministic=holds stateless=holds io=yes
#include <filesystem>

#include "sluice/pipeline/op.h"

namespace {
using namespace sluice::pipeline;

class ExistsFilterOp final : public MapOp {
 public:
  explicit ExistsFilterOp(OpArgs&) {}
  OpProperties properties() const override { return {OpKind::kMap, true, true, true}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    if (std::filesystem::exists(in.path)) out.push_back(std::move(in));  // <- io
  }
};
SLUICE_REGISTER_OP("exists_filter", ExistsFilterOp);
}  // namespace
