// A helper in a translation unit of its own that draws from rand().
#include <cstdlib>

#include "helpers.h"

namespace helpers {

int DrawNoise(int range) {
  return std::rand() % range;  // <- deterministic
}

uint64_t Twice(uint64_t x) { return 2 * x; }

}  // namespace helpers
