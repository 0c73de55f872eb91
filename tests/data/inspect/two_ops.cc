// Two ops in one file: one clean, one counting.
// expect add_one: deterministic=holds stateless=holds io=no
// expect count_calls: deterministic=holds stateless=violated io=no
#include "sluice/pipeline/op.h"

namespace {
using namespace sluice::pipeline;

class AddOneOp final : public MapOp {
 public:
  explicit AddOneOp(OpArgs&) {}
  OpProperties properties() const override { return {OpKind::kMap, true, true, true}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    ++in.id;
    out.push_back(std::move(in));
  }
};

class CountCallsOp final : public MapOp {
 public:
  explicit CountCallsOp(OpArgs&) {}
  OpProperties properties() const override { return {OpKind::kMap, false, true, false}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    ++calls_;  // <- stateless
    out.push_back(std::move(in));
  }

 private:
  int64_t calls_ = 0;
};

SLUICE_REGISTER_OP("add_one", AddOneOp);
SLUICE_REGISTER_OP("count_calls", CountCallsOp);
}  // namespace
