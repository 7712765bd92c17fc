#include "plugins/testing/plugin_harness.h"

#include "absl/strings/str_cat.h"

namespace drover::plugins::testing {

TaskInfo MakeTaskInfo(nlohmann::json payload, engines::LogSink* log) {
  TaskInfo info;
  info.task_id = "fN1eXoAnTQ2-yX0V6_0a3w";
  info.run_id = 2;
  info.task_queue_id = "test-provisioner/test-pool";
  info.worker_group = "test-group";
  info.worker_id = "test-worker-1";
  info.engine = "native";
  info.payload = std::move(payload);
  info.queue_address = "127.0.0.1:50051";
  info.credentials = [] {
    return TaskCredentials{
        .client_id = "task-client/fN1eXoAnTQ2-yX0V6_0a3w/2",
        .access_token = "task-access-token",
        .certificate = "eyJjZXJ0IjoidGVzdCJ9"};
  };
  info.log = log;
  return info;
}

HarnessRun RunTask(engines::Engine& engine, const std::vector<Plugin*>& plugins,
                   const TaskInfo& info,
                   const std::filesystem::path& task_dir) {
  HarnessRun run;
  std::vector<std::unique_ptr<TaskPlugin>> hooks;
  auto fail = [&](std::string stage, absl::Status status) {
    run.failed_stage = std::move(stage);
    run.failure = std::move(status);
    run.outcome = {Outcome::State::kException, "internal-error"};
  };
  for (Plugin* plugin : plugins) {
    auto hook = plugin->NewTaskPlugin(info);
    if (!hook.ok()) {
      fail("new task plugin", hook.status());
      break;
    }
    hooks.push_back(std::move(*hook));
  }
  engines::SandboxSpec& spec = run.spec;
  spec.task_id = info.task_id;
  spec.run_id = info.run_id;
  spec.worker_group = info.worker_group;
  spec.worker_id = info.worker_id;
  spec.payload = info.payload;
  spec.scopes = info.scopes;
  spec.task_dir = task_dir;
  spec.log = info.log;
  for (auto& hook : hooks) {
    if (!run.failed_stage.empty()) break;
    if (auto s = hook->Prepare(spec); !s.ok()) fail("prepare", s);
  }
  for (auto& hook : hooks) {
    if (!run.failed_stage.empty()) break;
    if (auto s = hook->BuildSandbox(spec); !s.ok()) fail("build sandbox", s);
  }
  std::unique_ptr<engines::Sandbox> sandbox;
  if (run.failed_stage.empty()) {
    auto made = engine.NewSandbox(spec);
    if (!made.ok()) {
      fail("new sandbox", made.status());
    } else {
      sandbox = std::move(*made);
      if (auto s = sandbox->Start(); !s.ok()) fail("start", s);
    }
  }
  if (run.failed_stage.empty()) {
    for (auto& hook : hooks) {
      if (auto s = hook->Started(*sandbox); !s.ok()) {
        fail("started", s);
        sandbox->Abort();
        break;
      }
    }
    auto result = sandbox->Wait();
    if (!result.ok()) {
      if (run.failed_stage.empty()) fail("wait", result.status());
    } else if (run.failed_stage.empty()) {
      run.result = *result;
      // The worker's starting point before plugins have their say.
      run.outcome.state = result->exit_code == 0 && !result->signal
                              ? Outcome::State::kCompleted
                              : Outcome::State::kFailed;
      for (auto& hook : hooks) {
        if (auto s = hook->Stopped(*sandbox, *result, run.outcome); !s.ok()) {
          fail("stopped", s);
          break;
        }
      }
      for (auto& hook : hooks) {
        if (!run.failed_stage.empty()) break;
        if (auto s = hook->Finished(*sandbox, run.outcome); !s.ok()) {
          fail("finished", s);
        }
      }
    }
  }
  if (!run.failed_stage.empty()) {
    for (auto& hook : hooks) hook->Exception(run.outcome);
  }
  for (auto& hook : hooks) hook->Dispose();
  sandbox.reset();
  return run;
}

}  // namespace drover::plugins::testing
