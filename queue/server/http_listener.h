// HttpListener: drover-queue's HTTP side (cpp-httplib): /metrics,
// /healthz, and whatever routes other services add (artifact up- and
// downloads) before Start.
#ifndef DROVER_QUEUE_SERVER_HTTP_LISTENER_H_
#define DROVER_QUEUE_SERVER_HTTP_LISTENER_H_

#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "httplib.h"

namespace drover::queue::server {

// Splits "host:port" (IPv6 as "[::1]:8080"). Errors: InputError naming
// `field` when the port is missing or not within 0..65535.
absl::StatusOr<std::pair<std::string, int>> SplitHostPort(
    std::string_view field, std::string_view address);

class HttpListener {
 public:
  HttpListener();
  // Calls Stop().
  ~HttpListener();

  HttpListener(const HttpListener&) = delete;
  HttpListener& operator=(const HttpListener&) = delete;

  // Register routes here before Start(); handlers run on httplib's pool
  // and must be thread-safe.
  httplib::Server& server() { return *server_; }

  // Binds `address` ("host:port"; port 0 picks a free one) without serving
  // yet, so that routes which must know their own URL (signed blob URLs)
  // can be built with the real port before Start. Returns the port. A
  // second call returns the bound port. Errors: as Start.
  absl::StatusOr<int> Bind(std::string_view address);

  // Binds `address` unless Bind already did, and serves on a background
  // thread. Errors: InputError (field "http-listen") for a bad address,
  // InternalError when the port cannot be bound.
  absl::Status Start(std::string_view address);

  // The bound port; valid after Start().
  int port() const { return port_; }

  // Stops serving and joins the thread. Idempotent.
  void Stop();

 private:
  std::unique_ptr<httplib::Server> server_;
  std::thread thread_;
  int port_ = 0;
};

}  // namespace drover::queue::server

#endif  // DROVER_QUEUE_SERVER_HTTP_LISTENER_H_
