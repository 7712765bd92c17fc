#include "worker/metrics_server.h"

#include <charconv>
#include <chrono>

#include "common/status.h"
#include "httplib.h"

namespace drover::worker {

absl::StatusOr<std::pair<std::string, int>> SplitListenAddress(
    std::string_view field, std::string_view address) {
  const size_t colon = address.rfind(':');
  if (colon == std::string_view::npos || colon == 0) {
    return InputError(field, address, "expected host:port");
  }
  std::string_view host = address.substr(0, colon);
  std::string_view port_text = address.substr(colon + 1);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  int port = -1;
  auto [end, ec] = std::from_chars(port_text.data(),
                                   port_text.data() + port_text.size(), port);
  if (ec != std::errc() || end != port_text.data() + port_text.size() ||
      port < 0 || port > 65535 || host.empty()) {
    return InputError(field, address,
                      "expected host:port with a port within 0..65535");
  }
  return std::make_pair(std::string(host), port);
}

absl::StatusOr<std::unique_ptr<MetricsServer>> MetricsServer::Start(
    std::string_view address, Renderer render) {
  DROVER_ASSIGN_OR_RETURN(auto host_port,
                          SplitListenAddress("metrics_listen", address));
  auto& [host, port] = host_port;
  std::unique_ptr<MetricsServer> server(new MetricsServer());
  server->server_ = std::make_unique<httplib::Server>();
  server->server_->Get(
      "/metrics", [render](const httplib::Request&, httplib::Response& res) {
        res.set_content(render(), "text/plain; version=0.0.4; charset=utf-8");
      });
  server->server_->Get("/healthz",
                       [](const httplib::Request&, httplib::Response& res) {
                         res.set_content("ok\n", "text/plain");
                       });
  int bound = 0;
  if (port == 0) {
    bound = server->server_->bind_to_any_port(host);
  } else if (server->server_->bind_to_port(host, port)) {
    bound = port;
  }
  if (bound <= 0) {
    return MakeError(
        ErrorCode::kInternalError,
        "cannot listen for metrics on " + std::string(address),
        {{"field", "metrics_listen"}, {"value", std::string(address)}});
  }
  server->port_ = bound;
  server->address_ = host + ":" + std::to_string(bound);
  httplib::Server* raw = server->server_.get();
  server->thread_ = std::thread([raw] { raw->listen_after_bind(); });
  // stop() does nothing until the accept loop runs; wait for it so that a
  // prompt destruction cannot hang.
  for (int i = 0; i < 5000 && !raw->is_running(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return server;
}

MetricsServer::~MetricsServer() {
  if (!thread_.joinable()) return;
  server_->stop();
  thread_.join();
}

}  // namespace drover::worker
