# SPDX-License-Identifier: Apache-2.0
# bench_client: the daemon against the client core directly (daemon_relay),
# both through the real sotto-server (run it with `bench/run client`).
# bench/ is configured before client/ and server/: their targets are
# referred to by name here and resolved when CMake generates.
if(EXISTS ${CMAKE_SOURCE_DIR}/server/CMakeLists.txt AND EXISTS ${CMAKE_SOURCE_DIR}/client/core/sotto_client.h
   AND TARGET PkgConfig::SSL AND TARGET PkgConfig::SQLITE)
  pkg_check_modules(CJSON_BENCH IMPORTED_TARGET libcjson)
  add_executable(bench_client ${CMAKE_CURRENT_LIST_DIR}/bench_client.c)
  target_link_libraries(bench_client PRIVATE sotto_client_core PkgConfig::CJSON_BENCH m)
  target_compile_definitions(bench_client PRIVATE SOTTO_SERVER_BIN="$<TARGET_FILE:sotto-server>"
                                                  SOTTO_CLI_BIN="$<TARGET_FILE:sotto-cli>")
  add_dependencies(bench_client sotto-server sotto-cli)
endif()
