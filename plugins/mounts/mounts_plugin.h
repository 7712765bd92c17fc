// The mounts plugin (job bundles): fetches a task's inputs into its task
// directory before the task starts.
//
// Payload:
//   "mounts": [{"content": {"task_id": "<slug>", "artifact": "public/x"}
//                          | {"url": "https://..."},
//               "directory": "relative/dir" | "file": "relative/file",
//               "format": "tar.gz" | "none"}]
// A "directory" mount unpacks a tar.gz archive into that directory (format
// defaults to, and must be, "tar.gz"); a "file" mount stores the bytes as
// they are (format "none"). Artifact content is the named artifact of the
// task's latest run (links followed, gzip transfer encoding undone),
// fetched with the run's task credentials.
//
// In Prepare each mount is fetched in order (HTTP retried with backoff on
// network errors). An input that does not exist, expired or is an error
// artifact fails the stage with ResourceNotFound, so the run resolves
// exception/resource-unavailable; the reason is written to the task log.
// Archive entries that would land outside the mount directory (absolute,
// "..", through or as symbolic links pointing out: "zip-slip") are refused
// and fail the stage with MalformedPayload.
//
// Config ("plugins.mounts"): {"ca_file": "..."}.
#ifndef DROVER_PLUGINS_MOUNTS_MOUNTS_PLUGIN_H_
#define DROVER_PLUGINS_MOUNTS_MOUNTS_PLUGIN_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "client/artifacts_client.h"
#include "nlohmann/json.hpp"
#include "plugins/artifacts/task_client.h"
#include "plugins/plugin.h"

namespace drover::plugins::mounts {

struct MountsOptions {
  client::TransferOptions transfer;
  std::string ca_file;
};

struct MountSpec {
  // Artifact content (task_id set) or a URL.
  std::string task_id;
  std::string artifact;
  std::string url;
  // Relative path in the task directory.
  std::string target;
  bool directory = false;  // then format tar.gz, else a file (format none)
};

// Parses and checks payload["mounts"] (absent: none). Errors:
// MalformedPayload naming the field, e.g. "payload.mounts[0].directory".
absl::StatusOr<std::vector<MountSpec>> ParseMountSpecs(
    const nlohmann::json& payload);

// Reads the config section. Errors: InputError naming the field.
absl::StatusOr<MountsOptions> ParseMountsConfig(
    const nlohmann::json& config, std::string_view field = "plugins.mounts");

class MountsPlugin final : public Plugin {
 public:
  // `clients` defaults to artifacts::TaskArtifactsClientFactory(ca_file).
  explicit MountsPlugin(MountsOptions options,
                        artifacts::ArtifactsClientFactory clients = nullptr);

  std::string_view Name() const override { return "mounts"; }
  std::vector<std::string> PayloadKeys() const override { return {"mounts"}; }
  // Errors: MalformedPayload naming the field.
  absl::Status ValidatePayload(const nlohmann::json& payload) const override;
  absl::StatusOr<std::unique_ptr<TaskPlugin>> NewTaskPlugin(
      const TaskInfo& info) override;

 private:
  const MountsOptions options_;
  artifacts::ArtifactsClientFactory clients_;
};

// Parses the config and makes the plugin (for main's registration).
absl::StatusOr<std::unique_ptr<Plugin>> NewMountsPlugin(
    const nlohmann::json& config, std::string_view field = "plugins.mounts");

}  // namespace drover::plugins::mounts

#endif  // DROVER_PLUGINS_MOUNTS_MOUNTS_PLUGIN_H_
