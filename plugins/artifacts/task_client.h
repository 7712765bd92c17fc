// How the artifact-moving plugins (artifacts, livelog, mounts) reach the
// queue for one run: an ArtifactsClient on the worker's queue address with
// the run's task credentials. Injected as a factory so the plugins take it
// through their constructors; the default connects for real.
#ifndef DROVER_PLUGINS_ARTIFACTS_TASK_CLIENT_H_
#define DROVER_PLUGINS_ARTIFACTS_TASK_CLIENT_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "client/artifacts_client.h"
#include "plugins/plugin.h"

namespace drover::plugins::artifacts {

// Makes the client for one run. Thread-safe.
using ArtifactsClientFactory =
    std::function<absl::StatusOr<std::shared_ptr<client::ArtifactsClient>>(
        const TaskInfo& info)>;

// Connects to info.queue_address (client::ParseUrl forms) with the run's
// credentials (certificate when present, else client id and access token;
// none: anonymous). `ca_file` verifies an https:// queue. Errors of the
// made factory: InputError on "queue_address" or the credentials.
ArtifactsClientFactory TaskArtifactsClientFactory(std::string ca_file = "");

}  // namespace drover::plugins::artifacts

#endif  // DROVER_PLUGINS_ARTIFACTS_TASK_CLIENT_H_
