# SPDX-License-Identifier: Apache-2.0
# cmake/pqclean.cmake: target sotto_pq, ML-KEM-768 and ML-KEM-1024.
#
# Sources: PQClean's "clean" ML-KEM from the npm package pqclean@0.8.1, unpacked
# (and hash-checked) by scripts/fetch-pqclean.sh into build/_deps/pqclean; they
# are not part of the repository. Ours: lib/pq/ (the FIPS 203 input checks and
# public API in mlkem.c, and keccak.c, which replaces PQClean's common/fips202.c
# so that nothing allocates, nothing calls exit() and no generic SHA-3 symbol
# names are exported). lib/pq/shim/ supplies the fips202.h and randombytes.h
# that PQClean's sources include.
#
# Also defines the object library sotto_pq_obj, whose objects
# lib/CMakeLists.txt puts inside libsotto, and the alias pqclean_mlkem.

# Same default and same environment override as scripts/fetch-pqclean.sh.
if(DEFINED ENV{SOTTO_PQCLEAN_DIR} AND NOT "$ENV{SOTTO_PQCLEAN_DIR}" STREQUAL "")
  set(_pq_default_dir "$ENV{SOTTO_PQCLEAN_DIR}")
else()
  set(_pq_default_dir "${CMAKE_SOURCE_DIR}/build/_deps/pqclean")
endif()
set(SOTTO_PQCLEAN_DIR "${_pq_default_dir}"
    CACHE PATH "directory scripts/fetch-pqclean.sh unpacked pqclean@0.8.1 into")

set(_pq_root "${SOTTO_PQCLEAN_DIR}/package/deps/PQClean")
set(_pq_sets ml-kem-768 ml-kem-1024)
set(_pq_files cbd indcpa kem ntt poly polyvec reduce symmetric-shake verify)

set(_pq_sources)
set(_pq_missing)
foreach(set ${_pq_sets})
  foreach(f ${_pq_files})
    set(src "${_pq_root}/crypto_kem/${set}/clean/${f}.c")
    list(APPEND _pq_sources "${src}")
    if(NOT EXISTS "${src}")
      list(APPEND _pq_missing "${src}")
    endif()
  endforeach()
endforeach()
if(NOT EXISTS "${_pq_root}/common/compat.h" OR NOT EXISTS "${SOTTO_PQCLEAN_DIR}/.stamp")
  list(APPEND _pq_missing "${_pq_root}/common/compat.h or ${SOTTO_PQCLEAN_DIR}/.stamp")
endif()
if(_pq_missing)
  list(GET _pq_missing 0 _pq_first_missing)
  message(FATAL_ERROR
    "sotto: the PQClean ML-KEM sources are missing (${_pq_first_missing}).\n"
    "Run 'make deps' (or scripts/fetch-pqclean.sh) to fetch and verify pqclean@0.8.1 "
    "into ${SOTTO_PQCLEAN_DIR}, or point -DSOTTO_PQCLEAN_DIR=... at an unpacked copy.")
endif()
# Re-run the configure step if the fetch script re-unpacks the sources.
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS "${SOTTO_PQCLEAN_DIR}/.stamp")

set(_pq_ours
    ${CMAKE_SOURCE_DIR}/lib/pq/mlkem.c
    ${CMAKE_SOURCE_DIR}/lib/pq/kyber.c
    ${CMAKE_SOURCE_DIR}/lib/pq/mlkem768_inc.c
    ${CMAKE_SOURCE_DIR}/lib/pq/keccak.c)

# The objects are compiled once (sotto_pq_obj) and archived twice: into
# libsotto_pq.a (the ML-KEM tests and the mlkem_symbols check) and into
# libsotto.a / libsotto.so (lib/CMakeLists.txt), so that the installed
# libsotto.a links alone.
add_library(sotto_pq_obj OBJECT ${_pq_ours} ${_pq_sources})
set_target_properties(sotto_pq_obj PROPERTIES POSITION_INDEPENDENT_CODE ON)
# Order matters: lib/pq/shim must come before PQClean's common/ so that
# `#include "fips202.h"` and `#include "randombytes.h"` find our versions.
target_include_directories(sotto_pq_obj
  PRIVATE ${CMAKE_SOURCE_DIR}/lib/pq/shim
          ${CMAKE_SOURCE_DIR}/include
          ${CMAKE_SOURCE_DIR}/lib
          ${_pq_root}/common
          ${_pq_root}/crypto_kem)
target_link_libraries(sotto_pq_obj PRIVATE PkgConfig::SODIUM)

add_library(sotto_pq STATIC $<TARGET_OBJECTS:sotto_pq_obj>)
add_library(pqclean_mlkem ALIAS sotto_pq)
target_include_directories(sotto_pq PUBLIC ${CMAKE_SOURCE_DIR}/include)
target_link_libraries(sotto_pq PUBLIC PkgConfig::SODIUM)

# PQClean's sources are compiled with the project's full warning set (and
# -Werror in CI): gcc 12 and clang 14 report nothing for ml-kem-768/1024 clean,
# so no warning is relaxed. Should a future PQClean version need one, relax it
# here with set_source_files_properties(${_pq_sources} ...) only, never for
# lib/pq/.

# lib/CMakeLists.txt leaves lib/pq/ out of its own glob and takes the objects
# of sotto_pq_obj instead.
