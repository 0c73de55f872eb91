// Found by scripts/soak.sh: a cache followed by a batch with a partial last batch delivered the
// cache's recording a second time within the epoch (batch asks its input again after the end,
// and the cache, just completed, started replaying). Every element must arrive once per epoch.
#include <unistd.h>

#include <filesystem>
#include <string>

#include <fmt/format.h>
#include <gtest/gtest.h>

#include "sluice/config/document.h"
#include "sluice/pipeline/pipeline.h"
#include "tests/common/harness.h"

namespace sluice::pipeline {
namespace {

namespace fs = std::filesystem;

struct Counts {
  int64_t outputs = 0;
  int64_t elements = 0;
};

Counts RunToEnd(const std::string& text) {
  auto pipe = Pipeline::Create(config::Document::Parse(text, "cache_epoch.json"));
  Counts c;
  Element e;
  while (pipe->Next(&e)) {
    ++c.outputs;
    c.elements += e.tensors.at(0).dim(0);
  }
  return c;
}

TEST(CacheEpochTest, CacheThenPartialBatchDeliversEachElementOncePerEpoch) {
  const test_util::TempDir tmp("sluice_cache_epoch");
  const fs::path file = tmp / "epoch.cache";
  for (const std::string& cache_args :
       {std::string("{}"), fmt::format(R"({{"path": "{}"}})", file.string())}) {
    for (const char* before :
         {"", R"({"name": "work", "op": "burn", "args": {"cpu_us": 1}, "buffer_size": 4},)"}) {
      for (int epochs = 1; epochs <= 3; ++epochs) {
        fs::remove(file);
        SCOPED_TRACE(fmt::format("cache args {}, '{}', {} epochs", cache_args, before, epochs));
        const Counts c = RunToEnd(fmt::format(
            R"({{"name": "c", "epochs": {}, "stages": [
                {{"name": "src", "op": "generate", "args": {{"count": 10, "bytes": 4}}}}, {}
                {{"name": "cache", "op": "cache", "args": {}}},
                {{"name": "batch", "op": "batch", "args": {{"size": 3}}}}]}})",
            epochs, before, cache_args));
        EXPECT_EQ(c.elements, 10 * epochs);
        EXPECT_EQ(c.outputs, 4 * epochs);  // 3 + 3 + 3 + 1
      }
    }
  }
  fs::remove(file);
}

}  // namespace
}  // namespace sluice::pipeline
