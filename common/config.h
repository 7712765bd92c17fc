// Configuration for Drover binaries: command-line flags (CLI11), a JSON
// config file and DROVER_* environment variables.
//
// Precedence, highest first: flags, the config file, the environment,
// built-in defaults. JSON keys are the long flag names; '_' and '-' are
// interchangeable ({"database_url": ...} sets --database-url). Arrays give
// repeated values.
#ifndef DROVER_COMMON_CONFIG_H_
#define DROVER_COMMON_CONFIG_H_

#include <string>
#include <vector>

#include "CLI/CLI.hpp"

namespace drover {

// CLI11 config reader for flat JSON objects.
class JsonConfig final : public CLI::Config {
 public:
  std::string to_config(const CLI::App* app, bool default_also,
                        bool write_description,
                        std::string prefix) const override;
  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override;
};

// Adds `--config FILE` (env DROVER_CONFIG) to `app`, read as JSON.
void AddJsonConfigOption(CLI::App& app);

// "database-url" -> "DROVER_DATABASE_URL".
std::string EnvName(const std::string& flag_name);

}  // namespace drover

#endif  // DROVER_COMMON_CONFIG_H_
