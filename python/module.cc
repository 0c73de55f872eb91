// The `sluice._sluice` extension: a pipeline the Python package iterates, handing each tensor
// over without a copy as a DLPack capsule whose deleter keeps the element's buffer alive.
#include <dlpack/dlpack.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "sluice/common/error.h"
#include "sluice/config/document.h"
#include "sluice/pipeline/element.h"
#include "sluice/pipeline/pipeline.h"

namespace py = pybind11;

namespace sluice::python {
namespace {

bool InterpreterFinalizing() {
#if PY_VERSION_HEX >= 0x030D0000
  return Py_IsFinalizing();
#else
  return _Py_IsFinalizing();
#endif
}

constexpr const char* kCapsuleName = "dltensor";
constexpr const char* kUsedCapsuleName = "used_dltensor";

DLDataType ToDLDataType(pipeline::DType dtype) {
  switch (dtype) {
    case pipeline::DType::kUInt8:
      return {kDLUInt, 8, 1};
    case pipeline::DType::kInt32:
      return {kDLInt, 32, 1};
    case pipeline::DType::kInt64:
      return {kDLInt, 64, 1};
    case pipeline::DType::kFloat32:
      return {kDLFloat, 32, 1};
  }
  return {kDLUInt, 8, 1};
}

// Owns a DLManagedTensor and a share of the tensor's buffer; freed by the DLPack deleter.
struct ManagedTensor {
  DLManagedTensor managed{};
  pipeline::Tensor tensor;  // keeps the shared buffer alive
  std::vector<int64_t> shape;
  std::vector<int64_t> strides;
};

void DeleteManagedTensor(DLManagedTensor* self) {
  delete static_cast<ManagedTensor*>(self->manager_ctx);
}

// A DLManagedTensor over `tensor`'s buffer (no copy); the caller owns it until handed over.
DLManagedTensor* MakeManaged(const pipeline::Tensor& tensor) {
  auto holder = std::make_unique<ManagedTensor>();
  holder->tensor = tensor;
  holder->shape = tensor.shape();
  // Explicit row-major strides (in elements): DLPack 0.6 allows null, but not every consumer
  // accepts it.
  holder->strides.assign(holder->shape.size(), 1);
  for (size_t i = holder->shape.size(); i-- > 1;) {
    holder->strides[i - 1] = holder->strides[i] * holder->shape[i];
  }
  DLTensor& dl = holder->managed.dl_tensor;
  dl.data = const_cast<uint8_t*>(tensor.data<uint8_t>());
  dl.device = {kDLCPU, 0};
  dl.ndim = static_cast<int32_t>(holder->shape.size());
  dl.dtype = ToDLDataType(tensor.dtype());
  dl.shape = holder->shape.data();
  dl.strides = holder->strides.data();
  dl.byte_offset = 0;
  holder->managed.manager_ctx = holder.get();
  holder->managed.deleter = DeleteManagedTensor;
  return &holder.release()->managed;
}

// Frees the tensor unless a consumer took it (and renamed the capsule "used_dltensor").
void CapsuleDestructor(PyObject* capsule) {
  if (PyCapsule_IsValid(capsule, kUsedCapsuleName)) return;
  auto* managed = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule, kCapsuleName));
  if (managed == nullptr) {
    PyErr_WriteUnraisable(capsule);
    return;
  }
  if (managed->deleter != nullptr) managed->deleter(managed);
}

py::capsule ToCapsule(const pipeline::Tensor& tensor) {
  DLManagedTensor* managed = MakeManaged(tensor);
  PyObject* capsule = PyCapsule_New(managed, kCapsuleName, CapsuleDestructor);
  if (capsule == nullptr) {
    managed->deleter(managed);
    throw py::error_already_set();
  }
  return py::reinterpret_steal<py::capsule>(capsule);
}

// A tensor for consumers without torch: any DLPack consumer (numpy.from_dlpack,
// torch.from_dlpack) takes it through __dlpack__, as often as asked.
class PyTensor {
 public:
  explicit PyTensor(pipeline::Tensor tensor) : tensor_(std::move(tensor)) {}
  py::capsule DLPack(py::object /*stream*/) const { return ToCapsule(tensor_); }
  py::tuple DLPackDevice() const { return py::make_tuple(static_cast<int>(kDLCPU), 0); }
  std::vector<int64_t> shape() const { return tensor_.shape(); }
  std::string dtype() const { return std::string(pipeline::DTypeName(tensor_.dtype())); }
  uintptr_t data_ptr() const { return reinterpret_cast<uintptr_t>(tensor_.data<uint8_t>()); }

 private:
  pipeline::Tensor tensor_;
};

// The config with the first stage sharded for rank `rank` of `world_size`.
config::Document Shard(const config::Document& doc, int64_t rank, int64_t world_size) {
  if (world_size < 1) Fail("world_size must be >= 1, got {}", world_size);
  if (rank < 0 || rank >= world_size) {
    Fail("rank must be in [0, {}) for world_size {}, got {}", world_size, world_size, rank);
  }
  if (world_size == 1) return doc;
  config::Json json = doc.json();
  config::Json& first = json["stages"][0];
  if (!first.contains("args")) first["args"] = config::Json::object();
  first["args"]["num_shards"] = world_size;
  first["args"]["shard_index"] = rank;
  return config::Document::Parse(json.dump(2), doc.origin());
}

class PyPipeline {
 public:
  // `path` names a config file; otherwise `text` is the config and `origin` anchors it.
  PyPipeline(const std::string& path, const std::string& text, const std::string& origin,
             std::optional<int64_t> epochs, int64_t rank, int64_t world_size) {
    config::Document doc =
        path.empty() ? config::Document::Parse(text, origin) : config::Document::Load(path);
    pipeline::PipelineOptions options;
    options.epochs = epochs;
    config::Document sharded = Shard(doc, rank, world_size);
    pipeline_ = pipeline::Pipeline::Create(sharded, options);
  }

  ~PyPipeline() {
    // Joining threads can take a while: let other Python threads run, except while the
    // interpreter shuts down (a released GIL may not come back then).
    if (pipeline_ != nullptr && !InterpreterFinalizing()) {
      py::gil_scoped_release release;
      pipeline_.reset();
    }
  }

  // The next element, or nullopt at the end; the GIL is released while the runtime works.
  std::optional<pipeline::Element> NextElement() {
    pipeline::Element element;
    bool got = false;
    {
      py::gil_scoped_release release;
      std::lock_guard<std::mutex> lock(next_mutex_);
      got = pipeline_->Next(&element);
    }
    if (!got) return std::nullopt;
    return element;
  }

  // A tuple of DLPack capsules, one per tensor; raises StopIteration at the end.
  py::tuple NextCapsules() {
    std::optional<pipeline::Element> element = NextElement();
    if (!element) throw py::stop_iteration();
    py::tuple out(element->tensors.size());
    for (size_t i = 0; i < element->tensors.size(); ++i) out[i] = ToCapsule(element->tensors[i]);
    return out;
  }

  // A tuple of PyTensor objects; raises StopIteration at the end.
  py::tuple NextTensors() {
    std::optional<pipeline::Element> element = NextElement();
    if (!element) throw py::stop_iteration();
    py::tuple out(element->tensors.size());
    for (size_t i = 0; i < element->tensors.size(); ++i) {
      out[i] = py::cast(PyTensor(element->tensors[i]));
    }
    return out;
  }

  void Stop() {
    py::gil_scoped_release release;
    pipeline_->Stop();
  }

  py::dict Snapshot() const {
    pipeline::PipelineSnapshot snap = pipeline_->Snapshot();
    py::list stages;
    for (const pipeline::StageSnapshot& s : snap.stages) {
      py::dict d;
      d["name"] = s.name;
      d["op"] = s.op;
      d["parallelism"] = s.parallelism;
      d["buffer_size"] = s.buffer_size;
      d["deterministic"] = s.deterministic;
      d["async"] = s.async;
      d["elements_in"] = s.elements_in;
      d["elements_out"] = s.elements_out;
      d["bytes_out"] = s.bytes_out;
      d["cpu_seconds"] = s.cpu_seconds;
      d["busy_seconds"] = s.busy_seconds;
      d["blocked_input_seconds"] = s.blocked_input_seconds;
      d["blocked_output_seconds"] = s.blocked_output_seconds;
      d["queue_size"] = s.queue_size;
      d["queue_max"] = s.queue_max;
      d["queue_mean"] = s.queue_mean;
      stages.append(std::move(d));
    }
    py::dict consumer;
    consumer["next_calls"] = snap.consumer.next_calls;
    consumer["wait_seconds"] = snap.consumer.wait_seconds;
    consumer["between_seconds"] = snap.consumer.between_seconds;
    py::dict out;
    out["name"] = snap.name;
    out["seconds"] = snap.seconds;
    out["epoch"] = snap.epoch;
    out["finished"] = snap.finished;
    out["stages"] = std::move(stages);
    out["consumer"] = std::move(consumer);
    return out;
  }

  std::string name() const { return pipeline_->name(); }
  std::string config_text() const { return pipeline_->config_text(); }

 private:
  std::unique_ptr<pipeline::Pipeline> pipeline_;
  std::mutex next_mutex_;  // Pipeline::Next has one consumer at a time
};

// The data pointer a DLPack capsule hands over, for tests that check no copy was made.
uintptr_t CapsuleDataPtr(const py::capsule& capsule) {
  if (!PyCapsule_IsValid(capsule.ptr(), kCapsuleName)) {
    throw py::value_error("not an unconsumed 'dltensor' capsule");
  }
  auto* managed = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule.ptr(), kCapsuleName));
  return reinterpret_cast<uintptr_t>(managed->dl_tensor.data) + managed->dl_tensor.byte_offset;
}

}  // namespace
}  // namespace sluice::python

PYBIND11_MODULE(_sluice, m) {
  using sluice::python::PyPipeline;
  using sluice::python::PyTensor;
  m.doc() = "sluice runtime bindings; use the `sluice` package, not this module";
  py::register_exception<sluice::Error>(m, "Error", PyExc_RuntimeError);

  py::class_<PyTensor>(m, "Tensor", "A tensor of a pipeline element, exported through DLPack.")
      .def("__dlpack__", &PyTensor::DLPack, py::arg("stream") = py::none())
      .def("__dlpack_device__", &PyTensor::DLPackDevice)
      .def_property_readonly("shape", &PyTensor::shape)
      .def_property_readonly("dtype", &PyTensor::dtype)
      .def_property_readonly("data_ptr", &PyTensor::data_ptr);

  py::class_<PyPipeline>(m, "_Pipeline")
      .def(py::init<const std::string&, const std::string&, const std::string&,
                    std::optional<int64_t>, int64_t, int64_t>(),
           py::arg("path"), py::arg("text"), py::arg("origin"), py::arg("epochs"), py::arg("rank"),
           py::arg("world_size"))
      .def("next_capsules", &PyPipeline::NextCapsules)
      .def("next_tensors", &PyPipeline::NextTensors)
      .def("stop", &PyPipeline::Stop)
      .def("snapshot", &PyPipeline::Snapshot)
      .def_property_readonly("name", &PyPipeline::name)
      .def_property_readonly("config_text", &PyPipeline::config_text);

  m.def("capsule_data_ptr", &sluice::python::CapsuleDataPtr, py::arg("capsule"));
}
