// Built-in ops that reshape the stream: batch, shuffle, filter, cache, prefetch.
#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include <fmt/format.h>

#include "pipeline/internal/buffer_pool.h"
#include "sluice/common/error.h"
#include "sluice/pipeline/op.h"

namespace sluice::pipeline {
namespace {

// Stacks `size` elements into one: each tensor gains a leading batch dimension.
class BatchOp final : public StreamOp {
 public:
  explicit BatchOp(OpArgs& args) {
    size_ = args.Int("size");
    if (size_ < 1) args.Fail("size", "expected a batch size >= 1");
    drop_remainder_ = args.Bool("drop_remainder", false);
    if (args.pin_memory())
      pool_ = internal::BufferPool::Create(2, 1 << 20, internal::CudaHost::Get(nullptr));
    items_.reserve(static_cast<size_t>(size_));
  }
  OpProperties properties() const override { return {OpKind::kStream, false, true, false}; }
  void BeginEpoch(int64_t) override { batches_ = 0; }
  std::optional<int64_t> EpochOutputs(std::optional<int64_t> in) const override {
    if (!in) return std::nullopt;
    return drop_remainder_ ? *in / size_ : (*in + size_ - 1) / size_;
  }
  bool Next(Input& in, Element* out, const OpContext&) override {
    items_.clear();
    Element e;
    while (static_cast<int64_t>(items_.size()) < size_ && in.Next(&e))
      items_.push_back(std::move(e));
    if (items_.empty()) return false;
    if (drop_remainder_ && static_cast<int64_t>(items_.size()) < size_) return false;
    *out = Stack();
    out->id = batches_++;
    return true;
  }

 private:
  Element Stack() {
    const Element& first = items_.front();
    if (first.tensors.empty()) {
      Fail(
          "batch needs decoded tensors, but element '{}' carries only raw bytes "
          "(decode it first)",
          first.path.empty() ? fmt::format("#{}", first.id) : first.path);
    }
    Element batch;
    const auto n = static_cast<int64_t>(items_.size());
    for (size_t t = 0; t < first.tensors.size(); ++t) {
      const Tensor& proto = first.tensors[t];
      std::vector<int64_t> shape = proto.shape();
      shape.insert(shape.begin(), n);
      int64_t values = 1;
      for (int64_t d : shape) values *= d;
      Tensor stacked = Tensor::Wrap(
          proto.dtype(), shape,
          pool_->Get(std::max<size_t>(1, static_cast<size_t>(values) * DTypeSize(proto.dtype()))));
      const size_t each = proto.byte_size();
      uint8_t* dst = stacked.data<uint8_t>();
      for (const Element& item : items_) {
        if (item.tensors.size() != first.tensors.size() ||
            item.tensors[t].dtype() != proto.dtype() || item.tensors[t].shape() != proto.shape()) {
          Fail(
              "cannot batch element {} ({}) with element {} ({}): shapes must match "
              "(resize or pad first, or use bucket_by_length)",
              item.path.empty() ? fmt::format("#{}", item.id) : item.path,
              item.tensors.size() > t ? item.tensors[t].Describe() : "no tensor",
              first.path.empty() ? fmt::format("#{}", first.id) : first.path, proto.Describe());
        }
        std::memcpy(dst, item.tensors[t].data<uint8_t>(), each);
        dst += each;
      }
      batch.tensors.push_back(std::move(stacked));
    }
    return batch;
  }

  int64_t size_ = 1;
  bool drop_remainder_ = false;
  uint64_t batches_ = 0;
  std::vector<Element> items_;
  // A consumer frees a batch about as often as this op makes one, so a couple of idle buffers
  // recycle them all; more would only hold memory the tuner's budget does not see.
  std::shared_ptr<internal::BufferPool> pool_ = internal::BufferPool::Create(2);
};
SLUICE_REGISTER_OP("batch", BatchOp);

// Randomizes order within a sliding buffer of `buffer` elements, anew each epoch.
class ShuffleOp final : public StreamOp {
 public:
  explicit ShuffleOp(OpArgs& args) {
    capacity_ = args.Int("buffer");
    if (capacity_ < 1) args.Fail("buffer", "expected a shuffle buffer of at least 1 element");
    seed_ = args.Seed("seed");
  }
  OpProperties properties() const override { return {OpKind::kStream, false, false, false}; }
  std::optional<int64_t> EpochOutputs(std::optional<int64_t> in) const override { return in; }
  void BeginEpoch(int64_t epoch) override {
    items_.clear();
    input_done_ = false;
    state_ = MixSeed(seed_, static_cast<uint64_t>(epoch));
  }
  bool Next(Input& in, Element* out, const OpContext&) override {
    Element e;
    while (!input_done_ && static_cast<int64_t>(items_.size()) < capacity_) {
      if (in.Next(&e)) {
        items_.push_back(std::move(e));
      } else {
        input_done_ = true;
      }
    }
    if (items_.empty()) return false;
    state_ = MixSeed(state_, items_.size());
    size_t pick = state_ % items_.size();
    *out = std::move(items_[pick]);
    items_[pick] = std::move(items_.back());
    items_.pop_back();
    return true;
  }

 private:
  int64_t capacity_ = 1;
  uint64_t seed_ = 0;
  uint64_t state_ = 0;
  bool input_done_ = false;
  std::vector<Element> items_;
};
SLUICE_REGISTER_OP("shuffle", ShuffleOp);

// Keeps elements by size or by a seeded, per-element coin (the same elements every epoch).
class FilterOp final : public MapOp {
 public:
  explicit FilterOp(OpArgs& args) {
    min_bytes_ = args.Int("min_bytes", 0);
    max_bytes_ = args.Int("max_bytes", -1);
    keep_fraction_ = args.Double("keep_fraction", 1.0);
    seed_ = static_cast<uint64_t>(args.Int("seed", 0));
    if (!args.Has("min_bytes") && !args.Has("max_bytes") && !args.Has("keep_fraction")) {
      args.Fail("min_bytes", "filter needs at least one of min_bytes, max_bytes, keep_fraction");
    }
    if (keep_fraction_ < 0 || keep_fraction_ > 1) args.Fail("keep_fraction", "expected 0 to 1");
  }
  OpProperties properties() const override { return {OpKind::kMap, true, true, true}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    auto size = static_cast<int64_t>(in.ByteSize());
    if (size < min_bytes_ || (max_bytes_ >= 0 && size > max_bytes_)) return;
    if (keep_fraction_ < 1.0) {
      double coin = static_cast<double>(MixSeed(seed_, in.id) >> 11) * 0x1.0p-53;
      if (coin >= keep_fraction_) return;
    }
    out.push_back(std::move(in));
  }

 private:
  int64_t min_bytes_ = 0;
  int64_t max_bytes_ = -1;
  double keep_fraction_ = 1.0;
  uint64_t seed_ = 0;
};
SLUICE_REGISTER_OP("filter", FilterOp);

// Hands elements through unchanged; its buffer_size makes it run ahead of its consumer.
class PrefetchOp final : public StreamOp {
 public:
  explicit PrefetchOp(OpArgs&) {}
  OpProperties properties() const override { return {OpKind::kStream, false, true, true}; }
  std::optional<int64_t> EpochOutputs(std::optional<int64_t> in) const override { return in; }
  bool Next(Input& in, Element* out, const OpContext&) override { return in.Next(out); }
};
SLUICE_REGISTER_OP("prefetch", PrefetchOp);

}  // namespace
}  // namespace sluice::pipeline
