# SPDX-License-Identifier: Apache-2.0
# fuzz_redis_link and replay_redis_link read RESP with hiredis (as sotto-server
# --cluster does) and parse it with server/link_reply.h. This file is included
# before fuzz_redis_link exists (fuzz/CMakeLists.txt), so its settings wait
# for the end of the directory (DEFER), as extra_provision.cmake's do.
if(TARGET PkgConfig::HIREDIS)
  target_compile_definitions(replay_redis_link PRIVATE SOTTO_FUZZ_HIREDIS=1)
  target_link_libraries(replay_redis_link PRIVATE PkgConfig::HIREDIS)
  if(SOTTO_FUZZ)
    cmake_language(DEFER CALL target_compile_definitions fuzz_redis_link PRIVATE SOTTO_FUZZ_HIREDIS=1)
    cmake_language(DEFER CALL target_link_libraries fuzz_redis_link PRIVATE PkgConfig::HIREDIS)
  endif()
endif()
