#include "plugins/artifacts/task_client.h"

#include "common/status.h"

namespace drover::plugins::artifacts {

ArtifactsClientFactory TaskArtifactsClientFactory(std::string ca_file) {
  return [ca_file](const TaskInfo& info)
             -> absl::StatusOr<std::shared_ptr<client::ArtifactsClient>> {
    client::ConnectionOptions options;
    options.url = info.queue_address;
    options.ca_file = ca_file;
    if (info.credentials) {
      auto current = [source = info.credentials] {
        const TaskCredentials now = source();
        return client::TaskCredentials(now.client_id, now.access_token,
                                       now.certificate);
      };
      options.credentials = current();
      if (!options.credentials.Anonymous()) {
        options.credentials_provider = std::move(current);
      }
    }
    auto connection = client::Connection::Create(options);
    if (!connection.ok()) {
      ErrorInfo error = GetErrorInfo(connection.status());
      if (error.details["field"] == "url") {
        return InputError("queue_address", info.queue_address, error.message);
      }
      return connection.status();
    }
    return std::make_shared<client::ArtifactsClient>(std::move(*connection));
  };
}

}  // namespace drover::plugins::artifacts
