// The data that flows between stages: elements holding tensors and raw bytes in shared buffers.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/pipeline/export.h"

namespace sluice::pipeline {

enum class DType : uint8_t { kUInt8, kInt32, kInt64, kFloat32 };

// Size in bytes of one value of `dtype`.
SLUICE_PIPELINE_EXPORT size_t DTypeSize(DType dtype);
// Lower-case name ("uint8", "float32", ...).
SLUICE_PIPELINE_EXPORT std::string_view DTypeName(DType dtype);

// A dense, row-major n-dimensional array over a shared buffer. Copying a Tensor shares the
// buffer; buffers are treated as immutable once an element leaves the op that made it, so an
// op that changes values allocates a new tensor (copy-on-write by convention).
class SLUICE_PIPELINE_EXPORT Tensor {
 public:
  Tensor() = default;
  // Allocates an uninitialized buffer for `shape`.
  static Tensor Allocate(DType dtype, std::vector<int64_t> shape);
  // Wraps an existing buffer (no copy); `buffer` must hold at least the tensor's bytes.
  static Tensor Wrap(DType dtype, std::vector<int64_t> shape, std::shared_ptr<uint8_t[]> buffer);

  DType dtype() const { return dtype_; }
  const std::vector<int64_t>& shape() const { return shape_; }
  int64_t dim(size_t i) const { return shape_[i]; }
  size_t rank() const { return shape_.size(); }
  int64_t num_values() const;
  size_t byte_size() const { return static_cast<size_t>(num_values()) * DTypeSize(dtype_); }
  bool empty() const { return buffer_ == nullptr; }

  template <typename T>
  T* data() {
    return reinterpret_cast<T*>(buffer_.get());
  }
  template <typename T>
  const T* data() const {
    return reinterpret_cast<const T*>(buffer_.get());
  }
  const std::shared_ptr<uint8_t[]>& buffer() const { return buffer_; }

  // "uint8[224,224,3]"
  std::string Describe() const;

 private:
  DType dtype_ = DType::kUInt8;
  std::vector<int64_t> shape_;
  std::shared_ptr<uint8_t[]> buffer_;
};

// Immutable raw bytes (a file's contents, a line of text), shared without copies.
using Bytes = std::shared_ptr<const std::string>;

// One item moving through the pipeline. Moving an Element moves its buffers' ownership only.
struct SLUICE_PIPELINE_EXPORT Element {
  std::vector<Tensor> tensors;  // decoded data (an image, token ids, a batch)
  Bytes bytes;                  // undecoded data, when the element carries any
  std::string path;             // where the element came from (a file), when known
  uint64_t id = 0;              // stable identity within an epoch; seeds per-element randomness

  // Bytes held by the element's tensors and raw bytes.
  size_t ByteSize() const;
  std::string_view text() const { return bytes ? std::string_view(*bytes) : std::string_view(); }
};

// Mixes values into a 64-bit seed (splitmix64 finalizer), for per-element random streams that
// are reproducible for a given seed, epoch and element.
SLUICE_PIPELINE_EXPORT uint64_t MixSeed(uint64_t a, uint64_t b);

}  // namespace sluice::pipeline
