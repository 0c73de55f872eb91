# One way to declare a module, a test and a program, in the manner of abseil's absl_cc_library.
include_guard(GLOBAL)
include(GNUInstallDirs)
include(GenerateExportHeader)

# Warnings and sanitizers live on one INTERFACE target linked PRIVATE everywhere.
add_library(sluice_default_settings INTERFACE)
add_library(sluice::default_settings ALIAS sluice_default_settings)
target_compile_options(sluice_default_settings INTERFACE -Wall -Wextra -Wpedantic -Wno-missing-field-initializers)
target_compile_definitions(sluice_default_settings INTERFACE SLUICE_VERSION="${PROJECT_VERSION}")
if(SLUICE_WERROR)
  target_compile_options(sluice_default_settings INTERFACE -Werror)
endif()
# The annotations of src/common/thread_annotations.h are clang's; GCC ignores them, so a GCC
# build with the check asked for would check nothing.
if(SLUICE_THREAD_SAFETY)
  if(NOT CMAKE_CXX_COMPILER_ID MATCHES "Clang")
    message(FATAL_ERROR "SLUICE_THREAD_SAFETY needs clang (e.g. CXX=clang++-14), not ${CMAKE_CXX_COMPILER_ID}")
  endif()
  target_compile_options(sluice_default_settings INTERFACE -Wthread-safety -Werror=thread-safety)
endif()
if(SLUICE_SANITIZE)
  target_compile_options(sluice_default_settings INTERFACE -fsanitize=${SLUICE_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
  # GCC's -Wmaybe-uninitialized misfires under the sanitizers' instrumentation (GCC 12 flags
  # libstdc++'s own <regex> compiler); the plain build keeps the warning.
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    target_compile_options(sluice_default_settings INTERFACE -Wno-maybe-uninitialized)
  endif()
  target_link_options(sluice_default_settings INTERFACE -fsanitize=${SLUICE_SANITIZE})
  # Line tables are all a sanitizer report needs; full debug info of the template-heavy code
  # (fmt, JSON, gtest) adds a third to a sanitizer build's compile time (src/tuner/program.cc
  # under ASan: 6.9 s with -g, 5.2 s with -g1).
  option(SLUICE_SANITIZE_FULL_DEBUG_INFO "Full -g in sanitizer builds (default: line tables)" OFF)
  if(NOT SLUICE_SANITIZE_FULL_DEBUG_INFO)
    target_compile_options(sluice_default_settings INTERFACE -g1)
  endif()
  # ASan's recommended -O1 (after the build type's -O2, so it wins): UBSan's checks make -O2
  # slow to compile (tests/config/document_test.cc under ASan + UBSan: 39 s at -O2, 24 s at -O1),
  # and the instrumented build was half of CI's time. Every check stays on.
  if(SLUICE_SANITIZE MATCHES "address")
    target_compile_options(sluice_default_settings INTERFACE -O1)
  endif()
endif()

# sluice_add_module(NAME name [SHARED] SOURCES ... [PUBLIC_DEPS ...] [PRIVATE_DEPS ...])
# Declares library sluice_<name> with alias sluice::<name>; public headers in include/sluice/<name>/.
# SHARED is for modules whose objects register themselves at load time (ops), which a static
# archive would drop when nothing references them. A shared module is versioned (SONAME
# libsluice_<name>.so.MAJOR), exports only what its headers mark SLUICE_<NAME>_EXPORT (the
# macro comes from the generated sluice/<name>/export.h), and finds its sibling libraries next
# to itself. With SLUICE_INSTALL, every module installs into the export set sluiceTargets as
# sluice::<name>, with its headers.
function(sluice_add_module)
  cmake_parse_arguments(M "SHARED" "NAME" "SOURCES;PUBLIC_DEPS;PRIVATE_DEPS" ${ARGN})
  set(target sluice_${M_NAME})
  set(includes $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
               $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>)
  if(M_SOURCES)
    if(M_SHARED)
      add_library(${target} SHARED ${M_SOURCES})
      set_target_properties(${target} PROPERTIES
        OUTPUT_NAME sluice_${M_NAME}
        LIBRARY_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/lib
        VERSION ${PROJECT_VERSION}
        SOVERSION ${PROJECT_VERSION_MAJOR}
        CXX_VISIBILITY_PRESET hidden
        VISIBILITY_INLINES_HIDDEN ON
        INSTALL_RPATH "$ORIGIN")
      generate_export_header(${target} BASE_NAME sluice_${M_NAME}
        EXPORT_FILE_NAME ${PROJECT_BINARY_DIR}/include/sluice/${M_NAME}/export.h)
      list(APPEND includes $<BUILD_INTERFACE:${PROJECT_BINARY_DIR}/include>)
    else()
      add_library(${target} STATIC ${M_SOURCES})
    endif()
    target_include_directories(${target} PUBLIC ${includes} PRIVATE ${PROJECT_SOURCE_DIR}/src)
    # The warnings target is build-only: a static library's private links travel with it into
    # the installed package, and a consumer has no use for sluice's warning flags.
    target_link_libraries(${target} PUBLIC ${M_PUBLIC_DEPS}
                          PRIVATE ${M_PRIVATE_DEPS} $<BUILD_INTERFACE:sluice::default_settings>)
    set_target_properties(${target} PROPERTIES POSITION_INDEPENDENT_CODE ON)
  else()
    add_library(${target} INTERFACE)
    target_include_directories(${target} INTERFACE ${includes})
    target_link_libraries(${target} INTERFACE ${M_PUBLIC_DEPS})
  endif()
  set_target_properties(${target} PROPERTIES EXPORT_NAME ${M_NAME})
  add_library(sluice::${M_NAME} ALIAS ${target})
  if(SLUICE_INSTALL)
    install(TARGETS ${target} EXPORT sluiceTargets
            LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT runtime
                    NAMELINK_COMPONENT development
            ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT development)
    install(DIRECTORY ${PROJECT_SOURCE_DIR}/include/sluice/${M_NAME}
            DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/sluice COMPONENT development)
    if(M_SHARED)
      install(FILES ${PROJECT_BINARY_DIR}/include/sluice/${M_NAME}/export.h
              DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/sluice/${M_NAME} COMPONENT development)
    endif()
  endif()
endfunction()

# sluice_add_program(NAME name SOURCES ... DEPS ...): an executable in build/bin.
function(sluice_add_program)
  cmake_parse_arguments(P "" "NAME" "SOURCES;DEPS" ${ARGN})
  add_executable(${P_NAME} ${P_SOURCES})
  target_link_libraries(${P_NAME} PRIVATE ${P_DEPS} sluice::default_settings)
endfunction()

# What nearly every test includes (GoogleTest, gmock, fmt, JSON, the standard library), parsed
# once into a precompiled header that every test target reuses: most of a test file's compile
# time was these headers. Every test links fmt and JSON so that all are compiled with the same
# macros (FMT_SHARED), which a precompiled header needs; GCC ignores it otherwise, silently.
option(SLUICE_TEST_PCH "Compile the tests with one shared precompiled header" ON)
function(_sluice_test_pch target)
  if(NOT SLUICE_TEST_PCH)
    return()
  endif()
  if(NOT TARGET sluice_test_pch)
    add_library(sluice_test_pch STATIC ${PROJECT_SOURCE_DIR}/tests/common/pch.cc)
    target_link_libraries(sluice_test_pch PRIVATE GTest::gtest GTest::gmock fmt::fmt
                          nlohmann_json::nlohmann_json sluice::default_settings)
    target_compile_options(sluice_test_pch PRIVATE
                           $<$<CONFIG:Release,RelWithDebInfo,MinSizeRel>:-O1>)
    target_precompile_headers(sluice_test_pch PRIVATE
      <algorithm> <atomic> <chrono> <cstdint> <cstdlib> <filesystem> <fstream> <functional> <map>
      <memory> <set> <sstream> <string> <thread> <vector>
      <fmt/format.h> <gmock/gmock.h> <gtest/gtest.h> <nlohmann/json.hpp>)
  endif()
  target_precompile_headers(${target} REUSE_FROM sluice_test_pch)
  # A header GCC cannot use is ignored unless this says so (an error under SLUICE_WERROR).
  if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU")
    target_compile_options(${target} PRIVATE -Winvalid-pch)
  endif()
endfunction()

# sluice_add_test(NAME name SOURCES ... DEPS ... [LABELS ...]): a GoogleTest binary whose
# cases are discovered into ctest, labelled by module so CI can run a subset.
function(sluice_add_test)
  cmake_parse_arguments(T "" "NAME" "SOURCES;DEPS;LABELS" ${ARGN})
  add_executable(${T_NAME} ${T_SOURCES})
  target_link_libraries(${T_NAME} PRIVATE ${T_DEPS} GTest::gtest GTest::gmock GTest::gtest_main fmt::fmt
                        nlohmann_json::nlohmann_json sluice::default_settings)
  # The test code itself at -O1 in optimized builds (the libraries it tests keep the build's
  # level): gmock's and the matchers' templates at -O3 were a third of a test file's compile time
  # (tests/report/report_test.cc: 19.0 s at -O3, 13.7 s at -O1).
  target_compile_options(${T_NAME} PRIVATE $<$<CONFIG:Release,RelWithDebInfo,MinSizeRel>:-O1>)
  _sluice_test_pch(${T_NAME})
  target_include_directories(${T_NAME} PRIVATE ${PROJECT_SOURCE_DIR})  # tests/common helpers
  target_compile_definitions(${T_NAME} PRIVATE SLUICE_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
                                               SLUICE_BINARY_DIR="${PROJECT_BINARY_DIR}")
  set_target_properties(${T_NAME} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${PROJECT_BINARY_DIR}/tests)
  gtest_discover_tests(${T_NAME} PROPERTIES LABELS "${T_LABELS}" DISCOVERY_TIMEOUT 60)
endfunction()
