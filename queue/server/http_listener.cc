#include "queue/server/http_listener.h"

#include <charconv>
#include <chrono>
#include <utility>

#include "common/status.h"

namespace drover::queue::server {

absl::StatusOr<std::pair<std::string, int>> SplitHostPort(
    std::string_view field, std::string_view address) {
  size_t colon = address.rfind(':');
  if (colon == std::string_view::npos || colon + 1 == address.size()) {
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
      port < 0 || port > 65535) {
    return InputError(field, address, "port must be a number within 0..65535");
  }
  if (host.empty()) host = "0.0.0.0";
  return std::make_pair(std::string(host), port);
}

HttpListener::HttpListener() : server_(std::make_unique<httplib::Server>()) {}

HttpListener::~HttpListener() { Stop(); }

absl::StatusOr<int> HttpListener::Bind(std::string_view address) {
  if (port_ > 0) return port_;
  DROVER_ASSIGN_OR_RETURN(auto host_port,
                          SplitHostPort("http-listen", address));
  auto& [host, port] = host_port;
  if (port == 0) {
    port_ = server_->bind_to_any_port(host);
    if (port_ < 0) port_ = 0;
  } else if (server_->bind_to_port(host, port)) {
    port_ = port;
  }
  if (port_ <= 0) {
    return MakeError(
        ErrorCode::kInternalError,
        "cannot listen for HTTP on " + std::string(address),
        {{"field", "http-listen"}, {"value", std::string(address)}});
  }
  return port_;
}

absl::Status HttpListener::Start(std::string_view address) {
  DROVER_RETURN_IF_ERROR(Bind(address).status());
  thread_ = std::thread([this] { server_->listen_after_bind(); });
  // httplib's stop() is a no-op until the accept loop runs, so a Stop()
  // right after Start() would hang; wait for the loop.
  while (!server_->is_running()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return absl::OkStatus();
}

void HttpListener::Stop() {
  if (!thread_.joinable()) return;
  server_->stop();
  thread_.join();
}

}  // namespace drover::queue::server
