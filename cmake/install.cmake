# `cmake --install build [--prefix P]` (or `make install`): libmechlens.so with its
# SentencePiece shim and trainer beside it, the public headers, a CMake package
# (find_package(mechlens CONFIG) -> mechlens::mechlens), a pkg-config file and the
# Python module under Debian's dist-packages.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

install(TARGETS mechlens_lib EXPORT mechlensTargets
        LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} INCLUDES DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})
install(TARGETS mechlens_spm LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS mechlens_spm_train RUNTIME DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(TARGETS mechlens RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
set_target_properties(mechlens PROPERTIES INSTALL_RPATH "$ORIGIN/../${CMAKE_INSTALL_LIBDIR}")
# Public headers: everything under src/mechlens but the CLI's, the HTTP layer's and the
# precompiled header.
install(DIRECTORY ${CMAKE_SOURCE_DIR}/src/mechlens DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}
        FILES_MATCHING PATTERN "*.h"
        PATTERN "cli" EXCLUDE PATTERN "http" EXCLUDE PATTERN "spm_shim" EXCLUDE PATTERN "pch.h" EXCLUDE)

set(MECHLENS_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/mechlens)
install(EXPORT mechlensTargets NAMESPACE mechlens:: DESTINATION ${MECHLENS_CMAKE_DIR})
configure_package_config_file(${CMAKE_SOURCE_DIR}/cmake/mechlensConfig.cmake.in
  ${CMAKE_BINARY_DIR}/mechlensConfig.cmake INSTALL_DESTINATION ${MECHLENS_CMAKE_DIR})
write_basic_package_version_file(${CMAKE_BINARY_DIR}/mechlensConfigVersion.cmake COMPATIBILITY SameMinorVersion)
install(FILES ${CMAKE_BINARY_DIR}/mechlensConfig.cmake ${CMAKE_BINARY_DIR}/mechlensConfigVersion.cmake
        DESTINATION ${MECHLENS_CMAKE_DIR})

# pkg-config: the include folders and libraries of libtorch come along.
set(MECHLENS_PC_TORCH_CFLAGS "")
foreach(d IN LISTS TORCH_INCLUDE_DIRS)
  string(APPEND MECHLENS_PC_TORCH_CFLAGS " -I${d}")
endforeach()
configure_file(${CMAKE_SOURCE_DIR}/cmake/mechlens.pc.in ${CMAKE_BINARY_DIR}/mechlens.pc @ONLY)
install(FILES ${CMAKE_BINARY_DIR}/mechlens.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)

# Python: Debian's /usr/bin/python3 reads /usr/lib/python3/dist-packages, and under any
# other prefix lib/python3.X/dist-packages.
if(NOT MECHLENS_PYTHON_INSTALL_DIR)
  execute_process(COMMAND ${PYTHON_EXECUTABLE} -c "import sys; print(f'{sys.version_info[0]}.{sys.version_info[1]}')"
                  OUTPUT_VARIABLE MECHLENS_PY_VER OUTPUT_STRIP_TRAILING_WHITESPACE)
  set(MECHLENS_PYTHON_INSTALL_DIR "$<IF:$<STREQUAL:${CMAKE_INSTALL_PREFIX},/usr>,lib/python3/dist-packages,lib/python${MECHLENS_PY_VER}/dist-packages>")
endif()
install(TARGETS mechlens_python LIBRARY DESTINATION ${MECHLENS_PYTHON_INSTALL_DIR}/mechlens)
install(FILES ${MECHLENS_PY_FILES} DESTINATION ${MECHLENS_PYTHON_INSTALL_DIR}/mechlens)
