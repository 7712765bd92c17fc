#include "plugins/env/env_plugin.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace drover::plugins::env {
namespace {

bool IsReserved(const std::string& name) {
  const auto& reserved = ReservedVariables();
  return std::find(reserved.begin(), reserved.end(), name) != reserved.end();
}

// Empty when `name` can be an environment variable name, else why not.
std::string NameProblem(const std::string& name) {
  if (name.empty()) return "variable names cannot be empty";
  if (name.find('=') != std::string::npos)
    return "variable names cannot hold '='";
  if (name.find('\0') != std::string::npos)
    return "variable names cannot hold NUL";
  return "";
}

absl::Status Malformed(const std::string& field, const std::string& value,
                       const std::string& message) {
  return MakeError(ErrorCode::kMalformedPayload,
                   absl::StrCat(field, ": ", message),
                   {{"field", field}, {"value", value}});
}

class EnvTaskPlugin final : public TaskPlugin {
 public:
  EnvTaskPlugin(const EnvPluginOptions& options, const TaskInfo& info)
      : options_(options), info_(info) {}

  absl::Status BuildSandbox(engines::SandboxSpec& spec) override {
    for (const auto& [name, value] : options_.extra) spec.env[name] = value;
    if (auto env = info_.payload.find("env");
        env != info_.payload.end() && env->is_object()) {
      for (const auto& [name, value] : env->items()) {
        spec.env[name] = value.get<std::string>();
      }
    }
    spec.env["TASK_ID"] = info_.task_id;
    spec.env["RUN_ID"] = absl::StrCat(info_.run_id);
    spec.env["DROVER_TASK_QUEUE_ID"] = info_.task_queue_id;
    spec.env["DROVER_WORKER_GROUP"] = info_.worker_group;
    spec.env["DROVER_WORKER_ID"] = info_.worker_id;
    auto set_if = [&spec](const char* name, const std::string& value) {
      if (value.empty()) {
        spec.env.erase(name);
      } else {
        spec.env[name] = value;
      }
    };
    set_if("DROVER_QUEUE_URL", info_.queue_address);
    set_if("DROVER_URL", info_.queue_address);
    // A running process cannot be handed renewed credentials: the task sees
    // those valid when its sandbox is built (docs/worker.md).
    const TaskCredentials credentials =
        info_.credentials ? info_.credentials() : TaskCredentials{};
    set_if("DROVER_CLIENT_ID", credentials.client_id);
    set_if("DROVER_ACCESS_TOKEN", credentials.access_token);
    set_if("DROVER_CERTIFICATE", credentials.certificate);
    return absl::OkStatus();
  }

 private:
  const EnvPluginOptions& options_;
  const TaskInfo info_;
};

}  // namespace

const std::vector<std::string>& ReservedVariables() {
  static const std::vector<std::string> kReserved = {"TASK_ID",
                                                     "RUN_ID",
                                                     "DROVER_TASK_QUEUE_ID",
                                                     "DROVER_WORKER_GROUP",
                                                     "DROVER_WORKER_ID",
                                                     "DROVER_QUEUE_URL",
                                                     "DROVER_URL",
                                                     "DROVER_CLIENT_ID",
                                                     "DROVER_ACCESS_TOKEN",
                                                     "DROVER_CERTIFICATE"};
  return kReserved;
}

absl::StatusOr<EnvPluginOptions> ParseEnvPluginConfig(
    const nlohmann::json& config, std::string_view field) {
  std::string prefix(field);
  EnvPluginOptions options;
  if (config.is_null()) return options;
  if (!config.is_object()) {
    return InputError(prefix, config.dump(), "expected an object");
  }
  for (const auto& [key, value] : config.items()) {
    std::string key_field = absl::StrCat(prefix, ".", key);
    if (key != "extra") {
      return InputError(key_field, key, "unknown env plugin option (extra)");
    }
    if (!value.is_object()) {
      return InputError(key_field, value.dump(),
                        "expected an object of strings");
    }
    for (const auto& [name, text] : value.items()) {
      std::string name_field = absl::StrCat(key_field, ".", name);
      if (std::string problem = NameProblem(name); !problem.empty()) {
        return InputError(name_field, name, problem);
      }
      if (IsReserved(name)) {
        return InputError(name_field, name, "the worker sets this variable");
      }
      if (!text.is_string()) {
        return InputError(name_field, text.dump(), "expected a string");
      }
      options.extra[name] = text.get<std::string>();
    }
  }
  return options;
}

absl::Status EnvPlugin::ValidatePayload(const nlohmann::json& payload) const {
  if (!payload.is_object()) return absl::OkStatus();  // the engine says so
  auto env = payload.find("env");
  if (env == payload.end()) return absl::OkStatus();
  if (!env->is_object()) {
    return Malformed("payload.env", env->dump(),
                     "env is an object of string values");
  }
  for (const auto& [name, value] : env->items()) {
    std::string field = absl::StrCat("payload.env.", name);
    if (std::string problem = NameProblem(name); !problem.empty()) {
      return Malformed(field, name, problem);
    }
    if (IsReserved(name)) {
      return Malformed(field, name,
                       "the worker sets this variable; tasks cannot");
    }
    if (!value.is_string()) {
      return Malformed(field, value.dump(), "environment values are strings");
    }
    if (value.get<std::string>().find('\0') != std::string::npos) {
      return Malformed(field, value.get<std::string>(),
                       "environment values cannot hold NUL");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<TaskPlugin>> EnvPlugin::NewTaskPlugin(
    const TaskInfo& info) {
  return std::unique_ptr<TaskPlugin>(new EnvTaskPlugin(options_, info));
}

absl::StatusOr<std::unique_ptr<Plugin>> NewEnvPlugin(
    const nlohmann::json& config) {
  DROVER_ASSIGN_OR_RETURN(EnvPluginOptions options,
                          ParseEnvPluginConfig(config));
  return std::unique_ptr<Plugin>(new EnvPlugin(std::move(options)));
}

}  // namespace drover::plugins::env
