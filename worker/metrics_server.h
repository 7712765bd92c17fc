// MetricsServer: the worker's optional HTTP listener (cpp-httplib) serving
// GET /metrics (Prometheus text) and GET /healthz.
//
// The accept loop blocks in accept(2) and the handler threads wait on a
// condition variable, so an idle listener costs no CPU.
#ifndef DROVER_WORKER_METRICS_SERVER_H_
#define DROVER_WORKER_METRICS_SERVER_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <utility>

#include "absl/status/statusor.h"

namespace httplib {
class Server;
}

namespace drover::worker {

// Splits "host:port" ("[::1]:9102" for IPv6). Errors: InputError naming
// `field` when the port is missing or not within 0..65535.
absl::StatusOr<std::pair<std::string, int>> SplitListenAddress(
    std::string_view field, std::string_view address);

class MetricsServer {
 public:
  // Called for every GET /metrics; must be thread-safe.
  using Renderer = std::function<std::string()>;

  // Binds `address` (port 0 picks a free one) and serves on a background
  // thread. Errors: InputError (field "metrics_listen") for a bad address,
  // InternalError when it cannot be bound.
  static absl::StatusOr<std::unique_ptr<MetricsServer>> Start(
      std::string_view address, Renderer render);

  // Stops serving and joins the thread.
  ~MetricsServer();

  MetricsServer(const MetricsServer&) = delete;
  MetricsServer& operator=(const MetricsServer&) = delete;

  // "host:port" actually bound.
  const std::string& address() const { return address_; }
  int port() const { return port_; }

 private:
  MetricsServer() = default;

  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  std::string address_;
  int port_ = 0;
};

}  // namespace drover::worker

#endif  // DROVER_WORKER_METRICS_SERVER_H_
