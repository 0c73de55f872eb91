// Helpers that the ops in uses_helpers.cc call, defined in translation units of their own
// (noise.cc, counter.cc): the inspector follows them through the build's compile_commands.json.
#pragma once

#include <cstdint>

namespace helpers {

// Draws from the C library's rand().
int DrawNoise(int range);
// Counts calls in a global.
void CountCall();
// Doubles its argument; reads nothing else, writes nothing.
uint64_t Twice(uint64_t x);

}  // namespace helpers
