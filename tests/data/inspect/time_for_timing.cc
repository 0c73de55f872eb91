// The clock used only for timing (a deadline compared, a sleep): outputs do not depend on it.
// expect paced: deterministic=holds stateless=holds io=no
#include <chrono>
#include <thread>

#include "sluice/pipeline/op.h"

namespace {
using namespace sluice::pipeline;

class PacedOp final : public MapOp {
 public:
  explicit PacedOp(OpArgs&) {}
  OpProperties properties() const override { return {OpKind::kMap, true, true, true}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(50);
    while (std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::microseconds(10));
    }
    out.push_back(std::move(in));
  }
};
SLUICE_REGISTER_OP("paced", PacedOp);
}  // namespace
