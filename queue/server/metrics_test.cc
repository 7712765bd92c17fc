// Prometheus text rendering of the RPC metrics.
#include "queue/server/metrics.h"

#include <string>

#include "gtest/gtest.h"

namespace drover::queue::server {
namespace {

TEST(MetricsRegistryTest, RendersCumulativeHistogramsAndCounters) {
  MetricsRegistry registry;
  const std::string method = "/drover.v1.Queue/CreateTask";
  registry.RecordRpc(method, grpc::StatusCode::OK, "", absl::Microseconds(300));
  registry.RecordRpc(method, grpc::StatusCode::OK, "", absl::Milliseconds(20));
  registry.RecordRpc(method, grpc::StatusCode::INVALID_ARGUMENT, "InputError",
                     absl::Milliseconds(1));
  registry.AddCollector([](std::string* out) { *out += "custom_gauge 7\n"; });
  EXPECT_EQ(registry.RpcCount(method, grpc::StatusCode::OK), 2);

  std::string text = registry.Render();
  auto has = [&](const std::string& line) {
    return text.find(line + "\n") != std::string::npos;
  };
  std::string ok = "method=\"/drover.v1.Queue/CreateTask\",code=\"OK\"";
  EXPECT_TRUE(has("drover_rpc_requests_total{" + ok + "} 2")) << text;
  EXPECT_TRUE(
      has("drover_rpc_duration_seconds_bucket{" + ok + ",le=\"0.0005\"} 1"));
  EXPECT_TRUE(
      has("drover_rpc_duration_seconds_bucket{" + ok + ",le=\"0.01\"} 1"));
  EXPECT_TRUE(
      has("drover_rpc_duration_seconds_bucket{" + ok + ",le=\"0.025\"} 2"));
  EXPECT_TRUE(
      has("drover_rpc_duration_seconds_bucket{" + ok + ",le=\"+Inf\"} 2"));
  EXPECT_TRUE(has("drover_rpc_duration_seconds_count{" + ok + "} 2"));
  EXPECT_TRUE(
      has("drover_rpc_requests_total{method=\"/drover.v1.Queue/"
          "CreateTask\",code=\"INVALID_ARGUMENT\"} 1"));
  EXPECT_TRUE(
      has("drover_rpc_errors_total{method=\"/drover.v1.Queue/"
          "CreateTask\",error=\"InputError\"} 1"));
  EXPECT_TRUE(has("custom_gauge 7"));
  EXPECT_NE(text.find("# TYPE drover_rpc_duration_seconds histogram"),
            std::string::npos);
}

TEST(MetricsRegistryTest, EscapesLabelValues) {
  EXPECT_EQ(EscapeLabelValue("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
}

}  // namespace
}  // namespace drover::queue::server
