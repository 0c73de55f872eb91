// The shared part of the sources over a fixed list of files (list_files, read_manifest): an
// optional label per file, a shuffle anew each epoch that depends only on seed and epoch (so all
// shards of an epoch share it), and sharding for data-parallel jobs.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sluice/pipeline/op.h"

namespace sluice::pipeline {

class FileListSource : public SourceOp {
 public:
  OpProperties properties() const override;
  void BeginEpoch(int64_t epoch) override;
  bool Next(Element* out, const OpContext& ctx) override;
  // The files of this shard in one epoch.
  std::optional<int64_t> EpochOutputs(std::optional<int64_t> inputs) const override;
  std::vector<std::string> ClassNames() const override { return classes_; }

 protected:
  // Reads args shuffle, seed, num_shards and shard_index.
  explicit FileListSource(OpArgs& args);
  // The derived constructor's list: `labels` empty (unlabelled) or one class index per file;
  // `classes` names the class indices.
  void SetFiles(std::vector<std::string> files, std::vector<int64_t> labels,
                std::vector<std::string> classes);

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
