# What `cmake --install` adds beyond the targets themselves (those install from
# sluice_add_module, sluice_add_program's callers and python/): the CMake package
# (find_package(sluice)), the pkg-config file, and the Debian package `cpack -G DEB` makes.
# Included last from the top-level CMakeLists.txt when SLUICE_INSTALL is on.
include_guard(GLOBAL)
include(CMakePackageConfigHelpers)

# --- CMake package: lib/cmake/sluice/sluice{Config,ConfigVersion,Targets}.cmake -------------
set(SLUICE_CMAKE_INSTALL_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/sluice)
install(EXPORT sluiceTargets NAMESPACE sluice:: DESTINATION ${SLUICE_CMAKE_INSTALL_DIR}
        COMPONENT development)
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/sluiceConfig.cmake.in
                              ${PROJECT_BINARY_DIR}/sluiceConfig.cmake
                              INSTALL_DESTINATION ${SLUICE_CMAKE_INSTALL_DIR})
# 0.x releases promise nothing across minor versions in general, but SameMajorVersion is what
# the project will keep from 1.0 on; find_package(sluice 0.1) accepts any 0.y with y >= 1.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/sluiceConfigVersion.cmake
                                 COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/sluiceConfig.cmake ${PROJECT_BINARY_DIR}/sluiceConfigVersion.cmake
        DESTINATION ${SLUICE_CMAKE_INSTALL_DIR} COMPONENT development)

# --- pkg-config: lib/pkgconfig/sluice.pc, relocatable through ${pcfiledir} -------------------
set(_sluice_pc_dir ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
file(RELATIVE_PATH SLUICE_PC_TO_PREFIX ${CMAKE_INSTALL_PREFIX}/${_sluice_pc_dir} ${CMAKE_INSTALL_PREFIX})
string(REGEX REPLACE "/$" "" SLUICE_PC_TO_PREFIX "${SLUICE_PC_TO_PREFIX}")  # "../..", not "../../"
configure_file(${PROJECT_SOURCE_DIR}/cmake/sluice.pc.in ${PROJECT_BINARY_DIR}/sluice.pc @ONLY)
install(FILES ${PROJECT_BINARY_DIR}/sluice.pc DESTINATION ${_sluice_pc_dir} COMPONENT development)

# --- Debian package: one .deb with every component -------------------------------------------
set(SLUICE_PACKAGE_MAINTAINER "sluice developers <sluice@example.invalid>"
    CACHE STRING "Maintainer field of the Debian package cpack makes")
set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME sluice)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY
    "finds why an ML input pipeline is slow and fixes its configuration")
set(CPACK_PACKAGE_DESCRIPTION "The sluice CLI, the pipeline runtime and tracer libraries with \
their headers, CMake package and pkg-config file, and the Python package.")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)  # sluice_VERSION_ARCH.deb
set(CPACK_DEBIAN_PACKAGE_MAINTAINER "${SLUICE_PACKAGE_MAINTAINER}")
set(CPACK_DEBIAN_PACKAGE_SECTION devel)
# The headers and the CMake package need what sluiceConfig.cmake finds; the Python extension
# is built for one CPython minor version.
set(_sluice_depends "nlohmann-json3-dev (>= 3.10)" "libfmt-dev")
if(TARGET sluice_python_module)
  math(EXPR _sluice_next_minor "${SLUICE_PYTHON_VERSION_MINOR} + 1")
  list(APPEND _sluice_depends "python3 (>= 3.${SLUICE_PYTHON_VERSION_MINOR})"
                              "python3 (<< 3.${_sluice_next_minor})")
endif()
find_program(SLUICE_DPKG_SHLIBDEPS dpkg-shlibdeps)
mark_as_advanced(SLUICE_DPKG_SHLIBDEPS)
if(SLUICE_DPKG_SHLIBDEPS)
  # The shared libraries' own packages, computed from the ELF files (dpkg-dev).
  set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
else()
  # Debian 12's runtime packages for what the binaries link, written out by hand.
  list(APPEND _sluice_depends libc6 libstdc++6 libgcc-s1 libfmt9 libturbojpeg0 libjpeg62-turbo
                              libopencv-core406 libopencv-imgproc406)
  if(SLUICE_BUILD_TOOLS)
    list(APPEND _sluice_depends libglpk40 libclang1-14)
  endif()
endif()
list(JOIN _sluice_depends ", " CPACK_DEBIAN_PACKAGE_DEPENDS)
include(CPack)
