# Optional CUDA, found at configure time and never required: the CUPTI headers for the tracer's
# GPU backend (libcupti itself is dlopen'ed at run time, so nothing links it) and nvcc for the
# CUDA example. Without a toolkit the build goes on without both, and a trace says "not_built".
#
# Include once from the top-level CMakeLists.txt (enable_language must run at top level).
# Sets:
#   SLUICE_HAVE_CUPTI          ON when cupti.h (CUDA 13 or later) and cuda.h were found
#   SLUICE_CUPTI_INCLUDE_DIRS  the directories holding them
#   SLUICE_CUPTI_DEFINITIONS   compile definitions for the backend: SLUICE_HAVE_CUPTI and, when
#                              the build found libcupti, SLUICE_CUPTI_LIBRARY_DIR (searched too)
#   SLUICE_HAVE_NVCC           ON when nvcc works with the host compiler and CUDA is enabled
# Defines sluice_add_cuda_program().
include_guard(GLOBAL)

option(SLUICE_WITH_CUPTI "Build the CUPTI GPU backend when the CUDA toolkit's headers are found" ON)
option(SLUICE_BUILD_CUDA_EXAMPLES "Build the CUDA example (gpu_train) when nvcc is found" ON)

# Toolkit roots, most specific first.
set(_sluice_cuda_roots)
foreach(_root "$ENV{CUDA_HOME}" "$ENV{CUDA_PATH}" "$ENV{CUDAToolkit_ROOT}" /usr/local/cuda)
  if(_root AND IS_DIRECTORY "${_root}")
    list(APPEND _sluice_cuda_roots "${_root}")
  endif()
endforeach()
list(REMOVE_DUPLICATES _sluice_cuda_roots)

# --- CUPTI headers (build time only) ---------------------------------------------------------
set(SLUICE_HAVE_CUPTI OFF)
set(SLUICE_CUPTI_INCLUDE_DIRS)
set(SLUICE_CUPTI_DEFINITIONS)
if(SLUICE_WITH_CUPTI)
  find_path(CUPTI_INCLUDE_DIR cupti.h
            HINTS ${_sluice_cuda_roots}
            PATH_SUFFIXES include extras/CUPTI/include targets/x86_64-linux/include
            DOC "Directory holding cupti.h")
  find_path(SLUICE_CUDA_INCLUDE_DIR cuda.h
            HINTS ${_sluice_cuda_roots}
            PATH_SUFFIXES include targets/x86_64-linux/include
            DOC "Directory holding cuda.h")
  set(_cupti_api 0)
  if(CUPTI_INCLUDE_DIR AND EXISTS "${CUPTI_INCLUDE_DIR}/cupti_version.h")
    file(STRINGS "${CUPTI_INCLUDE_DIR}/cupti_version.h" _cupti_api_line
         REGEX "^#define CUPTI_API_VERSION [0-9]+")
    string(REGEX REPLACE ".* ([0-9]+).*" "\\1" _cupti_api "${_cupti_api_line}")
  endif()
  if(NOT CUPTI_INCLUDE_DIR OR NOT SLUICE_CUDA_INCLUDE_DIR)
    message(STATUS "CUPTI headers not found (set CUDA_HOME): GPU activity will not be traced")
  elseif(_cupti_api LESS 130000)
    # The backend reads the CUDA 13 record layouts (CUpti_ActivityKernel10, ...Memcpy6).
    message(STATUS "CUPTI headers in ${CUPTI_INCLUDE_DIR} are API ${_cupti_api}; the GPU "
                   "backend needs CUDA 13's (130000 or later): GPU activity will not be traced")
  else()
    set(SLUICE_HAVE_CUPTI ON)
    set(SLUICE_CUPTI_INCLUDE_DIRS ${CUPTI_INCLUDE_DIR} ${SLUICE_CUDA_INCLUDE_DIR})
    list(REMOVE_DUPLICATES SLUICE_CUPTI_INCLUDE_DIRS)
    set(SLUICE_CUPTI_DEFINITIONS SLUICE_HAVE_CUPTI)
    # Only to tell the run-time search where the build saw libcupti; never linked.
    find_library(CUPTI_LIBRARY NAMES cupti
                 HINTS ${_sluice_cuda_roots}
                 PATH_SUFFIXES lib64 lib extras/CUPTI/lib64 targets/x86_64-linux/lib
                 DOC "libcupti, searched at run time (not linked)")
    if(CUPTI_LIBRARY)
      get_filename_component(_cupti_dir "${CUPTI_LIBRARY}" DIRECTORY)
      list(APPEND SLUICE_CUPTI_DEFINITIONS "SLUICE_CUPTI_LIBRARY_DIR=\"${_cupti_dir}\"")
    endif()
    message(STATUS "CUPTI ${_cupti_api} headers: ${CUPTI_INCLUDE_DIR} (libcupti is loaded at "
                   "run time)")
  endif()
endif()

# --- nvcc (the CUDA example) -----------------------------------------------------------------
set(SLUICE_HAVE_NVCC OFF)
if(SLUICE_BUILD_CUDA_EXAMPLES)
  include(CheckLanguage)
  # check_language finds nvcc on PATH or through CUDACXX; point it at a toolkit's nvcc when
  # neither names one. CMAKE_CUDA_COMPILER itself is left unset: check_language trusts it
  # without a test, and enable_language would then fail the whole configure on a broken nvcc.
  if(NOT DEFINED CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX})
    find_program(_sluice_nvcc nvcc NO_CACHE)
    if(NOT _sluice_nvcc)
      foreach(_root ${_sluice_cuda_roots})
        if(EXISTS "${_root}/bin/nvcc")
          set(ENV{CUDACXX} "${_root}/bin/nvcc")
          break()
        endif()
      endforeach()
    endif()
  endif()
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    # Hopper (H100) and Ampere code, each with its PTX for newer GPUs to compile at load.
    if(NOT DEFINED CMAKE_CUDA_ARCHITECTURES)
      set(CMAKE_CUDA_ARCHITECTURES "80;90")
    endif()
    enable_language(CUDA)
    # CMake before 3.26 does not know that nvcc takes C++20 (since CUDA 12.0), and would
    # refuse the C++20 that sluice's targets ask for; teach it the flag.
    if(CMAKE_CUDA_COMPILER_ID STREQUAL "NVIDIA" AND
       CMAKE_CUDA_COMPILER_VERSION VERSION_GREATER_EQUAL 12.0 AND
       NOT "cuda_std_20" IN_LIST CMAKE_CUDA_COMPILE_FEATURES)
      set(CMAKE_CUDA20_STANDARD_COMPILE_OPTION "-std=c++20")
      set(CMAKE_CUDA20_EXTENSION_COMPILE_OPTION "-std=c++20")
      set(CMAKE_CUDA20_COMPILE_FEATURES cuda_std_20)
      list(APPEND CMAKE_CUDA_COMPILE_FEATURES cuda_std_20)
    endif()
    set(SLUICE_HAVE_NVCC ON)
    message(STATUS "CUDA examples: nvcc ${CMAKE_CUDA_COMPILER_VERSION}, architectures "
                   "${CMAKE_CUDA_ARCHITECTURES}")
  else()
    message(STATUS "nvcc not found or not working with this host compiler: the CUDA example "
                   "(gpu_train) is not built")
  endif()
endif()

# sluice_add_cuda_program(NAME name SOURCES ... DEPS ...): a CUDA executable in build/bin,
# linked with the static CUDA runtime. Not sluice_add_program: sluice::default_settings holds
# host-compiler flags, which nvcc accepts only through -Xcompiler.
function(sluice_add_cuda_program)
  cmake_parse_arguments(P "" "NAME" "SOURCES;DEPS" ${ARGN})
  add_executable(${P_NAME} ${P_SOURCES})
  target_link_libraries(${P_NAME} PRIVATE ${P_DEPS})
  set_target_properties(${P_NAME} PROPERTIES CUDA_STANDARD 20 CUDA_STANDARD_REQUIRED ON
                                             CUDA_EXTENSIONS OFF)
  target_compile_options(${P_NAME} PRIVATE
                         $<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra>)
  if(SLUICE_WERROR)
    target_compile_options(${P_NAME} PRIVATE
                           $<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings -Xcompiler=-Werror>)
  endif()
  if(SLUICE_SANITIZE)
    # The sluice libraries it links are instrumented; the CUDA code itself is not.
    target_link_options(${P_NAME} PRIVATE -fsanitize=${SLUICE_SANITIZE})
  endif()
endfunction()
