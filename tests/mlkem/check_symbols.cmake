# SPDX-License-Identifier: Apache-2.0
# Checks the symbols of libsotto_pq.a (run by ctest as test "mlkem_symbols"):
#   cmake -DNM=/usr/bin/nm -DARCHIVE=lib/libsotto_pq.a -P check_symbols.cmake
# 1. Every defined global symbol carries a sotto or PQClean ML-KEM prefix, so
#    nothing can collide with another Keccak/SHA-3 or PQClean copy.
# 2. No object calls the allocator or anything that ends the process.
if(NOT NM OR NOT ARCHIVE)
  message(FATAL_ERROR "usage: cmake -DNM=... -DARCHIVE=... -P check_symbols.cmake")
endif()

execute_process(COMMAND ${NM} -g --defined-only ${ARCHIVE}
                OUTPUT_VARIABLE defined RESULT_VARIABLE rc1)
execute_process(COMMAND ${NM} -u ${ARCHIVE}
                OUTPUT_VARIABLE undefined RESULT_VARIABLE rc2)
if(NOT rc1 EQUAL 0 OR NOT rc2 EQUAL 0)
  message(FATAL_ERROR "nm failed on ${ARCHIVE}")
endif()

set(allowed "^(sotto_mlkem(768|1024)_[a-z_]+|sotto_kyber1024_[a-z_]+|sotto__[A-Za-z0-9_]+|PQCLEAN_MLKEM(768|1024)_CLEAN_[A-Za-z0-9_]+)$")
# Symbols that sanitizer instrumentation may add to instrumented objects.
set(tooling "^(__odr_asan|__asan|__ubsan|__sancov)")
set(forbidden "^(malloc|calloc|realloc|reallocarray|free|aligned_alloc|posix_memalign|memalign|valloc|exit|_exit|_Exit|abort|quick_exit|getrandom|printf|fprintf|puts|perror|PQCLEAN_randombytes)$")

set(bad "")
set(n_defined 0)
string(REPLACE "\n" ";" lines "${defined}")
foreach(line ${lines})
  if(line MATCHES "^[0-9a-fA-F]+ [A-Z] (.+)$")
    set(sym "${CMAKE_MATCH_1}")
    math(EXPR n_defined "${n_defined} + 1")
    if(NOT sym MATCHES "${allowed}" AND NOT sym MATCHES "${tooling}")
      string(APPEND bad "  exported with a generic name: ${sym}\n")
    endif()
  endif()
endforeach()
string(REPLACE "\n" ";" lines "${undefined}")
foreach(line ${lines})
  if(line MATCHES "^ *U (.+)$")
    set(sym "${CMAKE_MATCH_1}")
    if(sym MATCHES "${forbidden}")
      string(APPEND bad "  calls ${sym}\n")
    endif()
  endif()
endforeach()

if(n_defined LESS 10)
  message(FATAL_ERROR "FAIL: only ${n_defined} symbols found in ${ARCHIVE}; wrong file?")
endif()
if(bad)
  message(FATAL_ERROR "FAIL: ${ARCHIVE}:\n${bad}")
endif()
message(STATUS "mlkem_symbols: ${n_defined} exported symbols, all prefixed; no allocator or exit calls")
