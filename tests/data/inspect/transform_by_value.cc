// std::transform with a lambda capturing a member's value by copy: clean.
// expect scale_bytes: deterministic=holds stateless=holds io=no
#include <algorithm>
#include <string>

#include "sluice/pipeline/op.h"

namespace {
using namespace sluice::pipeline;

class ScaleBytesOp final : public MapOp {
 public:
  explicit ScaleBytesOp(OpArgs& args) : factor_(static_cast<int>(args.Int("factor", 2))) {}
  OpProperties properties() const override { return {OpKind::kMap, true, true, true}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    if (in.bytes) {
      auto scaled = std::make_shared<std::string>(in.bytes->size(), '\0');
      std::transform(in.bytes->begin(), in.bytes->end(), scaled->begin(),
                     [factor = factor_](char c) { return static_cast<char>(c * factor); });
      in.bytes = std::move(scaled);
    }
    out.push_back(std::move(in));
  }

 private:
  int factor_;
};
SLUICE_REGISTER_OP("scale_bytes", ScaleBytesOp);
}  // namespace
