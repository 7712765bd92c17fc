#include "client/connection.h"

#include <fstream>
#include <sstream>
#include <utility>

#include "common/status.h"
#include "grpcpp/client_context.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace drover::client {
namespace {

// Where Debian-, Red Hat- and Alpine-style systems keep their CA bundle.
// Reading it ourselves pins "system roots" instead of relying on how the
// gRPC build was configured.
constexpr const char* kSystemCaBundles[] = {
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/cert.pem",
};

bool ReadWholeFile(const std::string& path, std::string* out) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return false;
  std::stringstream buffer;
  buffer << in.rdbuf();
  *out = buffer.str();
  return true;
}

}  // namespace

absl::StatusOr<ConnectionOptions> ConnectionOptionsFromEnvironment(
    const EnvLookup& env) {
  ConnectionOptions options;
  if (auto url = env("DROVER_URL")) options.url = *url;
  if (auto ca = env("DROVER_CA_FILE")) options.ca_file = *ca;
  DROVER_ASSIGN_OR_RETURN(options.credentials, LoadCredentials(env, ""));
  return options;
}

absl::StatusOr<std::shared_ptr<const Connection>> Connection::Create(
    const ConnectionOptions& options) {
  DROVER_ASSIGN_OR_RETURN(Endpoint endpoint, ParseUrl(options.url, "url"));
  DROVER_RETURN_IF_ERROR(ValidateCredentials(options.credentials));

  std::shared_ptr<grpc::ChannelCredentials> channel_credentials;
  if (endpoint.tls) {
    grpc::SslCredentialsOptions ssl;
    if (!options.ca_file.empty()) {
      if (!ReadWholeFile(options.ca_file, &ssl.pem_root_certs) ||
          ssl.pem_root_certs.empty()) {
        return InputError("ca-file", options.ca_file,
                          "cannot read the CA certificate file");
      }
    } else {
      for (const char* bundle : kSystemCaBundles) {
        if (ReadWholeFile(bundle, &ssl.pem_root_certs) &&
            !ssl.pem_root_certs.empty()) {
          break;
        }
      }
      // When no bundle is found, an empty string lets gRPC use its own
      // default roots.
    }
    channel_credentials = grpc::SslCredentials(ssl);
  } else {
    if (!options.ca_file.empty()) {
      return InputError("ca-file", options.ca_file,
                        "a CA file only makes sense with an https:// URL, "
                        "got " +
                            options.url);
    }
    channel_credentials = grpc::InsecureChannelCredentials();
  }

  grpc::ChannelArguments args;
  args.SetUserAgentPrefix("drover-client/0.1");
  // Task graphs and listings can exceed gRPC's 4 MiB default.
  args.SetMaxReceiveMessageSize(64 * 1024 * 1024);
  auto channel =
      grpc::CreateCustomChannel(endpoint.Target(), channel_credentials, args);
  return std::make_shared<const Connection>(
      std::move(channel), std::move(endpoint), options.credentials,
      options.credentials_provider);
}

absl::StatusOr<std::shared_ptr<const Connection>> Connection::FromEnvironment(
    const EnvLookup& env) {
  DROVER_ASSIGN_OR_RETURN(ConnectionOptions options,
                          ConnectionOptionsFromEnvironment(env));
  return Create(options);
}

Connection::Connection(std::shared_ptr<grpc::Channel> channel,
                       Endpoint endpoint, Credentials credentials,
                       std::function<Credentials()> credentials_provider)
    : channel_(std::move(channel)),
      endpoint_(std::move(endpoint)),
      credentials_(std::move(credentials)),
      provider_(std::move(credentials_provider)) {}

void Connection::PrepareContext(grpc::ClientContext* context,
                                absl::Time deadline) const {
  if (deadline != absl::InfiniteFuture()) {
    context->set_deadline(absl::ToChronoTime(deadline));
  }
  if (provider_) {
    AttachCredentials(provider_(), context);
  } else {
    AttachCredentials(credentials_, context);
  }
}

}  // namespace drover::client
