# SPDX-License-Identifier: Apache-2.0
# fuzz_chat_text and replay_chat_text need sotto_front (cmake/client_front.cmake). fuzz_chat_text
# is made after this file is included: linked when the directory is done.
target_link_libraries(replay_chat_text PRIVATE sotto_front)
if(SOTTO_FUZZ)
  cmake_language(DEFER CALL target_link_libraries fuzz_chat_text PRIVATE sotto_front)
endif()
