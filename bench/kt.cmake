# SPDX-License-Identifier: Apache-2.0
# bench_kt: the key-transparency core on a generated log of 1,000,000
# label-versions (run it with `bench/run kt`). libsotto only.
add_executable(bench_kt ${CMAKE_CURRENT_LIST_DIR}/bench_kt.c)
target_include_directories(bench_kt PRIVATE ${CMAKE_SOURCE_DIR}/lib)
target_link_libraries(bench_kt PRIVATE sotto m pthread)
