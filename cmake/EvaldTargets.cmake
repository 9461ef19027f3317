# Helpers shared by every folder's CMakeLists.txt.
#
# evald_warnings(<target>): our code builds with -Wall -Wextra -Wpedantic and must stay at zero
# warnings. Generated protobuf code does not use this (it lives in its own target).
function(evald_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic
                         $<$<CXX_COMPILER_ID:GNU>:-Wshadow=local>
                         -Wno-missing-field-initializers)
  if(EVALD_UNITY_BUILD)
    # In a batch a .cc is an included file, and GCC then flags a class of it with a member of a
    # type from its own anonymous namespace, which is fine in a .cc of its own.
    target_compile_options(${target} PRIVATE $<$<CXX_COMPILER_ID:GNU>:-Wno-subobject-linkage>)
  endif()
  if(EVALD_WERROR)
    target_compile_options(${target} PRIVATE -Werror)
  endif()
endfunction()

# evald_no_unity(<file>...): these sources of the calling folder compile alone, not batched with
# their neighbours (EVALD_UNITY_BUILD), because a file-local name of theirs clashes with another's.
function(evald_no_unity)
  set_source_files_properties(${ARGN} PROPERTIES SKIP_UNITY_BUILD_INCLUSION ON)
endfunction()

# evald_catch_test(<name> SOURCES ... LIBS ...): one Catch2 v2 test binary, one ctest test per
# TEST_CASE (catch_discover_tests runs the binary after linking, so it must start cleanly).
function(evald_catch_test name)
  # PROPERTIES: extra ctest properties for every test of the binary (e.g. a RESOURCE_LOCK).
  cmake_parse_arguments(ARG "" "" "SOURCES;LIBS;PROPERTIES" ${ARGN})
  add_executable(${name} ${ARG_SOURCES})
  target_link_libraries(${name} PRIVATE ${ARG_LIBS} Catch2::Catch2WithMain)
  target_compile_definitions(${name} PRIVATE
    EVALD_SOURCE_DIR="${PROJECT_SOURCE_DIR}" EVALD_BINARY_DIR="${PROJECT_BINARY_DIR}")
  evald_warnings(${name})
  # Test code need not be fast; -O1 instead of the normal build's -O2 cuts its compile time by
  # about a quarter. The code under test is in libraries built with the project's flags.
  target_compile_options(${name} PRIVATE $<$<CONFIG:RelWithDebInfo>:-O1>)
  # -w NoTests: a name ctest cannot pass back whole (it splits on ';') matches no test and
  # must fail instead of passing silently.
  catch_discover_tests(${name} EXTRA_ARGS -w NoTests PROPERTIES TIMEOUT 300 ${ARG_PROPERTIES}
    DISCOVERY_TIMEOUT 60)
endfunction()
