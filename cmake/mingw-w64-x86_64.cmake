# Cross-compiles for 64-bit Windows with mingw-w64 (posix threads variant) and
# runs the results under Wine through cmake/wine-run.sh.

set(CMAKE_SYSTEM_NAME Windows)
set(CMAKE_SYSTEM_PROCESSOR x86_64)

set(INTERPROC_MINGW_PREFIX x86_64-w64-mingw32)
set(CMAKE_C_COMPILER ${INTERPROC_MINGW_PREFIX}-gcc-posix)
set(CMAKE_CXX_COMPILER ${INTERPROC_MINGW_PREFIX}-g++-posix)
set(CMAKE_RC_COMPILER ${INTERPROC_MINGW_PREFIX}-windres)

set(CMAKE_FIND_ROOT_PATH /usr/${INTERPROC_MINGW_PREFIX})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE ONLY)

set(CMAKE_CROSSCOMPILING_EMULATOR ${CMAKE_CURRENT_LIST_DIR}/wine-run.sh)

# GCC 12 reports a false -Wrestrict in std::string concatenation at -O3
# (GCC bug 105651); with INTERPROC_WERROR it would fail the build.
set(CMAKE_CXX_FLAGS_INIT "-Wno-restrict")
