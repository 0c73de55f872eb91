// Helpers for tests of single map ops: make an op from JSON args, apply it to one element, and
// catch the error an op throws.
#pragma once

#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "sluice/common/error.h"
#include "sluice/pipeline/op.h"

namespace sluice::test_util {

// Creates a registered map op from JSON args, as the runtime does for a stage named "stage".
inline std::unique_ptr<pipeline::MapOp> MakeOp(const std::string& name,
                                               const pipeline::OpArgs::Json& json) {
  pipeline::OpArgs args(json, "test.json", "stage", name, "/tmp");
  std::unique_ptr<pipeline::Op> op = pipeline::OpRegistry::Global().Create(name, args);
  if (dynamic_cast<pipeline::MapOp*>(op.get()) == nullptr) {
    ADD_FAILURE() << name << " is not a MapOp";
    return nullptr;
  }
  return std::unique_ptr<pipeline::MapOp>(static_cast<pipeline::MapOp*>(op.release()));
}

// Runs `op` on one element of epoch `epoch` and expects exactly one output.
inline pipeline::Element Apply(pipeline::MapOp& op, pipeline::Element in, int64_t epoch = 0) {
  std::vector<pipeline::Element> out;
  pipeline::OpContext ctx{.epoch = epoch, .worker = 0, .stage = "stage"};
  op.Process(std::move(in), out, ctx);
  EXPECT_EQ(out.size(), 1u);
  return out.empty() ? pipeline::Element() : std::move(out.front());
}

// The message of the sluice::Error that `fn` throws; a test failure if it throws none.
inline std::string ErrorOf(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a sluice::Error";
  return "";
}

}  // namespace sluice::test_util
