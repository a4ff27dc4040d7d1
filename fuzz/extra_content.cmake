# SPDX-License-Identifier: Apache-2.0
# fuzz_content and replay_content parse with the client core (client/core/content.c). fuzz_content
# is made after this file is included: linked when the directory is done.
target_link_libraries(replay_content PRIVATE sotto_client_core)
if(SOTTO_FUZZ)
  cmake_language(DEFER CALL target_link_libraries fuzz_content PRIVATE sotto_client_core)
endif()
