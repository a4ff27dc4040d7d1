# SPDX-License-Identifier: Apache-2.0
# bench_server: sotto-server against a bare TLS relay floor (relay_floor), both
# driven by the same load generator over loopback TLS (run it with
# `bench/run server`). bench/ is configured before server/, so the server's
# targets are referred to by name here and resolved when CMake generates.
if(EXISTS ${CMAKE_SOURCE_DIR}/server/CMakeLists.txt AND TARGET PkgConfig::SSL AND TARGET PkgConfig::SQLITE)
  add_executable(relay_floor ${CMAKE_CURRENT_LIST_DIR}/relay_floor.c)
  target_link_libraries(relay_floor PRIVATE sotto_server_core sotto_wire)

  add_executable(bench_server ${CMAKE_CURRENT_LIST_DIR}/bench_server.c ${CMAKE_CURRENT_LIST_DIR}/server_load.c)
  target_link_libraries(bench_server PRIVATE sotto_proto sotto_wire sotto PkgConfig::SSL PkgConfig::CRYPTO
                                             PkgConfig::SODIUM)
  target_compile_definitions(bench_server PRIVATE SOTTO_SERVER_BIN="$<TARGET_FILE:sotto-server>"
                                                  RELAY_FLOOR_BIN="$<TARGET_FILE:relay_floor>")
  add_dependencies(bench_server sotto-server relay_floor)
endif()
