// Runs a pipeline config to its end and checks that nothing was dropped or duplicated: for a
// config whose source is `generate` with a count, every epoch must deliver each element exactly
// once (ids 0..count-1), in order when every parallel stage is deterministic and nothing
// shuffles; behind a `batch`, the batches must hold count elements per epoch. For the soak
// script (scripts/soak.sh).
//
//   soak_check CONFIG      prints "soak_check: OK ..." and exits 0, or names the fault, exits 1
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include "sluice/common/error.h"
#include "sluice/config/document.h"
#include "sluice/pipeline/pipeline.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: soak_check CONFIG\n");
    return 2;
  }
  try {
    const auto doc = sluice::config::Document::Load(argv[1]);
    const auto& stages = doc.stages();
    if (stages.empty() || stages[0].op != "generate" || !stages[0].args.contains("count")) {
      sluice::Fail("{}: the first stage must be generate with a count", argv[1]);
    }
    const int64_t count = stages[0].args["count"].get<int64_t>();
    const int64_t epochs = doc.epochs();
    if (count < 0 || epochs < 0) sluice::Fail("{}: needs a finite count and epochs", argv[1]);
    int64_t batch = 0;
    bool ordered = true;
    for (const auto& s : stages) {
      if (s.op == "batch") batch = s.args.value("size", int64_t{1});
      if (s.op == "shuffle") ordered = false;
      if (s.parallelism.value_or(1) > 1 && !s.deterministic.value_or(true)) ordered = false;
    }
    auto pipe = sluice::pipeline::Pipeline::Create(doc);
    sluice::pipeline::Element e;
    std::vector<int64_t> seen(static_cast<size_t>(count), 0);
    int64_t outputs = 0, elements = 0, next_id = 0;
    while (pipe->Next(&e)) {
      ++outputs;
      if (batch > 0) {
        if (e.tensors.empty()) sluice::Fail("output {} holds no tensor", outputs);
        elements += e.tensors[0].dim(0);
        continue;
      }
      ++elements;
      if (e.id >= static_cast<uint64_t>(count)) sluice::Fail("element id {} out of range", e.id);
      ++seen[e.id];
      if (ordered) {
        if (static_cast<int64_t>(e.id) != next_id) {
          sluice::Fail("out of order: element {} where {} was due", e.id, next_id);
        }
        next_id = (next_id + 1) % (count == 0 ? 1 : count);
      }
    }
    pipe.reset();
    if (elements != count * epochs) {
      sluice::Fail("{} elements delivered, expected {} ({} x {} epochs)", elements, count * epochs,
                   count, epochs);
    }
    if (batch > 0 && outputs != epochs * ((count + batch - 1) / batch)) {
      sluice::Fail("{} batches, expected {}", outputs, epochs * ((count + batch - 1) / batch));
    }
    for (int64_t id = 0; batch == 0 && id < count; ++id) {
      if (seen[static_cast<size_t>(id)] != epochs) {
        sluice::Fail("element {} delivered {} times, expected {}", id,
                     seen[static_cast<size_t>(id)], epochs);
      }
    }
    std::printf("soak_check: OK %s: %lld outputs, %lld elements, %s\n", argv[1],
                static_cast<long long>(outputs), static_cast<long long>(elements),
                batch > 0 ? "batched (counts checked)"
                : ordered ? "order checked"
                          : "unordered");
    return 0;
  } catch (const std::exception& err) {
    std::fprintf(stderr, "soak_check: FAIL %s: %s\n", argv[1], err.what());
    return 1;
  }
}
