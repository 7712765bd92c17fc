// Scope algebra with TaskCluster's semantics: validation, satisfaction,
// normalisation of scope sets, and scope expressions ({"AllOf": [...]},
// {"AnyOf": [...]}) with the explanation an InsufficientScopes error gives.
// Role expansion (assume:<role>) lives in role_resolver.h.
//
// A scope is a string of printable ASCII (0x20-0x7e, space included). The
// only wildcard is a trailing '*': a held scope "queue:create-task:*"
// satisfies every required scope starting with "queue:create-task:"; any
// other held scope satisfies only the identical required scope. A '*'
// anywhere else is an ordinary character. Deviation from TaskCluster: the
// empty scope is rejected (it can only be satisfied by "" or "*" and is
// always a mistake), and scopes are at most kMaxScopeLength characters.
//
// Everything here is a pure function or an immutable value: thread-safe.
#ifndef DROVER_QUEUE_AUTH_SCOPES_H_
#define DROVER_QUEUE_AUTH_SCOPES_H_

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_set>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace drover::queue::auth {

inline constexpr size_t kMaxScopeLength = 1024;

// True when `scope` is 1..kMaxScopeLength characters of 0x20-0x7e.
bool IsValidScope(std::string_view scope);

// InputError(field, scope) saying what is wrong (empty, too long, or the
// position and code of the first character outside 0x20-0x7e).
absl::Status ValidateScope(std::string_view field, std::string_view scope);
// Validates each scope; errors name "<field>[<index>]".
absl::Status ValidateScopes(std::string_view field,
                            const std::vector<std::string>& scopes);

// Parses a JSON array of scope strings (e.g. the drover-authorized-scopes
// metadata). Errors: InputError(field) for invalid JSON, a non-array, a
// non-string element or an invalid scope ("<field>[<index>]").
absl::StatusOr<std::vector<std::string>> ParseScopeList(
    std::string_view json_text, std::string_view field);

// True when the single held scope satisfies the required one: equal, or
// `held` ends in '*' and `required` starts with what precedes it.
bool ScopeSatisfies(std::string_view held, std::string_view required);

// Sorts, removes duplicates and removes every scope implied by a wildcard in
// the set ("a*" removes "ab" and "a**" but not "a*" itself). The result
// satisfies exactly what the input satisfies.
std::vector<std::string> NormalizeScopes(std::vector<std::string> scopes);

// The normalised union: satisfies whatever either input satisfies.
std::vector<std::string> MergeScopes(const std::vector<std::string>& a,
                                     const std::vector<std::string>& b);

// The normalised intersection: satisfies exactly what both inputs satisfy
// (used to narrow a caller's scopes to the authorized scopes of a call).
std::vector<std::string> IntersectScopes(const std::vector<std::string>& a,
                                         const std::vector<std::string>& b);

class ScopeExpression;

// An immutable, normalised set of held scopes with fast satisfaction checks
// (hash lookups of the required scope and of its prefixes).
class ScopeSet {
 public:
  ScopeSet() = default;
  // Normalises `scopes`; does not validate them (callers validate input at
  // the boundary).
  explicit ScopeSet(std::vector<std::string> scopes);

  // Normalised and sorted.
  const std::vector<std::string>& scopes() const { return scopes_; }
  bool empty() const { return scopes_.empty(); }

  bool Satisfies(std::string_view required) const;
  // True when the set satisfies everything `scope` would satisfy if held:
  // Satisfies(scope) for a plain scope; for a wildcard "p*", a held
  // wildcard whose prefix is a prefix of p ("a**" satisfies "a*" but does
  // not cover it).
  bool Covers(std::string_view scope) const;
  bool SatisfiesAll(const std::vector<std::string>& required) const;
  bool Satisfies(const ScopeExpression& expression) const;

 private:
  struct Hash {
    using is_transparent = void;
    size_t operator()(std::string_view s) const {
      return std::hash<std::string_view>{}(s);
    }
  };
  using StringSet = std::unordered_set<std::string, Hash, std::equal_to<>>;

  std::vector<std::string> scopes_;
  StringSet exact_;
  // The part before the '*' of every wildcard scope.
  StringSet wildcard_prefixes_;
  size_t min_prefix_ = 0;
  size_t max_prefix_ = 0;
};

// A requirement on held scopes: one scope, all of several sub-expressions,
// or any one of them. JSON form (TaskCluster's): "scope",
// {"AllOf": [expr, ...]} or {"AnyOf": [expr, ...]}. An empty AllOf is always
// satisfied; an empty AnyOf never is.
class ScopeExpression {
 public:
  enum class Kind { kScope, kAllOf, kAnyOf };

  // Maximum nesting accepted by FromJson/Parse.
  static constexpr int kMaxDepth = 32;

  static ScopeExpression Scope(std::string scope);
  static ScopeExpression AllOf(std::vector<ScopeExpression> terms);
  static ScopeExpression AnyOf(std::vector<ScopeExpression> terms);
  // AllOf of plain scopes.
  static ScopeExpression AllOfScopes(const std::vector<std::string>& scopes);
  // AllOf with nothing in it: needs no scopes.
  static ScopeExpression Nothing() { return AllOf({}); }

  // Errors: InputError naming the JSON path below `field` (e.g.
  // "expression.AllOf[1].AnyOf[0]") for a value that is neither a string nor
  // an object with exactly one key AllOf/AnyOf holding an array, for an
  // invalid scope, or nesting deeper than kMaxDepth.
  static absl::StatusOr<ScopeExpression> FromJson(const nlohmann::json& json,
                                                  std::string_view field);
  // FromJson of JSON text; InputError(field) when the text is not JSON.
  static absl::StatusOr<ScopeExpression> Parse(std::string_view text,
                                               std::string_view field);

  nlohmann::json ToJson() const;
  // Compact JSON text.
  std::string ToString() const;

  Kind kind() const { return kind_; }
  // The scope of a kScope expression.
  const std::string& scope() const { return scope_; }
  // The terms of kAllOf/kAnyOf.
  const std::vector<ScopeExpression>& terms() const { return terms_; }

  // Every distinct scope the expression mentions, sorted.
  std::vector<std::string> MentionedScopes() const;

  bool operator==(const ScopeExpression& other) const;
  bool operator!=(const ScopeExpression& other) const {
    return !(*this == other);
  }

 private:
  ScopeExpression(Kind kind, std::string scope,
                  std::vector<ScopeExpression> terms)
      : kind_(kind), scope_(std::move(scope)), terms_(std::move(terms)) {}

  Kind kind_;
  std::string scope_;
  std::vector<ScopeExpression> terms_;
};

// What `held` still lacks for `expression`, simplified: satisfied parts
// removed and single-term AllOf/AnyOf flattened; nullopt when satisfied.
std::optional<ScopeExpression> Unsatisfied(const ScopeExpression& expression,
                                           const ScopeSet& held);

// Scope sets that would each, added to `held`, satisfy `expression`: the
// minimal alternatives of the unsatisfied part (each sorted; the list sorted
// by size then content). Empty when held already satisfies it, or when
// nothing can (an empty AnyOf). At most `max_sets` are returned; `truncated`
// says some were left out.
struct ScopeAlternatives {
  std::vector<std::vector<std::string>> sets;
  bool truncated = false;
};
ScopeAlternatives SufficientAlternatives(const ScopeExpression& expression,
                                         const ScopeSet& held,
                                         size_t max_sets = 16);

// The PermissionDenied/InsufficientScopes status for a caller holding `held`
// who lacks `required` for `action` (e.g. "drover.v1.Queue/CreateTask").
// The message lists the scope sets that would have sufficed; details carry
// "action", "required" (a JSON array of scope arrays, the alternatives) and
// "unsatisfied" (the unsatisfied expression as JSON).
absl::Status InsufficientScopesError(std::string_view action,
                                     const ScopeExpression& required,
                                     const ScopeSet& held);

}  // namespace drover::queue::auth

#endif  // DROVER_QUEUE_AUTH_SCOPES_H_
