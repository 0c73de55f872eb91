// A training job's data loading through an installed sluice: loads the pipeline config given on
// the command line, iterates every output and prints how many outputs and source elements it
// saw. Usage: cpp_job CONFIG
#include <cstdint>
#include <cstdio>
#include <exception>
#include <memory>

#include "sluice/config/document.h"
#include "sluice/pipeline/pipeline.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s CONFIG\n", argv[0]);
    return 2;
  }
  try {
    const sluice::config::Document config = sluice::config::Document::Load(argv[1]);
    std::unique_ptr<sluice::pipeline::Pipeline> pipeline =
        sluice::pipeline::Pipeline::Create(config);
    sluice::pipeline::Element out;
    int64_t outputs = 0;
    while (pipeline->Next(&out)) ++outputs;  // a training step would consume `out` here
    const sluice::pipeline::PipelineSnapshot snapshot = pipeline->Snapshot();
    const int64_t elements = snapshot.stages.empty() ? 0 : snapshot.stages.front().elements_out;
    std::printf("%s: %lld outputs from %lld source elements\n", pipeline->name().c_str(),
                static_cast<long long>(outputs), static_cast<long long>(elements));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "cpp_job: %s\n", e.what());
    return 1;
  }
  return 0;
}
