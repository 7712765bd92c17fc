// artifacts_bench: measures the two numbers issue 8 sets targets for.
//
//   live log write -> visible: a line written to a task log (through the
//     real livelog plugin: file, sender thread, AppendLog) until a TailLog
//     follower holds it. Reports p50/p90/p99/max.
//   artifact upload MB/s: UploadBlobArtifact of a large file (create,
//     PUT to the presigned URL, finish), and the download back.
//
// Against a running drover-queue (--url, with a Queue service, the
// Artifacts service and the filesystem blob store's HTTP listener), or,
// without --url, against a private stack started in-process (embedded
// PostgreSQL test cluster, filesystem blob store on 127.0.0.1). Measures;
// passes or fails nothing.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "client/artifacts_client.h"
#include "client/queue_client.h"
#include "common/rpc/process_defaults.h"
#include "common/slugid.h"
#include "common/status.h"
#include "google/protobuf/util/time_util.h"
#include "nlohmann/json.hpp"
#include "plugins/livelog/livelog_plugin.h"
#ifdef DROVER_BENCH_SELF_HOSTED
#include "queue/artifacts/testing/artifacts_test_env.h"
#endif

namespace drover::bench {
namespace {

using Clock = std::chrono::steady_clock;

int64_t NowNanos() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             Clock::now().time_since_epoch())
      .count();
}

// A task created and claimed on its own queue, so its run 0 is running.
absl::StatusOr<std::string> StartRunningTask(const client::QueueClient& queue) {
  const std::string task_id = NewSlugId();
  const std::string queue_id = "artifacts-bench/" + task_id.substr(0, 20);
  v1::CreateTaskRequest create;
  create.set_task_id(task_id);
  auto* task = create.mutable_task();
  task->set_task_queue_id(queue_id);
  task->set_retries(0);
  const auto now = google::protobuf::util::TimeUtil::GetCurrentTime();
  *task->mutable_created() = now;
  *task->mutable_deadline() =
      now + google::protobuf::util::TimeUtil::SecondsToDuration(3600);
  *task->mutable_expires() =
      now + google::protobuf::util::TimeUtil::SecondsToDuration(86400);
  task->set_payload("{}");
  task->mutable_metadata()->set_name("artifacts bench");
  task->mutable_metadata()->set_description("measures artifacts and logs");
  task->mutable_metadata()->set_owner("bench@example.com");
  task->mutable_metadata()->set_source("https://example.com/artifacts-bench");
  DROVER_RETURN_IF_ERROR(queue.CreateTask(create).status());
  v1::ClaimWorkRequest claim;
  claim.set_task_queue_id(queue_id);
  claim.set_worker_group("bench");
  claim.set_worker_id("bench-1");
  claim.set_max_tasks(1);
  DROVER_ASSIGN_OR_RETURN(auto claimed, queue.ClaimWork(claim));
  if (claimed.tasks_size() != 1) {
    return InternalError("the benchmark task was not claimed");
  }
  return task_id;
}

double Percentile(std::vector<double> values, double p) {
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  size_t index = static_cast<size_t>(p * (values.size() - 1) + 0.5);
  return values[std::min(index, values.size() - 1)];
}

// Appends to a file, as the worker's task log does.
class FileSink final : public engines::LogSink {
 public:
  explicit FileSink(const std::filesystem::path& path)
      : file_(std::fopen(path.c_str(), "wb")) {}
  ~FileSink() override { std::fclose(file_); }
  void Write(std::string_view bytes) override {
    std::lock_guard<std::mutex> lock(mu_);
    std::fwrite(bytes.data(), 1, bytes.size(), file_);
    std::fflush(file_);
  }

 private:
  std::mutex mu_;
  std::FILE* file_;
};

struct Settings {
  std::string url;
  int log_lines = 500;
  int log_interval_ms = 20;
  int flush_interval_ms = 100;
  int upload_mib = 256;
  std::filesystem::path scratch = std::filesystem::temp_directory_path();
  // Where to write the figures as JSON (bench/run.sh); empty: nowhere.
  std::string json_path;
};

absl::Status LiveLogLatency(const Settings& s, const client::QueueClient& queue,
                            const client::ArtifactsClient& artifacts,
                            nlohmann::json* results) {
  DROVER_ASSIGN_OR_RETURN(std::string task_id, StartRunningTask(queue));
  const std::filesystem::path log_path =
      s.scratch / absl::StrCat("drover-bench-", task_id, ".log");
  FileSink sink(log_path);

  // Follower: parses "seq <n> <written ns>" lines as they arrive.
  std::mutex mu;
  std::vector<double> latencies_ms;
  std::string partial;
  std::thread follower([&] {
    v1::TailLogRequest request;
    request.set_task_id(task_id);
    request.set_run_id(0);
    auto result = artifacts.TailLog(request, [&](std::string_view bytes) {
      const int64_t now = NowNanos();
      std::lock_guard<std::mutex> lock(mu);
      partial.append(bytes);
      size_t newline;
      while ((newline = partial.find('\n')) != std::string::npos) {
        std::string line = partial.substr(0, newline);
        partial.erase(0, newline + 1);
        long long seq = 0, written = 0;
        if (std::sscanf(line.c_str(), "seq %lld %lld", &seq, &written) == 2) {
          latencies_ms.push_back((now - written) / 1e6);
        }
      }
      return absl::OkStatus();
    });
    if (!result.ok()) std::cerr << "follower: " << result.status() << "\n";
  });

  plugins::livelog::LiveLogOptions options;
  options.flush_interval = absl::Milliseconds(s.flush_interval_ms);
  options.log_path = [log_path](const plugins::TaskInfo&) { return log_path; };
  plugins::livelog::LiveLogPlugin plugin(
      options,
      [&](const plugins::TaskInfo&)
          -> absl::StatusOr<std::shared_ptr<client::ArtifactsClient>> {
        return std::make_shared<client::ArtifactsClient>(
            std::shared_ptr<const client::Connection>(
                std::shared_ptr<const client::Connection>(),
                &artifacts.connection()));
      });
  plugins::TaskInfo info;
  info.task_id = task_id;
  info.run_id = 0;
  info.log = &sink;
  DROVER_ASSIGN_OR_RETURN(auto hooks, plugin.NewTaskPlugin(info));
  engines::SandboxSpec spec;
  spec.log = &sink;
  DROVER_RETURN_IF_ERROR(hooks->Prepare(spec));
  DROVER_RETURN_IF_ERROR(hooks->BuildSandbox(spec));
  for (int i = 0; i < s.log_lines; ++i) {
    spec.log->Write(absl::StrCat("seq ", i, " ", NowNanos(), "\n"));
    std::this_thread::sleep_for(std::chrono::milliseconds(s.log_interval_ms));
  }
  // Give the last lines their chance to arrive live, then end the run as
  // the worker would: the log becomes the blob, the follower finishes.
  std::this_thread::sleep_for(
      std::chrono::milliseconds(s.flush_interval_ms * 3));
  std::vector<double> live;
  {
    std::lock_guard<std::mutex> lock(mu);
    live = latencies_ms;
  }
  hooks->Exception({plugins::Outcome::State::kCompleted, ""});
  hooks->Dispose();
  v1::RunRequest resolve;
  resolve.set_task_id(task_id);
  resolve.set_run_id(0);
  (void)queue.ReportCompleted(resolve);
  follower.join();
  std::filesystem::remove(log_path);

  std::cout << absl::StrFormat(
      "live log write->visible (%d lines every %d ms, flush interval %d ms, "
      "%d seen live):\n  p50 %.1f ms  p90 %.1f ms  p99 %.1f ms  max %.1f ms\n",
      s.log_lines, s.log_interval_ms, s.flush_interval_ms,
      static_cast<int>(live.size()), Percentile(live, 0.5),
      Percentile(live, 0.9), Percentile(live, 0.99), Percentile(live, 1.0));
  (*results)["live_log"] = {{"lines", s.log_lines},
                            {"seen_live", live.size()},
                            {"flush_interval_ms", s.flush_interval_ms},
                            {"p50_ms", Percentile(live, 0.5)},
                            {"p90_ms", Percentile(live, 0.9)},
                            {"p99_ms", Percentile(live, 0.99)},
                            {"max_ms", Percentile(live, 1.0)}};
  return absl::OkStatus();
}

absl::Status UploadThroughput(const Settings& s,
                              const client::QueueClient& queue,
                              const client::ArtifactsClient& artifacts,
                              nlohmann::json* results) {
  DROVER_ASSIGN_OR_RETURN(std::string task_id, StartRunningTask(queue));
  const std::filesystem::path file =
      s.scratch / absl::StrCat("drover-bench-", task_id, ".bin");
  {
    std::ofstream out(file, std::ios::binary);
    std::mt19937_64 rng(7);
    std::vector<uint64_t> block(1 << 17);  // 1 MiB
    for (int i = 0; i < s.upload_mib; ++i) {
      for (auto& word : block) word = rng();
      out.write(reinterpret_cast<const char*>(block.data()), 1 << 20);
    }
  }
  const double mib = s.upload_mib;
  client::BlobArtifactUpload upload;
  upload.task_id = task_id;
  upload.name = "public/bench.bin";
  upload.content_type = "application/octet-stream";
  upload.file = file;
  // Hashing is part of what a worker pays, so it is measured too.
  auto start = Clock::now();
  DROVER_ASSIGN_OR_RETURN(auto hashed, client::HashFile(file));
  const double hash_s =
      std::chrono::duration<double>(Clock::now() - start).count();
  start = Clock::now();
  DROVER_ASSIGN_OR_RETURN(v1::Artifact artifact,
                          client::UploadBlobArtifact(artifacts, upload));
  const double upload_s =
      std::chrono::duration<double>(Clock::now() - start).count();

  v1::ArtifactRequest get;
  get.set_task_id(task_id);
  get.set_name(upload.name);
  DROVER_ASSIGN_OR_RETURN(auto got, artifacts.GetArtifact(get));
  start = Clock::now();
  int64_t received = 0;
  DROVER_RETURN_IF_ERROR(client::Download(
                             got.url(), 0,
                             [&](std::string_view bytes) {
                               received += bytes.size();
                               return absl::OkStatus();
                             },
                             false)
                             .status());
  const double download_s =
      std::chrono::duration<double>(Clock::now() - start).count();
  std::filesystem::remove(file);
  std::cout << absl::StrFormat(
      "artifact upload of %d MiB: %.1f MB/s including create+finish and a "
      "hash pass (%.2f s; hashing alone %.2f s)\n"
      "artifact download: %.1f MB/s (%lld bytes, %.2f s)\n",
      s.upload_mib, mib * 1.048576 / upload_s, upload_s, hash_s,
      mib * 1.048576 / download_s, static_cast<long long>(received),
      download_s);
  if (artifact.blob().sha256() != hashed.first) {
    return InternalError("the stored blob's hash differs from the file's");
  }
  (*results)["artifacts"] = {{"mib", s.upload_mib},
                             {"upload_mb_s", mib * 1.048576 / upload_s},
                             {"download_mb_s", mib * 1.048576 / download_s}};
  return absl::OkStatus();
}

int Main(int argc, char** argv) {
  Settings s;
  CLI::App app("artifacts_bench: live-log latency and artifact throughput");
  app.add_option("--url", s.url,
                 "drover-queue to measure (default: a private in-process "
                 "stack)");
  app.add_option("--log-lines", s.log_lines, "Lines written to the live log");
  app.add_option("--log-interval-ms", s.log_interval_ms, "Pause between lines");
  app.add_option("--flush-interval-ms", s.flush_interval_ms,
                 "livelog flush interval");
  app.add_option("--upload-mib", s.upload_mib, "Size of the uploaded file");
  app.add_option("--scratch", s.scratch, "Directory for temporary files");
  app.add_option("--json", s.json_path, "Also write the figures here");
  CLI11_PARSE(app, argc, argv);

#ifdef DROVER_BENCH_SELF_HOSTED
  std::unique_ptr<queue::artifacts::testing::ArtifactsTestEnv> env;
  if (s.url.empty()) {
    queue::artifacts::testing::ArtifactsTestEnvOptions options;
    options.fake_clock = false;
    auto made = queue::artifacts::testing::ArtifactsTestEnv::Create(options);
    if (!made.ok()) {
      std::cerr << "cannot start the private stack: " << made.status() << "\n";
      return 1;
    }
    env = std::move(*made);
    s.url = env->grpc_target();
    std::cout << "private stack: gRPC " << s.url << ", blobs "
              << env->http_base_url() << "\n";
  }
#endif
  if (s.url.empty()) {
    std::cerr << "--url is required (built without the private stack)\n";
    return 2;
  }
  // Credentials as every client takes them (DROVER_CREDENTIALS_FILE, ...).
  auto connection_options =
      client::ConnectionOptionsFromEnvironment(client::ProcessEnvironment());
  if (!connection_options.ok()) {
    std::cerr << connection_options.status() << "\n";
    return 2;
  }
  connection_options->url = s.url;
  auto connection = client::Connection::Create(*connection_options);
  if (!connection.ok()) {
    std::cerr << connection.status() << "\n";
    return 2;
  }
  client::QueueClient queue(*connection);
  client::ArtifactsClient artifacts(*connection);
  nlohmann::json results = nlohmann::json::object();
  if (absl::Status st = LiveLogLatency(s, queue, artifacts, &results);
      !st.ok()) {
    std::cerr << "live log: " << st << "\n";
    return 1;
  }
  if (s.upload_mib > 0) {
    if (absl::Status st = UploadThroughput(s, queue, artifacts, &results);
        !st.ok()) {
      std::cerr << "upload: " << st << "\n";
      return 1;
    }
  }
  if (!s.json_path.empty()) {
    std::ofstream out(s.json_path);
    out << nlohmann::json{{"benchmark", "livelog"}, {"results", results}}
               .dump(2)
        << "\n";
    if (!out) {
      std::cerr << "cannot write " << s.json_path << "\n";
      return 1;
    }
  }
  return 0;
}

}  // namespace
}  // namespace drover::bench

int main(int argc, char** argv) {
  drover::rpc::ApplyProcessDefaults();
  return drover::bench::Main(argc, argv);
}
