#include "queue/server/metrics.h"

#include <chrono>
#include <cstdio>

#include "absl/strings/str_cat.h"
#include "common/rpc/grpc_status.h"
#include "common/status.h"

namespace drover::queue::server {
namespace {

std::string FormatDouble(double v) {
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%.9g", v);
  return buf;
}

class MetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  MetricsInterceptor(MetricsRegistry* registry, std::string method)
      : registry_(registry),
        method_(std::move(method)),
        start_(std::chrono::steady_clock::now()) {}

  void Intercept(
      grpc::experimental::InterceptorBatchMethods* methods) override {
    if (methods->QueryInterceptionHookPoint(
            grpc::experimental::InterceptionHookPoints::PRE_SEND_STATUS)) {
      grpc::Status status = methods->GetSendStatus();
      std::string error;
      if (!status.ok()) {
        error = std::string(
            ErrorCodeName(GetErrorInfo(rpc::FromGrpcStatus(status)).code));
      }
      auto elapsed = std::chrono::steady_clock::now() - start_;
      registry_->RecordRpc(method_, status.error_code(), error,
                           absl::FromChrono(elapsed));
    }
    methods->Proceed();
  }

 private:
  MetricsRegistry* registry_;
  std::string method_;
  std::chrono::steady_clock::time_point start_;
};

}  // namespace

std::string EscapeLabelValue(std::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

const char* GrpcCodeName(grpc::StatusCode code) {
  switch (code) {
    case grpc::StatusCode::OK:
      return "OK";
    case grpc::StatusCode::CANCELLED:
      return "CANCELLED";
    case grpc::StatusCode::UNKNOWN:
      return "UNKNOWN";
    case grpc::StatusCode::INVALID_ARGUMENT:
      return "INVALID_ARGUMENT";
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return "DEADLINE_EXCEEDED";
    case grpc::StatusCode::NOT_FOUND:
      return "NOT_FOUND";
    case grpc::StatusCode::ALREADY_EXISTS:
      return "ALREADY_EXISTS";
    case grpc::StatusCode::PERMISSION_DENIED:
      return "PERMISSION_DENIED";
    case grpc::StatusCode::RESOURCE_EXHAUSTED:
      return "RESOURCE_EXHAUSTED";
    case grpc::StatusCode::FAILED_PRECONDITION:
      return "FAILED_PRECONDITION";
    case grpc::StatusCode::ABORTED:
      return "ABORTED";
    case grpc::StatusCode::OUT_OF_RANGE:
      return "OUT_OF_RANGE";
    case grpc::StatusCode::UNIMPLEMENTED:
      return "UNIMPLEMENTED";
    case grpc::StatusCode::INTERNAL:
      return "INTERNAL";
    case grpc::StatusCode::UNAVAILABLE:
      return "UNAVAILABLE";
    case grpc::StatusCode::DATA_LOSS:
      return "DATA_LOSS";
    case grpc::StatusCode::UNAUTHENTICATED:
      return "UNAUTHENTICATED";
    default:
      return "UNKNOWN";
  }
}

void MetricsRegistry::RecordRpc(std::string_view method, grpc::StatusCode code,
                                std::string_view error,
                                absl::Duration latency) {
  double seconds = absl::ToDoubleSeconds(latency);
  std::lock_guard<std::mutex> lock(mu_);
  Series& series = rpcs_[{std::string(method), code}];
  series.count++;
  series.sum_seconds += seconds;
  for (size_t i = 0; i < kLatencyBuckets.size(); ++i) {
    // Buckets are stored non-cumulatively and summed when rendered.
    if (seconds <= kLatencyBuckets[i]) {
      series.buckets[i]++;
      break;
    }
  }
  if (!error.empty()) errors_[{std::string(method), std::string(error)}]++;
}

void MetricsRegistry::AddCollector(Collector collector) {
  std::lock_guard<std::mutex> lock(mu_);
  collectors_.push_back(std::move(collector));
}

int64_t MetricsRegistry::RpcCount(std::string_view method,
                                  grpc::StatusCode code) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = rpcs_.find({std::string(method), code});
  return it == rpcs_.end() ? 0 : it->second.count;
}

std::string MetricsRegistry::Render() const {
  std::string out;
  std::vector<Collector> collectors;
  {
    std::lock_guard<std::mutex> lock(mu_);
    out +=
        "# HELP drover_rpc_requests_total RPCs finished, by method and gRPC "
        "status code.\n"
        "# TYPE drover_rpc_requests_total counter\n";
    for (const auto& [key, series] : rpcs_) {
      absl::StrAppend(&out, "drover_rpc_requests_total{method=\"",
                      EscapeLabelValue(key.first), "\",code=\"",
                      GrpcCodeName(key.second), "\"} ", series.count, "\n");
    }
    out +=
        "# HELP drover_rpc_duration_seconds RPC latency from arrival to "
        "status, by method and gRPC status code.\n"
        "# TYPE drover_rpc_duration_seconds histogram\n";
    for (const auto& [key, series] : rpcs_) {
      std::string labels =
          absl::StrCat("method=\"", EscapeLabelValue(key.first), "\",code=\"",
                       GrpcCodeName(key.second), "\"");
      int64_t cumulative = 0;
      for (size_t i = 0; i < kLatencyBuckets.size(); ++i) {
        cumulative += series.buckets[i];
        absl::StrAppend(&out, "drover_rpc_duration_seconds_bucket{", labels,
                        ",le=\"", FormatDouble(kLatencyBuckets[i]), "\"} ",
                        cumulative, "\n");
      }
      absl::StrAppend(&out, "drover_rpc_duration_seconds_bucket{", labels,
                      ",le=\"+Inf\"} ", series.count, "\n");
      absl::StrAppend(&out, "drover_rpc_duration_seconds_sum{", labels, "} ",
                      FormatDouble(series.sum_seconds), "\n");
      absl::StrAppend(&out, "drover_rpc_duration_seconds_count{", labels, "} ",
                      series.count, "\n");
    }
    out +=
        "# HELP drover_rpc_errors_total Failed RPCs, by method and Drover "
        "error code.\n"
        "# TYPE drover_rpc_errors_total counter\n";
    for (const auto& [key, count] : errors_) {
      absl::StrAppend(&out, "drover_rpc_errors_total{method=\"",
                      EscapeLabelValue(key.first), "\",error=\"",
                      EscapeLabelValue(key.second), "\"} ", count, "\n");
    }
    collectors = collectors_;
  }
  // Collectors may be slow (database reads); run them without the lock.
  for (const auto& collector : collectors) collector(&out);
  return out;
}

grpc::experimental::Interceptor*
MetricsInterceptorFactory::CreateServerInterceptor(
    grpc::experimental::ServerRpcInfo* info) {
  return new MetricsInterceptor(registry_, info->method());
}

}  // namespace drover::queue::server
