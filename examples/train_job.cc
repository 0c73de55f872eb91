// An example training job: links the sluice runtime, registers a user-defined op, builds a
// pipeline from a config and iterates it as a training loop with a configurable step time.
//
//   train_job --pipeline examples/custom_pipeline.json [--step-ms 5] [--steps N] [--epochs N]
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <thread>

#include <fmt/format.h>
#include <CLI/CLI.hpp>

#include "sluice/common/clock.h"
#include "sluice/common/error.h"
#include "sluice/config/document.h"
#include "sluice/pipeline/op.h"
#include "sluice/pipeline/pipeline.h"

namespace {

using sluice::pipeline::DType;
using sluice::pipeline::Element;
using sluice::pipeline::OpArgs;
using sluice::pipeline::OpContext;
using sluice::pipeline::OpKind;
using sluice::pipeline::OpProperties;
using sluice::pipeline::Tensor;

// A user-defined op: RGB uint8 [H, W, 3] to luminance uint8 [H, W, 1] (ITU-R BT.601 weights).
// It reads only its input and writes only its output, so it is parallelizable, deterministic
// and stateless, which is what it declares.
class GrayscaleOp final : public sluice::pipeline::MapOp {
 public:
  explicit GrayscaleOp(OpArgs& args) { args.Finish(); }
  OpProperties properties() const override {
    return {OpKind::kMap, /*parallelizable=*/true, /*deterministic=*/true, /*stateless=*/true};
  }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    if (in.tensors.empty() || in.tensors[0].rank() != 3 || in.tensors[0].dim(2) != 3 ||
        in.tensors[0].dtype() != DType::kUInt8) {
      sluice::Fail("grayscale expects a uint8 [H, W, 3] image, got {}",
                   in.tensors.empty() ? "no tensor" : in.tensors[0].Describe());
    }
    const Tensor& rgb = in.tensors[0];
    const int64_t pixels = rgb.dim(0) * rgb.dim(1);
    Tensor gray = Tensor::Allocate(DType::kUInt8, {rgb.dim(0), rgb.dim(1), 1});
    const uint8_t* src = rgb.data<uint8_t>();
    uint8_t* dst = gray.data<uint8_t>();
    for (int64_t i = 0; i < pixels; ++i) {
      dst[i] =
          static_cast<uint8_t>((77 * src[3 * i] + 150 * src[3 * i + 1] + 29 * src[3 * i + 2]) >> 8);
    }
    in.tensors[0] = std::move(gray);
    out.push_back(std::move(in));
  }
};
SLUICE_REGISTER_OP("grayscale", GrayscaleOp);

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Example training job fed by a sluice pipeline", "train_job"};
  std::string pipeline_path;
  double step_ms = 5;
  int64_t steps = 0;
  int64_t epochs = 0;
  app.add_option("--pipeline", pipeline_path, "Pipeline config (JSON)")->required();
  app.add_option("--step-ms", step_ms, "Simulated training step per batch, in milliseconds")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--steps", steps, "Stop after this many steps (default: end of data)");
  app.add_option("--epochs", epochs, "Override the config's epochs (-1: forever)");
  CLI11_PARSE(app, argc, argv);

  try {
    auto config = sluice::config::Document::Load(pipeline_path);
    sluice::pipeline::PipelineOptions options;
    if (epochs != 0) options.epochs = epochs;
    auto pipeline = sluice::pipeline::Pipeline::Create(config, options);
    const int64_t start = sluice::MonotonicNanos();
    const auto step = std::chrono::microseconds(static_cast<int64_t>(step_ms * 1000));
    int64_t done = 0;
    Element batch;
    while ((steps == 0 || done < steps) && pipeline->Next(&batch)) {
      std::this_thread::sleep_for(step);  // stands in for the forward and backward pass
      ++done;
    }
    const double seconds = (sluice::MonotonicNanos() - start) * 1e-9;
    auto snap = pipeline->Snapshot();
    fmt::print(
        "train_job: {} steps in {:.2f} s ({:.1f} steps/s); waited for input {:.2f} s "
        "({:.0f}%)\n",
        done, seconds, done / seconds, snap.consumer.wait_seconds,
        100 * snap.consumer.wait_seconds / seconds);
  } catch (const sluice::Error& e) {
    std::fprintf(stderr, "train_job: %s\n", e.what());
    return 1;
  }
  return 0;
}
