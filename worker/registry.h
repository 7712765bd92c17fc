// Registry: the engines and plugins a drover-worker binary knows, by name.
//
// main() registers each one explicitly (no static initialisers), with a
// factory that builds it from its JSON config and a check that validates
// that config without side effects (for --check-config). The worker then
// builds the configured engine and plugins through the registry.
#ifndef DROVER_WORKER_REGISTRY_H_
#define DROVER_WORKER_REGISTRY_H_

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "common/clock.h"
#include "engines/engine.h"
#include "nlohmann/json.hpp"
#include "plugins/plugin.h"
#include "worker/config.h"

namespace drover::worker {

// What a factory gets: its own config section and the worker's basics.
struct ComponentContext {
  // "engine.config" or "plugins.<name>": the config section, also the field
  // prefix errors should name.
  nlohmann::json config = nlohmann::json::object();
  std::string field;
  std::filesystem::path work_dir;
  std::string worker_group;
  std::string worker_id;
  // The worker's CA file for an https queue (WorkerConfig::tls_ca_file);
  // plugins that call the queue themselves default to it.
  std::string tls_ca_file;
  // Not owned; outlives whatever the factory builds.
  const Clock* clock = nullptr;
};

using EngineFactory =
    std::function<absl::StatusOr<std::unique_ptr<engines::Engine>>(
        const ComponentContext&)>;
using PluginFactory =
    std::function<absl::StatusOr<std::unique_ptr<plugins::Plugin>>(
        const ComponentContext&)>;
// Validates a config section; changes nothing. Errors: InputError naming
// the field below ComponentContext::field.
using ConfigCheck = std::function<absl::Status(const ComponentContext&)>;

// The engine and plugins built for one worker.
struct Components {
  std::unique_ptr<engines::Engine> engine;
  // In hook order.
  std::vector<std::unique_ptr<plugins::Plugin>> plugins;

  std::vector<plugins::Plugin*> PluginPointers() const;
};

// Not thread-safe while registering; read-only use afterwards is.
class Registry {
 public:
  // `check` may be null for components whose factory has no side effects:
  // checking then builds the component and throws it away.
  void AddEngine(const std::string& name, EngineFactory make,
                 ConfigCheck check = nullptr);
  void AddPlugin(const std::string& name, PluginFactory make,
                 ConfigCheck check = nullptr);

  // Sorted names.
  std::vector<std::string> EngineNames() const;
  std::vector<std::string> PluginNames() const;

  // ValidateWorkerConfig, then the engine's and every plugin's own checks.
  // Changes nothing. Errors: the first InputError, naming its field.
  absl::Status CheckConfig(const WorkerConfig& config,
                           const Clock& clock) const;

  // Builds the configured engine and plugins. Errors: those of the
  // factories (InputError naming the field, InternalError).
  absl::StatusOr<Components> Build(const WorkerConfig& config,
                                   const Clock& clock) const;

 private:
  template <typename Factory>
  struct Entry {
    Factory make;
    ConfigCheck check;
  };
  static ComponentContext EngineContext(const WorkerConfig& config,
                                        const Clock& clock);
  static ComponentContext PluginContext(const WorkerConfig& config,
                                        const std::string& name,
                                        const nlohmann::json& section,
                                        const Clock& clock);

  std::map<std::string, Entry<EngineFactory>> engines_;
  std::map<std::string, Entry<PluginFactory>> plugins_;
};

}  // namespace drover::worker

#endif  // DROVER_WORKER_REGISTRY_H_
