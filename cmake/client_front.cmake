# SPDX-License-Identifier: Apache-2.0
# sotto_front: the pieces of the client's front ends that need neither the
# core nor a terminal, so the unit tests build them alone: strict UTF-8 and
# sanitising (client/front), JSON-RPC 2.0 and bounded line I/O
# (client/daemon), and the chat UI's model and layout (client/chat/model.c).
pkg_check_modules(CJSON_FRONT IMPORTED_TARGET libcjson)
if(NOT TARGET PkgConfig::CJSON_FRONT)
  message(WARNING "sotto_front needs libcjson: not built")
  return()
endif()
add_library(sotto_front STATIC ${CMAKE_SOURCE_DIR}/client/front/utf8.c ${CMAKE_SOURCE_DIR}/client/front/homelock.c ${CMAKE_SOURCE_DIR}/client/daemon/jsonrpc.c
                               ${CMAKE_SOURCE_DIR}/client/daemon/lineio.c ${CMAKE_SOURCE_DIR}/client/chat/model.c)
target_include_directories(sotto_front PUBLIC ${CMAKE_SOURCE_DIR}/client/front ${CMAKE_SOURCE_DIR}/client/daemon
                                              ${CMAKE_SOURCE_DIR}/client/chat)
target_link_libraries(sotto_front PUBLIC PkgConfig::CJSON_FRONT)
