// Role expansion with TaskCluster's semantics.
//
// A role {role_id, scopes} means: whoever holds `assume:<role_id>` also holds
// the role's scopes, recursively. Rules, for a held scope S:
//  * S = "assume:X" (no trailing '*'): grants role X, and every parameterised
//    role "P*" with X starting with P, with `<..>` in that role's scopes
//    replaced by the rest of X after P.
//  * S = "assume:X*": grants every role whose id starts with X (it satisfies
//    all their assume: scopes), and every parameterised role "P*" with X
//    starting with P (`<..>` := rest of X after P, plus "*") or P starting
//    with X (`<..>` := "*"). When the replacement ends in '*', whatever
//    follows `<..>` in the scope is dropped: the '*' already covers it, and
//    this keeps expansion monotonic (if S satisfies T, the expansion of S
//    satisfies the expansion of T).
//  * Any other wildcard that satisfies "assume:" (e.g. "*", "assu*") acts as
//    "assume:*".
// Cycles are harmless: expansion runs to a fixed point over a visited set.
// A parameterised role that feeds itself a longer parameter (e.g. "a*" ->
// "assume:a<..>x") has no fixed point; expansion stops with an InputError
// when a scope would exceed kMaxScopeLength or the result max_expanded_scopes.
//
// Role validation (ValidateRole): the id is 1..kMaxRoleIdLength printable
// ASCII; scopes are valid scopes; `<..>` appears at most once per scope,
// only in roles whose id ends in '*', and never right after a '*' ("a*<..>"
// would turn into a wildcard for an empty parameter).
#ifndef DROVER_QUEUE_AUTH_ROLE_RESOLVER_H_
#define DROVER_QUEUE_AUTH_ROLE_RESOLVER_H_

#include <cstdint>
#include <list>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "queue/auth/scopes.h"

namespace drover::queue::auth {

inline constexpr size_t kMaxRoleIdLength = 256;

struct Role {
  std::string role_id;
  std::vector<std::string> scopes;
};

// Checks one role against the rules above; errors are InputError naming
// "<field>.role_id" or "<field>.scopes[<i>]".
absl::Status ValidateRole(const Role& role, std::string_view field);

struct RoleResolverOptions {
  // Expansion fails beyond this many scopes (before normalisation).
  size_t max_expanded_scopes = 50000;
  // Expansions remembered, least recently used evicted; 0 disables caching.
  size_t cache_entries = 4096;
};

// An immutable view of one version of the role table with precomputed
// expansions of the non-parameterised roles and a cache of expansions.
// Thread-safe: share it through a shared_ptr; rebuild on role changes.
class RoleResolver {
 public:
  // Validates every role (ValidateRole, field "roles[<i>]"), rejects
  // duplicate ids (InputError), precomputes the expansion of every
  // non-parameterised role, and probes every parameterised role "P*" by
  // expanding "assume:P" + "x": a role set whose expansion runs away fails
  // here with an InputError naming a role, instead of at request time.
  static absl::StatusOr<std::shared_ptr<const RoleResolver>> Build(
      std::vector<Role> roles, RoleResolverOptions options = {});

  RoleResolver(const RoleResolver&) = delete;
  RoleResolver& operator=(const RoleResolver&) = delete;

  // The normalised expansion of `scopes`: the scopes themselves plus every
  // scope granted through roles. Cached by the (sorted) input.
  // Errors: InputError ("scopes[<i>]") for an invalid scope; InputError
  // naming a role when expansion exceeds the limits (see above).
  absl::StatusOr<std::shared_ptr<const ScopeSet>> Expand(
      const std::vector<std::string>& scopes) const;

  // Expand without touching the cache (tests, fuzzing).
  absl::StatusOr<std::shared_ptr<const ScopeSet>> ExpandUncached(
      const std::vector<std::string>& scopes) const;

  size_t role_count() const { return roles_.size(); }

  struct CacheStats {
    uint64_t hits = 0;
    uint64_t misses = 0;
    size_t entries = 0;
  };
  CacheStats cache_stats() const;

 private:
  explicit RoleResolver(RoleResolverOptions options) : options_(options) {}

  // Calls `grant(role_index, parameter)` for each role a held scope grants;
  // `parameter` is null for non-parameterised roles.
  template <typename Grant>
  void ForEachGrantedRole(std::string_view scope, Grant&& grant) const;

  // Worklist expansion. With `use_closures`, non-parameterised roles whose
  // closure is already known contribute it directly.
  absl::StatusOr<std::vector<std::string>> Closure(
      const std::vector<std::string>& scopes, bool use_closures) const;

  RoleResolverOptions options_;
  std::vector<Role> roles_;
  // Role id -> index, for roles not ending in '*'. Ordered for prefix scans.
  std::map<std::string, size_t, std::less<>> plain_;
  // Prefix (id without the '*') -> index, for parameterised roles.
  std::map<std::string, size_t, std::less<>> patterns_;
  // For each plain role index, the full expansion of "assume:<id>" (empty
  // until computed during Build).
  std::vector<std::vector<std::string>> closures_;
  std::vector<bool> closure_ready_;

  // LRU cache: key is the sorted, de-duplicated input joined by '\n'
  // (scopes cannot contain '\n').
  struct CacheEntry {
    std::shared_ptr<const ScopeSet> value;
    std::list<std::string>::iterator position;
  };
  mutable std::mutex mu_;
  mutable std::unordered_map<std::string, CacheEntry> cache_;
  mutable std::list<std::string> lru_;  // Most recent first.
  mutable uint64_t hits_ = 0;
  mutable uint64_t misses_ = 0;
};

// The current RoleResolver of a server process, replaced when roles change
// (locally, or in another replica: the caller polls a roles generation
// number from the database and rebuilds when it moves). Thread-safe.
class ScopeResolver {
 public:
  // Starts with no roles at generation 0.
  ScopeResolver();
  explicit ScopeResolver(RoleResolverOptions options);

  // The resolver to use for one request (keep the pointer for the whole
  // request so it sees one consistent role table).
  std::shared_ptr<const RoleResolver> Current() const;
  int64_t generation() const;

  // Builds a resolver for `roles` and installs it if `generation` is newer
  // than the installed one (a late rebuild from an older snapshot never
  // replaces a newer one). On error the current resolver stays.
  // Errors: RoleResolver::Build's.
  absl::Status Rebuild(std::vector<Role> roles, int64_t generation);

 private:
  RoleResolverOptions options_;
  mutable std::mutex mu_;
  std::shared_ptr<const RoleResolver> current_;
  int64_t generation_ = 0;
};

}  // namespace drover::queue::auth

#endif  // DROVER_QUEUE_AUTH_ROLE_RESOLVER_H_
