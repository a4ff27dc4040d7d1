# SPDX-License-Identifier: Apache-2.0
# bench_protocol: libsotto against libsignal-protocol-c 2.3.3 in the same run
# (run it with `bench/run protocol`). libsignal-protocol-c is GPLv3 and comes
# in through the test harness sigc_harness, and libsignal 0.103 (AGPL-3.0)
# through the Node peer (lspeer, tests/libsignal): this executable is a benchmark,
# never installed or distributed. Without the harness there is no target.
if(TARGET sigc_harness)
  add_executable(bench_protocol ${CMAKE_CURRENT_LIST_DIR}/bench_protocol.c
                                ${CMAKE_SOURCE_DIR}/tests/party.c)
  target_include_directories(bench_protocol PRIVATE ${CMAKE_SOURCE_DIR}/tests
                                                    ${CMAKE_SOURCE_DIR}/lib)
  target_link_libraries(bench_protocol PRIVATE sotto sigc_harness lspeer)
endif()
