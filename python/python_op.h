// sluice.register_op: a map op that calls a Python callable on each element's tensors.
#pragma once

#include <pybind11/pybind11.h>

#include <string>

namespace sluice::python {

// Registers `fn` as op `name` for every pipeline created afterwards in this process. The op
// holds the GIL while it runs, so it is declared sequential (never parallelizable) and marked
// holds_gil for the analyzer. Throws sluice::Error when the name is taken.
void RegisterPythonOp(const std::string& name, const pybind11::object& fn, bool deterministic,
                      bool stateless);

// How a tensor reaches a Python op: torch.utils.dlpack.from_dlpack when torch imports (set by
// the package), else sluice.Tensor.
void SetTensorFactory(const pybind11::object& from_dlpack);

}  // namespace sluice::python
