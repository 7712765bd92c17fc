#include "bench/bench_util.h"

#include <sys/utsname.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <numeric>
#include <random>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/environment.h"
#include "common/rpc/grpc_status.h"
#include "common/slugid.h"
#include "common/status.h"
#include "grpcpp/create_channel.h"
#include "grpcpp/security/credentials.h"
#include "grpcpp/support/channel_arguments.h"

namespace drover::bench {
namespace {

// Reads "<key>:   <number> kB" from /proc/<pid>/status.
std::optional<int64_t> ReadStatusField(pid_t pid, const std::string& key) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(key + ":", 0) != 0) continue;
    std::istringstream fields(line.substr(key.size() + 1));
    int64_t kib = 0;
    if (fields >> kib) return kib;
  }
  return std::nullopt;
}

google::protobuf::Timestamp ToTimestamp(absl::Time t) {
  google::protobuf::Timestamp ts;
  const int64_t micros = absl::ToUnixMicros(t);
  ts.set_seconds(micros / 1000000);
  ts.set_nanos(static_cast<int32_t>((micros % 1000000) * 1000));
  return ts;
}

std::string FormatValue(double value) {
  std::ostringstream out;
  if (value != 0 && std::fabs(value) < 10) {
    out << std::fixed << std::setprecision(2) << value;
  } else if (std::fabs(value) < 1000) {
    out << std::fixed << std::setprecision(1) << value;
  } else {
    out << std::fixed << std::setprecision(0) << value;
  }
  return out.str();
}

}  // namespace

double MillisBetween(SteadyClock::time_point from, SteadyClock::time_point to) {
  return std::chrono::duration<double, std::milli>(to - from).count();
}

void Samples::Merge(const Samples& other) {
  values_.insert(values_.end(), other.values_.begin(), other.values_.end());
  sorted_ = false;
}

double Samples::Percentile(double q) const {
  if (values_.empty()) return 0;
  if (!sorted_) {
    std::sort(values_.begin(), values_.end());
    sorted_ = true;
  }
  // Nearest rank: the smallest value with at least q% of samples at or
  // below it.
  size_t rank = static_cast<size_t>(std::ceil(q / 100.0 * values_.size()));
  if (rank == 0) rank = 1;
  return values_[std::min(rank, values_.size()) - 1];
}

double Samples::Max() const {
  return values_.empty() ? 0
                         : *std::max_element(values_.begin(), values_.end());
}

double Samples::Mean() const {
  if (values_.empty()) return 0;
  return std::accumulate(values_.begin(), values_.end(), 0.0) /
         static_cast<double>(values_.size());
}

nlohmann::json Samples::ToJson() const {
  return {{"count", count()},         {"mean_ms", Mean()},
          {"p50_ms", Percentile(50)}, {"p90_ms", Percentile(90)},
          {"p99_ms", Percentile(99)}, {"max_ms", Max()}};
}

std::array<double, 3> LoadAverage() {
  std::array<double, 3> load{0, 0, 0};
  std::ifstream in("/proc/loadavg");
  in >> load[0] >> load[1] >> load[2];
  return load;
}

std::optional<int64_t> ReadRssKib(pid_t pid) {
  return ReadStatusField(pid, "VmRSS");
}

std::optional<int64_t> ReadPeakRssKib(pid_t pid) {
  return ReadStatusField(pid, "VmHWM");
}

std::optional<double> ReadCpuSeconds(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string stat;
  if (!std::getline(in, stat)) return std::nullopt;
  // The command name (field 2) may hold spaces; fields after its closing
  // parenthesis are plain. utime and stime are fields 14 and 15.
  size_t close = stat.rfind(')');
  if (close == std::string::npos) return std::nullopt;
  std::istringstream fields(stat.substr(close + 2));
  std::string field;
  double ticks = 0;
  for (int i = 3; i <= 15 && fields >> field; ++i) {
    if (i >= 14) ticks += std::stod(field);
  }
  return ticks / static_cast<double>(sysconf(_SC_CLK_TCK));
}

nlohmann::json MachineDescription() {
  nlohmann::json machine;
  std::ifstream cpuinfo("/proc/cpuinfo");
  std::string line;
  while (std::getline(cpuinfo, line)) {
    if (line.rfind("model name", 0) == 0) {
      size_t colon = line.find(':');
      if (colon != std::string::npos) {
        machine["cpu"] = line.substr(colon + 2);
      }
      break;
    }
  }
  machine["cpus_online"] = sysconf(_SC_NPROCESSORS_ONLN);
  std::ifstream meminfo("/proc/meminfo");
  while (std::getline(meminfo, line)) {
    if (line.rfind("MemTotal:", 0) == 0) {
      std::istringstream fields(line.substr(9));
      int64_t kib = 0;
      fields >> kib;
      machine["memory_mib"] = kib / 1024;
      break;
    }
  }
  struct utsname uts;
  if (uname(&uts) == 0) {
    machine["kernel"] = absl::StrCat(uts.sysname, " ", uts.release);
  }
  auto load = LoadAverage();
  machine["load_average"] = {load[0], load[1], load[2]};
  return machine;
}

void AddCommonFlags(CLI::App& app, CommonFlags* flags) {
  const char* env_url = std::getenv("DROVER_URL");
  flags->url = env_url != nullptr && *env_url != '\0'
                   ? env_url
                   : std::string(client::kDefaultUrl);
  app.add_option("--url", flags->url, "Queue server address (DROVER_URL)")
      ->capture_default_str();
  app.add_option("--json", flags->json_path,
                 "Write the results as JSON to this file");
}

absl::StatusOr<std::shared_ptr<const client::Connection>> Connect(
    const std::string& url, bool private_channel) {
  DROVER_ASSIGN_OR_RETURN(
      client::ConnectionOptions options,
      client::ConnectionOptionsFromEnvironment(client::ProcessEnvironment()));
  options.url = url;
  if (!private_channel) return client::Connection::Create(options);

  DROVER_ASSIGN_OR_RETURN(client::Endpoint endpoint,
                          client::ParseUrl(url, "url"));
  if (endpoint.tls) {
    return InputError("url", url,
                      "private channels are only made for plaintext URLs");
  }
  DROVER_RETURN_IF_ERROR(client::ValidateCredentials(options.credentials));
  grpc::ChannelArguments args;
  // Channels with equal arguments share one TCP connection through gRPC's
  // global subchannel pool; a local pool gives each its own, as separate
  // worker processes would have.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto channel = grpc::CreateCustomChannel(
      endpoint.Target(), grpc::InsecureChannelCredentials(), args);
  return std::make_shared<const client::Connection>(
      std::move(channel), std::move(endpoint), options.credentials);
}

std::string UniqueTaskQueueId(std::string_view kind) {
  static const char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::random_device device;
  std::mt19937 rng(device());
  std::string suffix;
  for (int i = 0; i < 8; ++i) suffix += kAlphabet[rng() % 36];
  return absl::StrCat("bench/", std::string(kind), "-", suffix);
}

v1::TaskDefinition MakeTask(const std::string& task_queue_id,
                            const std::string& payload) {
  v1::TaskDefinition task;
  task.set_task_queue_id(task_queue_id);
  task.set_retries(0);
  absl::Time now = absl::Now();
  *task.mutable_created() = ToTimestamp(now);
  *task.mutable_deadline() = ToTimestamp(now + absl::Hours(24));
  task.set_payload(payload);
  v1::TaskMetadata* md = task.mutable_metadata();
  md->set_name("bench");
  md->set_description("benchmark task");
  md->set_owner("bench@example.com");
  md->set_source("https://example.com/drover/bench");
  return task;
}

void Table::Add(std::string name, double value, std::string unit,
                std::string note) {
  rows_.push_back({std::move(name), value, std::move(unit), std::move(note)});
}

void Table::Print(std::ostream& out) const {
  size_t name_width = 6;
  for (const Row& row : rows_)
    name_width = std::max(name_width, row.name.size());
  out << "\n== " << title_ << " ==\n";
  for (const Row& row : rows_) {
    out << "  " << std::left << std::setw(static_cast<int>(name_width))
        << row.name << "  " << std::right << std::setw(10)
        << FormatValue(row.value) << " " << std::left << std::setw(8)
        << row.unit;
    if (!row.note.empty()) out << "  " << row.note;
    out << "\n";
  }
  out << std::flush;
}

nlohmann::json Table::ToJson() const {
  nlohmann::json rows = nlohmann::json::array();
  for (const Row& row : rows_) {
    rows.push_back({{"name", row.name},
                    {"value", row.value},
                    {"unit", row.unit},
                    {"note", row.note}});
  }
  return rows;
}

absl::Status WriteJson(const std::string& path, nlohmann::json doc) {
  if (path.empty()) return absl::OkStatus();
  doc["machine"] = MachineDescription();
  std::ofstream out(path);
  out << doc.dump(2) << "\n";
  out.close();
  if (!out) {
    return MakeError(ErrorCode::kInternalError,
                     "cannot write the JSON result file",
                     {{"field", "json"}, {"value", path}});
  }
  return absl::OkStatus();
}

std::string Describe(const absl::Status& status) {
  if (status.ok()) return "OK";
  ErrorInfo info = GetErrorInfo(status);
  std::string text =
      absl::StrCat(absl::StatusCodeToString(status.code()), ": ", info.message);
  for (const auto& [key, value] : info.details) {
    absl::StrAppend(&text, " [", key, "=", value, "]");
  }
  return text;
}

CreateStats CreateTasks(
    const std::shared_ptr<const client::Connection>& connection,
    const std::vector<v1::CreateTaskRequest>& requests, int threads, int batch,
    const std::function<void(size_t, SteadyClock::time_point)>& on_created) {
  CreateStats stats;
  std::mutex mu;
  std::atomic<size_t> next{0};
  threads = std::max(1, threads);
  batch = std::max(1, batch);
  stats.started = SteadyClock::now();

  auto run = [&] {
    auto stub = v1::Queue::NewStub(connection->channel());
    Samples latency;
    int64_t created = 0, retried = 0, failed = 0;
    std::string first_error;
    std::vector<size_t> todo;
    while (true) {
      if (todo.empty()) {
        size_t begin = next.fetch_add(static_cast<size_t>(batch));
        if (begin >= requests.size()) break;
        size_t end = std::min(requests.size(), begin + batch);
        for (size_t i = begin; i < end; ++i) todo.push_back(i);
      }
      // One batch in flight at once; the callbacks count down.
      struct Slot {
        grpc::ClientContext context;
        v1::CreateTaskResponse response;
        grpc::Status status;
        SteadyClock::time_point sent, answered;
      };
      std::vector<std::unique_ptr<Slot>> slots(todo.size());
      std::mutex batch_mu;
      std::condition_variable batch_cv;
      size_t outstanding = todo.size();
      for (size_t k = 0; k < todo.size(); ++k) {
        slots[k] = std::make_unique<Slot>();
        Slot* slot = slots[k].get();
        connection->PrepareContext(&slot->context,
                                   absl::Now() + absl::Seconds(60));
        slot->sent = SteadyClock::now();
        stub->async()->CreateTask(
            &slot->context, &requests[todo[k]], &slot->response,
            [&, slot, index = todo[k]](grpc::Status status) {
              slot->answered = SteadyClock::now();
              slot->status = std::move(status);
              if (slot->status.ok() && on_created) {
                on_created(index, slot->answered);
              }
              std::lock_guard<std::mutex> lock(batch_mu);
              if (--outstanding == 0) batch_cv.notify_all();
            });
      }
      {
        std::unique_lock<std::mutex> lock(batch_mu);
        batch_cv.wait(lock, [&] { return outstanding == 0; });
      }
      std::vector<size_t> again;
      for (size_t k = 0; k < todo.size(); ++k) {
        const Slot& slot = *slots[k];
        if (slot.status.ok()) {
          ++created;
          latency.Add(MillisBetween(slot.sent, slot.answered));
        } else if (slot.status.error_code() == grpc::StatusCode::UNAVAILABLE) {
          ++retried;
          again.push_back(todo[k]);
        } else {
          ++failed;
          if (first_error.empty()) {
            first_error = Describe(rpc::FromGrpcStatus(slot.status));
          }
        }
      }
      todo = std::move(again);
      if (!todo.empty()) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    }
    std::lock_guard<std::mutex> lock(mu);
    stats.latency.Merge(latency);
    stats.created += created;
    stats.retried += retried;
    stats.failed += failed;
    if (stats.first_error.empty()) stats.first_error = first_error;
  };

  std::vector<std::thread> pool;
  for (int i = 0; i < threads; ++i) pool.emplace_back(run);
  for (std::thread& t : pool) t.join();
  stats.finished = SteadyClock::now();
  return stats;
}

CancellableClaimer::CancellableClaimer(
    std::shared_ptr<const client::Connection> connection)
    : connection_(std::move(connection)),
      stub_(v1::Queue::NewStub(connection_->channel())) {}

absl::StatusOr<v1::ClaimWorkResponse> CancellableClaimer::Claim(
    const v1::ClaimWorkRequest& request, absl::Duration timeout) {
  grpc::ClientContext context;
  connection_->PrepareContext(&context, absl::Now() + timeout);
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (canceled_) return absl::CancelledError("claimer stopped");
    current_ = &context;
  }
  v1::ClaimWorkResponse response;
  grpc::Status status = stub_->ClaimWork(&context, request, &response);
  {
    std::lock_guard<std::mutex> lock(mu_);
    current_ = nullptr;
  }
  if (!status.ok()) return rpc::FromGrpcStatus(status);
  return response;
}

void CancellableClaimer::Cancel() {
  std::lock_guard<std::mutex> lock(mu_);
  canceled_ = true;
  if (current_ != nullptr) current_->TryCancel();
}

SimulatedWorkers::SimulatedWorkers(
    std::shared_ptr<const client::Connection> connection, Options options)
    : connection_(std::move(connection)),
      options_(std::move(options)),
      report_stub_(v1::Queue::NewStub(connection_->channel())) {}

SimulatedWorkers::~SimulatedWorkers() { Stop(); }

void SimulatedWorkers::Start() {
  for (int i = 0; i < options_.workers; ++i) {
    claimers_.push_back(std::make_unique<CancellableClaimer>(connection_));
  }
  for (int i = 0; i < options_.workers; ++i) {
    threads_.emplace_back([this, i] { Loop(i); });
  }
}

void SimulatedWorkers::Loop(int index) {
  v1::ClaimWorkRequest request;
  request.set_task_queue_id(options_.task_queue_id);
  request.set_worker_group("bench");
  request.set_worker_id(absl::StrCat("sim-", index));
  request.set_max_tasks(options_.capacity);
  Samples claim_latency, report_latency;
  int64_t nonempty = 0, claimed = 0;
  auto note_error = [this](const absl::Status& status) {
    errors_.fetch_add(1);
    std::lock_guard<std::mutex> lock(mu_);
    if (first_error_.empty()) first_error_ = Describe(status);
  };

  while (!stopping_.load()) {
    SteadyClock::time_point sent = SteadyClock::now();
    auto response = claimers_[index]->Claim(request);
    SteadyClock::time_point received = SteadyClock::now();
    if (!response.ok()) {
      if (stopping_.load()) break;
      note_error(response.status());
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
      continue;
    }
    if (response->tasks().empty()) continue;
    claim_latency.Add(MillisBetween(sent, received));
    ++nonempty;
    claimed += response->tasks_size();
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!first_claim_) first_claim_ = received;
    }
    for (const v1::ClaimedTask& task : response->tasks()) {
      if (options_.on_claim) options_.on_claim(task, received);
    }
    // The claimed tasks run concurrently and take no time, so their
    // reports go out together (each its own call, as a worker sends them)
    // and the next claim follows when all are answered.
    struct Slot {
      grpc::ClientContext context;
      v1::RunRequest request;
      v1::TaskStatusResponse response;
      grpc::Status status;
      SteadyClock::time_point sent, answered;
    };
    std::vector<std::unique_ptr<Slot>> slots;
    std::mutex batch_mu;
    std::condition_variable batch_cv;
    size_t outstanding = static_cast<size_t>(response->tasks_size());
    for (const v1::ClaimedTask& task : response->tasks()) {
      auto slot = std::make_unique<Slot>();
      slot->request.set_task_id(task.task_id());
      slot->request.set_run_id(task.run_id());
      slot->request.set_worker_group(request.worker_group());
      slot->request.set_worker_id(request.worker_id());
      connection_->PrepareContext(&slot->context,
                                  absl::Now() + absl::Seconds(60));
      slots.push_back(std::move(slot));
    }
    for (auto& owned : slots) {
      Slot* slot = owned.get();
      slot->sent = SteadyClock::now();
      report_stub_->async()->ReportCompleted(
          &slot->context, &slot->request, &slot->response,
          [&, slot](grpc::Status status) {
            slot->answered = SteadyClock::now();
            slot->status = std::move(status);
            std::lock_guard<std::mutex> lock(batch_mu);
            if (--outstanding == 0) batch_cv.notify_all();
          });
    }
    {
      std::unique_lock<std::mutex> lock(batch_mu);
      batch_cv.wait(lock, [&] { return outstanding == 0; });
    }
    for (const auto& slot : slots) {
      if (!slot->status.ok()) {
        note_error(absl::Status(
            static_cast<absl::StatusCode>(slot->status.error_code()),
            absl::StrCat("ReportCompleted: ", slot->status.error_message())));
        continue;
      }
      report_latency.Add(MillisBetween(slot->sent, slot->answered));
      completed_.fetch_add(1);
      std::lock_guard<std::mutex> lock(mu_);
      last_report_ = std::max(last_report_, slot->answered);
      cv_.notify_all();
    }
  }
  std::lock_guard<std::mutex> lock(mu_);
  claim_latency_.Merge(claim_latency);
  report_latency_.Merge(report_latency);
  nonempty_claims_ += nonempty;
  claimed_tasks_ += claimed;
}

bool SimulatedWorkers::WaitForCompleted(int64_t count, absl::Duration timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, absl::ToChronoMilliseconds(timeout),
                      [&] { return completed_.load() >= count; });
}

void SimulatedWorkers::Stop() {
  if (stopping_.exchange(true)) return;
  for (auto& claimer : claimers_) claimer->Cancel();
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

std::string SimulatedWorkers::first_error() const {
  std::lock_guard<std::mutex> lock(mu_);
  return first_error_;
}

SteadyClock::time_point SimulatedWorkers::first_claim() const {
  std::lock_guard<std::mutex> lock(mu_);
  return first_claim_.value_or(SteadyClock::time_point{});
}

SteadyClock::time_point SimulatedWorkers::last_report() const {
  std::lock_guard<std::mutex> lock(mu_);
  return last_report_;
}

double SimulatedWorkers::MeanBatch() const {
  std::lock_guard<std::mutex> lock(mu_);
  return nonempty_claims_ == 0 ? 0
                               : static_cast<double>(claimed_tasks_) /
                                     static_cast<double>(nonempty_claims_);
}

}  // namespace drover::bench
