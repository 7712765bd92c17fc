// Context: what every drover command needs: the global options, the
// streams to read and write, the environment, the clock, a lazily created
// connection to the server, and the exit code.
//
// Exit codes: 0 success; 1 the server answered with an error; 2 usage or
// local input error (nothing was sent); 3 the server could not be reached
// or did not answer in time (UNAVAILABLE, DEADLINE_EXCEEDED).
//
// Not thread-safe: one command runs at a time.
#ifndef DROVER_CLI_CONTEXT_H_
#define DROVER_CLI_CONTEXT_H_

#include <iosfwd>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "client/environment.h"
#include "client/queue_client.h"
#include "common/clock.h"
#include "google/protobuf/message.h"

namespace drover::cli {

enum ExitCode : int {
  kExitOk = 0,
  kExitRequestFailed = 1,
  kExitUsage = 2,
  kExitUnavailable = 3,
};

struct GlobalOptions {
  // Empty: DROVER_URL, then client::kDefaultUrl.
  std::string url;
  // Empty: DROVER_CA_FILE, then the system trust store.
  std::string ca_file;
  // Empty: client::LoadCredentials' order.
  std::string credentials_file;
  bool json = false;
  // Per request: "30s", "2m", "500ms" or plain seconds.
  std::string timeout = "30s";
};

struct Streams {
  std::istream& in;
  std::ostream& out;
  std::ostream& err;
};

class Context {
 public:
  Context(Streams streams, client::EnvLookup env, const Clock& clock,
          std::string host_name);

  GlobalOptions& options() { return options_; }
  const GlobalOptions& options() const { return options_; }
  std::istream& in() { return streams_.in; }
  std::ostream& out() { return streams_.out; }
  std::ostream& err() { return streams_.err; }
  const client::EnvLookup& env() const { return env_; }
  absl::Time Now() const { return clock_.Now(); }
  const std::string& host_name() const { return host_name_; }

  // The URL commands talk to (flag, DROVER_URL or the default).
  std::string EffectiveUrl() const;

  // Connects on first use. Errors (bad URL, unreadable CA or credentials
  // file, bad --timeout) are local: report them with LocalError.
  absl::StatusOr<const client::QueueClient*> Queue();

  // Prints the error and returns the exit code for it. LocalError: 2.
  // RequestError: 3 for UNAVAILABLE/DEADLINE_EXCEEDED, else 1.
  int LocalError(const absl::Status& status);
  int RequestError(const absl::Status& status);

  // Prints a response as JSON (--json).
  void PrintJson(const google::protobuf::Message& message);

  // The exit code the process ends with; commands store theirs here.
  int exit_code() const { return exit_code_; }
  void set_exit_code(int code) { exit_code_ = code; }

 private:
  Streams streams_;
  client::EnvLookup env_;
  const Clock& clock_;
  std::string host_name_;
  GlobalOptions options_;
  std::unique_ptr<client::QueueClient> queue_;
  int exit_code_ = kExitOk;
};

// Parses --timeout. Errors: InputError on "--timeout".
absl::StatusOr<absl::Duration> ParseTimeout(const std::string& text);

// The exit code a failed request maps to.
int ExitCodeForRequestError(const absl::Status& status);

}  // namespace drover::cli

#endif  // DROVER_CLI_CONTEXT_H_
