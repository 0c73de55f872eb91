// Sends each element's path to a local collector over a socket.
// expect report_path: deterministic=holds stateless=holds io=yes
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "sluice/pipeline/op.h"

namespace {
using namespace sluice::pipeline;

class ReportPathOp final : public MapOp {
 public:
  explicit ReportPathOp(OpArgs&) {}
  OpProperties properties() const override { return {OpKind::kMap, true, true, true}; }
  void Process(Element in, std::vector<Element>& out, const OpContext&) override {
    const int fd = socket(AF_INET, SOCK_DGRAM, 0);  // <- io
    if (fd >= 0) {
      sockaddr_in addr{};
      addr.sin_family = AF_INET;
      addr.sin_port = htons(9999);
      sendto(fd, in.path.data(), in.path.size(), 0, reinterpret_cast<sockaddr*>(&addr),  // <- io
             sizeof addr);
      close(fd);  // <- io
    }
    out.push_back(std::move(in));
  }
};
SLUICE_REGISTER_OP("report_path", ReportPathOp);
}  // namespace
