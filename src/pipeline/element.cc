// Tensors, elements and seed mixing.
#include "sluice/pipeline/element.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include "pipeline/internal/tensor_pool.h"
#include "sluice/common/error.h"

namespace sluice::pipeline {

size_t DTypeSize(DType dtype) {
  switch (dtype) {
    case DType::kUInt8:
      return 1;
    case DType::kInt32:
    case DType::kFloat32:
      return 4;
    case DType::kInt64:
      return 8;
  }
  return 1;
}

std::string_view DTypeName(DType dtype) {
  switch (dtype) {
    case DType::kUInt8:
      return "uint8";
    case DType::kInt32:
      return "int32";
    case DType::kInt64:
      return "int64";
    case DType::kFloat32:
      return "float32";
  }
  return "?";
}

Tensor Tensor::Allocate(DType dtype, std::vector<int64_t> shape) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  for (int64_t d : t.shape_) {
    if (d < 0) Fail("tensor shape has a negative dimension: {}", t.Describe());
  }
  // Uninitialized storage: the op that allocates fills every byte.
  t.buffer_ = internal::TensorPool::Global().Get(t.byte_size());
  return t;
}

Tensor Tensor::Wrap(DType dtype, std::vector<int64_t> shape, std::shared_ptr<uint8_t[]> buffer) {
  Tensor t;
  t.dtype_ = dtype;
  t.shape_ = std::move(shape);
  t.buffer_ = std::move(buffer);
  return t;
}

int64_t Tensor::num_values() const {
  int64_t n = 1;
  for (int64_t d : shape_) n *= d;
  return n;
}

std::string Tensor::Describe() const {
  return fmt::format("{}[{}]", DTypeName(dtype_), fmt::join(shape_, ","));
}

size_t Element::ByteSize() const {
  size_t n = bytes ? bytes->size() : 0;
  for (const Tensor& t : tensors) n += t.byte_size();
  return n;
}

uint64_t MixSeed(uint64_t a, uint64_t b) {
  uint64_t z = a + 0x9e3779b97f4a7c15ULL * (b + 1);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace sluice::pipeline
