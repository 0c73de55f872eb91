// Op rewrites: decode_jpeg → random_resized_crop as decode_random_resized_crop.
#include "tuner/rewrite.h"

#include <fmt/format.h>

#include "sluice/common/figures.h"

namespace sluice::tuner::internal {
namespace {

using ::sluice::Duration;
using ::sluice::Num;
using ::sluice::Plural;

// The fused op's CPU per image as a share of decode_jpeg's plus random_resized_crop's, measured
// on real photographs (2,000 ImageNet-sized JPEGs, 2 cores; docs/benchmarks.md, "sluice against
// the DataLoader on real photographs": 0.98 ms against 0.61 + 0.71 ms). It decodes only the crop
// window, and at a smaller DCT scale where the window allows; the resize is the same.
constexpr double kFusedCropShare = 0.74;

}  // namespace

void ProposeRewrites(const analyzer::Analysis& a, const analyzer::Resources& res,
                     const TuneOptions& o, Plan& plan) {
  for (size_t i = 0; i + 1 < a.stages.size(); ++i) {
    const analyzer::StageAnalysis& decode = a.stages[i];
    const analyzer::StageAnalysis& crop = a.stages[i + 1];
    if (decode.op != "decode_jpeg" || crop.op != "random_resized_crop") continue;
    // The two stages' demands moved onto the second, less the fused op's saving; the first then
    // costs nothing (it is gone), and the knobs stay as planned.
    analyzer::Analysis fused = a;
    analyzer::StageAnalysis& f = fused.stages[i + 1];
    f.cpu_demand = (decode.cpu_demand + crop.cpu_demand) * kFusedCropShare;
    f.wall_demand = (decode.wall_demand + crop.wall_demand) * kFusedCropShare;
    fused.stages[i].cpu_demand = 0;
    fused.stages[i].wall_demand = 0;
    Rewrite r;
    r.first = decode.name;
    r.second = crop.name;
    r.op = "decode_random_resized_crop";
    r.predicted_outputs_per_s = analyzer::Predict(fused, plan.knobs, res).outputs_per_s;
    const double gain = plan.predicted_outputs_per_s > 0
                            ? r.predicted_outputs_per_s / plan.predicted_outputs_per_s
                            : 1.0;
    r.why = fmt::format(
        "'{}' (decode_jpeg) followed by '{}' (random_resized_crop) can run as one "
        "decode_random_resized_crop stage, which decodes only the crop window (the same windows "
        "for the same seed): {} of CPU per {} now, about {} fused (it took {:.0f}% of the pair's "
        "CPU on real photographs), predicted {} {}/s ({:.2f}x the tuned plan)",
        decode.name, crop.name, Duration(decode.cpu_demand + crop.cpu_demand), a.output_noun,
        Duration(f.cpu_demand), 100 * kFusedCropShare, Num(r.predicted_outputs_per_s),
        Plural(a.output_noun), gain);
    r.applied = o.allow_rewrite;
    if (r.applied) {
      plan.prediction = analyzer::Predict(fused, plan.knobs, res);
      plan.predicted_outputs_per_s = plan.prediction.outputs_per_s;
      if (plan.current_predicted_outputs_per_s > 0) {
        plan.speedup = plan.predicted_outputs_per_s / plan.current_predicted_outputs_per_s;
      }
      plan.notes.push_back("rewrite (\"allow_rewrite\": true): " + r.why);
    } else {
      plan.notes.push_back(
          "advice: " + r.why +
          "; set \"allow_rewrite\": true at the top of the config to let the tuner make this "
          "change");
    }
    plan.rewrites.push_back(std::move(r));
    ++i;  // the pair is taken
  }
}

}  // namespace sluice::tuner::internal
