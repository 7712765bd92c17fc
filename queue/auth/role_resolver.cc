#include "queue/auth/role_resolver.h"

#include <algorithm>
#include <deque>
#include <optional>
#include <unordered_set>
#include <utility>

#include "common/status.h"

namespace drover::queue::auth {
namespace {

constexpr std::string_view kAssume = "assume:";
constexpr std::string_view kParameter = "<..>";

bool StartsWith(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

// The scope a parameterised role grants for `parameter`.
std::string Substitute(std::string_view scope, std::string_view parameter) {
  const size_t at = scope.find(kParameter);
  if (at == std::string_view::npos) return std::string(scope);
  std::string out(scope.substr(0, at));
  out.append(parameter);
  if (parameter.empty() || parameter.back() != '*') {
    out.append(scope.substr(at + kParameter.size()));
  }
  return out;
}

struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const {
    return std::hash<std::string_view>{}(s);
  }
};
using StringSet = std::unordered_set<std::string, StringHash, std::equal_to<>>;

}  // namespace

absl::Status ValidateRole(const Role& role, std::string_view field) {
  const std::string id_field = std::string(field) + ".role_id";
  if (role.role_id.empty()) {
    return InputError(id_field, "", "role id must not be empty");
  }
  if (role.role_id.size() > kMaxRoleIdLength) {
    return InputError(id_field, role.role_id,
                      "role id is longer than " +
                          std::to_string(kMaxRoleIdLength) + " characters");
  }
  for (size_t i = 0; i < role.role_id.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(role.role_id[i]);
    if (c < 0x20 || c > 0x7e) {
      // ValidateScope words the error (with the offending position).
      absl::Status status = ValidateScope(id_field, role.role_id);
      return InputError(id_field, GetErrorInfo(status).details["value"],
                        "role id must be printable ASCII (0x20-0x7e); "
                        "found a character outside it at position " +
                            std::to_string(i));
    }
  }
  const bool parameterised = role.role_id.back() == '*';
  for (size_t i = 0; i < role.scopes.size(); ++i) {
    const std::string scope_field =
        std::string(field) + ".scopes[" + std::to_string(i) + "]";
    const std::string& scope = role.scopes[i];
    DROVER_RETURN_IF_ERROR(ValidateScope(scope_field, scope));
    const size_t at = scope.find(kParameter);
    if (at == std::string::npos) continue;
    if (!parameterised) {
      return InputError(scope_field, scope,
                        "<..> is only allowed in roles whose id ends in '*'");
    }
    if (scope.find(kParameter, at + 1) != std::string::npos) {
      return InputError(scope_field, scope,
                        "<..> may appear only once in a scope");
    }
    if (at > 0 && scope[at - 1] == '*') {
      return InputError(scope_field, scope,
                        "'*' directly before <..> is not allowed: an empty "
                        "parameter would turn the scope into a wildcard");
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<const RoleResolver>> RoleResolver::Build(
    std::vector<Role> roles, RoleResolverOptions options) {
  std::shared_ptr<RoleResolver> resolver(new RoleResolver(options));
  for (size_t i = 0; i < roles.size(); ++i) {
    const std::string field = "roles[" + std::to_string(i) + "]";
    DROVER_RETURN_IF_ERROR(ValidateRole(roles[i], field));
    const std::string& id = roles[i].role_id;
    const bool inserted =
        id.back() == '*'
            ? resolver->patterns_.emplace(id.substr(0, id.size() - 1), i).second
            : resolver->plain_.emplace(id, i).second;
    if (!inserted) {
      return InputError(field + ".role_id", id, "duplicate role id");
    }
  }
  resolver->roles_ = std::move(roles);
  resolver->closures_.resize(resolver->roles_.size());
  resolver->closure_ready_.assign(resolver->roles_.size(), false);
  // Closures computed earlier feed later ones, so a long chain of roles is
  // walked once rather than once per role in it.
  for (const auto& [id, index] : resolver->plain_) {
    DROVER_ASSIGN_OR_RETURN(
        resolver->closures_[index],
        resolver->Closure({std::string(kAssume) + id}, /*use_closures=*/true));
    resolver->closure_ready_[index] = true;
  }
  for (const auto& [prefix, index] : resolver->patterns_) {
    for (const char* parameter : {"", "x"}) {
      DROVER_RETURN_IF_ERROR(
          resolver
              ->Closure({std::string(kAssume) + prefix + parameter},
                        /*use_closures=*/true)
              .status());
    }
  }
  return std::shared_ptr<const RoleResolver>(std::move(resolver));
}

template <typename Grant>
void RoleResolver::ForEachGrantedRole(std::string_view scope,
                                      Grant&& grant) const {
  if (!scope.empty() && scope.back() == '*') {
    std::string_view held = scope.substr(0, scope.size() - 1);
    std::string_view x;  // Every role id starting with x is covered.
    if (StartsWith(held, kAssume)) {
      x = held.substr(kAssume.size());
    } else if (!StartsWith(kAssume, held)) {
      return;  // The wildcard does not reach assume: scopes.
    }
    for (auto it = plain_.lower_bound(x);
         it != plain_.end() && StartsWith(it->first, x); ++it) {
      grant(it->second, static_cast<const std::string*>(nullptr));
    }
    // Parameterised roles P* with x starting with P.
    const std::string star = "*";
    for (size_t i = 0; i <= x.size(); ++i) {
      auto it = patterns_.find(x.substr(0, i));
      if (it == patterns_.end()) continue;
      const std::string parameter = std::string(x.substr(i)) + star;
      grant(it->second, &parameter);
    }
    // Parameterised roles P* with P longer than x and starting with it.
    for (auto it = patterns_.upper_bound(x);
         it != patterns_.end() && StartsWith(it->first, x); ++it) {
      grant(it->second, &star);
    }
    return;
  }
  if (!StartsWith(scope, kAssume)) return;
  std::string_view x = scope.substr(kAssume.size());
  if (auto it = plain_.find(x); it != plain_.end()) {
    grant(it->second, static_cast<const std::string*>(nullptr));
  }
  for (size_t i = 0; i <= x.size(); ++i) {
    auto it = patterns_.find(x.substr(0, i));
    if (it == patterns_.end()) continue;
    const std::string parameter(x.substr(i));
    grant(it->second, &parameter);
  }
}

absl::StatusOr<std::vector<std::string>> RoleResolver::Closure(
    const std::vector<std::string>& scopes, bool use_closures) const {
  StringSet seen;
  std::vector<std::string> out;
  std::deque<size_t> pending;  // Indices into `out` still to expand.
  bool everything = false;
  auto add = [&](std::string_view scope, bool expand) {
    if (seen.find(scope) != seen.end()) return;
    seen.emplace(scope);
    out.emplace_back(scope);
    if (scope == "*") everything = true;
    if (expand) pending.push_back(out.size() - 1);
  };
  for (const std::string& scope : scopes) add(scope, true);
  absl::Status error;
  while (!pending.empty() && !everything && error.ok()) {
    const std::string scope = out[pending.front()];
    pending.pop_front();
    ForEachGrantedRole(scope, [&](size_t index, const std::string* parameter) {
      if (!error.ok()) return;
      const Role& role = roles_[index];
      if (parameter == nullptr && use_closures && closure_ready_[index]) {
        // Already a fixed point: nothing in it needs expanding again.
        for (const std::string& granted : closures_[index]) add(granted, false);
      } else {
        for (const std::string& granted : role.scopes) {
          if (parameter == nullptr) {
            add(granted, true);
            continue;
          }
          std::string substituted = Substitute(granted, *parameter);
          if (substituted.size() > kMaxScopeLength) {
            error = InputError(
                "role_id", role.role_id,
                "expanding role " + role.role_id +
                    " makes a scope longer "
                    "than " +
                    std::to_string(kMaxScopeLength) +
                    " characters; its <..> scopes feed it an ever longer "
                    "parameter (a cycle through parameterised roles)");
            return;
          }
          add(substituted, true);
        }
      }
      if (out.size() > options_.max_expanded_scopes) {
        error = InputError(
            "role_id", role.role_id,
            "expansion through role " + role.role_id + " exceeds " +
                std::to_string(options_.max_expanded_scopes) + " scopes");
      }
    });
  }
  if (!error.ok()) return error;
  if (everything) return std::vector<std::string>{"*"};
  return out;
}

absl::StatusOr<std::shared_ptr<const ScopeSet>> RoleResolver::ExpandUncached(
    const std::vector<std::string>& scopes) const {
  DROVER_RETURN_IF_ERROR(ValidateScopes("scopes", scopes));
  DROVER_ASSIGN_OR_RETURN(std::vector<std::string> closure,
                          Closure(scopes, /*use_closures=*/true));
  return std::make_shared<const ScopeSet>(std::move(closure));
}

absl::StatusOr<std::shared_ptr<const ScopeSet>> RoleResolver::Expand(
    const std::vector<std::string>& scopes) const {
  if (options_.cache_entries == 0) return ExpandUncached(scopes);
  DROVER_RETURN_IF_ERROR(ValidateScopes("scopes", scopes));
  std::vector<std::string> sorted = scopes;
  std::sort(sorted.begin(), sorted.end());
  sorted.erase(std::unique(sorted.begin(), sorted.end()), sorted.end());
  std::string key;
  for (const std::string& scope : sorted) {
    key.append(scope);
    key.push_back('\n');
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (auto it = cache_.find(key); it != cache_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second.position);
      ++hits_;
      return it->second.value;
    }
    ++misses_;
  }
  // Expanded outside the lock: two threads may both compute the same entry,
  // which is cheaper than serialising every expansion.
  DROVER_ASSIGN_OR_RETURN(std::vector<std::string> closure,
                          Closure(sorted, /*use_closures=*/true));
  auto value = std::make_shared<const ScopeSet>(std::move(closure));
  std::lock_guard<std::mutex> lock(mu_);
  if (cache_.find(key) == cache_.end()) {
    lru_.push_front(key);
    cache_.emplace(std::move(key), CacheEntry{value, lru_.begin()});
    while (cache_.size() > options_.cache_entries) {
      cache_.erase(lru_.back());
      lru_.pop_back();
    }
  }
  return value;
}

RoleResolver::CacheStats RoleResolver::cache_stats() const {
  std::lock_guard<std::mutex> lock(mu_);
  return {hits_, misses_, cache_.size()};
}

ScopeResolver::ScopeResolver() : ScopeResolver(RoleResolverOptions()) {}

ScopeResolver::ScopeResolver(RoleResolverOptions options)
    : options_(options), current_(RoleResolver::Build({}, options).value()) {}

std::shared_ptr<const RoleResolver> ScopeResolver::Current() const {
  std::lock_guard<std::mutex> lock(mu_);
  return current_;
}

int64_t ScopeResolver::generation() const {
  std::lock_guard<std::mutex> lock(mu_);
  return generation_;
}

absl::Status ScopeResolver::Rebuild(std::vector<Role> roles,
                                    int64_t generation) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (generation <= generation_) return absl::OkStatus();
  }
  DROVER_ASSIGN_OR_RETURN(std::shared_ptr<const RoleResolver> resolver,
                          RoleResolver::Build(std::move(roles), options_));
  std::lock_guard<std::mutex> lock(mu_);
  if (generation > generation_) {
    current_ = std::move(resolver);
    generation_ = generation;
  }
  return absl::OkStatus();
}

}  // namespace drover::queue::auth
