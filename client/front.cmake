# SPDX-License-Identifier: Apache-2.0
# The front ends on the client core, built into sotto and sotto-test:
# `sotto daemon` / `sotto jsonrpc` (client/daemon) and `sotto chat`
# (client/chat, ncursesw). Their core-free parts (JSON-RPC, line I/O, UTF-8,
# the chat model) are the library sotto_front (cmake/client_front.cmake),
# unit-tested on their own (tests/front).
pkg_check_modules(NCURSESW REQUIRED IMPORTED_TARGET ncursesw)
set(SOTTO_FRONT_APP_SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/daemon/daemon.c ${CMAKE_CURRENT_SOURCE_DIR}/daemon/methods.c
                            ${CMAKE_CURRENT_SOURCE_DIR}/chat/chat.c)
foreach(t sotto-cli sotto-test)
  target_sources(${t} PRIVATE ${SOTTO_FRONT_APP_SOURCES})
  # Only the libraries: ncursesw.pc's -D_XOPEN_SOURCE=600 would apply to every
  # source of the executable (chat.c sets its own feature macros).
  target_link_libraries(${t} PRIVATE sotto_front ${NCURSESW_LINK_LIBRARIES})
endforeach()
