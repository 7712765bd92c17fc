// A small Docker Engine API client over dockerd's unix socket (libcurl).
//
// DockerApi is the slice of the Engine API the docker engine uses; the
// engine depends on the interface, DockerClient implements it over HTTP/1.1
// on the unix socket, pinned to one API version so responses keep their
// shape across dockerd releases. No call shells out to the docker CLI.
//
// Errors (all built with common/status.h; details always carry "endpoint",
// e.g. "POST /containers/create", and "reason", one of the values below):
//   reason "http"        dockerd answered with an error status; details
//                        "docker_status" holds it. 404 -> ResourceNotFound,
//                        409 -> RequestConflict, 400 -> InputError, other ->
//                        InternalError. The message is dockerd's.
//   reason "unreachable" the socket could not be connected to
//                        (InternalError).
//   reason "timeout"     the call's time limit passed (InternalError).
//   reason "cancelled"   the caller's cancel predicate said stop
//                        (InternalError).
//   reason "transport"   any other libcurl failure (InternalError).
#ifndef DROVER_ENGINES_DOCKER_DOCKER_CLIENT_H_
#define DROVER_ENGINES_DOCKER_DOCKER_CLIENT_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "engines/docker/stream_decoder.h"
#include "nlohmann/json.hpp"

namespace drover::engines::docker {

// Returns true when a long call should stop now. Polled about every 100 ms.
using CancelFn = std::function<bool()>;

// The reason detail of an error from DockerApi ("http", "timeout", ...).
std::string DockerErrorReason(const absl::Status& status);

// The X-Docker-Container-Path-Stat answer for one path in a container.
struct PathStat {
  std::string name;
  int64_t size = 0;
  // Go os.FileMode bits.
  uint32_t mode = 0;
  // For a symbolic link: its target, fully resolved within the container,
  // as an absolute container path.
  std::string link_target;

  bool is_dir() const { return (mode & (1u << 31)) != 0; }
  bool is_symlink() const { return (mode & (1u << 27)) != 0; }
};

class DockerApi {
 public:
  virtual ~DockerApi() = default;

  // GET /_ping. Ok when dockerd answers "OK" within `timeout`.
  virtual absl::Status Ping(absl::Duration timeout) = 0;

  // GET /images/{name}/json. ResourceNotFound when the image is absent.
  virtual absl::StatusOr<nlohmann::json> InspectImage(
      const std::string& image) = 0;

  // POST /images/create?fromImage=&tag=: pulls, calling `on_message` with
  // each JSON progress message. An {"error": ...} message in the stream
  // fails the call with ResourceNotFound (reason "http", docker_status
  // "200"). `registry_auth` is the X-Registry-Auth header value (empty for
  // none). Stops after `timeout` (reason "timeout") or when `cancelled`.
  virtual absl::Status PullImage(
      const std::string& from_image, const std::string& tag,
      const std::string& registry_auth, absl::Duration timeout,
      const std::function<void(const nlohmann::json&)>& on_message,
      const CancelFn& cancelled) = 0;

  // POST /containers/create[?name=]. Returns the container id.
  virtual absl::StatusOr<std::string> CreateContainer(
      const std::string& name, const nlohmann::json& body) = 0;

  // POST /containers/{id}/start.
  virtual absl::Status StartContainer(const std::string& id) = 0;

  // POST /containers/{id}/kill (SIGKILL). A container that is not running
  // (409) or gone (404) counts as success.
  virtual absl::Status KillContainer(const std::string& id) = 0;

  // POST /containers/{id}/attach?stream=1&stdout=1&stderr=1: streams the
  // container's demultiplexed output into `sink` until the container stops.
  // `on_attached` runs once dockerd has answered the attach (output from
  // then on is delivered), so a caller attaches from a thread, waits for
  // it, and only then starts the container. Blocks until the stream ends.
  virtual absl::Status AttachOutput(
      const std::string& id, const std::function<void()>& on_attached,
      const std::function<void(StreamKind, std::string_view)>& sink,
      const CancelFn& cancelled) = 0;

  // POST /containers/{id}/wait: blocks until the container stops; returns
  // its exit status.
  virtual absl::StatusOr<int64_t> WaitContainer(const std::string& id,
                                                const CancelFn& cancelled) = 0;

  // GET /containers/{id}/json.
  virtual absl::StatusOr<nlohmann::json> InspectContainer(
      const std::string& id) = 0;

  // HEAD /containers/{id}/archive?path=: what is at `path` in the
  // container (parents resolved in the container's scope, the final
  // component not). ResourceNotFound when nothing is there.
  virtual absl::StatusOr<PathStat> StatPath(const std::string& id,
                                            const std::string& path) = 0;

  // GET /containers/{id}/archive?path=: streams the tar archive of `path`
  // into `sink`; a non-OK status from the sink stops the transfer and is
  // returned as is. ResourceNotFound when the path does not exist.
  virtual absl::Status GetArchive(
      const std::string& id, const std::string& path,
      const std::function<absl::Status(std::string_view)>& sink) = 0;

  // DELETE /containers/{id}?force=true&v=true: kills it if needed and
  // removes it with its anonymous volumes. A missing container (404) counts
  // as success.
  virtual absl::Status RemoveContainer(const std::string& id) = 0;

  // GET /containers/json?all=1&filters={"label":[...]}: containers carrying
  // every given label ("key" or "key=value").
  virtual absl::StatusOr<std::vector<nlohmann::json>> ListContainers(
      const std::vector<std::string>& labels) = 0;
};

struct DockerClientOptions {
  std::string socket_path = "/var/run/docker.sock";
  // Engine API version every path is prefixed with. 1.41 is what Debian 12's
  // dockerd 20.10 speaks; later dockerd releases still accept it.
  std::string api_version = "1.41";
  // Limit for short calls (inspect, create, start, kill, remove, list).
  absl::Duration request_timeout = absl::Seconds(60);
};

// Thread-safe: every call uses its own libcurl handle.
class DockerClient final : public DockerApi {
 public:
  explicit DockerClient(DockerClientOptions options);
  ~DockerClient() override;

  DockerClient(const DockerClient&) = delete;
  DockerClient& operator=(const DockerClient&) = delete;

  const DockerClientOptions& options() const { return options_; }

  absl::Status Ping(absl::Duration timeout) override;
  absl::StatusOr<nlohmann::json> InspectImage(
      const std::string& image) override;
  absl::Status PullImage(
      const std::string& from_image, const std::string& tag,
      const std::string& registry_auth, absl::Duration timeout,
      const std::function<void(const nlohmann::json&)>& on_message,
      const CancelFn& cancelled) override;
  absl::StatusOr<std::string> CreateContainer(
      const std::string& name, const nlohmann::json& body) override;
  absl::Status StartContainer(const std::string& id) override;
  absl::Status KillContainer(const std::string& id) override;
  absl::Status AttachOutput(
      const std::string& id, const std::function<void()>& on_attached,
      const std::function<void(StreamKind, std::string_view)>& sink,
      const CancelFn& cancelled) override;
  absl::StatusOr<int64_t> WaitContainer(const std::string& id,
                                        const CancelFn& cancelled) override;
  absl::StatusOr<nlohmann::json> InspectContainer(
      const std::string& id) override;
  absl::StatusOr<PathStat> StatPath(const std::string& id,
                                    const std::string& path) override;
  absl::Status GetArchive(
      const std::string& id, const std::string& path,
      const std::function<absl::Status(std::string_view)>& sink) override;
  absl::Status RemoveContainer(const std::string& id) override;
  absl::StatusOr<std::vector<nlohmann::json>> ListContainers(
      const std::vector<std::string>& labels) override;

  // One HTTP exchange; public for the few calls above and for tests.
  struct Request {
    std::string method = "GET";
    // Path and query below the version prefix, e.g. "/containers/json".
    std::string target;
    // Sent as application/json when set.
    const nlohmann::json* body = nullptr;
    std::vector<std::string> headers;
    // Zero: no limit.
    absl::Duration timeout = absl::ZeroDuration();
    // When set, a 2xx body is streamed here instead of collected; returning
    // a non-OK status aborts the transfer with that status.
    std::function<absl::Status(std::string_view)> on_body;
    // When set, runs once all response headers have arrived, with the
    // status code.
    std::function<void(long)> on_headers;
    CancelFn cancelled;
  };
  struct Response {
    long status = 0;
    std::string body;  // empty when streamed
    // Header names lowercased.
    std::map<std::string, std::string> headers;
  };
  // Errors: see the file comment. A non-2xx status is returned as an error.
  absl::StatusOr<Response> Call(const Request& request);

 private:
  const DockerClientOptions options_;
};

// Percent-encodes `s` for a URL query value.
std::string UrlEncode(std::string_view s);

}  // namespace drover::engines::docker

#endif  // DROVER_ENGINES_DOCKER_DOCKER_CLIENT_H_
