#include "python_op.h"

#include <memory>
#include <vector>

#include <fmt/format.h>

#include "dlpack_bridge.h"
#include "sluice/common/error.h"
#include "sluice/pipeline/op.h"

namespace py = pybind11;

namespace sluice::python {
namespace {

// torch's from_dlpack, or null; set once at import, read under the GIL.
PyObject* g_from_dlpack = nullptr;

// The element's tensors as Python objects: torch tensors sharing the buffers, or sluice.Tensor.
// An element of raw bytes only (read_file's output) comes as one `bytes` object.
py::tuple Arguments(const pipeline::Element& in) {
  if (in.tensors.empty()) {
    if (!in.bytes) return py::tuple();
    return py::make_tuple(py::bytes(*in.bytes));
  }
  py::tuple args(in.tensors.size());
  for (size_t i = 0; i < in.tensors.size(); ++i) {
    if (g_from_dlpack != nullptr) {
      args[i] = py::reinterpret_borrow<py::object>(g_from_dlpack)(ToCapsule(in.tensors[i]));
    } else {
      args[i] = py::cast(PyTensor(in.tensors[i]));
    }
  }
  return args;
}

// The callable's result into the element: a tensor, a tuple or list of tensors, or bytes.
void TakeResult(const py::object& result, pipeline::Element& element, const std::string& what) {
  if (py::isinstance<py::bytes>(result)) {
    element.tensors.clear();
    element.bytes = std::make_shared<const std::string>(result.cast<std::string>());
    return;
  }
  std::vector<pipeline::Tensor> tensors;
  if (py::isinstance<py::tuple>(result) || py::isinstance<py::list>(result)) {
    size_t i = 0;
    for (py::handle item : result) {
      tensors.push_back(FromDLPack(item, fmt::format("{}, item {} of its result", what, i++)));
    }
  } else {
    tensors.push_back(FromDLPack(result, what));
  }
  element.tensors = std::move(tensors);
}

class PythonMapOp final : public pipeline::MapOp {
 public:
  PythonMapOp(PyObject* fn, std::string name, bool deterministic, bool stateless)
      : fn_(fn), name_(std::move(name)), deterministic_(deterministic), stateless_(stateless) {}

  pipeline::OpProperties properties() const override {
    return {.kind = pipeline::OpKind::kMap,
            .parallelizable = false,
            .deterministic = deterministic_,
            .stateless = stateless_,
            .holds_gil = true};
  }
  std::optional<int64_t> EpochOutputs(std::optional<int64_t> in) const override { return in; }

  void Process(pipeline::Element in, std::vector<pipeline::Element>& out,
               const pipeline::OpContext&) override {
    const std::string what = fmt::format("Python op '{}'", name_);
    py::gil_scoped_acquire gil;
    try {
      py::object result = py::reinterpret_borrow<py::object>(fn_)(*Arguments(in));
      TakeResult(result, in, what);
    } catch (py::error_already_set& e) {
      Fail("{} raised {}", what, e.what());
    }
    out.push_back(std::move(in));
  }

 private:
  PyObject* fn_;  // a reference the registry holds for the life of the process
  std::string name_;
  bool deterministic_, stateless_;
};

}  // namespace

void RegisterPythonOp(const std::string& name, const py::object& fn, bool deterministic,
                      bool stateless) {
  if (!PyCallable_Check(fn.ptr())) Fail("register_op('{}'): fn is not callable", name);
  // The registry outlives the interpreter: it keeps its reference to fn for good, so no
  // reference count changes without the GIL at exit.
  PyObject* held = fn.inc_ref().ptr();
  pipeline::OpRegistry::Global().Register(
      name, [held, name, deterministic, stateless](pipeline::OpArgs&) {
        return std::make_unique<PythonMapOp>(held, name, deterministic, stateless);
      });
}

void SetTensorFactory(const py::object& from_dlpack) {
  if (g_from_dlpack != nullptr) Py_DECREF(g_from_dlpack);
  g_from_dlpack = from_dlpack.is_none() ? nullptr : from_dlpack.inc_ref().ptr();
}

}  // namespace sluice::python
