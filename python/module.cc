// The `sluice._sluice` extension: a pipeline the Python package iterates, handing each tensor
// over without a copy as a DLPack capsule whose deleter keeps the element's buffer alive.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "dlpack_bridge.h"
#include "interrupt.h"
#include "python_op.h"
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
             const py::dict& opts) {
    config::Document doc =
        path.empty() ? config::Document::Parse(text, origin) : config::Document::Load(path);
    pipeline::PipelineOptions options;
    if (!opts["epochs"].is_none()) options.epochs = opts["epochs"].cast<int64_t>();
    options.first_epoch = opts["first_epoch"].cast<int64_t>();
    options.pin_memory = opts["pin_memory"].cast<bool>();
    options.stop_timeout_seconds = opts["stop_timeout"].cast<double>();
    options.autotune = opts["autotune"].cast<bool>();
    config::Document sharded =
        Shard(doc, opts["rank"].cast<int64_t>(), opts["world_size"].cast<int64_t>());
    pipeline_ = pipeline::Pipeline::Create(sharded, options);
    epochs_ = options.epochs.value_or(doc.epochs());
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
  // Ctrl-C during the wait stops the pipeline (SigintWatch) and raises KeyboardInterrupt.
  std::optional<pipeline::Element> NextElement() {
    pipeline::Element element;
    bool got = false;
    {
      py::gil_scoped_release release;
      std::lock_guard<std::mutex> lock(next_mutex_);
      SigintWatch watch(pipeline_.get());
      got = pipeline_->Next(&element);
    }
    if (!got) {
      if (PyErr_CheckSignals() != 0) throw py::error_already_set();
      return std::nullopt;
    }
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
  std::optional<int64_t> length() const { return pipeline_->Length(); }
  std::optional<int64_t> epoch_length() const { return pipeline_->EpochLength(); }
  std::vector<std::string> classes() const { return pipeline_->ClassNames(); }
  int64_t epochs() const { return epochs_; }
  std::string config_text() const { return pipeline_->config_text(); }

 private:
  std::unique_ptr<pipeline::Pipeline> pipeline_;
  int64_t epochs_ = 1;     // per iteration; -1: endless
  std::mutex next_mutex_;  // Pipeline::Next has one consumer at a time
};

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
      .def(py::init<const std::string&, const std::string&, const std::string&, const py::dict&>(),
           py::arg("path"), py::arg("text"), py::arg("origin"), py::arg("options"))
      .def("next_capsules", &PyPipeline::NextCapsules)
      .def("next_tensors", &PyPipeline::NextTensors)
      .def("stop", &PyPipeline::Stop)
      .def("snapshot", &PyPipeline::Snapshot)
      .def_property_readonly("name", &PyPipeline::name)
      .def_property_readonly("length", &PyPipeline::length)
      .def_property_readonly("epoch_length", &PyPipeline::epoch_length)
      .def_property_readonly("classes", &PyPipeline::classes)
      .def_property_readonly("epochs", &PyPipeline::epochs)
      .def_property_readonly("config_text", &PyPipeline::config_text);

  m.def("capsule_data_ptr", &sluice::python::CapsuleDataPtr, py::arg("capsule"));
  m.def("register_op", &sluice::python::RegisterPythonOp, py::arg("name"), py::arg("fn"),
        py::arg("deterministic"), py::arg("stateless"));
  m.def("_set_tensor_factory", &sluice::python::SetTensorFactory, py::arg("from_dlpack"));
  sluice::python::SigintWatch::SetMainThread();
}
