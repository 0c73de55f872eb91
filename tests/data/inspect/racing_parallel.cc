// Declared parallelizable, but Process updates a member and a global with no lock and no atomic:
// workers race on them (a data race), besides being stateful.
// expect racing_stats: deterministic=holds stateless=violated io=no race=yes
#include <cstdint>

#include "sluice/pipeline/op.h"

namespace {
using namespace sluice::pipeline;

uint64_t g_bytes = 0;

class RacingStatsOp final : public MapOp {
 public:
  explicit RacingStatsOp(OpArgs&) {}
  OpProperties properties() const override { return {OpKind::kMap, true, true, false}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    ++seen_;                   // <- stateless race
    g_bytes += in.ByteSize();  // <- stateless race
    out.push_back(std::move(in));
  }

 private:
  uint64_t seen_ = 0;
};
SLUICE_REGISTER_OP("racing_stats", RacingStatsOp);
}  // namespace
