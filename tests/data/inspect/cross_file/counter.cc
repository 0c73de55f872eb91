// A helper in a translation unit of its own that writes a global.
#include <cstdint>

#include "helpers.h"

namespace helpers {

uint64_t g_calls = 0;

void CountCall() {
  ++g_calls;  // <- stateless race
}

}  // namespace helpers
