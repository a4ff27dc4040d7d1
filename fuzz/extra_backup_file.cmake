# SPDX-License-Identifier: Apache-2.0
# fuzz_backup_file and replay_backup_file parse with the client core's backup.c
# (sotto_client_core, client/CMakeLists.txt, configured after fuzz/).
target_link_libraries(replay_backup_file PRIVATE sotto_client_core)
if(SOTTO_FUZZ)
  cmake_language(DEFER CALL target_link_libraries fuzz_backup_file PRIVATE sotto_client_core)
endif()
