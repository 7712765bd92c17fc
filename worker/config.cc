#include "worker/config.h"

#include <unistd.h>

#include <algorithm>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/status.h"

namespace drover::worker {
namespace {

// Keys accepted at the top level; anything else is a typo worth reporting.
const std::set<std::string>& KnownKeys() {
  static const auto* keys = new std::set<std::string>{
      "queue_url",        "queue_urls",
      "tls_ca_file",      "worker_pool_id",
      "worker_group",     "worker_id",
      "capacity",         "credentials",
      "registration",     "engine",
      "plugins",          "work_dir",
      "shutdown_grace_seconds", "reclaim_fraction",
      "log_format",       "log_level"};
  return *keys;
}

absl::Status TypeError(std::string_view field, const nlohmann::json& value,
                       std::string_view want) {
  return InputError(field, value.dump(),
                    absl::StrCat("\"", std::string(field), "\" must be ", std::string(want)));
}

absl::Status GetString(const nlohmann::json& doc, const char* key,
                       std::string* out) {
  auto it = doc.find(key);
  if (it == doc.end()) return absl::OkStatus();
  if (!it->is_string()) return TypeError(key, *it, "a string");
  *out = it->get<std::string>();
  return absl::OkStatus();
}

bool IsQueueIdPart(std::string_view part) {
  if (part.empty() || part.size() > 38) return false;
  return std::all_of(part.begin(), part.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-';
  });
}

absl::StatusOr<std::string> ReadSmallFile(const std::string& path,
                                          std::string_view field) {
  std::ifstream in(path);
  if (!in) return InputError(field, path, "cannot read the file");
  std::stringstream buffer;
  buffer << in.rdbuf();
  std::string text = buffer.str();
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r' ||
                           text.back() == ' ')) {
    text.pop_back();
  }
  return text;
}

}  // namespace

std::string HostName() {
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) != 0 || name[0] == '\0') {
    return "localhost";
  }
  return name;
}

absl::StatusOr<WorkerConfig> ParseWorkerConfig(const nlohmann::json& doc) {
  if (!doc.is_object()) {
    return InputError("config", doc.dump(), "the config must be a JSON object");
  }
  for (const auto& item : doc.items()) {
    if (!KnownKeys().contains(item.key())) {
      return InputError(item.key(), item.value().dump(),
                        absl::StrCat("unknown setting \"", item.key(),
                                     "\"; known: ",
                                     absl::StrJoin(KnownKeys(), ", ")));
    }
  }
  WorkerConfig config;
  config.worker_group = HostName();
  config.worker_id = HostName();

  if (auto it = doc.find("queue_url"); it != doc.end()) {
    if (!it->is_string()) return TypeError("queue_url", *it, "a string");
    config.queue_urls.push_back(it->get<std::string>());
  }
  if (auto it = doc.find("queue_urls"); it != doc.end()) {
    if (!it->is_array()) return TypeError("queue_urls", *it, "an array");
    for (const auto& url : *it) {
      if (!url.is_string()) return TypeError("queue_urls[]", url, "a string");
      config.queue_urls.push_back(url.get<std::string>());
    }
  }
  DROVER_RETURN_IF_ERROR(GetString(doc, "tls_ca_file", &config.tls_ca_file));
  DROVER_RETURN_IF_ERROR(
      GetString(doc, "worker_pool_id", &config.worker_pool_id));
  DROVER_RETURN_IF_ERROR(GetString(doc, "worker_group", &config.worker_group));
  DROVER_RETURN_IF_ERROR(GetString(doc, "worker_id", &config.worker_id));
  DROVER_RETURN_IF_ERROR(GetString(doc, "log_format", &config.log_format));
  DROVER_RETURN_IF_ERROR(GetString(doc, "log_level", &config.log_level));

  if (auto it = doc.find("capacity"); it != doc.end()) {
    if (!it->is_number_integer()) {
      return TypeError("capacity", *it, "an integer");
    }
    config.capacity = it->get<int>();
  }
  if (auto it = doc.find("credentials"); it != doc.end()) {
    if (!it->is_object()) return TypeError("credentials", *it, "an object");
    DROVER_RETURN_IF_ERROR(GetString(*it, "client_id", &config.client_id));
    DROVER_RETURN_IF_ERROR(
        GetString(*it, "access_token", &config.access_token));
    std::string token_file;
    DROVER_RETURN_IF_ERROR(GetString(*it, "access_token_file", &token_file));
    if (!token_file.empty()) {
      DROVER_ASSIGN_OR_RETURN(
          config.access_token,
          ReadSmallFile(token_file, "credentials.access_token_file"));
    }
  }
  if (auto it = doc.find("registration"); it != doc.end()) {
    if (!it->is_object()) return TypeError("registration", *it, "an object");
    DROVER_RETURN_IF_ERROR(
        GetString(*it, "secret_file", &config.registration_secret_file));
  }
  if (auto it = doc.find("engine"); it != doc.end()) {
    if (it->is_string()) {
      config.engine = it->get<std::string>();
    } else if (it->is_object()) {
      auto name = it->find("name");
      if (name == it->end() || !name->is_string()) {
        return InputError("engine.name", it->dump(),
                          "\"engine.name\" must name an engine");
      }
      config.engine = name->get<std::string>();
      if (auto cfg = it->find("config"); cfg != it->end()) {
        if (!cfg->is_object()) {
          return TypeError("engine.config", *cfg, "an object");
        }
        config.engine_config = *cfg;
      }
    } else {
      return TypeError("engine", *it, "a name or {name, config}");
    }
  }
  if (auto it = doc.find("plugins"); it != doc.end()) {
    if (it->is_array()) {
      for (const auto& name : *it) {
        if (!name.is_string()) return TypeError("plugins[]", name, "a name");
        config.plugins.emplace_back(name.get<std::string>(),
                                    nlohmann::json::object());
      }
    } else if (it->is_object()) {
      for (const auto& item : it->items()) {
        if (!item.value().is_object()) {
          return TypeError("plugins." + item.key(), item.value(),
                           "an object");
        }
        config.plugins.emplace_back(item.key(), item.value());
      }
    } else {
      return TypeError("plugins", *it, "an array of names or an object");
    }
  }
  if (auto it = doc.find("work_dir"); it != doc.end()) {
    if (!it->is_string()) return TypeError("work_dir", *it, "a string");
    config.work_dir = it->get<std::string>();
  }
  if (auto it = doc.find("shutdown_grace_seconds"); it != doc.end()) {
    if (!it->is_number() || it->get<double>() < 0) {
      return TypeError("shutdown_grace_seconds", *it,
                       "a non-negative number");
    }
    config.shutdown_grace = absl::Seconds(it->get<double>());
  }
  if (auto it = doc.find("reclaim_fraction"); it != doc.end()) {
    if (!it->is_number()) {
      return TypeError("reclaim_fraction", *it, "a number");
    }
    config.reclaim_fraction = it->get<double>();
  }
  return config;
}

absl::StatusOr<WorkerConfig> LoadWorkerConfig(
    const std::filesystem::path& path) {
  std::ifstream in(path);
  if (!in) {
    return InputError("config", path.string(), "cannot read the config file");
  }
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(in);
  } catch (const nlohmann::json::parse_error& e) {
    return InputError("config", path.string(),
                      absl::StrCat("the config file is not valid JSON: ",
                                   e.what()));
  }
  return ParseWorkerConfig(doc);
}

absl::Status ValidateWorkerConfig(
    const WorkerConfig& config, const std::vector<std::string>& known_engines,
    const std::vector<std::string>& known_plugins) {
  if (config.queue_urls.empty()) {
    return InputError("queue_url", "",
                      "set queue_url (or queue_urls): the queue address");
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
    return InputError("credentials", config.client_id,
                      "credentials need both client_id and an access token");
  }
  std::error_code ec;
  std::filesystem::create_directories(config.work_dir, ec);
  if (ec || access(config.work_dir.c_str(), W_OK) != 0) {
    return InputError("work_dir", config.work_dir.string(),
                      "the work directory cannot be created or written");
  }
  if (config.log_format != "text" && config.log_format != "json") {
    return InputError("log_format", config.log_format,
                      "log_format must be \"text\" or \"json\"");
  }
  return absl::OkStatus();
}

}  // namespace drover::worker
