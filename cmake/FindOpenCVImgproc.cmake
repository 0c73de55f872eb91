# Finds OpenCV's core and imgproc modules only, as the imported target OpenCV::imgproc.
#
# Debian's libopencv-imgproc-dev ships the headers and libraries but no CMake config (that comes
# with libopencv-dev, which pulls every OpenCV module), and pkg-config's opencv4 links every
# module too. So: OpenCV's own config when it is installed, else the two libraries by name.
# Sets OpenCVImgproc_FOUND and OpenCVImgproc_VERSION.
include(FindPackageHandleStandardArgs)

find_package(OpenCV QUIET CONFIG COMPONENTS core imgproc)
if(OpenCV_FOUND)
  set(OpenCVImgproc_VERSION ${OpenCV_VERSION})
  find_package_handle_standard_args(OpenCVImgproc REQUIRED_VARS OpenCV_DIR
                                    VERSION_VAR OpenCVImgproc_VERSION)
  if(NOT TARGET OpenCV::imgproc)
    add_library(OpenCV::imgproc INTERFACE IMPORTED)
    target_link_libraries(OpenCV::imgproc INTERFACE opencv_core opencv_imgproc)
  endif()
  return()
endif()

find_path(OpenCVImgproc_INCLUDE_DIR opencv2/imgproc.hpp PATH_SUFFIXES opencv4)
find_library(OpenCVImgproc_CORE_LIBRARY opencv_core)
find_library(OpenCVImgproc_IMGPROC_LIBRARY opencv_imgproc)
if(OpenCVImgproc_INCLUDE_DIR AND EXISTS "${OpenCVImgproc_INCLUDE_DIR}/opencv2/core/version.hpp")
  file(STRINGS "${OpenCVImgproc_INCLUDE_DIR}/opencv2/core/version.hpp" _cv_version_lines
       REGEX "^#define CV_VERSION_(MAJOR|MINOR|REVISION) +[0-9]+")
  foreach(_part MAJOR MINOR REVISION)
    string(REGEX REPLACE ".*#define CV_VERSION_${_part} +([0-9]+).*" "\\1" _cv_${_part}
                         "${_cv_version_lines}")
  endforeach()
  set(OpenCVImgproc_VERSION "${_cv_MAJOR}.${_cv_MINOR}.${_cv_REVISION}")
endif()
find_package_handle_standard_args(
  OpenCVImgproc
  REQUIRED_VARS OpenCVImgproc_IMGPROC_LIBRARY OpenCVImgproc_CORE_LIBRARY OpenCVImgproc_INCLUDE_DIR
  VERSION_VAR OpenCVImgproc_VERSION)
mark_as_advanced(OpenCVImgproc_INCLUDE_DIR OpenCVImgproc_CORE_LIBRARY OpenCVImgproc_IMGPROC_LIBRARY)

if(OpenCVImgproc_FOUND AND NOT TARGET OpenCV::imgproc)
  add_library(OpenCV::core UNKNOWN IMPORTED)
  set_target_properties(OpenCV::core PROPERTIES IMPORTED_LOCATION "${OpenCVImgproc_CORE_LIBRARY}"
                                                INTERFACE_INCLUDE_DIRECTORIES "${OpenCVImgproc_INCLUDE_DIR}")
  add_library(OpenCV::imgproc UNKNOWN IMPORTED)
  set_target_properties(OpenCV::imgproc PROPERTIES IMPORTED_LOCATION "${OpenCVImgproc_IMGPROC_LIBRARY}"
                                                   INTERFACE_LINK_LIBRARIES OpenCV::core)
endif()
