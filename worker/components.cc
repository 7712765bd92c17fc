#include "worker/components.h"

#include <unistd.h>

#include <algorithm>
#include <functional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/process/command_runner.h"
#include "common/status.h"
#include "engines/docker/docker_client.h"
#include "engines/docker/docker_engine.h"
#include "engines/macos/macos_engine.h"
#include "engines/native/native_engine.h"
#include "engines/native/task_user.h"
#include "engines/users/managed_user_provider.h"
#include "engines/users/useradd_user_manager.h"
#include "plugins/artifacts/artifacts_plugin.h"
#include "plugins/env/env_plugin.h"
#include "plugins/exitstatus/exitstatus_plugin.h"
#include "plugins/livelog/livelog_plugin.h"
#include "plugins/logprefix/logprefix_plugin.h"
#include "plugins/maxruntime/maxruntime_plugin.h"
#include "plugins/mounts/mounts_plugin.h"

namespace drover::worker {
namespace {

// An engine plus the helpers it borrows (command runner, user manager,
// user provider), which must outlive it, and extra start-up clean-up.
class OwningEngine final : public engines::Engine {
 public:
  OwningEngine(std::vector<std::shared_ptr<void>> helpers,
               std::unique_ptr<engines::Engine> engine,
               std::function<absl::Status()> extra_cleanup)
      : helpers_(std::move(helpers)),
        engine_(std::move(engine)),
        extra_cleanup_(std::move(extra_cleanup)) {}

  std::string_view Name() const override { return engine_->Name(); }
  std::vector<std::string> PayloadKeys() const override {
    return engine_->PayloadKeys();
  }
  absl::Status ValidatePayload(const nlohmann::json& payload) const override {
    return engine_->ValidatePayload(payload);
  }
  absl::StatusOr<std::unique_ptr<engines::Sandbox>> NewSandbox(
      engines::SandboxSpec spec) override {
    return engine_->NewSandbox(std::move(spec));
  }
  absl::Status CleanUpLeftovers() override {
    absl::Status status = engine_->CleanUpLeftovers();
    // Processes first (the engine), then the users they ran as.
    if (extra_cleanup_) {
      absl::Status extra = extra_cleanup_();
      if (status.ok()) status = extra;
    }
    return status;
  }
  absl::Status CheckHealth() override { return engine_->CheckHealth(); }

 private:
  // Declared before engine_ so they are destroyed after it.
  std::vector<std::shared_ptr<void>> helpers_;
  std::unique_ptr<engines::Engine> engine_;
  std::function<absl::Status()> extra_cleanup_;
};

// Re-labels a DockerEngineOptionsFromFlags error ("docker-max-cpus") with
// the config field it came from ("engine.config.max_cpus").
absl::Status DockerFieldError(const absl::Status& status,
                              const std::string& prefix) {
  ErrorInfo info = GetErrorInfo(status);
  auto it = info.details.find("field");
  if (it == info.details.end() || it->second.rfind("docker-", 0) != 0) {
    return status;
  }
  std::string key = it->second.substr(7);
  std::replace(key.begin(), key.end(), '-', '_');
  info.details["field"] = prefix + "." + key;
  return MakeError(info.code,
                   absl::StrCat(prefix, ".", key, ": ", info.message),
                   info.details);
}

absl::StatusOr<engines::docker::DockerEngineFlags> ParseDockerFlags(
    const ComponentContext& context) {
  const std::string& prefix = context.field;
  engines::docker::DockerEngineFlags flags;
  const nlohmann::json& config = context.config;
  if (config.is_null()) return flags;
  if (!config.is_object()) {
    return InputError(prefix, config.dump(), "expected an object");
  }
  auto string_field = [&](const std::string& key, const nlohmann::json& value,
                          std::string* out) -> absl::Status {
    if (!value.is_string()) {
      return InputError(prefix + "." + key, value.dump(), "expected a string");
    }
    *out = value.get<std::string>();
    return absl::OkStatus();
  };
  auto int_field = [&](const std::string& key, const nlohmann::json& value,
                       int64_t* out) -> absl::Status {
    if (!value.is_number_integer()) {
      return InputError(prefix + "." + key, value.dump(),
                        "expected a whole number");
    }
    *out = value.get<int64_t>();
    return absl::OkStatus();
  };
  for (const auto& [key, value] : config.items()) {
    if (key == "socket") {
      DROVER_RETURN_IF_ERROR(string_field(key, value, &flags.socket));
    } else if (key == "working_dir") {
      DROVER_RETURN_IF_ERROR(string_field(key, value, &flags.working_dir));
    } else if (key == "network_mode") {
      DROVER_RETURN_IF_ERROR(string_field(key, value, &flags.network_mode));
    } else if (key == "privileged_scope") {
      DROVER_RETURN_IF_ERROR(string_field(key, value, &flags.privileged_scope));
    } else if (key == "default_memory_mb") {
      DROVER_RETURN_IF_ERROR(int_field(key, value, &flags.default_memory_mb));
    } else if (key == "max_memory_mb") {
      DROVER_RETURN_IF_ERROR(int_field(key, value, &flags.max_memory_mb));
    } else if (key == "pull_timeout_seconds") {
      DROVER_RETURN_IF_ERROR(
          int_field(key, value, &flags.pull_timeout_seconds));
    } else if (key == "max_cpus") {
      if (!value.is_number()) {
        return InputError(prefix + "." + key, value.dump(),
                          "expected a number");
      }
      flags.max_cpus = value.get<double>();
    } else if (key == "allow_privileged") {
      if (!value.is_boolean()) {
        return InputError(prefix + "." + key, value.dump(),
                          "expected true or false");
      }
      flags.allow_privileged = value.get<bool>();
    } else if (key == "registry_auth") {
      if (!value.is_object()) {
        return InputError(prefix + ".registry_auth", "",
                          "expected {\"<registry>\": {\"username\": ..., "
                          "\"password\": ...}}");
      }
      for (const auto& [registry, auth] : value.items()) {
        const std::string field = prefix + ".registry_auth." + registry;
        // Never echo the password.
        if (!auth.is_object() || !auth.contains("username") ||
            !auth.contains("password") || !auth["username"].is_string() ||
            !auth["password"].is_string() || auth.size() != 2) {
          return InputError(field, registry,
                            "expected {\"username\": ..., \"password\": ...}");
        }
        flags.registry_auth.push_back(
            absl::StrCat(registry, "=", auth["username"].get<std::string>(),
                         ":", auth["password"].get<std::string>()));
      }
    } else {
      return InputError(
          prefix + "." + key, key,
          "unknown docker engine setting (socket, working_dir, network_mode, "
          "default_memory_mb, max_memory_mb, max_cpus, allow_privileged, "
          "privileged_scope, pull_timeout_seconds, registry_auth)");
    }
  }
  if (flags.socket.empty() || flags.socket.front() != '/') {
    return InputError(prefix + ".socket", flags.socket,
                      "the docker socket must be an absolute path");
  }
  return flags;
}

// The plugin's section with "ca_file" defaulted to the worker's own CA
// file, so an https queue needs configuring once.
nlohmann::json WithWorkerCaFile(const ComponentContext& context) {
  nlohmann::json config = context.config;
  if (config.is_null()) config = nlohmann::json::object();
  if (config.is_object() && !config.contains("ca_file") &&
      !context.tls_ca_file.empty()) {
    config["ca_file"] = context.tls_ca_file;
  }
  return config;
}

absl::Status RequireRoot(const std::string& field, const std::string& value,
                         const std::string& what) {
  if (::geteuid() != 0) {
    return InputError(field, value, what + " needs a worker running as root");
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status CheckNativeEngineConfig(const ComponentContext& context) {
  DROVER_ASSIGN_OR_RETURN(engines::native::NativeEngineOptions options,
                          engines::native::ParseNativeEngineConfig(
                              context.config, context.work_dir, context.field));
  if (options.per_task_user) {
    DROVER_RETURN_IF_ERROR(
        RequireRoot(context.field + ".per_task_user", "true", "per_task_user"));
  }
  if (!options.run_as.empty()) {
    DROVER_RETURN_IF_ERROR(
        RequireRoot(context.field + ".run_as", options.run_as, "run_as"));
    DROVER_RETURN_IF_ERROR(engines::native::ExistingUserProvider::Lookup(
                               options.run_as, context.field + ".run_as")
                               .status());
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<engines::Engine>> MakeNativeEngine(
    const ComponentContext& context) {
  DROVER_RETURN_IF_ERROR(CheckNativeEngineConfig(context));
  DROVER_ASSIGN_OR_RETURN(engines::native::NativeEngineOptions options,
                          engines::native::ParseNativeEngineConfig(
                              context.config, context.work_dir, context.field));
  std::vector<std::shared_ptr<void>> helpers;
  std::function<absl::Status()> cleanup;
  if (options.per_task_user) {
    auto runner = std::make_shared<process::SubprocessCommandRunner>();
    auto manager =
        std::make_shared<engines::users::UseraddUserManager>(*runner);
    DROVER_ASSIGN_OR_RETURN(
        std::unique_ptr<engines::users::ManagedUserProvider> provider,
        engines::users::ManagedUserProvider::Create(manager.get(),
                                                    engines::users::NewUser{}));
    std::shared_ptr<engines::users::ManagedUserProvider> shared_provider =
        std::move(provider);
    options.user_provider = shared_provider.get();
    cleanup = [shared_provider] {
      return shared_provider->DeleteLeftoverUsers();
    };
    // Destroyed in reverse: provider, manager, runner.
    helpers = {runner, manager, shared_provider};
  }
  DROVER_ASSIGN_OR_RETURN(
      std::unique_ptr<engines::native::NativeEngine> engine,
      engines::native::NativeEngine::Create(std::move(options)));
  if (helpers.empty())
    return std::unique_ptr<engines::Engine>(std::move(engine));
  return std::unique_ptr<engines::Engine>(new OwningEngine(
      std::move(helpers), std::move(engine), std::move(cleanup)));
}

absl::Status CheckMacosEngineConfig(const ComponentContext& context) {
  DROVER_ASSIGN_OR_RETURN(engines::macos::MacosEngineOptions options,
                          engines::macos::ParseMacosEngineConfig(
                              context.config, context.work_dir, context.field));
  if (options.create_user) {
    DROVER_RETURN_IF_ERROR(
        RequireRoot(context.field + ".create_user", "true", "create_user"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<engines::Engine>> MakeMacosEngine(
    const ComponentContext& context) {
  DROVER_ASSIGN_OR_RETURN(engines::macos::MacosEngineOptions options,
                          engines::macos::ParseMacosEngineConfig(
                              context.config, context.work_dir, context.field));
  std::vector<std::shared_ptr<void>> helpers;
  engines::users::UserManager* users = nullptr;
  if (options.create_user) {
    auto runner = std::make_shared<process::SubprocessCommandRunner>();
    std::shared_ptr<engines::users::UserManager> manager =
        engines::macos::MakeUserManager(options, *runner);
    users = manager.get();
    helpers = {runner, manager};
  }
  DROVER_ASSIGN_OR_RETURN(
      std::unique_ptr<engines::macos::MacosEngine> engine,
      engines::macos::MacosEngine::Create(std::move(options), users));
  return std::unique_ptr<engines::Engine>(
      new OwningEngine(std::move(helpers), std::move(engine), nullptr));
}

absl::Status CheckDockerEngineConfig(const ComponentContext& context) {
  DROVER_ASSIGN_OR_RETURN(engines::docker::DockerEngineFlags flags,
                          ParseDockerFlags(context));
  auto options = engines::docker::DockerEngineOptionsFromFlags(
      flags, context.worker_group, context.worker_id);
  if (!options.ok()) return DockerFieldError(options.status(), context.field);
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<engines::Engine>> MakeDockerEngine(
    const ComponentContext& context) {
  DROVER_ASSIGN_OR_RETURN(engines::docker::DockerEngineFlags flags,
                          ParseDockerFlags(context));
  auto options = engines::docker::DockerEngineOptionsFromFlags(
      flags, context.worker_group, context.worker_id);
  if (!options.ok()) return DockerFieldError(options.status(), context.field);
  engines::docker::DockerClientOptions client_options;
  client_options.socket_path = flags.socket;
  auto api = std::make_shared<engines::docker::DockerClient>(client_options);
  return std::unique_ptr<engines::Engine>(
      new engines::docker::DockerEngine(std::move(*options), std::move(api)));
}

absl::StatusOr<std::unique_ptr<plugins::Plugin>> MakeEnvPlugin(
    const ComponentContext& context) {
  DROVER_ASSIGN_OR_RETURN(
      plugins::env::EnvPluginOptions options,
      plugins::env::ParseEnvPluginConfig(context.config, context.field));
  return std::unique_ptr<plugins::Plugin>(
      new plugins::env::EnvPlugin(std::move(options)));
}

absl::StatusOr<std::unique_ptr<plugins::Plugin>> MakeMaxRunTimePlugin(
    const ComponentContext& context) {
  DROVER_ASSIGN_OR_RETURN(plugins::maxruntime::MaxRunTimeOptions options,
                          plugins::maxruntime::ParseMaxRunTimeConfig(
                              context.config, context.field));
  return std::unique_ptr<plugins::Plugin>(
      new plugins::maxruntime::MaxRunTimePlugin(options));
}

absl::StatusOr<std::unique_ptr<plugins::Plugin>> MakeExitStatusPlugin(
    const ComponentContext& context) {
  return plugins::exitstatus::NewExitStatusPlugin(context.config);
}

absl::StatusOr<std::unique_ptr<plugins::Plugin>> MakeLogPrefixPlugin(
    const ComponentContext& context) {
  DROVER_ASSIGN_OR_RETURN(
      plugins::logprefix::LogPrefixOptions options,
      plugins::logprefix::ParseLogPrefixConfig(context.config, context.field));
  return std::unique_ptr<plugins::Plugin>(
      new plugins::logprefix::LogPrefixPlugin(options, *context.clock));
}

absl::StatusOr<std::unique_ptr<plugins::Plugin>> MakeMountsPlugin(
    const ComponentContext& context) {
  return plugins::mounts::NewMountsPlugin(WithWorkerCaFile(context),
                                          context.field);
}

absl::StatusOr<std::unique_ptr<plugins::Plugin>> MakeArtifactsPlugin(
    const ComponentContext& context) {
  return plugins::artifacts::NewArtifactsPlugin(WithWorkerCaFile(context),
                                                context.field);
}

absl::StatusOr<std::unique_ptr<plugins::Plugin>> MakeLiveLogPlugin(
    const ComponentContext& context) {
  return plugins::livelog::NewLiveLogPlugin(WithWorkerCaFile(context),
                                            context.work_dir, context.field);
}

}  // namespace drover::worker
