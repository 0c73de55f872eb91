// Reads a side file per element with an ifstream, and appends to a log with fopen.
// expect side_file: deterministic=holds stateless=holds io=yes
#include <cstdio>
#include <fstream>
#include <string>

#include "sluice/pipeline/op.h"

namespace {
using namespace sluice::pipeline;

void Log(const std::string& path) {
  std::FILE* f = std::fopen("/tmp/side_file.log", "a");  // <- io
  if (f == nullptr) return;
  std::fputs(path.c_str(), f);  // <- io
  std::fclose(f);               // <- io
}

class SideFileOp final : public MapOp {
 public:
  explicit SideFileOp(OpArgs&) {}
  OpProperties properties() const override { return {OpKind::kMap, true, true, true}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    std::ifstream side(in.path + ".txt");  // <- io
    std::string label;
    std::getline(side, label);  // <- io
    Log(in.path);
    in.path += label;
    out.push_back(std::move(in));
  }
};
SLUICE_REGISTER_OP("side_file", SideFileOp);
}  // namespace
