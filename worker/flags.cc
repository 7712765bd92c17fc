#include "worker/flags.h"

#include <algorithm>
#include <charconv>

#include "common/config.h"
#include "common/status.h"
#include "worker/config.h"

namespace drover::worker {
namespace {

std::string ConfigKey(std::string flag) {
  std::replace(flag.begin(), flag.end(), '-', '_');
  return flag;
}

// Converts a textual value to the JSON type the config expects, so that
// "4" from the environment becomes the integer 4.
absl::StatusOr<nlohmann::ordered_json> Typed(const FlagSetting& setting,
                                             const std::string& text,
                                             const std::string& source) {
  switch (setting.kind) {
    case FlagSetting::Kind::kString:
      return nlohmann::ordered_json(text);
    case FlagSetting::Kind::kInteger: {
      long long value = 0;
      auto [end, ec] =
          std::from_chars(text.data(), text.data() + text.size(), value);
      if (ec != std::errc() || end != text.data() + text.size()) {
        return InputError(source, text, source + " must be a whole number");
      }
      return nlohmann::ordered_json(value);
    }
    case FlagSetting::Kind::kNumber: {
      try {
        size_t used = 0;
        double value = std::stod(text, &used);
        if (used == text.size()) return nlohmann::ordered_json(value);
      } catch (const std::exception&) {
      }
      return InputError(source, text, source + " must be a number");
    }
  }
  return InputError(source, text, "unsupported setting");
}

void Apply(nlohmann::ordered_json& doc, const std::string& key,
           nlohmann::ordered_json value) {
  if (key == "queue_url") {
    // One address from a higher-precedence source replaces a list.
    doc.erase("queue_urls");
  } else if (key == "engine") {
    // Keep the engine's settings only when they belong to the same engine.
    auto it = doc.find("engine");
    std::string current;
    if (it != doc.end() && it->is_object() && it->contains("name") &&
        (*it)["name"].is_string()) {
      current = (*it)["name"].get<std::string>();
    } else if (it != doc.end() && it->is_string()) {
      current = it->get<std::string>();
    }
    if (it != doc.end() && it->is_object() &&
        current == value.get<std::string>()) {
      return;
    }
    doc["engine"] = nlohmann::ordered_json{{"name", value}};
    return;
  }
  doc[key] = std::move(value);
}

}  // namespace

void AddWorkerFlags(CLI::App& app, WorkerFlags* flags) {
  app.add_option("--config", flags->config_file,
                 "JSON config file (docs/worker.md)")
      ->envname("DROVER_CONFIG");
  app.add_flag("--check-config", flags->check_config,
               "Validate the configuration (worker, engine, plugins), "
               "explain any error and exit: 0 valid, 2 invalid");
  using Kind = FlagSetting::Kind;
  struct Spec {
    const char* flag;
    Kind kind;
    const char* help;
  };
  const Spec specs[] = {
      {"queue-url", Kind::kString,
       "Queue address: host:port, http://host:port or https://host:port"},
      {"worker-pool-id", Kind::kString,
       "Worker pool <provisioner>/<worker-type> (also the task queue)"},
      {"worker-group", Kind::kString, "Worker group (default: host name)"},
      {"worker-id", Kind::kString, "Worker id (default: host name)"},
      {"capacity", Kind::kInteger, "Tasks run at once"},
      {"work-dir", Kind::kString, "Directory for task directories and logs"},
      {"engine", Kind::kString, "Engine name (native, docker, macos)"},
      {"shutdown-grace-seconds", Kind::kNumber,
       "On SIGTERM, how long running tasks may take to finish"},
      {"metrics-listen", Kind::kString,
       "host:port serving Prometheus /metrics (empty: off)"},
      {"log-format", Kind::kString, "Log format: text or json"},
      {"log-level", Kind::kString,
       "Log level: trace, debug, info, warn, error, critical, off"},
  };
  flags->settings.reserve(std::size(specs));
  for (const Spec& spec : specs) {
    flags->settings.push_back(FlagSetting{spec.flag, spec.kind, "", nullptr});
  }
  // Options are bound after the vector stopped growing, so the references
  // CLI11 keeps stay valid.
  for (FlagSetting& setting : flags->settings) {
    const Spec* spec =
        std::find_if(std::begin(specs), std::end(specs),
                     [&](const Spec& s) { return setting.flag == s.flag; });
    setting.option =
        app.add_option("--" + setting.flag, setting.value, spec->help);
  }
}

absl::StatusOr<nlohmann::ordered_json> MergeConfigSources(
    const WorkerFlags& flags, const client::EnvLookup& env) {
  nlohmann::ordered_json doc = nlohmann::ordered_json::object();
  for (const FlagSetting& setting : flags.settings) {
    const std::string variable = EnvName(setting.flag);
    if (auto value = env(variable)) {
      DROVER_ASSIGN_OR_RETURN(auto typed, Typed(setting, *value, variable));
      Apply(doc, ConfigKey(setting.flag), std::move(typed));
    }
  }
  if (!flags.config_file.empty()) {
    DROVER_ASSIGN_OR_RETURN(nlohmann::ordered_json file,
                            ReadConfigDocument(flags.config_file));
    if (!file.is_object()) {
      return InputError("config", flags.config_file,
                        "the config file must hold a JSON object");
    }
    for (auto& item : file.items()) {
      if (item.key() == "queue_urls") doc.erase("queue_url");
      if (item.key() == "queue_url") doc.erase("queue_urls");
      doc[item.key()] = item.value();
    }
  }
  for (const FlagSetting& setting : flags.settings) {
    if (setting.option == nullptr || setting.option->count() == 0) continue;
    DROVER_ASSIGN_OR_RETURN(auto typed,
                            Typed(setting, setting.value, "--" + setting.flag));
    Apply(doc, ConfigKey(setting.flag), std::move(typed));
  }
  return doc;
}

}  // namespace drover::worker
