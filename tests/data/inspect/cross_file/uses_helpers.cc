// Ops whose Process looks clean but calls helpers defined in other files (noise.cc, counter.cc):
// with the build's compile_commands.json (-p) the inspector follows them there.
// expect noisy_helper: deterministic=violated stateless=holds io=no race=no
// expect counting_helper: deterministic=holds stateless=violated io=no race=yes
// expect doubling_helper: deterministic=holds stateless=holds io=no race=no
#include "helpers.h"
#include "sluice/pipeline/op.h"

namespace {
using namespace sluice::pipeline;

class NoisyHelperOp final : public MapOp {
 public:
  explicit NoisyHelperOp(OpArgs&) {}
  OpProperties properties() const override { return {OpKind::kMap, true, true, true}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    in.id += static_cast<uint64_t>(helpers::DrawNoise(4));
    out.push_back(std::move(in));
  }
};
SLUICE_REGISTER_OP("noisy_helper", NoisyHelperOp);

class CountingHelperOp final : public MapOp {
 public:
  explicit CountingHelperOp(OpArgs&) {}
  OpProperties properties() const override { return {OpKind::kMap, true, true, true}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    helpers::CountCall();
    out.push_back(std::move(in));
  }
};
SLUICE_REGISTER_OP("counting_helper", CountingHelperOp);

class DoublingHelperOp final : public MapOp {
 public:
  explicit DoublingHelperOp(OpArgs&) {}
  OpProperties properties() const override { return {OpKind::kMap, true, true, true}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    in.id = helpers::Twice(in.id);
    out.push_back(std::move(in));
  }
};
SLUICE_REGISTER_OP("doubling_helper", DoublingHelperOp);
}  // namespace
