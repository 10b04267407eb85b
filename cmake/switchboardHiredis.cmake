# Finds hiredis (the Redis C client, Debian/Ubuntu libhiredis-dev) for switchboard::redis and
# defines the imported target switchboard_hiredis::hiredis. Used by switchboard's CMakeLists.txt
# and by the installed package config (switchboardConfig.cmake), so the consumer's machine is
# searched the same way: pkg-config's `hiredis` module first, then find_path / find_library
# (SWITCHBOARD_HIREDIS_INCLUDE_DIR, SWITCHBOARD_HIREDIS_LIBRARY; when either is set by hand, only
# they are used).
# Sets SWITCHBOARD_HIREDIS_FOUND and, when pkg-config knows it, SWITCHBOARD_HIREDIS_VERSION.
set(SWITCHBOARD_HIREDIS_FOUND FALSE)
if(TARGET switchboard_hiredis::hiredis)
  set(SWITCHBOARD_HIREDIS_FOUND TRUE)
  return()
endif()
# Set by hand, SWITCHBOARD_HIREDIS_INCLUDE_DIR / _LIBRARY take precedence over pkg-config.
if(NOT SWITCHBOARD_HIREDIS_INCLUDE_DIR AND NOT SWITCHBOARD_HIREDIS_LIBRARY)
  find_package(PkgConfig QUIET)
  if(PkgConfig_FOUND)
    pkg_check_modules(SWITCHBOARD_HIREDIS QUIET IMPORTED_TARGET hiredis)
  endif()
endif()
if(TARGET PkgConfig::SWITCHBOARD_HIREDIS)
  add_library(switchboard_hiredis::hiredis INTERFACE IMPORTED)
  target_link_libraries(switchboard_hiredis::hiredis INTERFACE PkgConfig::SWITCHBOARD_HIREDIS)
  set(SWITCHBOARD_HIREDIS_FOUND TRUE)
else()
  find_path(SWITCHBOARD_HIREDIS_INCLUDE_DIR hiredis/async.h DOC "Directory containing hiredis/async.h")
  find_library(SWITCHBOARD_HIREDIS_LIBRARY hiredis DOC "The hiredis library")
  if(SWITCHBOARD_HIREDIS_INCLUDE_DIR AND EXISTS "${SWITCHBOARD_HIREDIS_INCLUDE_DIR}/hiredis/async.h"
     AND SWITCHBOARD_HIREDIS_LIBRARY AND EXISTS "${SWITCHBOARD_HIREDIS_LIBRARY}")
    add_library(switchboard_hiredis::hiredis UNKNOWN IMPORTED)
    set_target_properties(switchboard_hiredis::hiredis PROPERTIES
      IMPORTED_LOCATION "${SWITCHBOARD_HIREDIS_LIBRARY}"
      INTERFACE_INCLUDE_DIRECTORIES "${SWITCHBOARD_HIREDIS_INCLUDE_DIR}")
    set(SWITCHBOARD_HIREDIS_FOUND TRUE)
  endif()
endif()
