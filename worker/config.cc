#include "worker/config.h"

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "client/endpoint.h"
#include "common/status.h"

namespace drover::worker {
namespace {

using OrderedJson = nlohmann::ordered_json;

// Keys accepted at the top level; anything else is a typo worth reporting.
const std::vector<std::string>& KnownKeys() {
  static const auto* keys =
      new std::vector<std::string>{"queue_url",
                                   "queue_urls",
                                   "tls_ca_file",
                                   "worker_pool_id",
                                   "worker_group",
                                   "worker_id",
                                   "capacity",
                                   "credentials",
                                   "registration",
                                   "engine",
                                   "plugins",
                                   "work_dir",
                                   "shutdown_grace_seconds",
                                   "reclaim_fraction",
                                   "log_retention_hours",
                                   "metrics_listen",
                                   "log_format",
                                   "log_level"};
  return *keys;
}

absl::Status TypeError(const std::string& field, const OrderedJson& value,
                       std::string_view want) {
  return InputError(
      field, value.dump(),
      absl::StrCat("\"", field, "\" must be ", std::string(want)));
}

absl::Status GetString(const OrderedJson& doc, const std::string& prefix,
                       const char* key, std::string* out) {
  auto it = doc.find(key);
  if (it == doc.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_string()) return TypeError(prefix + key, *it, "a string");
  *out = it->get<std::string>();
  return absl::OkStatus();
}

// Rejects keys of a nested object that the parser would otherwise ignore.
absl::Status OnlyKeys(const OrderedJson& object, const std::string& prefix,
                      const std::vector<std::string>& allowed) {
  for (const auto& item : object.items()) {
    if (std::find(allowed.begin(), allowed.end(), item.key()) ==
        allowed.end()) {
      return InputError(
          prefix + item.key(), item.value().dump(),
          absl::StrCat("unknown setting \"", prefix, item.key(),
                       "\"; known: ", absl::StrJoin(allowed, ", ")));
    }
  }
  return absl::OkStatus();
}

bool IsQueueIdPart(std::string_view part) {
  if (part.empty() || part.size() > 38) return false;
  return std::all_of(part.begin(), part.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

absl::StatusOr<std::string> ReadSmallFile(const std::string& path,
                                          const std::string& field) {
  std::ifstream in(path);
  if (!in) return InputError(field, path, "cannot read the file");
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  while (!text.empty() &&
         std::isspace(static_cast<unsigned char>(text.back()))) {
    text.pop_back();
  }
  if (text.empty()) return InputError(field, path, "the file is empty");
  return text;
}

// Non-negative number of some unit, converted to a duration.
absl::Status GetDuration(const OrderedJson& doc, const char* key,
                         absl::Duration unit, absl::Duration* out) {
  auto it = doc.find(key);
  if (it == doc.end() || it->is_null()) return absl::OkStatus();
  if (!it->is_number() || it->get<double>() < 0) {
    return TypeError(key, *it, "a non-negative number");
  }
  *out = unit * it->get<double>();
  return absl::OkStatus();
}

// The nearest existing directory at or above `path`.
std::filesystem::path NearestExisting(std::filesystem::path path) {
  std::error_code ec;
  while (!path.empty() && !std::filesystem::exists(path, ec)) {
    if (path == path.parent_path()) break;
    path = path.parent_path();
  }
  return path;
}

}  // namespace

absl::StatusOr<std::string> ReadRegistrationProof(const WorkerConfig& config) {
  return ReadSmallFile(config.registration_secret_file,
                       "registration.secret_file");
}

std::string HostName() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') {
    return "localhost";
  }
  // A fully qualified name has dots, which worker ids do not allow.
  std::string host(name);
  if (auto dot = host.find('.'); dot != std::string::npos) host.resize(dot);
  return host;
}

std::vector<std::pair<std::string, nlohmann::json>> DefaultPlugins() {
  return {{"logprefix", nlohmann::json::object()},
          {"env", nlohmann::json::object()},
          {"maxruntime", nlohmann::json::object()},
          {"exit-status", nlohmann::json::object()}};
}

absl::StatusOr<WorkerConfig> ParseWorkerConfig(const OrderedJson& doc) {
  if (!doc.is_object()) {
    return InputError("config", doc.dump(), "the config must be a JSON object");
  }
  DROVER_RETURN_IF_ERROR(OnlyKeys(doc, "", KnownKeys()));
  WorkerConfig config;
  config.worker_group = HostName();
  config.worker_id = HostName();

  if (auto it = doc.find("queue_url"); it != doc.end() && !it->is_null()) {
    if (!it->is_string()) return TypeError("queue_url", *it, "a string");
    config.queue_urls.push_back(it->get<std::string>());
  }
  if (auto it = doc.find("queue_urls"); it != doc.end() && !it->is_null()) {
    if (!it->is_array()) return TypeError("queue_urls", *it, "an array");
    for (size_t i = 0; i < it->size(); ++i) {
      if (!(*it)[i].is_string()) {
        return TypeError(absl::StrCat("queue_urls[", i, "]"), (*it)[i],
                         "a string");
      }
      config.queue_urls.push_back((*it)[i].get<std::string>());
    }
  }
  DROVER_RETURN_IF_ERROR(
      GetString(doc, "", "tls_ca_file", &config.tls_ca_file));
  DROVER_RETURN_IF_ERROR(
      GetString(doc, "", "worker_pool_id", &config.worker_pool_id));
  DROVER_RETURN_IF_ERROR(
      GetString(doc, "", "worker_group", &config.worker_group));
  DROVER_RETURN_IF_ERROR(GetString(doc, "", "worker_id", &config.worker_id));
  DROVER_RETURN_IF_ERROR(GetString(doc, "", "log_format", &config.log_format));
  DROVER_RETURN_IF_ERROR(GetString(doc, "", "log_level", &config.log_level));
  DROVER_RETURN_IF_ERROR(
      GetString(doc, "", "metrics_listen", &config.metrics_listen));

  if (auto it = doc.find("capacity"); it != doc.end() && !it->is_null()) {
    if (!it->is_number_integer()) {
      return TypeError("capacity", *it, "an integer");
    }
    config.capacity = it->get<int>();
  }
  if (auto it = doc.find("credentials"); it != doc.end() && !it->is_null()) {
    if (!it->is_object()) return TypeError("credentials", *it, "an object");
    DROVER_RETURN_IF_ERROR(
        OnlyKeys(*it, "credentials.",
                 {"client_id", "access_token", "access_token_file"}));
    DROVER_RETURN_IF_ERROR(
        GetString(*it, "credentials.", "client_id", &config.client_id));
    DROVER_RETURN_IF_ERROR(
        GetString(*it, "credentials.", "access_token", &config.access_token));
    std::string token_file;
    DROVER_RETURN_IF_ERROR(
        GetString(*it, "credentials.", "access_token_file", &token_file));
    if (!token_file.empty()) {
      if (!config.access_token.empty()) {
        return InputError("credentials.access_token_file", token_file,
                          "give access_token or access_token_file, not both");
      }
      DROVER_ASSIGN_OR_RETURN(
          config.access_token,
          ReadSmallFile(token_file, "credentials.access_token_file"));
    }
  }
  if (auto it = doc.find("registration"); it != doc.end() && !it->is_null()) {
    if (!it->is_object()) return TypeError("registration", *it, "an object");
    DROVER_RETURN_IF_ERROR(OnlyKeys(
        *it, "registration.",
        {"secret_file", "state_file", "reregister_fraction",
         "heartbeat_seconds"}));
    DROVER_RETURN_IF_ERROR(GetString(*it, "registration.", "secret_file",
                                     &config.registration_secret_file));
    DROVER_RETURN_IF_ERROR(GetString(*it, "registration.", "state_file",
                                     &config.registration_state_file));
    if (auto f = it->find("reregister_fraction");
        f != it->end() && !f->is_null()) {
      if (!f->is_number()) {
        return TypeError("registration.reregister_fraction", *f, "a number");
      }
      config.reregister_fraction = f->get<double>();
    }
    if (auto h = it->find("heartbeat_seconds");
        h != it->end() && !h->is_null()) {
      if (!h->is_number()) {
        return TypeError("registration.heartbeat_seconds", *h, "a number");
      }
      config.heartbeat_interval = absl::Seconds(h->get<double>());
    }
  }
  if (auto it = doc.find("engine"); it != doc.end() && !it->is_null()) {
    if (it->is_string()) {
      config.engine = it->get<std::string>();
    } else if (it->is_object()) {
      DROVER_RETURN_IF_ERROR(OnlyKeys(*it, "engine.", {"name", "config"}));
      auto name = it->find("name");
      if (name == it->end() || !name->is_string()) {
        return InputError("engine.name", it->dump(),
                          "\"engine.name\" must name an engine");
      }
      config.engine = name->get<std::string>();
      if (auto cfg = it->find("config"); cfg != it->end() && !cfg->is_null()) {
        if (!cfg->is_object()) {
          return TypeError("engine.config", *cfg, "an object");
        }
        config.engine_config = nlohmann::json::parse(cfg->dump());
      }
    } else {
      return TypeError("engine", *it, "a name or {\"name\", \"config\"}");
    }
  }
  if (auto it = doc.find("plugins"); it != doc.end() && !it->is_null()) {
    if (it->is_array()) {
      for (size_t i = 0; i < it->size(); ++i) {
        const auto& name = (*it)[i];
        if (!name.is_string()) {
          return TypeError(absl::StrCat("plugins[", i, "]"), name,
                           "a plugin name");
        }
        config.plugins.emplace_back(name.get<std::string>(),
                                    nlohmann::json::object());
      }
    } else if (it->is_object()) {
      for (const auto& item : it->items()) {
        if (!item.value().is_object() && !item.value().is_null()) {
          return TypeError("plugins." + item.key(), item.value(),
                           "an object (the plugin's settings)");
        }
        nlohmann::json settings =
            item.value().is_null() ? nlohmann::json::object()
                                   : nlohmann::json::parse(item.value().dump());
        config.plugins.emplace_back(item.key(), std::move(settings));
      }
    } else {
      return TypeError("plugins", *it, "an array of names or an object");
    }
  } else {
    config.plugins = DefaultPlugins();
  }
  if (auto it = doc.find("work_dir"); it != doc.end() && !it->is_null()) {
    if (!it->is_string()) return TypeError("work_dir", *it, "a string");
    config.work_dir = it->get<std::string>();
  }
  DROVER_RETURN_IF_ERROR(GetDuration(doc, "shutdown_grace_seconds",
                                     absl::Seconds(1), &config.shutdown_grace));
  DROVER_RETURN_IF_ERROR(GetDuration(doc, "log_retention_hours", absl::Hours(1),
                                     &config.log_retention));
  if (auto it = doc.find("reclaim_fraction");
      it != doc.end() && !it->is_null()) {
    if (!it->is_number()) {
      return TypeError("reclaim_fraction", *it, "a number");
    }
    config.reclaim_fraction = it->get<double>();
  }
  return config;
}

absl::StatusOr<WorkerConfig> ParseWorkerConfig(const nlohmann::json& doc) {
  return ParseWorkerConfig(OrderedJson::parse(doc.dump()));
}

absl::StatusOr<OrderedJson> ReadConfigDocument(
    const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) {
    return InputError("config", path.string(), "cannot read the config file");
  }
  try {
    return OrderedJson::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    return InputError(
        "config", path.string(),
        absl::StrCat("the config file is not valid JSON: ", e.what()));
  }
}

absl::StatusOr<WorkerConfig> LoadWorkerConfig(
    const std::filesystem::path& path) {
  DROVER_ASSIGN_OR_RETURN(OrderedJson doc, ReadConfigDocument(path));
  return ParseWorkerConfig(doc);
}

absl::Status ValidateWorkerConfig(
    const WorkerConfig& config, const std::vector<std::string>& known_engines,
    const std::vector<std::string>& known_plugins) {
  if (config.queue_urls.empty()) {
    return InputError("queue_url", "",
                      "set queue_url (or queue_urls): the queue address");
  }
  bool any_tls = false;
  for (size_t i = 0; i < config.queue_urls.size(); ++i) {
    const std::string field = config.queue_urls.size() == 1
                                  ? "queue_url"
                                  : absl::StrCat("queue_urls[", i, "]");
    DROVER_ASSIGN_OR_RETURN(client::Endpoint endpoint,
                            client::ParseUrl(config.queue_urls[i], field));
    any_tls = any_tls || endpoint.tls;
  }
  if (!config.tls_ca_file.empty()) {
    if (!any_tls) {
      return InputError("tls_ca_file", config.tls_ca_file,
                        "tls_ca_file needs an https:// queue_url");
    }
    if (access(config.tls_ca_file.c_str(), R_OK) != 0) {
      return InputError("tls_ca_file", config.tls_ca_file,
                        "the CA file cannot be read");
    }
  }
  auto slash = config.worker_pool_id.find('/');
  if (slash == std::string::npos ||
      !IsQueueIdPart(config.worker_pool_id.substr(0, slash)) ||
      !IsQueueIdPart(config.worker_pool_id.substr(slash + 1))) {
    return InputError("worker_pool_id", config.worker_pool_id,
                      "worker_pool_id must look like <provisioner>/"
                      "<worker-type>, each part 1-38 of [a-zA-Z0-9_-]");
  }
  if (!IsQueueIdPart(config.worker_group)) {
    return InputError("worker_group", config.worker_group,
                      "worker_group must be 1-38 of [a-zA-Z0-9_-]");
  }
  if (!IsQueueIdPart(config.worker_id)) {
    return InputError("worker_id", config.worker_id,
                      "worker_id must be 1-38 of [a-zA-Z0-9_-]");
  }
  if (config.capacity < 1 || config.capacity > 1024) {
    return InputError("capacity", std::to_string(config.capacity),
                      "capacity must be between 1 and 1024");
  }
  if (config.reclaim_fraction <= 0 || config.reclaim_fraction >= 1) {
    return InputError("reclaim_fraction",
                      std::to_string(config.reclaim_fraction),
                      "reclaim_fraction must be between 0 and 1 (exclusive)");
  }
  if (std::find(known_engines.begin(), known_engines.end(), config.engine) ==
      known_engines.end()) {
    return InputError("engine.name", config.engine,
                      absl::StrCat("unknown engine; this worker has: ",
                                   absl::StrJoin(known_engines, ", ")));
  }
  std::set<std::string> seen;
  for (const auto& [name, cfg] : config.plugins) {
    if (std::find(known_plugins.begin(), known_plugins.end(), name) ==
        known_plugins.end()) {
      return InputError("plugins." + name, name,
                        absl::StrCat("unknown plugin; this worker has: ",
                                     absl::StrJoin(known_plugins, ", ")));
    }
    if (!seen.insert(name).second) {
      return InputError("plugins." + name, name, "plugin listed twice");
    }
  }
  if (config.client_id.empty() != config.access_token.empty()) {
    return InputError(config.client_id.empty() ? "credentials.client_id"
                                               : "credentials.access_token",
                      config.client_id,
                      "credentials need both client_id and an access token");
  }
  if (!config.registration_secret_file.empty() &&
      access(config.registration_secret_file.c_str(), R_OK) != 0) {
    return InputError("registration.secret_file",
                      config.registration_secret_file,
                      "the registration secret file cannot be read");
  }
  if (!config.registration_secret_file.empty() && !config.client_id.empty()) {
    return InputError("registration", config.registration_secret_file,
                      "give credentials (a static client) or registration "
                      "(the worker manager), not both");
  }
  if (config.reregister_fraction <= 0 || config.reregister_fraction >= 1) {
    return InputError("registration.reregister_fraction",
                      std::to_string(config.reregister_fraction),
                      "must be between 0 and 1 (exclusive)");
  }
  if (config.heartbeat_interval < absl::Seconds(1)) {
    return InputError("registration.heartbeat_seconds",
                      absl::FormatDuration(config.heartbeat_interval),
                      "must be at least 1 second");
  }
  if (config.work_dir.empty() || !config.work_dir.is_absolute()) {
    return InputError("work_dir", config.work_dir.string(),
                      "work_dir must be an absolute path");
  }
  // The worker creates the directory at start; here it only has to be
  // possible, so checking a config changes nothing on disk.
  std::filesystem::path existing = NearestExisting(config.work_dir);
  std::error_code ec;
  if (existing.empty() || !std::filesystem::is_directory(existing, ec) ||
      access(existing.c_str(), W_OK | X_OK) != 0) {
    return InputError("work_dir", config.work_dir.string(),
                      existing == config.work_dir
                          ? "the work directory is not a writable directory"
                          : "the work directory cannot be created (" +
                                existing.string() + " is not writable)");
  }
  if (config.shutdown_grace > absl::Hours(24)) {
    return InputError(
        "shutdown_grace_seconds",
        std::to_string(absl::ToInt64Seconds(config.shutdown_grace)),
        "shutdown_grace_seconds may be at most one day");
  }
  if (config.log_format != "text" && config.log_format != "json") {
    return InputError("log_format", config.log_format,
                      "log_format must be \"text\" or \"json\"");
  }
  static const std::vector<std::string> kLevels = {
      "trace", "debug", "info", "warn", "error", "critical", "off"};
  if (std::find(kLevels.begin(), kLevels.end(), config.log_level) ==
      kLevels.end()) {
    return InputError(
        "log_level", config.log_level,
        "log_level must be one of " + absl::StrJoin(kLevels, ", "));
  }
  if (!config.metrics_listen.empty()) {
    auto colon = config.metrics_listen.rfind(':');
    bool ok = colon != std::string::npos && colon > 0 &&
              colon + 1 < config.metrics_listen.size() &&
              config.metrics_listen.size() - colon - 1 <= 5;
    for (size_t i = colon + 1; ok && i < config.metrics_listen.size(); ++i) {
      ok = std::isdigit(static_cast<unsigned char>(config.metrics_listen[i]));
    }
    if (ok) {
      int port = std::stoi(config.metrics_listen.substr(colon + 1));
      ok = port >= 0 && port <= 65535;
    }
    if (!ok) {
      return InputError("metrics_listen", config.metrics_listen,
                        "metrics_listen must be host:port (port 0 picks one)");
    }
  }
  return absl::OkStatus();
}

}  // namespace drover::worker
