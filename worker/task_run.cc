#include "worker/task_run.h"

#include <algorithm>
#include <random>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"
#include "google/protobuf/util/time_util.h"
#include "spdlog/spdlog.h"
#include "worker/task_log.h"

namespace drover::worker {
namespace {

using plugins::Outcome;

absl::Time FromProto(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

std::string_view OutcomeName(const Outcome& outcome) {
  switch (outcome.state) {
    case Outcome::State::kCompleted:
      return "completed";
    case Outcome::State::kFailed:
      return "failed";
    case Outcome::State::kException:
      return "exception";
  }
  return "exception";
}

Outcome MakeException(std::string reason) {
  return Outcome{Outcome::State::kException, std::move(reason)};
}

// Checks the payload against the union of what the engine and the plugins
// understand, then each one's own rules.
absl::Status ValidatePayload(const nlohmann::json& payload,
                             const engines::Engine& engine,
                             const std::vector<plugins::Plugin*>& plugins) {
  if (!payload.is_object()) {
    return MakeError(ErrorCode::kMalformedPayload,
                     "the payload must be a JSON object",
                     {{"field", "payload"}, {"value", payload.dump()}});
  }
  std::set<std::string> known;
  for (auto& key : engine.PayloadKeys()) known.insert(key);
  for (auto* plugin : plugins) {
    for (auto& key : plugin->PayloadKeys()) known.insert(key);
  }
  for (const auto& item : payload.items()) {
    if (!known.contains(item.key())) {
      return MakeError(
          ErrorCode::kMalformedPayload,
          absl::StrCat(
              "unknown payload field \"", item.key(),
              "\"; this worker understands: ", absl::StrJoin(known, ", ")),
          {{"field", "payload." + item.key()}, {"value", item.key()}});
    }
  }
  DROVER_RETURN_IF_ERROR(engine.ValidatePayload(payload));
  for (auto* plugin : plugins) {
    DROVER_RETURN_IF_ERROR(plugin->ValidatePayload(payload));
  }
  return absl::OkStatus();
}

std::string DescribeError(const absl::Status& status) {
  ErrorInfo info = GetErrorInfo(status);
  std::string text =
      std::string(ErrorCodeName(info.code)) + ": " + info.message;
  for (const auto& [key, value] : info.details) {
    absl::StrAppend(&text, " (", key, ": ", value, ")");
  }
  return text;
}

}  // namespace

TaskRun::TaskRun(v1::ClaimedTask claim, QueueApi& api, engines::Engine& engine,
                 std::vector<plugins::Plugin*> plugins, TaskRunOptions options,
                 const Clock& clock)
    : claim_(std::move(claim)),
      api_(api),
      engine_(engine),
      plugins_(std::move(plugins)),
      options_(std::move(options)),
      clock_(clock),
      claimed_at_(clock.Now()),
      taken_until_(FromProto(claim_.taken_until())),
      credentials_(std::make_shared<SharedCredentials>(claim_.credentials())) {}

TaskRun::~TaskRun() {
  StopReclaimer();
  if (reclaimer_.joinable()) reclaimer_.join();
}

Outcome TaskRun::ExceptionFor(const absl::Status& status) {
  // The mapping plugin.h and engine.h promise: the payload's fault, a
  // missing input, or ours.
  switch (GetErrorInfo(status).code) {
    case ErrorCode::kMalformedPayload:
      return MakeException("malformed-payload");
    case ErrorCode::kResourceNotFound:
    case ErrorCode::kResourceExpired:
      return MakeException("resource-unavailable");
    default:
      return MakeException("internal-error");
  }
}

void TaskRun::Abort(const std::string& reason) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!abort_reason_) abort_reason_ = reason;
  if (sandbox_ != nullptr) sandbox_->Abort();
  cv_.notify_all();
}

TaskRunSummary TaskRun::Run() {
  TaskRunSummary summary;
  summary.task_id = claim_.task_id();
  summary.run_id = claim_.run_id();
  const std::string run_name =
      absl::StrCat(claim_.task_id(), "_", claim_.run_id());
  summary.log_path = options_.work_dir / "logs" / (run_name + ".log");

  auto log_or = TaskLog::Create(summary.log_path);
  if (!log_or.ok()) {
    spdlog::error("task {} run {}: {}", summary.task_id, summary.run_id,
                  log_or.status().ToString());
    summary.outcome = MakeException("internal-error");
    // Without a log we can still resolve the run so it is retried elsewhere.
    auto fallback = TaskLog::Create("/dev/null");
    if (fallback.ok()) summary.reported = Report(summary.outcome, **fallback);
    return summary;
  }
  TaskLog& log = **log_or;
  {
    std::lock_guard<std::mutex> lock(mu_);
    log_ = &log;
  }

  summary.outcome = Execute(log, summary);

  bool lost;
  {
    std::lock_guard<std::mutex> lock(mu_);
    lost = claim_lost_;
  }
  if (lost) {
    summary.claim_lost = true;
    log.Note(
        "the claim on this run was lost (canceled, taken over or "
        "expired); nothing is reported");
  } else {
    absl::Time ended = clock_.Now();
    summary.reported = Report(summary.outcome, log);
    if (summary.reported) summary.finish_to_reported = clock_.Now() - ended;
  }
  spdlog::info(
      "task {} run {}: {}{}{} claim->start {:.2f} ms, finish->reported "
      "{:.2f} ms",
      summary.task_id, summary.run_id, OutcomeName(summary.outcome),
      summary.outcome.reason.empty() ? "" : "/" + summary.outcome.reason,
      summary.claim_lost ? " (claim lost, not reported)"
                         : (summary.reported ? "" : " (not reported)"),
      absl::ToDoubleMilliseconds(summary.claim_to_start),
      absl::ToDoubleMilliseconds(summary.finish_to_reported));
  {
    std::lock_guard<std::mutex> lock(mu_);
    log_ = nullptr;
  }
  return summary;
}

void TaskRun::StartReclaimer() {
  reclaimer_ = std::thread([this] { ReclaimLoop(); });
}

Outcome TaskRun::Execute(TaskLog& log, TaskRunSummary& summary) {
  const v1::TaskDefinition& task = claim_.task();

  nlohmann::json payload = nlohmann::json::parse(
      task.payload().empty() ? "{}" : task.payload(), nullptr,
      /*allow_exceptions=*/false);
  if (payload.is_discarded()) {
    log.Note("malformed payload: not valid JSON");
    return MakeException("malformed-payload");
  }
  if (absl::Status s = ValidatePayload(payload, engine_, plugins_); !s.ok()) {
    log.Note("malformed payload: " + DescribeError(s));
    return MakeException("malformed-payload");
  }

  engines::SandboxSpec spec;
  spec.task_id = claim_.task_id();
  spec.run_id = claim_.run_id();
  spec.worker_group = options_.worker.worker_group;
  spec.worker_id = options_.worker.worker_id;
  spec.payload = payload;
  spec.scopes.assign(task.scopes().begin(), task.scopes().end());
  spec.task_dir = options_.work_dir / "tasks" /
                  absl::StrCat(claim_.task_id(), "_", claim_.run_id());
  spec.log = &log;
  std::error_code ec;
  std::filesystem::remove_all(spec.task_dir, ec);
  std::filesystem::create_directories(spec.task_dir, ec);
  if (ec) {
    log.Note("cannot create the task directory: " + ec.message());
    return MakeException("internal-error");
  }

  plugins::TaskInfo info;
  info.task_id = claim_.task_id();
  info.run_id = claim_.run_id();
  info.task_queue_id = task.task_queue_id();
  info.worker_group = options_.worker.worker_group;
  info.worker_id = options_.worker.worker_id;
  info.engine = std::string(engine_.Name());
  info.payload = payload;
  info.scopes = spec.scopes;
  info.queue_address = options_.queue_address;
  info.credentials = [shared = credentials_] {
    v1::TaskCredentials now = shared->Get();
    return plugins::TaskCredentials{
        .client_id = std::move(*now.mutable_client_id()),
        .access_token = std::move(*now.mutable_access_token()),
        .certificate = std::move(*now.mutable_certificate())};
  };
  info.log = &log;

  std::vector<std::unique_ptr<plugins::TaskPlugin>> hooks;
  Outcome outcome;
  bool failed_stage = false;
  auto fail = [&](std::string_view stage, const absl::Status& status) {
    log.Note(std::string(stage) + " failed: " + DescribeError(status));
    outcome = ExceptionFor(status);
    failed_stage = true;
  };
  auto hook_name = [&](std::string_view stage, size_t i) {
    return absl::StrCat(std::string(stage), " (",
                        std::string(plugins_[i]->Name()), ")");
  };

  for (auto* plugin : plugins_) {
    auto hook = plugin->NewTaskPlugin(info);
    if (!hook.ok()) {
      fail("plugin " + std::string(plugin->Name()), hook.status());
      break;
    }
    hooks.push_back(std::move(*hook));
  }
  for (size_t i = 0; !failed_stage && i < hooks.size(); ++i) {
    if (auto s = hooks[i]->Prepare(spec); !s.ok()) {
      fail(hook_name("prepare", i), s);
    }
  }
  for (size_t i = 0; !failed_stage && i < hooks.size(); ++i) {
    if (auto s = hooks[i]->BuildSandbox(spec); !s.ok()) {
      fail(hook_name("build sandbox", i), s);
    }
  }

  std::unique_ptr<engines::Sandbox> sandbox;
  if (!failed_stage) {
    auto made = engine_.NewSandbox(spec);
    if (!made.ok()) {
      fail("building the sandbox", made.status());
    } else {
      sandbox = std::move(*made);
    }
  }

  // A worker abort that arrived during the stages above ends the run here;
  // one arriving later reaches the sandbox through sandbox_.
  if (!failed_stage) {
    std::lock_guard<std::mutex> lock(mu_);
    if (abort_reason_) {
      outcome = MakeException(*abort_reason_);
      log.Note("aborted before the task started: " + *abort_reason_);
      failed_stage = true;
    } else {
      sandbox_ = sandbox.get();
    }
  }
  bool started = false;
  if (!failed_stage) {
    if (auto s = sandbox->Start(); !s.ok()) {
      fail("starting the task", s);
    } else {
      started = true;
      summary.claim_to_start = clock_.Now() - claimed_at_;
      StartReclaimer();
    }
  }
  for (size_t i = 0; !failed_stage && i < hooks.size(); ++i) {
    if (auto s = hooks[i]->Started(*sandbox); !s.ok()) {
      fail(hook_name("started", i), s);
      sandbox->Abort();
    }
  }

  if (started) {
    auto result = sandbox->Wait();
    std::optional<std::string> aborted_for;
    bool lost;
    {
      std::lock_guard<std::mutex> lock(mu_);
      aborted_for = abort_reason_;
      lost = claim_lost_;
    }
    if (!failed_stage && !result.ok()) {
      fail("waiting for the task", result.status());
    }
    if (!failed_stage) {
      if (result->out_of_memory) log.Note("killed: out of memory");
      outcome.state =
          result->exit_code == 0 && !result->signal && !result->out_of_memory
              ? Outcome::State::kCompleted
              : Outcome::State::kFailed;
      for (size_t i = 0; !failed_stage && i < hooks.size(); ++i) {
        if (auto s = hooks[i]->Stopped(*sandbox, *result, outcome); !s.ok()) {
          fail(hook_name("stopped", i), s);
        }
      }
    }
    // A worker-initiated abort or a lost claim outranks whatever the task's
    // exit said, and such a run does not get to publish results.
    if (!failed_stage && (aborted_for || lost)) {
      if (aborted_for) {
        outcome = MakeException(*aborted_for);
        log.Note("aborted: " + *aborted_for);
      }
      failed_stage = true;
    }
    for (size_t i = 0; !failed_stage && i < hooks.size(); ++i) {
      if (auto s = hooks[i]->Finished(*sandbox, outcome); !s.ok()) {
        fail(hook_name("finished", i), s);
      }
    }
  }

  if (failed_stage) {
    for (auto& hook : hooks) hook->Exception(outcome);
  }
  for (auto& hook : hooks) hook->Dispose();
  // The claim stays alive through the hooks above (uploads can be slow);
  // from here on the report itself is what ends it.
  StopReclaimer();
  if (reclaimer_.joinable()) reclaimer_.join();
  {
    std::lock_guard<std::mutex> lock(mu_);
    sandbox_ = nullptr;
  }
  sandbox.reset();
  if (!options_.keep_task_dirs) std::filesystem::remove_all(spec.task_dir, ec);
  return outcome;
}

void TaskRun::StopRetryingReports() {
  std::lock_guard<std::mutex> lock(mu_);
  stop_reporting_ = true;
  cv_.notify_all();
}

void TaskRun::StopReclaimer() {
  std::lock_guard<std::mutex> lock(mu_);
  stop_reclaimer_ = true;
  cv_.notify_all();
}

void TaskRun::ReclaimLoop() {
  std::unique_lock<std::mutex> lock(mu_);
  while (!stop_reclaimer_) {
    absl::Duration left = taken_until_ - clock_.Now();
    absl::Duration wait = std::max(left * options_.reclaim_fraction,
                                   options_.min_reclaim_interval);
    cv_.wait_for(lock, absl::ToChronoNanoseconds(wait),
                 [this] { return stop_reclaimer_; });
    if (stop_reclaimer_) break;
    const v1::TaskCredentials credentials = credentials_->Get();
    lock.unlock();
    auto reclaimed = api_.ReclaimTask(options_.worker, claim_.task_id(),
                                      claim_.run_id(), credentials);
    lock.lock();
    if (reclaimed.ok()) {
      taken_until_ = FromProto(reclaimed->taken_until());
      if (reclaimed->has_credentials()) {
        credentials_->Set(reclaimed->credentials());
      }
      continue;
    }
    if (HasErrorCode(reclaimed.status(), ErrorCode::kRequestConflict) ||
        HasErrorCode(reclaimed.status(), ErrorCode::kResourceNotFound)) {
      claim_lost_ = true;
      if (log_ != nullptr) {
        log_->Note("reclaim refused (" +
                   std::string(reclaimed.status().message()) +
                   "); aborting the task");
      }
      if (sandbox_ != nullptr) sandbox_->Abort();
      break;
    }
    // The queue may be briefly unreachable: keep trying until the claim
    // lapses; the next attempt comes after min_reclaim_interval at least.
    spdlog::warn("task {} run {}: reclaim failed: {}", claim_.task_id(),
                 claim_.run_id(), reclaimed.status().ToString());
    if (clock_.Now() > taken_until_) {
      // The queue resolves it claim-expired and retries it elsewhere; our
      // result would be refused, so stop spending the machine on it.
      claim_lost_ = true;
      if (log_ != nullptr) {
        log_->Note(
            "the claim expired while the queue was unreachable; "
            "aborting the task");
      }
      if (sandbox_ != nullptr) sandbox_->Abort();
      break;
    }
  }
}

bool TaskRun::Report(const Outcome& outcome, TaskLog& log) {
  const std::string& task_id = claim_.task_id();
  const int run_id = claim_.run_id();
  absl::Duration backoff = options_.report_backoff;
  std::mt19937_64 rng(std::random_device{}());
  for (int attempt = 1;; ++attempt) {
    const v1::TaskCredentials credentials = credentials_->Get();
    absl::Status s;
    switch (outcome.state) {
      case Outcome::State::kCompleted:
        s = api_.ReportCompleted(task_id, run_id, credentials);
        break;
      case Outcome::State::kFailed:
        s = api_.ReportFailed(task_id, run_id, credentials);
        break;
      case Outcome::State::kException:
        s = api_.ReportException(task_id, run_id, outcome.reason, credentials);
        break;
    }
    if (s.ok()) return true;
    if (HasErrorCode(s, ErrorCode::kRequestConflict) ||
        HasErrorCode(s, ErrorCode::kResourceNotFound) ||
        HasErrorCode(s, ErrorCode::kInputError)) {
      log.Note("the queue refused the resolution: " + std::string(s.message()));
      return false;
    }
    absl::Time taken_until;
    {
      std::lock_guard<std::mutex> lock(mu_);
      taken_until = taken_until_;
    }
    if (clock_.Now() > taken_until) {
      spdlog::warn(
          "task {} run {}: claim lapsed before the resolution "
          "could be reported: {}",
          task_id, run_id, s.ToString());
      log.Note("the claim lapsed before the queue took the resolution");
      return false;
    }
    // Jitter spreads the retries of many tasks after a queue outage.
    std::uniform_real_distribution<double> jitter(0.5, 1.5);
    absl::Duration delay = backoff * jitter(rng);
    spdlog::warn(
        "task {} run {}: report attempt {} failed ({}); retrying in "
        "{:.0f} ms",
        task_id, run_id, attempt, s.ToString(),
        absl::ToDoubleMilliseconds(delay));
    {
      std::unique_lock<std::mutex> lock(mu_);
      if (cv_.wait_for(lock, absl::ToChronoNanoseconds(delay),
                       [this] { return stop_reporting_; })) {
        spdlog::warn(
            "task {} run {}: gave up reporting (worker exiting); "
            "the queue will expire the claim and retry the task",
            task_id, run_id);
        return false;
      }
    }
    backoff = std::min(backoff * 2, absl::Seconds(30));
  }
}

}  // namespace drover::worker
