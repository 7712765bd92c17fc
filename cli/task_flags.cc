#include "cli/task_flags.h"

#include <utility>

#include "client/time_spec.h"
#include "common/status.h"

namespace drover::cli {
namespace {

using nlohmann::json;

absl::StatusOr<json> ParseObjectFlag(std::string_view flag,
                                     const std::string& text) {
  json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) {
    return InputError(flag, text, std::string(flag) + " is not valid JSON");
  }
  if (!value.is_object()) {
    return InputError(
        flag, text,
        std::string(flag) + " must be a JSON object, got " + value.type_name());
  }
  return value;
}

// "a=b=c" -> {"a", "b=c"}; the name must be non-empty.
absl::StatusOr<std::pair<std::string, std::string>> SplitAssignment(
    std::string_view flag, const std::string& text, std::string_view shape) {
  size_t eq = text.find('=');
  if (eq == std::string::npos || eq == 0) {
    return InputError(flag, text,
                      std::string(flag) + " expects " + std::string(shape));
  }
  return std::make_pair(text.substr(0, eq), text.substr(eq + 1));
}

// Lists given by flags extend what the file has; a non-array there is left
// for TaskDefinitionFromJson to report under its own name.
void AppendStrings(json* doc, const char* key,
                   const std::vector<std::string>& values) {
  if (values.empty()) return;
  json& list = (*doc)[key];
  if (list.is_null()) list = json::array();
  if (!list.is_array()) return;
  for (const auto& v : values) list.push_back(v);
}

json& ObjectMember(json* doc, const char* key) {
  json& member = (*doc)[key];
  if (member.is_null()) member = json::object();
  return member;
}

}  // namespace

TaskDefaults DefaultTaskDefaults(std::string_view user,
                                 std::string_view host_name) {
  TaskDefaults defaults;
  std::string host = host_name.empty() ? "localhost" : std::string(host_name);
  std::string who = user.empty() ? "drover" : std::string(user);
  defaults.owner = who + "@" + host;
  defaults.source = "http://" + host + "/drover-cli";
  return defaults;
}

absl::Status ApplyTaskFlags(const TaskFlags& flags,
                            const TaskDefaults& defaults, json* doc) {
  if (!doc->is_object()) {
    return InputError("task", doc->dump(),
                      "a task definition must be a JSON object");
  }
  auto set = [&](const char* key, const std::optional<std::string>& value) {
    if (value) (*doc)[key] = *value;
  };
  set("taskQueueId", flags.queue);
  set("schedulerId", flags.scheduler_id);
  set("taskGroupId", flags.task_group_id);
  AppendStrings(doc, "dependencies", flags.dependencies);
  set("requires", flags.requires_rule);
  AppendStrings(doc, "routes", flags.routes);
  set("priority", flags.priority);
  if (flags.retries) (*doc)["retries"] = *flags.retries;
  set("created", flags.created);
  set("deadline", flags.deadline);
  set("expires", flags.expires);
  AppendStrings(doc, "scopes", flags.scopes);

  if (flags.payload) {
    DROVER_ASSIGN_OR_RETURN((*doc)["payload"],
                            ParseObjectFlag("--payload", *flags.payload));
  }
  bool touches_payload = !flags.commands.empty() || !flags.env.empty() ||
                         flags.max_run_time.has_value();
  if (touches_payload) {
    json& payload = ObjectMember(doc, "payload");
    if (!payload.is_object()) {
      return InputError("payload", payload.dump(),
                        "--command, --env and --max-run-time need payload "
                        "to be a JSON object");
    }
    if (!flags.commands.empty()) {
      json commands = json::array();
      for (const auto& text : flags.commands) {
        DROVER_ASSIGN_OR_RETURN(std::vector<std::string> argv,
                                SplitCommandWords(text));
        commands.push_back(argv);
      }
      // One command is written as its argv; several as a list of them, the
      // two shapes the engines accept.
      payload["command"] =
          commands.size() == 1 ? commands[0] : std::move(commands);
    }
    if (!flags.env.empty()) {
      json& env = ObjectMember(&payload, "env");
      if (!env.is_object()) {
        return InputError("payload.env", env.dump(),
                          "--env needs payload.env to be a JSON object");
      }
      for (const auto& item : flags.env) {
        DROVER_ASSIGN_OR_RETURN(auto kv,
                                SplitAssignment("--env", item, "NAME=VALUE"));
        env[kv.first] = kv.second;
      }
    }
    if (flags.max_run_time) {
      DROVER_ASSIGN_OR_RETURN(
          absl::Duration d,
          client::ParseRelativeDuration(*flags.max_run_time, "--max-run-time"));
      if (d <= absl::ZeroDuration()) {
        return InputError("--max-run-time", *flags.max_run_time,
                          "--max-run-time must be positive");
      }
      payload["maxRunTime"] = absl::ToInt64Seconds(d);
    }
  }

  if (flags.name || flags.description || flags.owner || flags.source) {
    json& metadata = ObjectMember(doc, "metadata");
    if (!metadata.is_object()) {
      return InputError("metadata", metadata.dump(),
                        "metadata flags need metadata to be a JSON object");
    }
    if (flags.name) metadata["name"] = *flags.name;
    if (flags.description) metadata["description"] = *flags.description;
    if (flags.owner) metadata["owner"] = *flags.owner;
    if (flags.source) metadata["source"] = *flags.source;
  }
  if (!flags.tags.empty()) {
    json& tags = ObjectMember(doc, "tags");
    if (!tags.is_object()) {
      return InputError("tags", tags.dump(),
                        "--tag needs tags to be a JSON object");
    }
    for (const auto& item : flags.tags) {
      DROVER_ASSIGN_OR_RETURN(auto kv,
                              SplitAssignment("--tag", item, "KEY=VALUE"));
      tags[kv.first] = kv.second;
    }
  }
  if (flags.extra) {
    DROVER_ASSIGN_OR_RETURN((*doc)["extra"],
                            ParseObjectFlag("--extra", *flags.extra));
  }

  // Defaults fill only what is still missing, and only inside a metadata
  // object that exists or that they create; a wrongly typed value stays for
  // the converter to report.
  if (!doc->contains("deadline") || (*doc)["deadline"].is_null()) {
    (*doc)["deadline"] = defaults.deadline;
  }
  json& metadata = ObjectMember(doc, "metadata");
  if (metadata.is_object()) {
    auto fill = [&](const char* key, const json& value) {
      if (!metadata.contains(key) || metadata[key].is_null()) {
        metadata[key] = value;
      }
    };
    if (metadata.contains("name") && metadata["name"].is_string()) {
      fill("description", metadata["name"]);
    }
    fill("owner", defaults.owner);
    fill("source", defaults.source);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> SplitCommandWords(
    std::string_view text, std::string_view field) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;
  size_t i = 0;
  auto unterminated = [&](char quote) {
    return InputError(field, text,
                      std::string("unterminated ") + quote + " quote");
  };
  while (i < text.size()) {
    char c = text[i];
    if (c == ' ' || c == '\t' || c == '\n') {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
      ++i;
    } else if (c == '\'') {
      in_word = true;
      size_t close = text.find('\'', i + 1);
      if (close == std::string_view::npos) return unterminated('\'');
      word.append(text.substr(i + 1, close - i - 1));
      i = close + 1;
    } else if (c == '"') {
      in_word = true;
      ++i;
      bool closed = false;
      while (i < text.size()) {
        char d = text[i];
        if (d == '"') {
          closed = true;
          ++i;
          break;
        }
        if (d == '\\' && i + 1 < text.size() &&
            (text[i + 1] == '"' || text[i + 1] == '\\' || text[i + 1] == '$' ||
             text[i + 1] == '`')) {
          word.push_back(text[i + 1]);
          i += 2;
          continue;
        }
        word.push_back(d);
        ++i;
      }
      if (!closed) return unterminated('"');
    } else if (c == '\\') {
      if (i + 1 >= text.size()) {
        return InputError(field, text, "trailing backslash");
      }
      in_word = true;
      word.push_back(text[i + 1]);
      i += 2;
    } else {
      in_word = true;
      word.push_back(c);
      ++i;
    }
  }
  if (in_word) words.push_back(std::move(word));
  if (words.empty()) return InputError(field, text, "the command is empty");
  return words;
}

}  // namespace drover::cli
