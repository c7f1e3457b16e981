# The Python module `mechlens`: pybind11 bindings (python/src, the extension
# mechlens/_mechlens*.so) plus the TransformerLens-shaped API in Python
# (python/mechlens/*.py), assembled in build/python so that
#   PYTHONPATH=build/python /usr/bin/python3 -c 'import mechlens'
# works after `make build`. Debian's python3-torch is the Python side of the very
# libtorch that libmechlens.so links, so tensors cross without a copy.
set(PYTHON_EXECUTABLE /usr/bin/python3 CACHE FILEPATH "The Python that has Debian's torch (python3-torch)")
find_package(pybind11 CONFIG REQUIRED)
find_library(TORCH_PYTHON_LIBRARY torch_python HINTS ${TORCH_INSTALL_PREFIX}/lib /usr/lib/x86_64-linux-gnu REQUIRED)

file(GLOB MECHLENS_PY_SOURCES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/python/src/*.cpp)
# NO_EXTRAS: no link-time optimisation (minutes on 2 cores for no measurable gain here).
pybind11_add_module(mechlens_python MODULE NO_EXTRAS ${MECHLENS_PY_SOURCES})
set_target_properties(mechlens_python PROPERTIES OUTPUT_NAME _mechlens
  LIBRARY_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/python/mechlens
  BUILD_RPATH ${CMAKE_BINARY_DIR} INSTALL_RPATH "$ORIGIN/../../..")
target_link_libraries(mechlens_python PRIVATE mechlens_lib ${TORCH_PYTHON_LIBRARY})
target_include_directories(mechlens_python PRIVATE ${CMAKE_SOURCE_DIR})
target_compile_options(mechlens_python PRIVATE -Wall -Wno-unused-parameter)

file(GLOB MECHLENS_PY_FILES CONFIGURE_DEPENDS ${CMAKE_SOURCE_DIR}/python/mechlens/*.py)
set(MECHLENS_PY_OUTPUTS "")
foreach(f IN LISTS MECHLENS_PY_FILES)
  get_filename_component(name ${f} NAME)
  set(out ${CMAKE_BINARY_DIR}/python/mechlens/${name})
  add_custom_command(OUTPUT ${out} COMMAND ${CMAKE_COMMAND} -E copy ${f} ${out} DEPENDS ${f} VERBATIM)
  list(APPEND MECHLENS_PY_OUTPUTS ${out})
endforeach()
add_custom_target(mechlens_python_files ALL DEPENDS ${MECHLENS_PY_OUTPUTS})
add_dependencies(mechlens_python mechlens_python_files)
