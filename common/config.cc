#include "common/config.h"

#include <algorithm>
#include <cctype>
#include <memory>
#include <sstream>

#include "nlohmann/json.hpp"

namespace drover {
namespace {

std::string ScalarToString(const nlohmann::json& value) {
  if (value.is_string()) return value.get<std::string>();
  if (value.is_boolean()) return value.get<bool>() ? "true" : "false";
  return value.dump();
}

}  // namespace

std::string JsonConfig::to_config(const CLI::App* app, bool default_also,
                                  bool /*write_description*/,
                                  std::string /*prefix*/) const {
  nlohmann::json out = nlohmann::json::object();
  for (const CLI::Option* opt : app->get_options()) {
    if (opt->get_lnames().empty() || !opt->get_configurable()) continue;
    const std::string& name = opt->get_lnames().front();
    if (opt->count() > 0) {
      auto results = opt->results();
      if (results.size() == 1 && opt->get_expected_max() <= 1) {
        out[name] = results.front();
      } else {
        out[name] = results;
      }
    } else if (default_also && !opt->get_default_str().empty()) {
      out[name] = opt->get_default_str();
    }
  }
  return out.dump(2);
}

std::vector<CLI::ConfigItem> JsonConfig::from_config(
    std::istream& input) const {
  nlohmann::json doc;
  try {
    doc = nlohmann::json::parse(input);
  } catch (const nlohmann::json::exception& e) {
    throw CLI::ConversionError("config file is not valid JSON: " +
                               std::string(e.what()));
  }
  if (!doc.is_object()) {
    throw CLI::ConversionError("config file must hold a JSON object");
  }
  std::vector<CLI::ConfigItem> items;
  for (auto& [key, value] : doc.items()) {
    CLI::ConfigItem item;
    item.name = key;
    std::replace(item.name.begin(), item.name.end(), '_', '-');
    if (value.is_array()) {
      for (const auto& element : value) {
        item.inputs.push_back(ScalarToString(element));
      }
    } else if (value.is_object()) {
      // Structured values (engine or plugin settings) are handed to the
      // option as JSON text for its owner to parse.
      item.inputs.push_back(value.dump());
    } else {
      item.inputs.push_back(ScalarToString(value));
    }
    items.push_back(std::move(item));
  }
  return items;
}

void AddJsonConfigOption(CLI::App& app) {
  app.config_formatter(std::make_shared<JsonConfig>());
  app.set_config("--config", "", "JSON config file", /*config_required=*/false)
      ->envname("DROVER_CONFIG");
}

std::string EnvName(const std::string& flag_name) {
  std::string out = "DROVER_";
  for (char c : flag_name) {
    out.push_back(c == '-' ? '_'
                           : static_cast<char>(std::toupper(
                                 static_cast<unsigned char>(c))));
  }
  return out;
}

}  // namespace drover
