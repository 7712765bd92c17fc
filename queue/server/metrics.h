// Metrics: the counters and histograms drover-queue exposes as Prometheus
// text on the HTTP listener's /metrics.
//
// RPC metrics are recorded by a gRPC server interceptor for every service
// (MetricsInterceptorFactory). Other parts of the server contribute gauges
// through collectors, called at scrape time.
#ifndef DROVER_QUEUE_SERVER_METRICS_H_
#define DROVER_QUEUE_SERVER_METRICS_H_

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "grpcpp/support/server_interceptor.h"
#include "grpcpp/support/status.h"

namespace drover::queue::server {

// Escapes a Prometheus label value (backslash, quote, newline).
std::string EscapeLabelValue(std::string_view value);

// The canonical name of a gRPC status code ("OK", "INVALID_ARGUMENT").
const char* GrpcCodeName(grpc::StatusCode code);

class MetricsRegistry {
 public:
  // Appends Prometheus text exposition lines (with # HELP / # TYPE).
  using Collector = std::function<void(std::string* out)>;

  // Upper bounds, in seconds, of the RPC latency histogram buckets.
  static constexpr std::array<double, 15> kLatencyBuckets = {
      0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
      0.25,   0.5,   1,      2.5,   5,    10,    30};

  // Counts one finished RPC. `error` is the Drover error code name
  // ("InputError") for failed calls, empty for OK. Thread-safe.
  void RecordRpc(std::string_view method, grpc::StatusCode code,
                 std::string_view error, absl::Duration latency);

  // Adds a collector; it runs on every scrape, on the HTTP thread, and
  // must be thread-safe. Thread-safe.
  void AddCollector(Collector collector);

  // The whole exposition. Thread-safe.
  std::string Render() const;

  // Calls recorded for (method, code); for tests. Thread-safe.
  int64_t RpcCount(std::string_view method, grpc::StatusCode code) const;

 private:
  struct Series {
    int64_t count = 0;
    double sum_seconds = 0;
    std::array<int64_t, kLatencyBuckets.size()> buckets{};
  };

  mutable std::mutex mu_;
  std::map<std::pair<std::string, grpc::StatusCode>, Series> rpcs_;
  std::map<std::pair<std::string, std::string>, int64_t> errors_;
  std::vector<Collector> collectors_;
};

// Creates one interceptor per RPC that records it in a MetricsRegistry
// when its status is sent.
class MetricsInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  // `registry` must outlive every server using this factory.
  explicit MetricsInterceptorFactory(MetricsRegistry* registry)
      : registry_(registry) {}
  grpc::experimental::Interceptor* CreateServerInterceptor(
      grpc::experimental::ServerRpcInfo* info) override;

 private:
  MetricsRegistry* registry_;
};

}  // namespace drover::queue::server

#endif  // DROVER_QUEUE_SERVER_METRICS_H_
