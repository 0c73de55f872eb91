// A member order shuffled with a member engine, and two of its entries swapped: both write the
// member through references the standard library takes (std::shuffle's iterators and engine,
// std::swap's operands). Declared sequential and stateful, so no race.
// expect reorder: deterministic=violated stateless=violated io=no race=no
#include <algorithm>
#include <random>
#include <utility>
#include <vector>

#include "sluice/pipeline/op.h"

namespace {
using namespace sluice::pipeline;

class ReorderOp final : public MapOp {
 public:
  explicit ReorderOp(OpArgs&) : order_{0, 1, 2, 3, 4, 5, 6, 7} {}
  OpProperties properties() const override { return {OpKind::kMap, false, false, false}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    if (in.id % 8 == 0) {
      std::shuffle(order_.begin(), order_.end(), engine_);  // <- deterministic stateless
    } else {
      std::swap(order_[in.id % 8], order_[0]);  // <- stateless
    }
    in.id = static_cast<uint64_t>(order_[0]);
    out.push_back(std::move(in));
  }

 private:
  std::vector<int> order_;
  std::mt19937 engine_;
};
SLUICE_REGISTER_OP("reorder", ReorderOp);
}  // namespace
