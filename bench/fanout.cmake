# SPDX-License-Identifier: Apache-2.0
# bench_fanout: the client core's send path to 1, 2, 4 and 8 devices of a
# recipient, without the network (rows fanout_core_N) and end to end through
# the real sotto-server over loopback TLS (rows fanout_e2e_N, fanout_e2e.c;
# the server is started by tests/server/srvtest.c). bench/run fanout.
# The client core and the server are configured after bench/: referred to by name.
if(EXISTS ${CMAKE_SOURCE_DIR}/client/core/sotto_client.h AND EXISTS ${CMAKE_SOURCE_DIR}/server/CMakeLists.txt)
  add_executable(bench_fanout ${CMAKE_CURRENT_LIST_DIR}/bench_fanout.c ${CMAKE_CURRENT_LIST_DIR}/fanout_e2e.c
                              ${CMAKE_SOURCE_DIR}/tests/server/srvtest.c)
  target_include_directories(bench_fanout PRIVATE ${CMAKE_SOURCE_DIR}/tests/server ${CMAKE_CURRENT_LIST_DIR})
  target_link_libraries(bench_fanout PRIVATE sotto_client_core m pthread)
  target_compile_definitions(bench_fanout PRIVATE SOTTO_SERVER_BIN="$<TARGET_FILE:sotto-server>")
  add_dependencies(bench_fanout sotto-server)
endif()
