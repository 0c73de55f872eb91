// A member written through a local reference to it.
// expect alias_count: deterministic=holds stateless=violated io=no
#include <map>
#include <string>

#include "sluice/pipeline/op.h"

namespace {
using namespace sluice::pipeline;

class AliasCountOp final : public MapOp {
 public:
  explicit AliasCountOp(OpArgs&) {}
  OpProperties properties() const override { return {OpKind::kMap, false, true, false}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    auto& counts = per_path_;
    counts[in.path] += 1;  // <- stateless
    out.push_back(std::move(in));
  }

 private:
  std::map<std::string, int64_t> per_path_;
};
SLUICE_REGISTER_OP("alias_count", AliasCountOp);
}  // namespace
