// The worker's Prometheus metrics and their HTTP listener.
#include "worker/metrics.h"

#include <string>

#include "common/status.h"
#include "gtest/gtest.h"
#include "httplib.h"
#include "worker/metrics_server.h"

namespace drover::worker {
namespace {

TaskRunSummary Finished(absl::Duration to_start, absl::Duration to_report) {
  TaskRunSummary summary;
  summary.task_id = "t";
  summary.reported = true;
  summary.claim_to_start = to_start;
  summary.finish_to_reported = to_report;
  return summary;
}

TEST(DurationSummaryTest, QuantilesOverTheWindowTotalsOverAll) {
  DurationSummary summary(/*window=*/4);
  EXPECT_EQ(summary.QuantileSeconds(0.5), 0);
  for (int ms : {100, 1, 2, 3, 4}) summary.Add(absl::Milliseconds(ms));
  // The 100 ms sample left the window; sum and count keep it.
  EXPECT_DOUBLE_EQ(summary.QuantileSeconds(0.5), 0.002);
  EXPECT_DOUBLE_EQ(summary.QuantileSeconds(0.99), 0.004);
  EXPECT_DOUBLE_EQ(summary.QuantileSeconds(0), 0.001);
  EXPECT_NEAR(summary.sum_seconds(), 0.110, 1e-9);
  EXPECT_EQ(summary.count(), 5u);
}

TEST(WorkerMetricsTest, RendersCountersGaugesAndOverhead) {
  WorkerMetrics metrics;
  metrics.Observe(Finished(absl::Milliseconds(2), absl::Milliseconds(4)));
  metrics.Observe(Finished(absl::Milliseconds(6), absl::Milliseconds(8)));
  // A malformed payload: never started, reported.
  metrics.Observe(Finished(absl::ZeroDuration(), absl::Milliseconds(1)));
  TaskRunSummary lost;
  lost.claim_lost = true;
  metrics.Observe(lost);

  WorkerStats stats;
  stats.claimed = 4;
  stats.completed = 2;
  stats.exception = 1;
  stats.claim_lost = 1;
  stats.running = 1;
  stats.capacity = 3;
  const std::string text = metrics.Render(stats);
  for (const char* line : {
           "# TYPE drover_worker_tasks_claimed_total counter",
           "drover_worker_tasks_claimed_total 4\n",
           "drover_worker_tasks_completed_total 2\n",
           "drover_worker_tasks_failed_total 0\n",
           "drover_worker_tasks_exception_total 1\n",
           "drover_worker_claims_lost_total 1\n",
           "drover_worker_tasks_running 1\n",
           "drover_worker_capacity 3\n",
           "drover_worker_engine_healthy 1\n",
           "# TYPE drover_worker_claim_to_start_seconds summary",
           "drover_worker_claim_to_start_seconds{quantile=\"0.5\"} 0.002\n",
           "drover_worker_claim_to_start_seconds_count 2\n",
           "drover_worker_finish_to_reported_seconds_count 3\n",
           "drover_worker_reports_given_up_total 0\n",
       }) {
    EXPECT_NE(text.find(line), std::string::npos) << line << "\n" << text;
  }
}

TEST(MetricsServerTest, ServesMetricsAndHealth) {
  int renders = 0;
  auto server = MetricsServer::Start("127.0.0.1:0", [&renders] {
    ++renders;
    return std::string("drover_worker_capacity 7\n");
  });
  ASSERT_TRUE(server.ok()) << server.status();
  ASSERT_GT((*server)->port(), 0);
  httplib::Client client("127.0.0.1", (*server)->port());
  auto metrics = client.Get("/metrics");
  ASSERT_TRUE(metrics);
  EXPECT_EQ(metrics->status, 200);
  EXPECT_EQ(metrics->body, "drover_worker_capacity 7\n");
  EXPECT_NE(metrics->get_header_value("Content-Type").find("text/plain"),
            std::string::npos);
  auto health = client.Get("/healthz");
  ASSERT_TRUE(health);
  EXPECT_EQ(health->status, 200);
  EXPECT_EQ(renders, 1);
  EXPECT_EQ(client.Get("/nope")->status, 404);
}

TEST(MetricsServerTest, RejectsBadAddresses) {
  for (const char* bad :
       {"nowhere", "127.0.0.1:", "127.0.0.1:99999", ":80", "127.0.0.1:x"}) {
    auto server = MetricsServer::Start(bad, [] { return std::string(); });
    EXPECT_FALSE(server.ok()) << bad;
    EXPECT_EQ(GetErrorInfo(server.status()).details["field"], "metrics_listen")
        << bad;
  }
}

}  // namespace
}  // namespace drover::worker
