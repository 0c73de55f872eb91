// Registered under a name unlike its class's; the class lives in a named namespace.
// expect normalize_text: deterministic=holds stateless=holds io=no
#include <cctype>

#include "sluice/pipeline/op.h"

namespace acme::ops {

class LowercaseImpl final : public sluice::pipeline::MapOp {
 public:
  explicit LowercaseImpl(sluice::pipeline::OpArgs&) {}
  sluice::pipeline::OpProperties properties() const override {
    return {sluice::pipeline::OpKind::kMap, true, true, true};
  }
  void Process(sluice::pipeline::Element in, std::vector<sluice::pipeline::Element>& out,
               const sluice::pipeline::OpContext&) override {
    for (char& c : in.path) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    out.push_back(std::move(in));
  }
};

}  // namespace acme::ops

SLUICE_REGISTER_OP("normalize_text", acme::ops::LowercaseImpl);
