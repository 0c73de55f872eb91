// The wall clock stamped into the element: data that differs every epoch.
// expect timestamp: deterministic=violated stateless=holds io=no
#include <chrono>

#include "sluice/pipeline/op.h"

namespace {
using namespace sluice::pipeline;

class TimestampOp final : public MapOp {
 public:
  explicit TimestampOp(OpArgs&) {}
  OpProperties properties() const override { return {OpKind::kMap, true, true, true}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    const auto now = std::chrono::system_clock::now();  // <- deterministic
    in.id = static_cast<uint64_t>(now.time_since_epoch().count());
    out.push_back(std::move(in));
  }
};
SLUICE_REGISTER_OP("timestamp", TimestampOp);
}  // namespace
