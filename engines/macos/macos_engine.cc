#include "engines/macos/macos_engine.h"

#include <unistd.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status.h"
#include "engines/users/dscl_user_manager.h"
#include "engines/users/useradd_user_manager.h"

namespace drover::engines::macos {
namespace {

// What a task gets when the plugins did not set PATH: the system tools
// plus Homebrew's usual prefix, never the worker's own PATH.
constexpr char kDefaultPath[] = "/usr/local/bin:/usr/bin:/bin:/usr/sbin:/sbin";

// Keeps the user provider alive until the native sandbox (which deletes the
// task user when destroyed) is gone, even when the engine went first.
class MacosSandbox final : public Sandbox {
 public:
  MacosSandbox(std::shared_ptr<users::ManagedUserProvider> users,
               std::unique_ptr<Sandbox> inner)
      : users_(std::move(users)), inner_(std::move(inner)) {}

  ~MacosSandbox() override { inner_.reset(); }

  absl::Status Start() override { return inner_->Start(); }
  absl::StatusOr<Result> Wait() override { return inner_->Wait(); }
  void Abort() override { inner_->Abort(); }
  absl::Status Extract(const std::string& sandbox_path,
                       const std::filesystem::path& host_path) override {
    return inner_->Extract(sandbox_path, host_path);
  }

 private:
  const std::shared_ptr<users::ManagedUserProvider> users_;
  std::unique_ptr<Sandbox> inner_;
};

// Rewrites the field of an InputError from ValidateNewUser into the config
// key it came from (the keys match NewUser's fields but for the prefix).
absl::Status RenameField(const absl::Status& status,
                         const std::string& prefix) {
  if (status.ok()) return status;
  ErrorInfo info = GetErrorInfo(status);
  std::string field = info.details["field"];
  static const std::pair<const char*, const char*> kNames[] = {
      {"name_prefix", "user_prefix"},
  };
  for (const auto& [from, to] : kNames) {
    if (field == from) field = to;
  }
  return InputError(absl::StrCat(prefix, ".", field), info.details["value"],
                    info.message);
}

absl::StatusOr<uint32_t> UidValue(const nlohmann::json& value,
                                  const std::string& field) {
  if (!value.is_number_integer() || value.get<int64_t>() < 0 ||
      value.get<int64_t>() > 0x7ffffffe) {
    return InputError(field, value.dump(), "expected a uid (a whole number)");
  }
  return value.get<uint32_t>();
}

}  // namespace

MacosEngineOptions DefaultMacosEngineOptions(UserManagerKind kind) {
  MacosEngineOptions options;
  options.user_manager = kind;
  options.user_manager_options =
      kind == UserManagerKind::kDscl
          ? users::DsclUserManager::DefaultOptions()
          : users::UseraddUserManager::DefaultOptions();
  return options;
}

absl::StatusOr<MacosEngineOptions> ParseMacosEngineConfig(
    const nlohmann::json& config, const std::filesystem::path& work_dir,
    std::string_view field) {
  const std::string prefix(field);
  MacosEngineOptions options =
      DefaultMacosEngineOptions(MacosEngineOptions{}.user_manager);
  if (!config.is_null() && !config.is_object()) {
    return InputError(prefix, config.dump(), "expected an object");
  }
  nlohmann::json object = config.is_null() ? nlohmann::json::object() : config;

  // The manager decides the defaults of the other user settings.
  if (auto it = object.find("user_manager"); it != object.end()) {
    const std::string key_field = prefix + ".user_manager";
    if (*it == "dscl") {
      options = DefaultMacosEngineOptions(UserManagerKind::kDscl);
    } else if (*it == "useradd") {
      options = DefaultMacosEngineOptions(UserManagerKind::kUseradd);
    } else {
      return InputError(key_field, it->dump(),
                        "expected \"dscl\" (macOS) or \"useradd\" (Linux)");
    }
  }

  nlohmann::json native_config = nlohmann::json::object();
  for (const auto& [key, value] : object.items()) {
    const std::string key_field = absl::StrCat(prefix, ".", key);
    if (key == "user_manager") continue;
    if (key == "create_user" || key == "createUser") {
      if (!value.is_boolean()) {
        return InputError(key_field, value.dump(), "expected true or false");
      }
      options.create_user = value.get<bool>();
    } else if (key == "groups") {
      if (!value.is_array()) {
        return InputError(key_field, value.dump(),
                          "expected an array of group names");
      }
      options.user.groups.clear();
      for (size_t i = 0; i < value.size(); ++i) {
        if (!value[i].is_string()) {
          return InputError(absl::StrCat(key_field, "[", i, "]"),
                            value[i].dump(), "expected a group name");
        }
        options.user.groups.push_back(value[i].get<std::string>());
      }
    } else if (key == "user_prefix") {
      if (!value.is_string()) {
        return InputError(key_field, value.dump(), "expected a string");
      }
      options.user.name_prefix = value.get<std::string>();
    } else if (key == "uid_floor") {
      DROVER_ASSIGN_OR_RETURN(options.user.uid_floor,
                              UidValue(value, key_field));
    } else if (key == "uid_ceiling") {
      DROVER_ASSIGN_OR_RETURN(options.user.uid_ceiling,
                              UidValue(value, key_field));
    } else if (key == "home_root") {
      if (!value.is_string() ||
          !std::filesystem::path(value.get<std::string>()).is_absolute() ||
          value.get<std::string>() == "/") {
        return InputError(key_field, value.dump(),
                          "expected an absolute directory other than /");
      }
      options.user_manager_options.home_root = value.get<std::string>();
    } else if (key == "primary_group_id") {
      // Group 0 (wheel/root) would hand tasks root's group files.
      if (!value.is_number_integer() || value.get<int64_t>() <= 0 ||
          value.get<int64_t>() > 0x7ffffffe) {
        return InputError(key_field, value.dump(),
                          "expected a group id other than 0");
      }
      options.user_manager_options.primary_gid = value.get<gid_t>();
    } else if (key == "shell") {
      if (!value.is_string() ||
          !std::filesystem::path(value.get<std::string>()).is_absolute()) {
        return InputError(key_field, value.dump(), "expected an absolute path");
      }
      options.user_manager_options.shell = value.get<std::string>();
    } else if (key == "per_task_user" || key == "run_as") {
      return InputError(key_field, value.dump(),
                        "the macos engine manages task users itself; use "
                        "create_user");
    } else {
      // The native engine's keys; it rejects what it does not know.
      native_config[key] = value;
    }
  }
  DROVER_ASSIGN_OR_RETURN(options.native, native::ParseNativeEngineConfig(
                                              native_config, work_dir, field));
  if (options.create_user) {
    DROVER_RETURN_IF_ERROR(
        RenameField(users::ValidateNewUser(options.user), prefix));
  }
  return options;
}

std::unique_ptr<users::UserManager> MakeUserManager(
    const MacosEngineOptions& options, process::CommandRunner& runner) {
  if (options.user_manager == UserManagerKind::kDscl) {
    return std::make_unique<users::DsclUserManager>(
        runner, options.user_manager_options);
  }
  return std::make_unique<users::UseraddUserManager>(
      runner, options.user_manager_options);
}

absl::StatusOr<std::unique_ptr<MacosEngine>> MacosEngine::Create(
    MacosEngineOptions options, users::UserManager* users,
    native::ProcessLauncher* launcher) {
  if (!options.native.run_as.empty() || options.native.per_task_user ||
      options.native.user_provider != nullptr) {
    return InputError("native.run_as", options.native.run_as,
                      "the macos engine manages task users itself");
  }
  std::shared_ptr<users::ManagedUserProvider> provider;
  if (options.create_user) {
    if (users == nullptr) {
      return InputError("create_user", "true",
                        "per-task users need a user manager");
    }
    if (::geteuid() != 0) {
      return InputError("create_user", "true",
                        "creating a user per task needs a worker running as "
                        "root");
    }
    DROVER_ASSIGN_OR_RETURN(
        std::unique_ptr<users::ManagedUserProvider> made,
        users::ManagedUserProvider::Create(users, options.user));
    provider = std::move(made);
    options.native.per_task_user = true;
    options.native.user_provider = provider.get();
  }
  DROVER_ASSIGN_OR_RETURN(
      std::unique_ptr<native::NativeEngine> native,
      native::NativeEngine::Create(std::move(options.native), launcher));
  return std::unique_ptr<MacosEngine>(
      new MacosEngine(std::move(provider), std::move(native),
                      options.user_manager_options.shell));
}

MacosEngine::MacosEngine(std::shared_ptr<users::ManagedUserProvider> users,
                         std::unique_ptr<native::NativeEngine> native,
                         std::string shell)
    : users_(std::move(users)),
      native_(std::move(native)),
      shell_(std::move(shell)) {}

std::vector<std::string> MacosEngine::PayloadKeys() const {
  return native_->PayloadKeys();
}

absl::Status MacosEngine::ValidatePayload(const nlohmann::json& payload) const {
  return native_->ValidatePayload(payload);
}

absl::StatusOr<std::unique_ptr<Sandbox>> MacosEngine::NewSandbox(
    SandboxSpec spec) {
  // The native engine adds HOME, USER and LOGNAME of the task user.
  spec.env.try_emplace("PATH", kDefaultPath);
  if (users_ != nullptr) spec.env.try_emplace("SHELL", shell_);
  DROVER_ASSIGN_OR_RETURN(std::unique_ptr<Sandbox> inner,
                          native_->NewSandbox(std::move(spec)));
  return std::unique_ptr<Sandbox>(new MacosSandbox(users_, std::move(inner)));
}

absl::Status MacosEngine::CleanUpLeftovers() {
  // Processes and directories first (they may belong to leftover users),
  // then the users themselves.
  absl::Status status = native_->CleanUpLeftovers();
  if (users_ != nullptr) status.Update(users_->DeleteLeftoverUsers());
  return status;
}

}  // namespace drover::engines::macos
