# drover_client_artifacts: ArtifactsClient and the HTTP transfers of
# artifact bytes (libcurl, zlib, OpenSSL for hashing), kept apart from
# drover_client so programs that never move artifacts need none of them.
#
# Included from client/CMakeLists.txt; guarded so that other folders that
# need it before that include exists may include it too.
if(TARGET drover_client_artifacts)
  return()
endif()
find_package(ZLIB REQUIRED)
find_package(OpenSSL REQUIRED COMPONENTS Crypto)
add_library(drover_client_artifacts STATIC
  ${PROJECT_SOURCE_DIR}/client/artifacts_client.cc)
target_link_libraries(drover_client_artifacts
  PUBLIC drover_client drover_common drover_common_rpc drover_proto
         gRPC::grpc++ absl::status absl::statusor absl::time
  PRIVATE CURL::libcurl ZLIB::ZLIB OpenSSL::Crypto absl::strings
          nlohmann_json::nlohmann_json)
