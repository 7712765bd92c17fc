#include "plugins/artifacts/task_client.h"

#include "common/status.h"

namespace drover::plugins::artifacts {

ArtifactsClientFactory TaskArtifactsClientFactory(std::string ca_file) {
  return [ca_file](const TaskInfo& info)
             -> absl::StatusOr<std::shared_ptr<client::ArtifactsClient>> {
    client::ConnectionOptions options;
    options.url = info.queue_address;
    options.ca_file = ca_file;
    if (!info.credentials_client_id.empty() ||
        !info.credentials_certificate.empty()) {
      options.credentials = client::TaskCredentials(
          info.credentials_client_id, info.credentials_access_token,
          info.credentials_certificate);
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
