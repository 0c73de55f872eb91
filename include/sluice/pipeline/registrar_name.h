// The name prefix SLUICE_REGISTER_OP gives the registrar variables it declares, shared with the
// inspector that finds registrations by it. Header-only, so the inspector need not link the
// runtime.
#pragma once

#include <string_view>

// A token, because the macro pastes __COUNTER__ onto it.
#define SLUICE_INTERNAL_OP_REGISTRAR_PREFIX sluice_op_registrar_
#define SLUICE_INTERNAL_STRINGIZE2(x) #x
#define SLUICE_INTERNAL_STRINGIZE(x) SLUICE_INTERNAL_STRINGIZE2(x)

namespace sluice::pipeline::internal {

// "sluice_op_registrar_": every variable SLUICE_REGISTER_OP declares starts with it.
inline constexpr std::string_view kOpRegistrarPrefix =
    SLUICE_INTERNAL_STRINGIZE(SLUICE_INTERNAL_OP_REGISTRAR_PREFIX);

}  // namespace sluice::pipeline::internal
