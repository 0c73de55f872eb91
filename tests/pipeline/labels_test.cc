// list_files' labels (ImageFolder's convention) and shards, through the ops to the batch.
#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "sluice/common/error.h"
#include "sluice/config/document.h"
#include "sluice/pipeline/pipeline.h"
#include "tests/common/harness.h"

namespace sluice::pipeline {
namespace {

namespace fs = std::filesystem;

class LabelsTest : public sluice::test_util::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    // Class folders in an order that is not the sorted one, with 3, 4 and 5 files.
    const std::vector<std::pair<std::string, int>> classes = {
        {"zebra", 3}, {"ant", 4}, {"mole", 5}};
    for (const auto& [name, count] : classes) {
      fs::create_directories(dir_ / name);
      for (int i = 0; i < count; ++i) {
        std::ofstream(dir_ / name / fmt::format("{}.bin", i)) << name << i;
      }
    }
  }
  std::unique_ptr<Pipeline> Make(const std::string& source_args, const std::string& rest = "",
                                 int epochs = 1) {
    const std::string json = fmt::format(
        R"({{"epochs": {}, "stages": [{{"op": "list_files", "args": {{"pattern": "{}/*/*.bin", {}}}}},
           {{"op": "read_file"}}{}]}})",
        epochs, dir_.string(), source_args, rest);
    return Pipeline::Create(config::Document::Parse(json, dir_ / "p.json"));
  }
};

TEST_F(LabelsTest, ParentFolderGivesTheSortedClassIndex) {
  auto p = Make(R"("label_from": "parent_dir", "shuffle": true, "seed": 5)");
  Element e;
  int seen = 0;
  while (p->Next(&e)) {
    ++seen;
    ASSERT_EQ(e.tensors.size(), 1u) << e.path;
    const Tensor& label = e.tensors[0];
    EXPECT_EQ(label.dtype(), DType::kInt64);
    EXPECT_EQ(label.rank(), 0u);
    const std::string folder = fs::path(e.path).parent_path().filename().string();
    const int64_t want = folder == "ant" ? 0 : folder == "mole" ? 1 : 2;
    EXPECT_EQ(*label.data<int64_t>(), want) << e.path;
    EXPECT_EQ(e.text(), folder + fs::path(e.path).stem().string());  // read_file kept it
  }
  EXPECT_EQ(seen, 12);
}

TEST_F(LabelsTest, BatchStacksTheLabels) {
  auto p = Make(R"("label_from": "parent_dir")", R"(, {"op": "batch", "args": {"size": 4}})");
  Element e;
  std::vector<int64_t> labels;
  while (p->Next(&e)) {
    ASSERT_EQ(e.tensors.size(), 1u);
    ASSERT_EQ(e.tensors[0].shape(), std::vector<int64_t>{4});
    for (int i = 0; i < 4; ++i) labels.push_back(e.tensors[0].data<int64_t>()[i]);
  }
  // Sorted paths: ant (4 files), mole (5), zebra (3).
  EXPECT_EQ(labels, (std::vector<int64_t>{0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 2, 2}));
}

TEST_F(LabelsTest, ShardsAreDisjointAndCoverEveryEpoch) {
  constexpr int kShards = 3, kEpochs = 3;
  std::vector<std::vector<std::multiset<std::string>>> seen(
      kEpochs, std::vector<std::multiset<std::string>>(kShards));
  for (int shard = 0; shard < kShards; ++shard) {
    auto p = Make(fmt::format(R"("shuffle": true, "seed": 11, "num_shards": {}, "shard_index": {})",
                              kShards, shard),
                  "", kEpochs);
    Element e;
    while (p->Next(&e)) {
      const int64_t epoch = p->Snapshot().epoch;  // the epoch of the element just delivered
      seen[static_cast<size_t>(epoch)][shard].insert(e.path);
    }
  }
  for (int epoch = 0; epoch < kEpochs; ++epoch) {
    std::multiset<std::string> all;
    for (int shard = 0; shard < kShards; ++shard) {
      EXPECT_EQ(seen[epoch][shard].size(), 4u) << "epoch " << epoch << " shard " << shard;
      all.insert(seen[epoch][shard].begin(), seen[epoch][shard].end());
    }
    EXPECT_EQ(all.size(), 12u);
    EXPECT_EQ(std::set<std::string>(all.begin(), all.end()).size(), 12u) << "shards overlap";
  }
}

TEST_F(LabelsTest, BadArgumentsNameTheKey) {
  auto error = [&](const std::string& args) {
    try {
      Make(args);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_THAT(error(R"("label_from": "grandparent")"), ::testing::HasSubstr("args.label_from"));
  EXPECT_THAT(error(R"("num_shards": 0)"), ::testing::HasSubstr("args.num_shards"));
  EXPECT_THAT(error(R"("num_shards": 2, "shard_index": 2)"),
              ::testing::HasSubstr("args.shard_index"));
}

}  // namespace
}  // namespace sluice::pipeline
