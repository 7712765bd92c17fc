// libFuzzer target for the scope algebra: the expression parser, the scope
// list parser, normalisation, intersection and role expansion.
//
// Input: lines. "id=s1|s2|..." defines a role; "?<json>" is a scope
// expression; any other line is a held scope. The whole input is also fed
// to the JSON parsers. Beyond "no crash, no hang, no sanitizer report" the
// target checks the algebra's invariants and traps when one breaks:
//  * the expansion of a scope set satisfies the set itself;
//  * cached and uncached expansion agree;
//  * normalisation is idempotent and keeps what the input satisfied;
//  * an intersection is covered by both sides;
//  * monotonicity: if held scope w satisfies held scope t, the expansion of
//    {w} satisfies everything in the expansion of {t};
//  * expressions round-trip through JSON, Unsatisfied agrees with
//    Satisfies, and every suggested alternative really suffices.
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "queue/auth/role_resolver.h"
#include "queue/auth/scopes.h"

namespace {

using drover::queue::auth::IntersectScopes;
using drover::queue::auth::IsValidScope;
using drover::queue::auth::NormalizeScopes;
using drover::queue::auth::ParseScopeList;
using drover::queue::auth::Role;
using drover::queue::auth::RoleResolver;
using drover::queue::auth::RoleResolverOptions;
using drover::queue::auth::ScopeExpression;
using drover::queue::auth::ScopeSet;
using drover::queue::auth::SufficientAlternatives;
using drover::queue::auth::Unsatisfied;

constexpr size_t kMaxRoles = 32;
constexpr size_t kMaxHeld = 16;

void Check(bool condition, const char* what) {
  if (!condition) {
    std::fprintf(stderr, "invariant violated: %s\n", what);
    __builtin_trap();
  }
}

std::vector<std::string> Split(std::string_view text, char separator) {
  std::vector<std::string> parts;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find(separator, start);
    if (end == std::string_view::npos) end = text.size();
    parts.emplace_back(text.substr(start, end - start));
    start = end + 1;
  }
  return parts;
}

void CheckExpression(const ScopeExpression& expression, const ScopeSet& held) {
  auto again = ScopeExpression::Parse(expression.ToString(), "fuzz");
  Check(again.ok() && *again == expression, "expression JSON round trip");
  const bool satisfied = held.Satisfies(expression);
  Check(satisfied == !Unsatisfied(expression, held).has_value(),
        "Unsatisfied agrees with Satisfies");
  auto alternatives = SufficientAlternatives(expression, held, 8);
  if (satisfied) {
    Check(alternatives.sets.empty(), "no alternatives when satisfied");
    return;
  }
  for (const auto& set : alternatives.sets) {
    std::vector<std::string> with = held.scopes();
    with.insert(with.end(), set.begin(), set.end());
    Check(ScopeSet(with).Satisfies(expression), "alternative suffices");
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);

  // The parsers on raw input.
  if (auto expression = ScopeExpression::Parse(input, "fuzz");
      expression.ok()) {
    CheckExpression(*expression, ScopeSet());
  }
  if (auto list = ParseScopeList(input, "fuzz"); list.ok()) {
    for (const auto& scope : *list)
      Check(IsValidScope(scope), "list scope valid");
  }

  std::vector<Role> roles;
  std::vector<std::string> held;
  std::vector<ScopeExpression> expressions;
  for (const std::string& line : Split(input, '\n')) {
    if (line.empty()) continue;
    if (line[0] == '?') {
      auto expression = ScopeExpression::Parse(line.substr(1), "fuzz");
      if (expression.ok()) expressions.push_back(std::move(*expression));
      continue;
    }
    const size_t equals = line.find('=');
    if (equals != std::string::npos && roles.size() < kMaxRoles) {
      Role role{line.substr(0, equals), {}};
      if (equals + 1 < line.size()) {
        role.scopes = Split(std::string_view(line).substr(equals + 1), '|');
      }
      roles.push_back(std::move(role));
    } else if (held.size() < kMaxHeld) {
      held.push_back(line);
    }
  }

  // Normalisation and intersection work on any strings.
  std::vector<std::string> normalized = NormalizeScopes(held);
  Check(NormalizeScopes(normalized) == normalized, "normalise idempotent");
  const ScopeSet held_set(held);
  for (const auto& scope : held) {
    Check(held_set.Satisfies(scope), "normalised set satisfies input");
  }
  const std::vector<std::string> left(held.begin(),
                                      held.begin() + held.size() / 2);
  const std::vector<std::string> right(held.begin() + held.size() / 2,
                                       held.end());
  const ScopeSet left_set(left), right_set(right);
  for (const auto& scope : IntersectScopes(left, right)) {
    Check(left_set.Covers(scope) && right_set.Covers(scope),
          "intersection covered by both sides");
  }

  RoleResolverOptions options;
  options.max_expanded_scopes = 2000;
  options.cache_entries = 8;
  auto resolver = RoleResolver::Build(roles, options);
  if (!resolver.ok()) return 0;

  std::vector<std::string> valid;
  for (const auto& scope : held) {
    if (IsValidScope(scope)) valid.push_back(scope);
  }
  auto expanded = (*resolver)->Expand(valid);
  if (!expanded.ok()) return 0;
  auto uncached = (*resolver)->ExpandUncached(valid);
  Check(uncached.ok() && (*uncached)->scopes() == (*expanded)->scopes(),
        "cached and uncached expansion agree");
  for (const auto& scope : valid) {
    Check((*expanded)->Satisfies(scope), "expansion satisfies its input");
  }

  for (const auto& wide : valid) {
    auto wide_expanded = (*resolver)->Expand({wide});
    if (!wide_expanded.ok()) continue;
    for (const auto& narrow : valid) {
      if (!ScopeSet({wide}).Satisfies(narrow)) continue;
      auto narrow_expanded = (*resolver)->Expand({narrow});
      if (!narrow_expanded.ok()) continue;
      for (const auto& scope : (*narrow_expanded)->scopes()) {
        Check((*wide_expanded)->Satisfies(scope), "expansion is monotonic");
      }
    }
  }

  for (const auto& expression : expressions) {
    CheckExpression(expression, **expanded);
  }
  return 0;
}
