# SPDX-License-Identifier: Apache-2.0
# fuzz_jsonrpc and replay_jsonrpc need sotto_front (cmake/client_front.cmake). fuzz_jsonrpc
# is made after this file is included: linked when the directory is done.
target_link_libraries(replay_jsonrpc PRIVATE sotto_front)
if(SOTTO_FUZZ)
  cmake_language(DEFER CALL target_link_libraries fuzz_jsonrpc PRIVATE sotto_front)
endif()
