// Out-of-line throw helper for sluice::Error.
#include "sluice/common/error.h"

namespace sluice {

void ThrowError(const std::string& message) { throw Error(message); }

}  // namespace sluice
