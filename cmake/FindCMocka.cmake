# FindCMocka
# ----------
#
# Finds CMocka and always leaves the imported target cmocka::cmocka, whichever
# way the installed CMocka describes itself:
#
#   1. CMocka >= 1.1.6 installs a config that exports cmocka::cmocka (and
#      drops the old variables): used as is.
#   2. CMocka 1.1.5 (Debian 12) installs a config that defines only
#      CMOCKA_LIBRARIES (or CMOCKA_LIBRARY) and CMOCKA_INCLUDE_DIR: wrapped
#      in an imported target.
#   3. No config at all (a hand-built or BSD ports install): find_path and
#      find_library, with pkg-config's answer as a hint.
#
# Sets CMocka_FOUND and CMocka_VERSION (when known).  Use:
#   find_package(CMocka REQUIRED)
#   target_link_libraries(t PRIVATE cmocka::cmocka)

include(FindPackageHandleStandardArgs)

if(NOT TARGET cmocka::cmocka)
    find_package(cmocka CONFIG QUIET)
endif()
if(cmocka_VERSION)
    set(CMocka_VERSION "${cmocka_VERSION}")
endif()

# Case 1, or an earlier call already made the target.
if(TARGET cmocka::cmocka)
    set(CMocka_TARGET cmocka::cmocka)

# Case 2: the variables, whose value may itself be a target name (or a
# config that exported the target without its namespace).
elseif(cmocka_FOUND AND (CMOCKA_LIBRARIES OR CMOCKA_LIBRARY OR TARGET cmocka))
    if(CMOCKA_LIBRARIES)
        set(_cmocka_libs "${CMOCKA_LIBRARIES}")
    elseif(CMOCKA_LIBRARY)
        set(_cmocka_libs "${CMOCKA_LIBRARY}")
    else()
        set(_cmocka_libs cmocka)
    endif()
    set(_cmocka_ok TRUE)
    foreach(_lib IN LISTS _cmocka_libs)
        if(NOT TARGET "${_lib}" AND IS_ABSOLUTE "${_lib}" AND NOT EXISTS "${_lib}")
            set(_cmocka_ok FALSE)
        endif()
    endforeach()
    if(_cmocka_ok)
        add_library(cmocka::cmocka INTERFACE IMPORTED)
        set_target_properties(cmocka::cmocka PROPERTIES
            INTERFACE_LINK_LIBRARIES "${_cmocka_libs}")
        if(CMOCKA_INCLUDE_DIR)
            set_target_properties(cmocka::cmocka PROPERTIES
                INTERFACE_INCLUDE_DIRECTORIES "${CMOCKA_INCLUDE_DIR}")
        endif()
        set(CMocka_TARGET "${_cmocka_libs}")
    endif()
    unset(_cmocka_ok)
    unset(_cmocka_libs)
    unset(_lib)
endif()

# Case 3: search by hand.
if(NOT TARGET cmocka::cmocka)
    find_package(PkgConfig QUIET)
    if(PKG_CONFIG_FOUND)
        pkg_check_modules(PC_CMOCKA QUIET cmocka)
        if(PC_CMOCKA_VERSION AND NOT CMocka_VERSION)
            set(CMocka_VERSION "${PC_CMOCKA_VERSION}")
        endif()
    endif()
    find_path(CMocka_INCLUDE_DIR cmocka.h HINTS ${PC_CMOCKA_INCLUDE_DIRS})
    find_library(CMocka_LIBRARY NAMES cmocka cmocka-static HINTS ${PC_CMOCKA_LIBRARY_DIRS})
    mark_as_advanced(CMocka_INCLUDE_DIR CMocka_LIBRARY)
    if(CMocka_INCLUDE_DIR AND CMocka_LIBRARY)
        add_library(cmocka::cmocka UNKNOWN IMPORTED)
        set_target_properties(cmocka::cmocka PROPERTIES
            IMPORTED_LOCATION "${CMocka_LIBRARY}"
            INTERFACE_INCLUDE_DIRECTORIES "${CMocka_INCLUDE_DIR}")
        set(CMocka_TARGET "${CMocka_LIBRARY}")
    endif()
endif()

find_package_handle_standard_args(CMocka
    REQUIRED_VARS CMocka_TARGET
    VERSION_VAR CMocka_VERSION
    REASON_FAILURE_MESSAGE
        "install CMocka (Debian: apt-get install libcmocka-dev) or configure with -DCANCELIO_BUILD_TESTS=OFF")
