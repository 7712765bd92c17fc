// The livelog plugin: streams a run's task log to the queue while the task
// runs (Artifacts.AppendLog, stored in log_chunks, readable from any
// replica with TailLog), and at the end uploads the complete log as the
// blob artifact "public/logs/live.log", which replaces the chunks.
//
// The log is read back from the worker's on-disk task log file, never
// buffered in memory: a sender thread follows the file and sends what is
// new in chunks of at most `flush_bytes`, at the latest `flush_interval`
// after the previous send (at once when the sender was idle longer). When
// the queue is slow the file simply grows ahead of the sender
// (backpressure costs disk, not memory: one chunk buffer per run). The
// plugin wraps SandboxSpec::log only to learn promptly that bytes arrived.
//
// Hook order matters: register livelog after the plugins whose Finished
// output should be in the uploaded log (artifacts).
//
// Config ("plugins.livelog"): {"flush_bytes": 65536,
// "flush_interval_ms": 100, "ca_file": "..."}.
#ifndef DROVER_PLUGINS_LIVELOG_LIVELOG_PLUGIN_H_
#define DROVER_PLUGINS_LIVELOG_LIVELOG_PLUGIN_H_

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/artifacts_client.h"
#include "nlohmann/json.hpp"
#include "plugins/artifacts/task_client.h"
#include "plugins/plugin.h"

namespace drover::plugins::livelog {

inline constexpr std::string_view kLiveLogName = "public/logs/live.log";

struct LiveLogOptions {
  int64_t flush_bytes = 64 * 1024;
  absl::Duration flush_interval = absl::Milliseconds(100);
  // The worker's task log file of a run (required).
  std::function<std::filesystem::path(const TaskInfo&)> log_path;
  std::string content_type = "text/plain; charset=utf-8";
  client::TransferOptions transfer;
  // How long the sender keeps retrying one chunk before it stops
  // streaming (the final upload still happens).
  absl::Duration append_give_up = absl::Minutes(2);
  std::string ca_file;
};

// Where drover-worker keeps task logs: <work_dir>/logs/<task>_<run>.log.
std::filesystem::path WorkerTaskLogPath(const std::filesystem::path& work_dir,
                                        const TaskInfo& info);

// Reads the config section. Errors: InputError naming the field below
// `field` ("plugins.livelog.flush_bytes").
absl::StatusOr<LiveLogOptions> ParseLiveLogConfig(
    const nlohmann::json& config, const std::filesystem::path& work_dir,
    std::string_view field = "plugins.livelog");

class LiveLogPlugin final : public Plugin {
 public:
  // `clients` defaults to artifacts::TaskArtifactsClientFactory(ca_file).
  LiveLogPlugin(LiveLogOptions options,
                artifacts::ArtifactsClientFactory clients = nullptr);

  std::string_view Name() const override { return "livelog"; }
  // Errors: InternalError when the run's client cannot be made.
  absl::StatusOr<std::unique_ptr<TaskPlugin>> NewTaskPlugin(
      const TaskInfo& info) override;

 private:
  const LiveLogOptions options_;
  artifacts::ArtifactsClientFactory clients_;
};

// Parses the config and makes the plugin (for main's registration).
absl::StatusOr<std::unique_ptr<Plugin>> NewLiveLogPlugin(
    const nlohmann::json& config, const std::filesystem::path& work_dir,
    std::string_view field = "plugins.livelog");

}  // namespace drover::plugins::livelog

#endif  // DROVER_PLUGINS_LIVELOG_LIVELOG_PLUGIN_H_
