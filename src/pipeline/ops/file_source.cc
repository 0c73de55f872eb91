#include "file_source.h"

#include <algorithm>
#include <numeric>

#include <fmt/format.h>

#include "sluice/pipeline/element.h"

namespace sluice::pipeline {

FileListSource::FileListSource(OpArgs& args) {
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

void FileListSource::SetFiles(std::vector<std::string> files, std::vector<int64_t> labels,
                              std::vector<std::string> classes) {
  files_ = std::move(files);
  labels_ = std::move(labels);
  classes_ = std::move(classes);
  order_.resize(files_.size());
}

OpProperties FileListSource::properties() const {
  return {OpKind::kSource, false, /*deterministic=*/!shuffle_, /*stateless=*/false};
}

void FileListSource::BeginEpoch(int64_t epoch) {
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

bool FileListSource::Next(Element* out, const OpContext&) {
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

std::optional<int64_t> FileListSource::EpochOutputs(std::optional<int64_t>) const {
  const auto n = static_cast<int64_t>(files_.size());
  // Positions p < n with p % num_shards == shard_index.
  return n > shard_index_ ? (n - shard_index_ + num_shards_ - 1) / num_shards_ : 0;
}

ClassIndex IndexClasses(const std::vector<std::string>& names) {
  ClassIndex index;
  index.classes = names;
  std::sort(index.classes.begin(), index.classes.end());
  index.classes.erase(std::unique(index.classes.begin(), index.classes.end()), index.classes.end());
  for (const std::string& name : names) {
    index.labels.push_back(std::lower_bound(index.classes.begin(), index.classes.end(), name) -
                           index.classes.begin());
  }
  return index;
}

}  // namespace sluice::pipeline
