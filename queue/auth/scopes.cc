#include "queue/auth/scopes.h"

#include <algorithm>
#include <cstdio>
#include <set>
#include <utility>

#include "common/status.h"

namespace drover::queue::auth {
namespace {

using Json = nlohmann::json;

// Error values may echo user input; keep them valid UTF-8 for the JSON error
// payload whatever the input was.
std::string DumpForError(const Json& json) {
  return json.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string Printable(std::string_view text) {
  std::string out;
  for (unsigned char c : text) {
    if (c >= 0x20 && c < 0x7f) {
      out.push_back(static_cast<char>(c));
    } else {
      char escaped[5];
      std::snprintf(escaped, sizeof(escaped), "\\x%02x", c);
      out.append(escaped);
    }
  }
  return out;
}

void SortUnique(std::vector<std::string>& scopes) {
  std::sort(scopes.begin(), scopes.end());
  scopes.erase(std::unique(scopes.begin(), scopes.end()), scopes.end());
}

}  // namespace

bool IsValidScope(std::string_view scope) {
  if (scope.empty() || scope.size() > kMaxScopeLength) return false;
  return std::all_of(scope.begin(), scope.end(),
                     [](char c) { return c >= 0x20 && c <= 0x7e; });
}

absl::Status ValidateScope(std::string_view field, std::string_view scope) {
  if (scope.empty()) return InputError(field, scope, "scope must not be empty");
  if (scope.size() > kMaxScopeLength) {
    return InputError(field, Printable(scope),
                      "scope is longer than " +
                          std::to_string(kMaxScopeLength) + " characters");
  }
  for (size_t i = 0; i < scope.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(scope[i]);
    if (c < 0x20 || c > 0x7e) {
      char code[8];
      std::snprintf(code, sizeof(code), "0x%02x", c);
      return InputError(field, Printable(scope),
                        "scope has character " + std::string(code) +
                            " at position " + std::to_string(i) +
                            "; scopes are printable ASCII (0x20-0x7e)");
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateScopes(std::string_view field,
                            const std::vector<std::string>& scopes) {
  for (size_t i = 0; i < scopes.size(); ++i) {
    DROVER_RETURN_IF_ERROR(ValidateScope(
        std::string(field) + "[" + std::to_string(i) + "]", scopes[i]));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::vector<std::string>> ParseScopeList(
    std::string_view json_text, std::string_view field) {
  Json json = Json::parse(json_text.begin(), json_text.end(), nullptr,
                          /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    return InputError(field, Printable(json_text), "is not valid JSON");
  }
  if (!json.is_array()) {
    return InputError(field, DumpForError(json),
                      "must be a JSON array of scope strings");
  }
  std::vector<std::string> scopes;
  scopes.reserve(json.size());
  for (size_t i = 0; i < json.size(); ++i) {
    const std::string element_field =
        std::string(field) + "[" + std::to_string(i) + "]";
    if (!json[i].is_string()) {
      return InputError(element_field, DumpForError(json[i]),
                        "must be a string");
    }
    std::string scope = json[i].get<std::string>();
    DROVER_RETURN_IF_ERROR(ValidateScope(element_field, scope));
    scopes.push_back(std::move(scope));
  }
  return scopes;
}

bool ScopeSatisfies(std::string_view held, std::string_view required) {
  if (held == required) return true;
  if (held.empty() || held.back() != '*') return false;
  held.remove_suffix(1);
  return required.substr(0, held.size()) == held;
}

std::vector<std::string> NormalizeScopes(std::vector<std::string> scopes) {
  SortUnique(scopes);
  // Prefixes of the wildcards, as views into `scopes` (not modified until
  // the final erase, which happens after the last lookup).
  std::unordered_set<std::string_view> prefixes;
  size_t max_prefix = 0;
  for (const std::string& scope : scopes) {
    if (!scope.empty() && scope.back() == '*') {
      prefixes.insert(std::string_view(scope).substr(0, scope.size() - 1));
      max_prefix = std::max(max_prefix, scope.size() - 1);
    }
  }
  if (prefixes.empty()) return scopes;
  std::vector<bool> implied(scopes.size(), false);
  for (size_t k = 0; k < scopes.size(); ++k) {
    std::string_view scope = scopes[k];
    const bool is_wildcard = !scope.empty() && scope.back() == '*';
    const size_t limit = std::min(scope.size(), max_prefix);
    // A wildcard "p*" is implied only by a wildcard whose prefix is a prefix
    // of p (i < |p|); "p*" itself and "p**" (which satisfies the literal
    // "p*" but not "px") do not count.
    const size_t end =
        is_wildcard ? std::min(limit + 1, scope.size() - 1) : limit + 1;
    for (size_t i = 0; i < end; ++i) {
      if (prefixes.count(scope.substr(0, i)) != 0) {
        implied[k] = true;
        break;
      }
    }
  }
  std::vector<std::string> out;
  out.reserve(scopes.size());
  for (size_t k = 0; k < scopes.size(); ++k) {
    if (!implied[k]) out.push_back(std::move(scopes[k]));
  }
  return out;
}

std::vector<std::string> MergeScopes(const std::vector<std::string>& a,
                                     const std::vector<std::string>& b) {
  std::vector<std::string> all = a;
  all.insert(all.end(), b.begin(), b.end());
  return NormalizeScopes(std::move(all));
}

std::vector<std::string> IntersectScopes(const std::vector<std::string>& a,
                                         const std::vector<std::string>& b) {
  // Keep the scopes of each side that the other side covers entirely. For
  // any scope t satisfied by both, take the satisfying scopes sa and sb: if
  // one is plain it equals t and the other side covers it; if both are
  // wildcards, one prefix extends the other and the longer one is covered.
  const ScopeSet set_a(a);
  const ScopeSet set_b(b);
  std::vector<std::string> out;
  for (const std::string& scope : set_a.scopes()) {
    if (set_b.Covers(scope)) out.push_back(scope);
  }
  for (const std::string& scope : set_b.scopes()) {
    if (set_a.Covers(scope)) out.push_back(scope);
  }
  return NormalizeScopes(std::move(out));
}

ScopeSet::ScopeSet(std::vector<std::string> scopes)
    : scopes_(NormalizeScopes(std::move(scopes))) {
  bool first = true;
  for (const std::string& scope : scopes_) {
    exact_.insert(scope);
    if (!scope.empty() && scope.back() == '*') {
      const size_t n = scope.size() - 1;
      wildcard_prefixes_.insert(scope.substr(0, n));
      min_prefix_ = first ? n : std::min(min_prefix_, n);
      max_prefix_ = first ? n : std::max(max_prefix_, n);
      first = false;
    }
  }
}

bool ScopeSet::Satisfies(std::string_view required) const {
  if (exact_.find(required) != exact_.end()) return true;
  if (wildcard_prefixes_.empty() || required.size() < min_prefix_) {
    return false;
  }
  const size_t limit = std::min(required.size(), max_prefix_);
  for (size_t i = min_prefix_; i <= limit; ++i) {
    if (wildcard_prefixes_.find(required.substr(0, i)) !=
        wildcard_prefixes_.end()) {
      return true;
    }
  }
  return false;
}

bool ScopeSet::Covers(std::string_view scope) const {
  if (scope.empty() || scope.back() != '*') return Satisfies(scope);
  if (exact_.find(scope) != exact_.end()) return true;
  std::string_view prefix = scope.substr(0, scope.size() - 1);
  if (wildcard_prefixes_.empty() || prefix.size() < min_prefix_) return false;
  const size_t limit = std::min(prefix.size(), max_prefix_);
  for (size_t i = min_prefix_; i <= limit; ++i) {
    if (wildcard_prefixes_.find(prefix.substr(0, i)) !=
        wildcard_prefixes_.end()) {
      return true;
    }
  }
  return false;
}

bool ScopeSet::SatisfiesAll(const std::vector<std::string>& required) const {
  return std::all_of(required.begin(), required.end(),
                     [this](const std::string& s) { return Satisfies(s); });
}

bool ScopeSet::Satisfies(const ScopeExpression& expression) const {
  switch (expression.kind()) {
    case ScopeExpression::Kind::kScope:
      return Satisfies(expression.scope());
    case ScopeExpression::Kind::kAllOf:
      return std::all_of(
          expression.terms().begin(), expression.terms().end(),
          [this](const ScopeExpression& t) { return Satisfies(t); });
    case ScopeExpression::Kind::kAnyOf:
      return std::any_of(
          expression.terms().begin(), expression.terms().end(),
          [this](const ScopeExpression& t) { return Satisfies(t); });
  }
  return false;
}

ScopeExpression ScopeExpression::Scope(std::string scope) {
  return ScopeExpression(Kind::kScope, std::move(scope), {});
}

ScopeExpression ScopeExpression::AllOf(std::vector<ScopeExpression> terms) {
  return ScopeExpression(Kind::kAllOf, "", std::move(terms));
}

ScopeExpression ScopeExpression::AnyOf(std::vector<ScopeExpression> terms) {
  return ScopeExpression(Kind::kAnyOf, "", std::move(terms));
}

ScopeExpression ScopeExpression::AllOfScopes(
    const std::vector<std::string>& scopes) {
  std::vector<ScopeExpression> terms;
  terms.reserve(scopes.size());
  for (const std::string& scope : scopes) terms.push_back(Scope(scope));
  return AllOf(std::move(terms));
}

namespace {

absl::StatusOr<ScopeExpression> FromJsonAt(const Json& json,
                                           const std::string& field,
                                           int depth) {
  if (json.is_string()) {
    const std::string& scope = json.get_ref<const std::string&>();
    DROVER_RETURN_IF_ERROR(ValidateScope(field, scope));
    return ScopeExpression::Scope(scope);
  }
  if (!json.is_object() || json.size() != 1) {
    return InputError(field, DumpForError(json),
                      "scope expression must be a scope string or an object "
                      "with exactly one key, AllOf or AnyOf");
  }
  // Iterators of the object itself: items() would hand out a proxy that dies
  // at the end of the statement.
  const auto member = json.begin();
  const std::string& key = member.key();
  const Json& value = member.value();
  if (key != "AllOf" && key != "AnyOf") {
    return InputError(field, DumpForError(json),
                      "scope expression object must have the key AllOf or "
                      "AnyOf, not '" +
                          Printable(key) + "'");
  }
  const std::string inner = field + "." + key;
  if (!value.is_array()) {
    return InputError(inner, DumpForError(value), "must be an array");
  }
  if (depth >= ScopeExpression::kMaxDepth) {
    return InputError(inner, "",
                      "scope expression is nested deeper than " +
                          std::to_string(ScopeExpression::kMaxDepth) +
                          " levels");
  }
  std::vector<ScopeExpression> terms;
  terms.reserve(value.size());
  for (size_t i = 0; i < value.size(); ++i) {
    DROVER_ASSIGN_OR_RETURN(
        ScopeExpression term,
        FromJsonAt(value[i], inner + "[" + std::to_string(i) + "]", depth + 1));
    terms.push_back(std::move(term));
  }
  return key == "AllOf" ? ScopeExpression::AllOf(std::move(terms))
                        : ScopeExpression::AnyOf(std::move(terms));
}

void CollectScopes(const ScopeExpression& expression,
                   std::vector<std::string>& out) {
  if (expression.kind() == ScopeExpression::Kind::kScope) {
    out.push_back(expression.scope());
    return;
  }
  for (const ScopeExpression& term : expression.terms()) {
    CollectScopes(term, out);
  }
}

}  // namespace

absl::StatusOr<ScopeExpression> ScopeExpression::FromJson(
    const nlohmann::json& json, std::string_view field) {
  return FromJsonAt(json, std::string(field), 0);
}

absl::StatusOr<ScopeExpression> ScopeExpression::Parse(std::string_view text,
                                                       std::string_view field) {
  Json json = Json::parse(text.begin(), text.end(), nullptr,
                          /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    return InputError(field, Printable(text.substr(0, 256)),
                      "scope expression is not valid JSON");
  }
  return FromJson(json, field);
}

nlohmann::json ScopeExpression::ToJson() const {
  if (kind_ == Kind::kScope) return scope_;
  Json terms = Json::array();
  for (const ScopeExpression& term : terms_) terms.push_back(term.ToJson());
  Json out = Json::object();
  out[kind_ == Kind::kAllOf ? "AllOf" : "AnyOf"] = std::move(terms);
  return out;
}

std::string ScopeExpression::ToString() const {
  return ToJson().dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::vector<std::string> ScopeExpression::MentionedScopes() const {
  std::vector<std::string> out;
  CollectScopes(*this, out);
  SortUnique(out);
  return out;
}

bool ScopeExpression::operator==(const ScopeExpression& other) const {
  return kind_ == other.kind_ && scope_ == other.scope_ &&
         terms_ == other.terms_;
}

std::optional<ScopeExpression> Unsatisfied(const ScopeExpression& expression,
                                           const ScopeSet& held) {
  switch (expression.kind()) {
    case ScopeExpression::Kind::kScope:
      if (held.Satisfies(expression.scope())) return std::nullopt;
      return expression;
    case ScopeExpression::Kind::kAllOf: {
      std::vector<ScopeExpression> missing;
      for (const ScopeExpression& term : expression.terms()) {
        if (auto rest = Unsatisfied(term, held)) {
          missing.push_back(std::move(*rest));
        }
      }
      if (missing.empty()) return std::nullopt;
      if (missing.size() == 1) return std::move(missing.front());
      return ScopeExpression::AllOf(std::move(missing));
    }
    case ScopeExpression::Kind::kAnyOf: {
      std::vector<ScopeExpression> options;
      for (const ScopeExpression& term : expression.terms()) {
        auto rest = Unsatisfied(term, held);
        if (!rest.has_value()) return std::nullopt;
        options.push_back(std::move(*rest));
      }
      if (options.size() == 1) return std::move(options.front());
      return ScopeExpression::AnyOf(std::move(options));
    }
  }
  return expression;
}

namespace {

using ScopeSets = std::vector<std::vector<std::string>>;

// Disjunctive normal form of an (unsatisfied) expression, capped at `max`
// sets per intermediate result.
ScopeSets Alternatives(const ScopeExpression& expression, size_t max,
                       bool& truncated) {
  switch (expression.kind()) {
    case ScopeExpression::Kind::kScope:
      return {{expression.scope()}};
    case ScopeExpression::Kind::kAnyOf: {
      ScopeSets out;
      for (const ScopeExpression& term : expression.terms()) {
        for (auto& set : Alternatives(term, max, truncated)) {
          if (out.size() >= max) {
            truncated = true;
            break;
          }
          out.push_back(std::move(set));
        }
      }
      return out;
    }
    case ScopeExpression::Kind::kAllOf: {
      ScopeSets out = {{}};
      for (const ScopeExpression& term : expression.terms()) {
        ScopeSets options = Alternatives(term, max, truncated);
        ScopeSets next;
        for (const auto& left : out) {
          for (const auto& right : options) {
            if (next.size() >= max) {
              truncated = true;
              break;
            }
            std::vector<std::string> joined = left;
            joined.insert(joined.end(), right.begin(), right.end());
            next.push_back(std::move(joined));
          }
        }
        out = std::move(next);
        if (out.empty()) break;
      }
      return out;
    }
  }
  return {};
}

}  // namespace

ScopeAlternatives SufficientAlternatives(const ScopeExpression& expression,
                                         const ScopeSet& held,
                                         size_t max_sets) {
  ScopeAlternatives result;
  std::optional<ScopeExpression> missing = Unsatisfied(expression, held);
  if (!missing.has_value() || max_sets == 0) return result;
  ScopeSets sets = Alternatives(*missing, max_sets, result.truncated);
  for (auto& set : sets) set = NormalizeScopes(std::move(set));
  std::sort(sets.begin(), sets.end(), [](const auto& a, const auto& b) {
    return a.size() != b.size() ? a.size() < b.size() : a < b;
  });
  sets.erase(std::unique(sets.begin(), sets.end()), sets.end());
  // Keep only minimal alternatives: a set that already satisfies an earlier
  // (no larger) kept set asks for more than necessary.
  for (auto& candidate : sets) {
    bool dominated = false;
    ScopeSet candidate_set(candidate);
    for (const auto& kept : result.sets) {
      if (candidate_set.SatisfiesAll(kept)) {
        dominated = true;
        break;
      }
    }
    if (!dominated) result.sets.push_back(std::move(candidate));
  }
  return result;
}

absl::Status InsufficientScopesError(std::string_view action,
                                     const ScopeExpression& required,
                                     const ScopeSet& held) {
  ScopeAlternatives alternatives = SufficientAlternatives(required, held);
  std::optional<ScopeExpression> missing = Unsatisfied(required, held);
  Json sets = Json::array();
  std::string listed;
  for (const auto& set : alternatives.sets) {
    Json one = Json::array();
    for (const auto& scope : set) one.push_back(scope);
    if (!listed.empty()) listed += " or ";
    listed += DumpForError(one);
    sets.push_back(std::move(one));
  }
  std::string message =
      "the caller lacks the scopes " + std::string(action) + " requires";
  if (alternatives.sets.empty()) {
    message += "; no scopes can satisfy it";
  } else {
    message += "; any one of these scope sets would suffice: " + listed;
    if (alternatives.truncated) message += " (list truncated)";
  }
  return MakeError(
      ErrorCode::kInsufficientScopes, message,
      {{"action", std::string(action)},
       {"required", DumpForError(sets)},
       {"unsatisfied",
        missing.has_value() ? missing->ToString() : std::string("null")}});
}

}  // namespace drover::queue::auth
