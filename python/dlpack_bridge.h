// Tensors across the Python boundary through DLPack: a pipeline tensor out as a capsule that
// shares its buffer (no copy), and a DLPack-capable Python object (torch, numpy) back in as a
// pipeline tensor (one copy; the Python object's memory is the interpreter's to free).
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "sluice/pipeline/element.h"

namespace sluice::python {

// A "dltensor" capsule over `tensor`'s buffer, which it keeps alive until the consumer's
// deleter (or the capsule's destructor, when no consumer took it) runs.
pybind11::capsule ToCapsule(const pipeline::Tensor& tensor);

// A copy of a C-contiguous CPU tensor of a dtype the runtime has (uint8, int32, int64,
// float32), from any object with __dlpack__ or a "dltensor" capsule. Throws sluice::Error
// naming `what` (e.g. "the output of op 'f'") otherwise.
pipeline::Tensor FromDLPack(pybind11::handle object, const std::string& what);

// The data pointer a capsule hands over, for tests that check no copy was made.
uintptr_t CapsuleDataPtr(const pybind11::capsule& capsule);

// A tensor for consumers without torch: any DLPack consumer (numpy.from_dlpack,
// torch.from_dlpack) takes it through __dlpack__, as often as asked.
class PyTensor {
 public:
  explicit PyTensor(pipeline::Tensor tensor) : tensor_(std::move(tensor)) {}
  pybind11::capsule DLPack(pybind11::object /*stream*/) const { return ToCapsule(tensor_); }
  pybind11::tuple DLPackDevice() const;
  std::vector<int64_t> shape() const { return tensor_.shape(); }
  std::string dtype() const { return std::string(pipeline::DTypeName(tensor_.dtype())); }
  uintptr_t data_ptr() const { return reinterpret_cast<uintptr_t>(tensor_.data<uint8_t>()); }

 private:
  pipeline::Tensor tensor_;
};

}  // namespace sluice::python
