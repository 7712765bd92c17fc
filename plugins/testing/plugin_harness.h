// PluginHarness: runs one task through plugins and a real engine sandbox in
// the worker's stage order (Prepare, BuildSandbox, Start, Started, Wait,
// Stopped, Finished or Exception, Dispose), for plugin unit tests.
#ifndef DROVER_PLUGINS_TESTING_PLUGIN_HARNESS_H_
#define DROVER_PLUGINS_TESTING_PLUGIN_HARNESS_H_

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "engines/engine.h"
#include "plugins/plugin.h"

namespace drover::plugins::testing {

struct HarnessRun {
  // The outcome after Stopped, as the worker would report it.
  Outcome outcome;
  std::optional<engines::Result> result;
  // The first failing stage ("prepare", "build sandbox", ...) and its
  // status; empty when every stage succeeded.
  std::string failed_stage;
  absl::Status failure;
  // The spec as the engine received it.
  engines::SandboxSpec spec;
};

// Runs `info.payload` through `plugins` (hooks made from `info`) and
// `engine`. `info.log` receives the log. `task_dir` may be empty.
HarnessRun RunTask(engines::Engine& engine, const std::vector<Plugin*>& plugins,
                   const TaskInfo& info,
                   const std::filesystem::path& task_dir = {});

// A TaskInfo for tests: ids, queue address and credentials filled in.
TaskInfo MakeTaskInfo(nlohmann::json payload, engines::LogSink* log);

}  // namespace drover::plugins::testing

#endif  // DROVER_PLUGINS_TESTING_PLUGIN_HARNESS_H_
