# drover_cli_artifacts: `drover artifacts list|get` and `drover task logs`
# (cli/commands/artifacts.cc, cli/commands/logs.cc). Until cli/CMakeLists.txt
# adds the two sources to drover_cli, they build as this separate library
# on top of it. Guarded so it can be included from more than one place.
if(TARGET drover_cli_artifacts)
  return()
endif()
include(${PROJECT_SOURCE_DIR}/client/artifacts_client.cmake)
add_library(drover_cli_artifacts STATIC
  ${PROJECT_SOURCE_DIR}/cli/commands/artifacts.cc
  ${PROJECT_SOURCE_DIR}/cli/commands/logs.cc)
target_link_libraries(drover_cli_artifacts
  PUBLIC drover_cli drover_client_artifacts CLI11::CLI11
  PRIVATE absl::strings)
if(DROVER_BUILD_TESTS AND TARGET drover_artifacts_testing)
  add_executable(cli_artifacts_test
    ${PROJECT_SOURCE_DIR}/cli/commands/artifacts_test.cc)
  target_link_libraries(cli_artifacts_test PRIVATE
    drover_cli_artifacts drover_artifacts_testing absl::strings
    GTest::gmock GTest::gtest_main)
  add_test(NAME cli_artifacts_test COMMAND cli_artifacts_test)
  set_tests_properties(cli_artifacts_test PROPERTIES TIMEOUT 600)
endif()
