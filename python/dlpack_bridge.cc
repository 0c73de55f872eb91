#include "dlpack_bridge.h"

#include <dlpack/dlpack.h>

#include <cstring>
#include <memory>
#include <optional>

#include <fmt/format.h>

#include "sluice/common/error.h"

namespace py = pybind11;

namespace sluice::python {
namespace {

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

std::optional<pipeline::DType> FromDLDataType(DLDataType t) {
  if (t.lanes != 1) return std::nullopt;
  if (t.code == kDLUInt && t.bits == 8) return pipeline::DType::kUInt8;
  if (t.code == kDLInt && t.bits == 32) return pipeline::DType::kInt32;
  if (t.code == kDLInt && t.bits == 64) return pipeline::DType::kInt64;
  if (t.code == kDLFloat && t.bits == 32) return pipeline::DType::kFloat32;
  return std::nullopt;
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

bool RowMajor(const DLTensor& dl) {
  if (dl.strides == nullptr) return true;
  int64_t expected = 1;
  for (int i = dl.ndim; i-- > 0;) {
    if (dl.shape[i] != 1 && dl.strides[i] != expected) return false;
    expected *= dl.shape[i];
  }
  return true;
}

// Copies the DLPack tensor into a new pipeline tensor, or says why it cannot.
pipeline::Tensor CopyOut(const DLTensor& dl, const std::string& what) {
  if (dl.device.device_type != kDLCPU) {
    Fail("{}: a tensor on device type {}; sluice takes CPU tensors", what,
         static_cast<int>(dl.device.device_type));
  }
  const std::optional<pipeline::DType> dtype = FromDLDataType(dl.dtype);
  if (!dtype) {
    Fail("{}: dtype code {} bits {} is not one of uint8, int32, int64, float32", what,
         static_cast<int>(dl.dtype.code), static_cast<int>(dl.dtype.bits));
  }
  if (!RowMajor(dl)) Fail("{}: a non-contiguous tensor (call .contiguous() first)", what);
  std::vector<int64_t> shape(dl.shape, dl.shape + dl.ndim);
  pipeline::Tensor out = pipeline::Tensor::Allocate(*dtype, shape);
  if (out.byte_size() > 0) {
    std::memcpy(out.data<uint8_t>(), static_cast<const uint8_t*>(dl.data) + dl.byte_offset,
                out.byte_size());
  }
  return out;
}

}  // namespace

py::capsule ToCapsule(const pipeline::Tensor& tensor) {
  DLManagedTensor* managed = MakeManaged(tensor);
  PyObject* capsule = PyCapsule_New(managed, kCapsuleName, CapsuleDestructor);
  if (capsule == nullptr) {
    managed->deleter(managed);
    throw py::error_already_set();
  }
  return py::reinterpret_steal<py::capsule>(capsule);
}

pipeline::Tensor FromDLPack(py::handle object, const std::string& what) {
  py::object capsule;
  if (PyCapsule_IsValid(object.ptr(), kCapsuleName)) {
    capsule = py::reinterpret_borrow<py::object>(object);
  } else if (py::hasattr(object, "__dlpack__")) {
    capsule = object.attr("__dlpack__")();
  } else {
    Fail(
        "{}: expected a tensor (torch.Tensor, numpy.ndarray or anything with __dlpack__), got "
        "{}",
        what, std::string(py::str(py::type::of(object).attr("__name__"))));
  }
  auto* managed = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule.ptr(), kCapsuleName));
  if (managed == nullptr) throw py::error_already_set();
  // Taken: the capsule no longer frees it; this function does, copied or not.
  PyCapsule_SetName(capsule.ptr(), kUsedCapsuleName);
  std::unique_ptr<DLManagedTensor, void (*)(DLManagedTensor*)> owned(managed,
                                                                     [](DLManagedTensor* m) {
                                                                       if (m->deleter != nullptr)
                                                                         m->deleter(m);
                                                                     });
  return CopyOut(managed->dl_tensor, what);
}

uintptr_t CapsuleDataPtr(const py::capsule& capsule) {
  if (!PyCapsule_IsValid(capsule.ptr(), kCapsuleName)) {
    throw py::value_error("not an unconsumed 'dltensor' capsule");
  }
  auto* managed = static_cast<DLManagedTensor*>(PyCapsule_GetPointer(capsule.ptr(), kCapsuleName));
  return reinterpret_cast<uintptr_t>(managed->dl_tensor.data) + managed->dl_tensor.byte_offset;
}

py::tuple PyTensor::DLPackDevice() const { return py::make_tuple(static_cast<int>(kDLCPU), 0); }

}  // namespace sluice::python
