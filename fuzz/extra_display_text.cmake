# SPDX-License-Identifier: Apache-2.0
# fuzz_display_text and replay_display_text need sotto_front (client/front/utf8.c).
target_link_libraries(replay_display_text PRIVATE sotto_front)
if(SOTTO_FUZZ)
  cmake_language(DEFER CALL target_link_libraries fuzz_display_text PRIVATE sotto_front)
endif()
