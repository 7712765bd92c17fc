#include "worker/registry.h"

#include "common/status.h"

namespace drover::worker {

std::vector<plugins::Plugin*> Components::PluginPointers() const {
  std::vector<plugins::Plugin*> out;
  for (const auto& plugin : plugins) out.push_back(plugin.get());
  return out;
}

void Registry::AddEngine(const std::string& name, EngineFactory make,
                         ConfigCheck check) {
  engines_[name] = Entry<EngineFactory>{std::move(make), std::move(check)};
}

void Registry::AddPlugin(const std::string& name, PluginFactory make,
                         ConfigCheck check) {
  plugins_[name] = Entry<PluginFactory>{std::move(make), std::move(check)};
}

std::vector<std::string> Registry::EngineNames() const {
  std::vector<std::string> names;
  for (const auto& [name, entry] : engines_) names.push_back(name);
  return names;
}

std::vector<std::string> Registry::PluginNames() const {
  std::vector<std::string> names;
  for (const auto& [name, entry] : plugins_) names.push_back(name);
  return names;
}

ComponentContext Registry::EngineContext(const WorkerConfig& config,
                                         const Clock& clock) {
  ComponentContext context;
  context.config = config.engine_config;
  context.field = "engine.config";
  context.work_dir = config.work_dir;
  context.worker_group = config.worker_group;
  context.worker_id = config.worker_id;
  context.tls_ca_file = config.tls_ca_file;
  context.clock = &clock;
  return context;
}

ComponentContext Registry::PluginContext(const WorkerConfig& config,
                                         const std::string& name,
                                         const nlohmann::json& section,
                                         const Clock& clock) {
  ComponentContext context = EngineContext(config, clock);
  context.config = section;
  context.field = "plugins." + name;
  return context;
}

absl::Status Registry::CheckConfig(const WorkerConfig& config,
                                   const Clock& clock) const {
  DROVER_RETURN_IF_ERROR(
      ValidateWorkerConfig(config, EngineNames(), PluginNames()));
  const auto& engine = engines_.at(config.engine);
  ComponentContext engine_context = EngineContext(config, clock);
  if (engine.check) {
    DROVER_RETURN_IF_ERROR(engine.check(engine_context));
  } else {
    DROVER_RETURN_IF_ERROR(engine.make(engine_context).status());
  }
  for (const auto& [name, section] : config.plugins) {
    const auto& plugin = plugins_.at(name);
    ComponentContext context = PluginContext(config, name, section, clock);
    if (plugin.check) {
      DROVER_RETURN_IF_ERROR(plugin.check(context));
    } else {
      DROVER_RETURN_IF_ERROR(plugin.make(context).status());
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Components> Registry::Build(const WorkerConfig& config,
                                           const Clock& clock) const {
  auto engine = engines_.find(config.engine);
  if (engine == engines_.end()) {
    return InputError("engine.name", config.engine, "unknown engine");
  }
  Components components;
  DROVER_ASSIGN_OR_RETURN(components.engine,
                          engine->second.make(EngineContext(config, clock)));
  for (const auto& [name, section] : config.plugins) {
    auto plugin = plugins_.find(name);
    if (plugin == plugins_.end()) {
      return InputError("plugins." + name, name, "unknown plugin");
    }
    DROVER_ASSIGN_OR_RETURN(auto built, plugin->second.make(PluginContext(
                                            config, name, section, clock)));
    components.plugins.push_back(std::move(built));
  }
  return components;
}

}  // namespace drover::worker
