#include "engines/native/payload.h"

#include "absl/strings/str_cat.h"
#include "common/status.h"

namespace drover::engines::native {
namespace {

constexpr std::string_view kPrefix = "payload";

std::string Field(std::string_view path) {
  return std::string(kPrefix) + std::string(path);
}

bool HasNul(const std::string& s) { return s.find('\0') != std::string::npos; }

absl::StatusOr<std::vector<std::string>> ParseArgv(const nlohmann::json& argv,
                                                   const std::string& field) {
  if (!argv.is_array()) {
    return MalformedPayloadError(field, argv,
                                 "a command is an array of strings (argv)");
  }
  if (argv.empty()) {
    return MalformedPayloadError(field, argv, "a command cannot be empty");
  }
  std::vector<std::string> out;
  for (size_t i = 0; i < argv.size(); ++i) {
    std::string item_field = absl::StrCat(field, "[", i, "]");
    if (!argv[i].is_string()) {
      return MalformedPayloadError(item_field, argv[i],
                                   "command arguments are strings");
    }
    std::string arg = argv[i].get<std::string>();
    if (HasNul(arg)) {
      return MalformedPayloadError(item_field, argv[i],
                                   "command arguments cannot contain NUL");
    }
    if (i == 0 && arg.empty()) {
      return MalformedPayloadError(item_field, argv[i],
                                   "the program name cannot be empty");
    }
    out.push_back(std::move(arg));
  }
  return out;
}

absl::Status CheckEnv(const nlohmann::json& env) {
  if (!env.is_object()) {
    return MalformedPayloadError(Field(".env"), env,
                                 "env is an object of strings");
  }
  for (const auto& [name, value] : env.items()) {
    std::string field = Field(absl::StrCat(".env.", name));
    if (name.empty() || name.find('=') != std::string::npos || HasNul(name)) {
      return MalformedPayloadError(
          field, name, "variable names are non-empty, without '=' or NUL");
    }
    if (!value.is_string()) {
      return MalformedPayloadError(field, value,
                                   "environment values are strings");
    }
    if (HasNul(value.get<std::string>())) {
      return MalformedPayloadError(field, value,
                                   "environment values cannot contain NUL");
    }
  }
  return absl::OkStatus();
}

absl::Status CheckArrayOfObjects(const nlohmann::json& value,
                                 const std::string& key) {
  std::string field = Field(absl::StrCat(".", key));
  if (!value.is_array()) {
    return MalformedPayloadError(field, value,
                                 absl::StrCat(key, " is an array of objects"));
  }
  for (size_t i = 0; i < value.size(); ++i) {
    if (!value[i].is_object()) {
      return MalformedPayloadError(absl::StrCat(field, "[", i, "]"), value[i],
                                   absl::StrCat(key, " entries are objects"));
    }
  }
  return absl::OkStatus();
}

absl::Status CheckOnExitStatus(const nlohmann::json& value) {
  if (!value.is_object()) {
    return MalformedPayloadError(Field(".onExitStatus"), value,
                                 "onExitStatus is an object");
  }
  auto retry = value.find("retry");
  if (retry == value.end()) return absl::OkStatus();
  std::string field = Field(".onExitStatus.retry");
  if (!retry->is_array()) {
    return MalformedPayloadError(field, *retry,
                                 "retry is an array of exit codes");
  }
  for (size_t i = 0; i < retry->size(); ++i) {
    const auto& code = (*retry)[i];
    if (!code.is_number_integer() || code.get<int64_t>() < 1 ||
        code.get<int64_t>() > 255) {
      return MalformedPayloadError(absl::StrCat(field, "[", i, "]"), code,
                                   "exit codes to retry are integers 1..255");
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status MalformedPayloadError(std::string_view field,
                                   const nlohmann::json& value,
                                   std::string_view message) {
  std::string shown =
      value.is_string() ? value.get<std::string>() : value.dump();
  return MakeError(ErrorCode::kMalformedPayload,
                   std::string(field) + ": " + std::string(message),
                   {{"field", std::string(field)}, {"value", shown}});
}

std::vector<std::string> NativePayloadKeys() {
  return {"command",   "env",          "maxRunTime",
          "artifacts", "onExitStatus", "mounts"};
}

absl::StatusOr<NativePayload> ParseNativePayload(
    const nlohmann::json& payload) {
  if (!payload.is_object()) {
    return MalformedPayloadError(kPrefix, payload,
                                 "the payload is a JSON object");
  }
  NativePayload out;
  auto command = payload.find("command");
  if (command == payload.end()) {
    return MalformedPayloadError(Field(".command"), nullptr,
                                 "command is required");
  }
  if (!command->is_array() || command->empty()) {
    return MalformedPayloadError(
        Field(".command"), *command,
        "command is an argv array or a non-empty array of argv arrays");
  }
  if ((*command)[0].is_array()) {
    for (size_t i = 0; i < command->size(); ++i) {
      DROVER_ASSIGN_OR_RETURN(
          auto argv,
          ParseArgv((*command)[i], Field(absl::StrCat(".command[", i, "]"))));
      out.commands.push_back(std::move(argv));
    }
  } else {
    DROVER_ASSIGN_OR_RETURN(auto argv, ParseArgv(*command, Field(".command")));
    out.commands.push_back(std::move(argv));
  }

  if (auto env = payload.find("env"); env != payload.end()) {
    DROVER_RETURN_IF_ERROR(CheckEnv(*env));
  }
  if (auto max = payload.find("maxRunTime"); max != payload.end()) {
    if (!max->is_number_integer() || max->get<int64_t>() < 1) {
      return MalformedPayloadError(Field(".maxRunTime"), *max,
                                   "maxRunTime is a whole number of seconds "
                                   ">= 1");
    }
  }
  if (auto artifacts = payload.find("artifacts"); artifacts != payload.end()) {
    DROVER_RETURN_IF_ERROR(CheckArrayOfObjects(*artifacts, "artifacts"));
  }
  if (auto mounts = payload.find("mounts"); mounts != payload.end()) {
    DROVER_RETURN_IF_ERROR(CheckArrayOfObjects(*mounts, "mounts"));
  }
  if (auto on_exit = payload.find("onExitStatus"); on_exit != payload.end()) {
    DROVER_RETURN_IF_ERROR(CheckOnExitStatus(*on_exit));
  }
  return out;
}

}  // namespace drover::engines::native
