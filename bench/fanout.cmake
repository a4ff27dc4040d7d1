# SPDX-License-Identifier: Apache-2.0
# bench_fanout: the client core's send path to 1, 2, 4 and 8 devices of a
# recipient, without the network (bench/run fanout; rows fanout_core_N).
# The client core is configured after bench/: referred to by name.
if(EXISTS ${CMAKE_SOURCE_DIR}/client/core/sotto_client.h)
  add_executable(bench_fanout ${CMAKE_CURRENT_LIST_DIR}/bench_fanout.c)
  target_link_libraries(bench_fanout PRIVATE sotto_client_core m)
endif()
