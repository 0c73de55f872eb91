// A const method that only reads a lookup table built in the constructor: clean.
// expect lookup: deterministic=holds stateless=holds io=no
#include <array>

#include "sluice/pipeline/op.h"

namespace {
using namespace sluice::pipeline;

class LookupOp final : public MapOp {
 public:
  explicit LookupOp(OpArgs& args) {
    const int64_t shift = args.Int("shift", 3);
    for (size_t i = 0; i < table_.size(); ++i) table_[i] = static_cast<uint8_t>(i + shift);
  }
  OpProperties properties() const override { return {OpKind::kMap, true, true, true}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    in.id = Map(in.id);
    out.push_back(std::move(in));
  }

 private:
  uint64_t Map(uint64_t id) const { return table_[id % table_.size()]; }
  std::array<uint8_t, 256> table_{};
};
SLUICE_REGISTER_OP("lookup", LookupOp);
}  // namespace
