# SPDX-License-Identifier: Apache-2.0
# bench_attach_crypto: the per-byte cost of the attachment formats' primitives
# on one core (run it with `bench/run attach-crypto`).
if(TARGET PkgConfig::CRYPTO AND TARGET PkgConfig::SODIUM)
  add_executable(bench_attach_crypto ${CMAKE_CURRENT_LIST_DIR}/bench_attach_crypto.c)
  target_link_libraries(bench_attach_crypto PRIVATE PkgConfig::CRYPTO PkgConfig::SODIUM)
endif()
