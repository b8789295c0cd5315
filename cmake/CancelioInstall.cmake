# Install rules: the library, its headers (cancelio.h, cancelio/*.h), a CMake package (exported
# targets + config + version file) and a relocatable pkg-config file.
# Included from the top-level CMakeLists.txt after the cancelio target exists.

include_guard(GLOBAL)
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(CIO_CMAKE_INSTALL_DIR "${CMAKE_INSTALL_LIBDIR}/cmake/cancelio")

install(TARGETS cancelio
    EXPORT cancelioTargets
    ARCHIVE DESTINATION "${CMAKE_INSTALL_LIBDIR}"
    LIBRARY DESTINATION "${CMAKE_INSTALL_LIBDIR}"
    RUNTIME DESTINATION "${CMAKE_INSTALL_BINDIR}"
    INCLUDES DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
install(FILES "${PROJECT_SOURCE_DIR}/include/cancelio.h"
    DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
# cancelio/plan9.h and any header beside it: the same library's layers.
install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/cancelio"
    DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}"
    FILES_MATCHING PATTERN "*.h")

install(EXPORT cancelioTargets
    NAMESPACE cancelio::
    DESTINATION "${CIO_CMAKE_INSTALL_DIR}")
configure_package_config_file(
    "${PROJECT_SOURCE_DIR}/cmake/cancelioConfig.cmake.in"
    "${PROJECT_BINARY_DIR}/cancelioConfig.cmake"
    INSTALL_DESTINATION "${CIO_CMAKE_INSTALL_DIR}")
write_basic_package_version_file(
    "${PROJECT_BINARY_DIR}/cancelioConfigVersion.cmake"
    VERSION "${PROJECT_VERSION}"
    COMPATIBILITY SameMajorVersion)
install(FILES
    "${PROJECT_BINARY_DIR}/cancelioConfig.cmake"
    "${PROJECT_BINARY_DIR}/cancelioConfigVersion.cmake"
    DESTINATION "${CIO_CMAKE_INSTALL_DIR}")

# pkg-config: the prefix is found from the .pc file's own place
# (${pcfiledir} = <prefix>/<libdir>/pkgconfig), so the installed tree can be
# moved or installed with `cmake --install --prefix`.  Only absolute
# CMAKE_INSTALL_LIBDIR/INCLUDEDIR values (outside the prefix) are frozen.
# A package for /usr gets plain absolute paths: pkg-config leaves out
# -I/usr/include and -L<system libdir> only when they are written so, and a
# system -L ahead of the user's own would pick the wrong libraries.
if(CMAKE_INSTALL_PREFIX STREQUAL "/usr")
    set(_cio_pc_relocatable OFF)
else()
    set(_cio_pc_relocatable ON)
endif()
option(CANCELIO_PKGCONFIG_RELOCATABLE
    "Write the pkg-config file's prefix relative to its own place" ${_cio_pc_relocatable})
unset(_cio_pc_relocatable)
if(NOT CANCELIO_PKGCONFIG_RELOCATABLE)
    set(CIO_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
    set(CIO_PC_LIBDIR "${CMAKE_INSTALL_FULL_LIBDIR}")
elseif(IS_ABSOLUTE "${CMAKE_INSTALL_LIBDIR}")
    set(CIO_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
    set(CIO_PC_LIBDIR "${CMAKE_INSTALL_LIBDIR}")
else()
    # The way from <prefix>/<libdir>/pkgconfig back up to <prefix> ("../.."
    # for lib, "../../.." for lib/x86_64-linux-gnu); "/p" stands for any
    # prefix.
    file(RELATIVE_PATH _cio_up "/p/${CMAKE_INSTALL_LIBDIR}/pkgconfig" "/p")
    string(REGEX REPLACE "/$" "" _cio_up "${_cio_up}")
    set(CIO_PC_PREFIX "\${pcfiledir}/${_cio_up}")
    set(CIO_PC_LIBDIR "\${prefix}/${CMAKE_INSTALL_LIBDIR}")
    unset(_cio_up)
endif()
if(NOT CANCELIO_PKGCONFIG_RELOCATABLE)
    set(CIO_PC_INCLUDEDIR "${CMAKE_INSTALL_FULL_INCLUDEDIR}")
elseif(IS_ABSOLUTE "${CMAKE_INSTALL_INCLUDEDIR}")
    set(CIO_PC_INCLUDEDIR "${CMAKE_INSTALL_INCLUDEDIR}")
else()
    set(CIO_PC_INCLUDEDIR "\${prefix}/${CMAKE_INSTALL_INCLUDEDIR}")
endif()
get_target_property(_cio_type cancelio TYPE)
if(_cio_type STREQUAL "STATIC_LIBRARY")
    set(CIO_PC_CFLAGS_EXTRA " -DCANCELIO_STATIC_DEFINE")
else()
    set(CIO_PC_CFLAGS_EXTRA "")
endif()
unset(_cio_type)
configure_file("${PROJECT_SOURCE_DIR}/cmake/cancelio.pc.in"
    "${PROJECT_BINARY_DIR}/cancelio.pc" @ONLY)
install(FILES "${PROJECT_BINARY_DIR}/cancelio.pc"
    DESTINATION "${CMAKE_INSTALL_LIBDIR}/pkgconfig")
