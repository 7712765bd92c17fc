#include "cli/context.h"

#include <charconv>
#include <ostream>
#include <utility>

#include "cli/output.h"
#include "client/connection.h"
#include "client/credentials.h"
#include "common/status.h"

namespace drover::cli {

absl::StatusOr<absl::Duration> ParseTimeout(const std::string& text) {
  absl::Duration d;
  double seconds = 0;
  auto [end, ec] =
      std::from_chars(text.data(), text.data() + text.size(), seconds);
  if (!text.empty() && ec == std::errc() && end == text.data() + text.size()) {
    d = absl::Seconds(seconds);
  } else if (!absl::ParseDuration(text, &d)) {
    return InputError("--timeout", text,
                      "--timeout must be a duration such as 30s, 2m, 500ms "
                      "or a number of seconds");
  }
  if (d <= absl::ZeroDuration()) {
    return InputError("--timeout", text, "--timeout must be positive");
  }
  return d;
}

int ExitCodeForRequestError(const absl::Status& status) {
  if (status.code() == absl::StatusCode::kUnavailable ||
      status.code() == absl::StatusCode::kDeadlineExceeded) {
    return kExitUnavailable;
  }
  return kExitRequestFailed;
}

Context::Context(Streams streams, client::EnvLookup env, const Clock& clock,
                 std::string host_name)
    : streams_(streams),
      env_(std::move(env)),
      clock_(clock),
      host_name_(std::move(host_name)) {}

std::string Context::EffectiveUrl() const {
  if (!options_.url.empty()) return options_.url;
  if (auto url = env_("DROVER_URL")) return *url;
  return std::string(client::kDefaultUrl);
}

absl::StatusOr<const client::QueueClient*> Context::Queue() {
  if (queue_) return queue_.get();
  client::ConnectionOptions connection;
  connection.url = EffectiveUrl();
  connection.ca_file = options_.ca_file;
  if (connection.ca_file.empty()) {
    if (auto ca = env_("DROVER_CA_FILE")) connection.ca_file = *ca;
  }
  DROVER_ASSIGN_OR_RETURN(
      connection.credentials,
      client::LoadCredentials(env_, options_.credentials_file));
  DROVER_ASSIGN_OR_RETURN(absl::Duration timeout,
                          ParseTimeout(options_.timeout));
  DROVER_ASSIGN_OR_RETURN(auto conn, client::Connection::Create(connection));
  client::CallOptions defaults;
  defaults.timeout = timeout;
  queue_ = std::make_unique<client::QueueClient>(std::move(conn), defaults);
  return queue_.get();
}

int Context::LocalError(const absl::Status& status) {
  err() << FormatError(status);
  return kExitUsage;
}

int Context::RequestError(const absl::Status& status) {
  int code = ExitCodeForRequestError(status);
  std::vector<std::pair<std::string, std::string>> context;
  // Transport failures carry no details; where we were talking to and how
  // long we waited are what the reader needs.
  if (code == kExitUnavailable) {
    context.emplace_back("url", EffectiveUrl());
    if (status.code() == absl::StatusCode::kDeadlineExceeded) {
      context.emplace_back("timeout", options_.timeout);
    }
  }
  err() << FormatError(status, context);
  return code;
}

void Context::PrintJson(const google::protobuf::Message& message) {
  out() << MessageToJson(message);
}

}  // namespace drover::cli
