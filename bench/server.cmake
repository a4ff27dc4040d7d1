# SPDX-License-Identifier: Apache-2.0
# bench_server: sotto-server against a bare TLS relay floor (relay_floor), both
# driven by the same load generator over loopback TLS (run it with
# `bench/run server`). bench/ is configured before server/, so the server's
# targets are referred to by name here and resolved when CMake generates.
if(EXISTS ${CMAKE_SOURCE_DIR}/server/CMakeLists.txt AND TARGET PkgConfig::SSL AND TARGET PkgConfig::SQLITE)
  add_executable(relay_floor ${CMAKE_CURRENT_LIST_DIR}/relay_floor.c)
  target_link_libraries(relay_floor PRIVATE sotto_server_core sotto_wire)

  add_executable(bench_server ${CMAKE_CURRENT_LIST_DIR}/bench_server.c ${CMAKE_CURRENT_LIST_DIR}/server_load.c
                              ${CMAKE_CURRENT_LIST_DIR}/bench_attach.c)
  target_link_libraries(bench_server PRIVATE sotto_net sotto_proto sotto_wire sotto PkgConfig::SSL PkgConfig::CRYPTO
                                             PkgConfig::SODIUM)
  target_compile_definitions(bench_server PRIVATE SOTTO_SERVER_BIN="$<TARGET_FILE:sotto-server>"
                                                  RELAY_FLOOR_BIN="$<TARGET_FILE:relay_floor>"
                                                  SOTTO_TEST_BIN="$<TARGET_FILE:sotto-test>")
  # attach_up / attach_down drive the client (sotto-test: the fast store KDF).
  add_dependencies(bench_server sotto-server relay_floor sotto-test)
endif()

# bench_cluster: sotto-server --cluster with 2 or 3 nodes on one PostgreSQL and
# one Redis (bench/run cluster; the pg_redis_2 and pg_redis_3 columns).
if(EXISTS ${CMAKE_SOURCE_DIR}/server/CMakeLists.txt AND TARGET PkgConfig::PQ AND TARGET PkgConfig::HIREDIS)
  add_executable(bench_cluster ${CMAKE_CURRENT_LIST_DIR}/bench_cluster.c ${CMAKE_SOURCE_DIR}/tests/server/srvtest.c)
  target_include_directories(bench_cluster PRIVATE ${CMAKE_SOURCE_DIR}/tests/server ${CMAKE_SOURCE_DIR}/tests)
  target_link_libraries(bench_cluster PRIVATE sotto_net sotto_wire sotto PkgConfig::PQ PkgConfig::SODIUM)
  target_compile_definitions(bench_cluster PRIVATE SOTTO_SERVER_BIN="$<TARGET_FILE:sotto-server>" SRVTEST_HAVE_PQ=1)
  add_dependencies(bench_cluster sotto-server)
endif()
