// A const method that memoizes into a mutable member: written per element, so state.
// expect memo: deterministic=holds stateless=violated io=no race=yes
#include <map>

#include "sluice/pipeline/op.h"

namespace {
using namespace sluice::pipeline;

class MemoOp final : public MapOp {
 public:
  explicit MemoOp(OpArgs&) {}
  OpProperties properties() const override { return {OpKind::kMap, true, true, true}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    in.id = Square(in.id);
    out.push_back(std::move(in));
  }

 private:
  uint64_t Square(uint64_t x) const {
    auto it = memo_.find(x);
    if (it != memo_.end()) return it->second;
    const uint64_t y = x * x;
    memo_[x] = y;  // <- stateless race
    return y;
  }
  mutable std::map<uint64_t, uint64_t> memo_;
};
SLUICE_REGISTER_OP("memo", MemoOp);
}  // namespace
