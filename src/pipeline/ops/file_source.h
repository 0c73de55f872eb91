// The shared part of the sources over a fixed list of files (list_files, read_manifest): an
// optional label per file, a shuffle anew each epoch that depends only on seed and epoch (so all
// shards of an epoch share it), and sharding for data-parallel jobs.
#pragma once

#include <cstdint>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "sluice/pipeline/element.h"
#include "sluice/pipeline/op.h"

namespace sluice::pipeline {

class FileListSource : public SourceOp {
 public:
  OpProperties properties() const override {
    return {OpKind::kSource, false, /*deterministic=*/!shuffle_, /*stateless=*/false};
  }
  void BeginEpoch(int64_t epoch) override {
    std::iota(order_.begin(), order_.end(), 0);
    if (shuffle_) {
      // Fisher-Yates with a splitmix stream, so the order depends only on seed and epoch.
      uint64_t state = MixSeed(seed_, static_cast<uint64_t>(epoch));
      for (size_t i = order_.size(); i > 1; --i) {
        state = MixSeed(state, i);
        std::swap(order_[i - 1], order_[state % i]);
      }
    }
    next_ = 0;
  }
  bool Next(Element* out, const OpContext&) override {
    // A shard takes every num_shards-th position of the epoch's (shared) order: the shards of an
    // epoch are disjoint and together cover it.
    while (next_ < order_.size() &&
           static_cast<int64_t>(next_ % static_cast<size_t>(num_shards_)) != shard_index_) {
      ++next_;
    }
    if (next_ == order_.size()) return false;
    size_t index = order_[next_];
    *out = Element{};
    out->path = files_[index];
    out->id = index;
    if (!labels_.empty()) {
      Tensor label = Tensor::Allocate(DType::kInt64, {});
      *label.data<int64_t>() = labels_[index];
      out->tensors.push_back(std::move(label));
    }
    ++next_;
    return true;
  }
  // The files of this shard in one epoch.
  std::optional<int64_t> EpochOutputs(std::optional<int64_t>) const override {
    const auto n = static_cast<int64_t>(files_.size());
    // Positions p < n with p % num_shards == shard_index.
    return n > shard_index_ ? (n - shard_index_ + num_shards_ - 1) / num_shards_ : 0;
  }
  std::vector<std::string> ClassNames() const override { return classes_; }

 protected:
  // Reads args shuffle, seed, num_shards and shard_index.
  explicit FileListSource(OpArgs& args) {
    shuffle_ = args.Bool("shuffle", false);
    seed_ = args.Seed("seed");
    num_shards_ = args.Int("num_shards", 1);
    shard_index_ = args.Int("shard_index", 0);
    if (num_shards_ < 1) args.Fail("num_shards", fmt::format("must be >= 1, got {}", num_shards_));
    if (shard_index_ < 0 || shard_index_ >= num_shards_) {
      args.Fail("shard_index", fmt::format("must be in [0, {}) for num_shards {}, got {}",
                                           num_shards_, num_shards_, shard_index_));
    }
  }
  // The derived constructor's list: `labels` empty (unlabelled) or one class index per file;
  // `classes` names the class indices.
  void SetFiles(std::vector<std::string> files, std::vector<int64_t> labels,
                std::vector<std::string> classes) {
    files_ = std::move(files);
    labels_ = std::move(labels);
    classes_ = std::move(classes);
    order_.resize(files_.size());
  }

 private:
  std::vector<std::string> files_;
  std::vector<std::string> classes_;
  std::vector<int64_t> labels_;
  int64_t num_shards_ = 1, shard_index_ = 0;
  std::vector<size_t> order_;
  size_t next_ = 0;
  bool shuffle_ = false;
  uint64_t seed_ = 0;
};

// Class names sorted and deduplicated, and each name's index among them: ImageFolder's
// convention for turning folder (or manifest) names into labels.
struct ClassIndex {
  std::vector<std::string> classes;
  std::vector<int64_t> labels;
};
ClassIndex IndexClasses(const std::vector<std::string>& names);

}  // namespace sluice::pipeline
