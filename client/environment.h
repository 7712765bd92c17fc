// Environment lookup as a value, so code that honours DROVER_* variables can
// be given a fixed environment in tests instead of reading the process's.
#ifndef DROVER_CLIENT_ENVIRONMENT_H_
#define DROVER_CLIENT_ENVIRONMENT_H_

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace drover::client {

// Returns the value of an environment variable, or nullopt when unset.
// An empty value counts as unset, as shells make "unsetting" by assigning
// an empty string common.
using EnvLookup =
    std::function<std::optional<std::string>(std::string_view name)>;

// Reads the process environment (getenv). Thread-safe as long as nothing
// modifies the environment concurrently.
EnvLookup ProcessEnvironment();

// A fixed environment, for tests and embedding.
EnvLookup FixedEnvironment(std::map<std::string, std::string> vars);

}  // namespace drover::client

#endif  // DROVER_CLIENT_ENVIRONMENT_H_
