// The artifacts plugin: publishes files and directories a task leaves in
// its working directory as blob artifacts.
//
// Payload:
//   "artifacts": [{"type": "file" | "directory",
//                  "path": "relative/to/the/working/dir",
//                  "name": "public/build/output.tar.gz",
//                  "expires": "2030-01-01T00:00:00Z",     (optional)
//                  "contentType": "application/gzip",     (optional)
//                  "optional": false}]                    (optional)
// A directory becomes one artifact per file, named <name>/<path below it>.
//
// After the task stopped (Stopped) every path is copied out of the sandbox
// with Sandbox::Extract into a private temporary directory. A missing
// path, unless optional, becomes an error artifact
// (file-missing-on-worker) and fails the run, with a log line naming the
// path; a path that leaves the working directory (through a symlink; ".."
// and absolute paths are refused already as a malformed payload) becomes
// an error artifact (invalid-resource-on-worker) and fails the run too.
// Then, before the run is reported (Finished), the files are uploaded with
// bounded concurrency: create, PUT to the presigned URL (retried with
// backoff on network errors), finish. Compressible types are gzip-encoded
// for the transfer and storage (Content-Encoding: gzip).
//
// Config ("plugins.artifacts"): {"concurrency": 4, "gzip_min_bytes": 1024,
// "ca_file": "..."}.
#ifndef DROVER_PLUGINS_ARTIFACTS_ARTIFACTS_PLUGIN_H_
#define DROVER_PLUGINS_ARTIFACTS_ARTIFACTS_PLUGIN_H_

#include <cstdint>
#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/artifacts_client.h"
#include "nlohmann/json.hpp"
#include "plugins/artifacts/task_client.h"
#include "plugins/plugin.h"

namespace drover::plugins::artifacts {

struct ArtifactsOptions {
  // Uploads running at once per task.
  int concurrency = 4;
  // Compressible files at least this large are gzip-encoded.
  int64_t gzip_min_bytes = 1024;
  client::TransferOptions transfer;
  // Extracted files wait here (a fresh directory per run below it);
  // default: the system temporary directory.
  std::filesystem::path temp_dir;
  std::string ca_file;
};

// One entry of the payload's "artifacts".
struct ArtifactSpec {
  enum class Type { kFile, kDirectory };
  Type type = Type::kFile;
  std::string path;
  std::string name;
  std::optional<absl::Time> expires;
  std::string content_type;  // empty: guessed from the extension
  bool optional = false;
};

// Parses and checks payload["artifacts"] (absent: none). Errors:
// MalformedPayload naming the field, e.g. "payload.artifacts[2].path".
absl::StatusOr<std::vector<ArtifactSpec>> ParseArtifactSpecs(
    const nlohmann::json& payload);

// A content type for a file name ("report.html" -> "text/html;
// charset=utf-8"); application/octet-stream when unknown. Pure.
std::string GuessContentType(std::string_view file_name);
// True for types worth compressing (text, JSON, XML, ...). Pure.
bool IsCompressible(std::string_view content_type);

// Reads the config section. Errors: InputError naming the field below
// `field`.
absl::StatusOr<ArtifactsOptions> ParseArtifactsConfig(
    const nlohmann::json& config, std::string_view field = "plugins.artifacts");

class ArtifactsPlugin final : public Plugin {
 public:
  // `clients` defaults to TaskArtifactsClientFactory(options.ca_file).
  explicit ArtifactsPlugin(ArtifactsOptions options,
                           ArtifactsClientFactory clients = nullptr);

  std::string_view Name() const override { return "artifacts"; }
  std::vector<std::string> PayloadKeys() const override {
    return {"artifacts"};
  }
  // Errors: MalformedPayload naming the field.
  absl::Status ValidatePayload(const nlohmann::json& payload) const override;
  absl::StatusOr<std::unique_ptr<TaskPlugin>> NewTaskPlugin(
      const TaskInfo& info) override;

 private:
  const ArtifactsOptions options_;
  ArtifactsClientFactory clients_;
};

// Parses the config and makes the plugin (for main's registration).
absl::StatusOr<std::unique_ptr<Plugin>> NewArtifactsPlugin(
    const nlohmann::json& config, std::string_view field = "plugins.artifacts");

}  // namespace drover::plugins::artifacts

#endif  // DROVER_PLUGINS_ARTIFACTS_ARTIFACTS_PLUGIN_H_
