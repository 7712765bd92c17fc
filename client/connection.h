// Connection: one gRPC channel to a Drover server plus the credentials every
// call on it carries. Service clients (QueueClient, ...) share one.
//
// Thread-safe and immutable after creation; share it via shared_ptr. When
// the credentials change during its life (a claimed task's credentials,
// renewed by each reclaim), a credentials provider supplies them per call.
#ifndef DROVER_CLIENT_CONNECTION_H_
#define DROVER_CLIENT_CONNECTION_H_

#include <functional>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/credentials.h"
#include "client/endpoint.h"
#include "client/environment.h"
#include "grpcpp/channel.h"

namespace grpc {
class ClientContext;
}

namespace drover::client {

struct ConnectionOptions {
  // host:port, http://host:port or https://host:port (client/endpoint.h).
  std::string url = std::string(kDefaultUrl);
  // PEM file of CA certificates to verify an https:// server against.
  // Empty: the system's trust store.
  std::string ca_file;
  Credentials credentials;
  // When set, each call carries what it returns instead of `credentials`
  // (which then only has to be valid at Create). Called once per call,
  // from any thread: it must be thread-safe and not block.
  std::function<Credentials()> credentials_provider;
};

// Builds options from DROVER_URL, DROVER_CA_FILE and LoadCredentials (with
// no explicit file). Errors: those of LoadCredentials.
absl::StatusOr<ConnectionOptions> ConnectionOptionsFromEnvironment(
    const EnvLookup& env);

class Connection {
 public:
  // Parses the URL, loads TLS roots and creates the channel. Connecting is
  // lazy: an unreachable server shows up as UNAVAILABLE on the first call.
  // Errors: InputError on "url" (ParseUrl), on "ca-file" when the file
  // cannot be read or is given for a plaintext URL, and on the credentials
  // (ValidateCredentials).
  static absl::StatusOr<std::shared_ptr<const Connection>> Create(
      const ConnectionOptions& options);

  // Same as Create(ConnectionOptionsFromEnvironment(env)).
  static absl::StatusOr<std::shared_ptr<const Connection>> FromEnvironment(
      const EnvLookup& env);

  // Wraps an existing channel (in-process servers, tests).
  Connection(std::shared_ptr<grpc::Channel> channel, Endpoint endpoint,
             Credentials credentials,
             std::function<Credentials()> credentials_provider = nullptr);

  const std::shared_ptr<grpc::Channel>& channel() const { return channel_; }
  const Endpoint& endpoint() const { return endpoint_; }
  // The credentials the next call carries.
  Credentials credentials() const {
    return provider_ ? provider_() : credentials_;
  }

  // Sets the deadline and attaches the credentials' metadata. Call once
  // per ClientContext.
  void PrepareContext(grpc::ClientContext* context, absl::Time deadline) const;

 private:
  std::shared_ptr<grpc::Channel> channel_;
  Endpoint endpoint_;
  Credentials credentials_;
  std::function<Credentials()> provider_;
};

}  // namespace drover::client

#endif  // DROVER_CLIENT_CONNECTION_H_
