// The ops a source file registers: SLUICE_REGISTER_OP's registrar variables, with the name each
// registers and the class its factory makes.
#pragma once

#include <string>
#include <vector>

#include "inspect/clang_api.h"

namespace sluice::inspect::internal {

struct Registration {
  std::string name;
  CXCursor op_class;
};

// Appends the registrations under `parent` (namespaces and linkage specs included) that are
// written in file `main`.
void FindRegistrations(CXCursor parent, CXFile main, std::vector<Registration>& out);

}  // namespace sluice::inspect::internal
