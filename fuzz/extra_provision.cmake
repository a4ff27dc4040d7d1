# SPDX-License-Identifier: Apache-2.0
# fuzz_provision and replay_provision parse with the client core (client/core/provision.c).
target_link_libraries(replay_provision PRIVATE sotto_client_core)
target_include_directories(replay_provision PRIVATE ${CMAKE_SOURCE_DIR}/client/core ${CMAKE_SOURCE_DIR}/client/net
                                                    ${CMAKE_SOURCE_DIR}/proto)
if(SOTTO_FUZZ)
  cmake_language(DEFER CALL target_link_libraries fuzz_provision PRIVATE sotto_client_core)
endif()
