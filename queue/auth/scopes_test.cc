#include "queue/auth/scopes.h"

#include <string>
#include <vector>

#include "common/status.h"
#include "gtest/gtest.h"

namespace drover::queue::auth {
namespace {

using Scopes = std::vector<std::string>;
using E = ScopeExpression;

// ---- validation -----------------------------------------------------------

TEST(ValidateScopeTest, AcceptsPrintableAsciiIncludingSpace) {
  for (const std::string& scope : std::vector<std::string>{
           "queue:create-task:highest:proj/linux", "a b",
           "~!@#$%^&*()_+{}|:\"<>?", "*", "assume:repo:github.com/org/*",
           std::string(kMaxScopeLength, 'x')}) {
    EXPECT_TRUE(IsValidScope(scope)) << scope;
    EXPECT_TRUE(ValidateScope("scopes[0]", scope).ok()) << scope;
  }
}

TEST(ValidateScopeTest, RejectsControlCharactersNonAsciiEmptyAndLong) {
  struct Case {
    std::string scope;
    std::string message_part;
  };
  for (const Case& c : std::vector<Case>{
           {"tab\there", "0x09 at position 3"},
           {"new\nline", "0x0a at position 3"},
           {"del\x7f", "0x7f at position 3"},
           {"caf\xc3\xa9", "0xc3 at position 3"},
           {std::string("nul\0", 4), "0x00 at position 3"},
           {"", "must not be empty"},
           {std::string(kMaxScopeLength + 1, 'x'), "longer than 1024"}}) {
    EXPECT_FALSE(IsValidScope(c.scope));
    absl::Status status = ValidateScope("task.scopes[2]", c.scope);
    ASSERT_FALSE(status.ok());
    ErrorInfo info = GetErrorInfo(status);
    EXPECT_EQ(info.code, ErrorCode::kInputError);
    EXPECT_EQ(info.details["field"], "task.scopes[2]");
    EXPECT_NE(info.message.find(c.message_part), std::string::npos)
        << info.message;
  }
}

TEST(ValidateScopeTest, ValidateScopesNamesTheIndex) {
  absl::Status status = ValidateScopes("scopes", {"ok", "also ok", "bad\t"});
  EXPECT_EQ(GetErrorInfo(status).details["field"], "scopes[2]");
  EXPECT_EQ(GetErrorInfo(status).details["value"], "bad\\x09");
  EXPECT_TRUE(ValidateScopes("scopes", {}).ok());
}

TEST(ParseScopeListTest, ParsesArraysAndRejectsEverythingElse) {
  auto ok = ParseScopeList(R"(["a", "b*"])", "authorized_scopes");
  ASSERT_TRUE(ok.ok()) << ok.status();
  EXPECT_EQ(*ok, (Scopes{"a", "b*"}));
  EXPECT_TRUE(ParseScopeList("[]", "f")->empty());
  struct Case {
    std::string text;
    std::string field;
  };
  for (const Case& c : std::vector<Case>{{"not json", "f"},
                                         {R"({"a":1})", "f"},
                                         {R"("a")", "f"},
                                         {R"(["a", 3])", "f[1]"},
                                         {R"(["a", "b\n"])", "f[1]"},
                                         {R"(["a", ""])", "f[1]"}}) {
    auto result = ParseScopeList(c.text, "f");
    ASSERT_FALSE(result.ok()) << c.text;
    EXPECT_EQ(GetErrorInfo(result.status()).details["field"], c.field)
        << c.text;
  }
}

// ---- satisfaction ---------------------------------------------------------

struct SatisfyCase {
  Scopes held;
  std::string required;
  bool satisfied;
};

class SatisfiesTest : public ::testing::TestWithParam<SatisfyCase> {};

TEST_P(SatisfiesTest, MatchesTaskClusterSemantics) {
  const SatisfyCase& c = GetParam();
  EXPECT_EQ(ScopeSet(c.held).Satisfies(c.required), c.satisfied)
      << ::testing::PrintToString(c.held) << " vs " << c.required;
  // The set, the single-scope helper and the expression agree.
  bool any = false;
  for (const auto& held : c.held) any = any || ScopeSatisfies(held, c.required);
  EXPECT_EQ(any, c.satisfied);
  EXPECT_EQ(ScopeSet(c.held).Satisfies(E::Scope(c.required)), c.satisfied);
}

INSTANTIATE_TEST_SUITE_P(
    Classic, SatisfiesTest,
    ::testing::Values(
        SatisfyCase{{"*"}, "anything:at:all", true},
        SatisfyCase{{"*"}, "*", true}, SatisfyCase{{"a"}, "a", true},
        SatisfyCase{{"a"}, "ab", false}, SatisfyCase{{"ab"}, "a", false},
        SatisfyCase{{"a*"}, "a", true}, SatisfyCase{{"a*"}, "ab", true},
        SatisfyCase{{"a*"}, "a*", true}, SatisfyCase{{"a*"}, "a**", true},
        SatisfyCase{{"a*"}, "b", false}, SatisfyCase{{"ab"}, "a*", false},
        SatisfyCase{{"ab*"}, "a*", false}, SatisfyCase{{"a**"}, "a*", true},
        SatisfyCase{{"a**"}, "ab", false},
        // '*' is only a wildcard at the end.
        SatisfyCase{{"a*b"}, "axb", false}, SatisfyCase{{"a*b"}, "a*b", true},
        SatisfyCase{
            {"queue:create-task:*"}, "queue:create-task:high:proj/linux", true},
        SatisfyCase{{"queue:create-task:low:*"},
                    "queue:create-task:high:proj/linux",
                    false},
        SatisfyCase{{"x", "y", "queue:*"}, "queue:claim-work:p/w", true},
        SatisfyCase{{}, "a", false},
        SatisfyCase{{"assume:repo:*"}, "assume:repo:github.com/x", true},
        SatisfyCase{{"a b*"}, "a b c", true},
        SatisfyCase{{"a b*"}, "a  b", false}));

TEST(ScopeSetTest, SatisfiesAllAndEmpty) {
  ScopeSet held({"a*", "b"});
  EXPECT_TRUE(held.SatisfiesAll({"a1", "a2", "b"}));
  EXPECT_FALSE(held.SatisfiesAll({"a1", "c"}));
  EXPECT_TRUE(held.SatisfiesAll({}));
  EXPECT_TRUE(ScopeSet().empty());
  EXPECT_FALSE(ScopeSet().Satisfies("a"));
}

// ---- normalisation, union, intersection -----------------------------------

struct NormalizeCase {
  Scopes input;
  Scopes expected;
};

class NormalizeTest : public ::testing::TestWithParam<NormalizeCase> {};

TEST_P(NormalizeTest, RemovesImpliedScopesAndSorts) {
  const NormalizeCase& c = GetParam();
  Scopes normalized = NormalizeScopes(c.input);
  EXPECT_EQ(normalized, c.expected);
  EXPECT_EQ(NormalizeScopes(normalized), normalized) << "idempotent";
  // Satisfaction-equivalent to the input.
  ScopeSet after(normalized);
  for (const auto& scope : c.input)
    EXPECT_TRUE(after.Satisfies(scope)) << scope;
}

INSTANTIATE_TEST_SUITE_P(
    Classic, NormalizeTest,
    ::testing::Values(NormalizeCase{{}, {}},
                      NormalizeCase{{"b", "a", "b"}, {"a", "b"}},
                      NormalizeCase{{"a", "a*"}, {"a*"}},
                      NormalizeCase{{"ab*", "a*"}, {"a*"}},
                      NormalizeCase{{"a*", "a**"}, {"a*"}},
                      NormalizeCase{{"a**"}, {"a**"}},
                      NormalizeCase{{"*", "anything", "a*"}, {"*"}},
                      NormalizeCase{{"ab", "a!", "a*", "b"}, {"a*", "b"}},
                      NormalizeCase{{"a*b", "a"}, {"a", "a*b"}},
                      NormalizeCase{{"queue:route:*", "queue:route:index.x",
                                     "queue:route", "queue:scheduler-id:x"},
                                    {"queue:route", "queue:route:*",
                                     "queue:scheduler-id:x"}}));

TEST(MergeScopesTest, UnionIsNormalised) {
  EXPECT_EQ(MergeScopes({"a", "c*"}, {"b", "cd", "a"}),
            (Scopes{"a", "b", "c*"}));
  EXPECT_EQ(MergeScopes({}, {"x"}), (Scopes{"x"}));
}

TEST(IntersectScopesTest, ClassicCases) {
  EXPECT_EQ(IntersectScopes({"a*"}, {"ab"}), (Scopes{"ab"}));
  EXPECT_EQ(IntersectScopes({"ab"}, {"a*"}), (Scopes{"ab"}));
  EXPECT_EQ(IntersectScopes({"a"}, {"b"}), (Scopes{}));
  EXPECT_EQ(IntersectScopes({"a*"}, {"ab*"}), (Scopes{"ab*"}));
  EXPECT_EQ(IntersectScopes({"*"}, {"x", "y*"}), (Scopes{"x", "y*"}));
  EXPECT_EQ(IntersectScopes({"a*", "b"}, {"a1", "b", "c"}),
            (Scopes{"a1", "b"}));
  EXPECT_EQ(IntersectScopes({"ab"}, {"ab"}), (Scopes{"ab"}));
  EXPECT_EQ(IntersectScopes({}, {"a"}), (Scopes{}));
  // "a**" satisfies the literal "a*" but not "ab": the intersection of "a*"
  // and "a**" is "a**", never "a*".
  EXPECT_EQ(IntersectScopes({"a*"}, {"a**"}), (Scopes{"a**"}));
  EXPECT_EQ(IntersectScopes({"a**"}, {"a*"}), (Scopes{"a**"}));
}

TEST(ScopeSetTest, CoversIsStricterThanSatisfiesForWildcards) {
  ScopeSet held({"a**", "b*", "c"});
  EXPECT_TRUE(held.Satisfies("a*"));
  EXPECT_FALSE(held.Covers("a*"));
  EXPECT_TRUE(held.Covers("a**"));
  EXPECT_TRUE(held.Covers("a***"));
  EXPECT_TRUE(held.Covers("bc*"));
  EXPECT_TRUE(held.Covers("b*"));
  EXPECT_TRUE(held.Covers("c"));
  EXPECT_FALSE(held.Covers("c*"));
  EXPECT_FALSE(held.Covers("*"));
}

// ---- expressions ----------------------------------------------------------

TEST(ScopeExpressionTest, ParsesTaskClusterJson) {
  auto expr = E::Parse(
      R"({"AllOf": ["a", {"AnyOf": ["b", {"AllOf": []}]}, {"AnyOf": []}]})",
      "expr");
  ASSERT_TRUE(expr.ok()) << expr.status();
  EXPECT_EQ(*expr,
            E::AllOf({E::Scope("a"), E::AnyOf({E::Scope("b"), E::AllOf({})}),
                      E::AnyOf({})}));
  EXPECT_EQ(expr->ToString(),
            R"({"AllOf":["a",{"AnyOf":["b",{"AllOf":[]}]},{"AnyOf":[]}]})");
  auto again = E::Parse(expr->ToString(), "expr");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(*again, *expr);
  EXPECT_EQ(expr->MentionedScopes(), (Scopes{"a", "b"}));
}

TEST(ScopeExpressionTest, RejectsMalformedExpressionsWithThePath) {
  struct Case {
    std::string text;
    std::string field;
  };
  for (const Case& c :
       std::vector<Case>{{"nope", "expr"},
                         {"3", "expr"},
                         {"[]", "expr"},
                         {R"({})", "expr"},
                         {R"({"AllOf": [], "AnyOf": []})", "expr"},
                         {R"({"allof": []})", "expr"},
                         {R"({"AllOf": "a"})", "expr.AllOf"},
                         {R"({"AllOf": ["a", {"AnyOf": ["b", 1]}]})",
                          "expr.AllOf[1].AnyOf[1]"},
                         {R"({"AnyOf": ["ok", "bad\u0001"]})", "expr.AnyOf[1]"},
                         {R"({"AnyOf": [""]})", "expr.AnyOf[0]"}}) {
    auto expr = E::Parse(c.text, "expr");
    ASSERT_FALSE(expr.ok()) << c.text;
    ErrorInfo info = GetErrorInfo(expr.status());
    EXPECT_EQ(info.code, ErrorCode::kInputError);
    EXPECT_EQ(info.details["field"], c.field) << c.text;
  }
}

TEST(ScopeExpressionTest, RejectsDeepNesting) {
  std::string text = "\"a\"";
  for (int i = 0; i < E::kMaxDepth + 1; ++i)
    text = "{\"AllOf\":[" + text + "]}";
  auto expr = E::Parse(text, "expr");
  ASSERT_FALSE(expr.ok());
  EXPECT_NE(expr.status().message().find("nested deeper"), std::string::npos);
  std::string ok = "\"a\"";
  for (int i = 0; i < E::kMaxDepth; ++i) ok = "{\"AnyOf\":[" + ok + "]}";
  EXPECT_TRUE(E::Parse(ok, "expr").ok());
}

struct ExpressionCase {
  std::string expression;
  Scopes held;
  bool satisfied;
};

class ExpressionSatisfiedTest
    : public ::testing::TestWithParam<ExpressionCase> {};

TEST_P(ExpressionSatisfiedTest, Evaluates) {
  const ExpressionCase& c = GetParam();
  auto expr = E::Parse(c.expression, "expr");
  ASSERT_TRUE(expr.ok()) << expr.status();
  ScopeSet held(c.held);
  EXPECT_EQ(held.Satisfies(*expr), c.satisfied);
  EXPECT_EQ(!Unsatisfied(*expr, held).has_value(), c.satisfied);
}

INSTANTIATE_TEST_SUITE_P(
    Classic, ExpressionSatisfiedTest,
    ::testing::Values(
        ExpressionCase{R"("abc")", {"abc"}, true},
        ExpressionCase{R"("abc")", {"ab*"}, true},
        ExpressionCase{R"({"AllOf": []})", {}, true},
        ExpressionCase{R"({"AnyOf": []})", {"*"}, false},
        ExpressionCase{R"({"AnyOf": ["abc", "def"]})", {"def"}, true},
        ExpressionCase{R"({"AllOf": ["abc", "def"]})", {"abc"}, false},
        ExpressionCase{R"({"AllOf": ["abc", "def"]})", {"abc", "def"}, true},
        ExpressionCase{
            R"({"AllOf": [{"AnyOf": ["a", "b"]}, "c"]})", {"b", "c"}, true},
        ExpressionCase{
            R"({"AnyOf": [{"AllOf": ["a", "b"]}, "c"]})", {"a"}, false},
        ExpressionCase{
            R"({"AnyOf": [{"AllOf": ["a", "b"]}, "c"]})", {"a", "b"}, true},
        ExpressionCase{
            R"({"AllOf": [{"AllOf": [{"AllOf": ["x"]}]}]})", {"x*"}, true}));

TEST(UnsatisfiedTest, RemovesWhatIsHeldAndFlattens) {
  ScopeSet held({"a", "c*"});
  auto expr = E::Parse(
      R"({"AllOf": ["a", "b", "c1", {"AnyOf": ["d", {"AllOf": ["e", "a"]}]}]})",
      "expr");
  ASSERT_TRUE(expr.ok());
  auto missing = Unsatisfied(*expr, held);
  ASSERT_TRUE(missing.has_value());
  EXPECT_EQ(missing->ToString(), R"({"AllOf":["b",{"AnyOf":["d","e"]}]})");
  EXPECT_FALSE(Unsatisfied(E::AnyOf({E::Scope("x"), E::Scope("a")}), held));
  EXPECT_EQ(Unsatisfied(E::AnyOf({}), held)->ToString(), R"({"AnyOf":[]})");
}

TEST(SufficientAlternativesTest, ListsMinimalMissingSets) {
  // CreateTask-like: task scopes, a route, and any priority at or above.
  E expr = E::AllOf({E::Scope("secrets:get:x"), E::Scope("queue:route:r"),
                     E::AnyOf({E::Scope("queue:create-task:high:p/w"),
                               E::Scope("queue:create-task:highest:p/w")})});
  ScopeSet held({"secrets:get:*"});
  ScopeAlternatives alternatives = SufficientAlternatives(expr, held);
  EXPECT_FALSE(alternatives.truncated);
  EXPECT_EQ(alternatives.sets,
            (std::vector<Scopes>{
                {"queue:create-task:high:p/w", "queue:route:r"},
                {"queue:create-task:highest:p/w", "queue:route:r"}}));
  // Each alternative really suffices.
  for (const auto& set : alternatives.sets) {
    Scopes with = held.scopes();
    with.insert(with.end(), set.begin(), set.end());
    EXPECT_TRUE(ScopeSet(with).Satisfies(expr));
  }
}

TEST(SufficientAlternativesTest, DropsNonMinimalSetsAndHandlesEdges) {
  E expr = E::AnyOf({E::AllOf({E::Scope("a"), E::Scope("b")}), E::Scope("a"),
                     E::AllOf({E::Scope("a"), E::Scope("a")})});
  auto alternatives = SufficientAlternatives(expr, ScopeSet());
  EXPECT_EQ(alternatives.sets, (std::vector<Scopes>{{"a"}}));
  EXPECT_TRUE(
      SufficientAlternatives(E::Scope("a"), ScopeSet({"a"})).sets.empty());
  EXPECT_TRUE(SufficientAlternatives(E::AnyOf({}), ScopeSet()).sets.empty());
}

TEST(SufficientAlternativesTest, CapsExponentialBlowUp) {
  std::vector<E> terms;
  for (int i = 0; i < 20; ++i) {
    terms.push_back(E::AnyOf({E::Scope("x" + std::to_string(i)),
                              E::Scope("y" + std::to_string(i))}));
  }
  auto alternatives = SufficientAlternatives(E::AllOf(terms), ScopeSet(), 8);
  EXPECT_TRUE(alternatives.truncated);
  EXPECT_LE(alternatives.sets.size(), 8u);
  EXPECT_FALSE(alternatives.sets.empty());
  EXPECT_EQ(alternatives.sets.front().size(), 20u);
}

TEST(InsufficientScopesErrorTest, ExplainsWhatWouldSuffice) {
  E expr = E::AllOf(
      {E::Scope("queue:claim-work:p/w"), E::Scope("queue:worker-id:g/w1")});
  absl::Status status = InsufficientScopesError(
      "drover.v1.Queue/ClaimWork", expr, ScopeSet({"queue:claim-work:*"}));
  EXPECT_EQ(status.code(), absl::StatusCode::kPermissionDenied);
  ErrorInfo info = GetErrorInfo(status);
  EXPECT_EQ(info.code, ErrorCode::kInsufficientScopes);
  EXPECT_EQ(info.details["action"], "drover.v1.Queue/ClaimWork");
  EXPECT_EQ(info.details["required"], R"([["queue:worker-id:g/w1"]])");
  EXPECT_EQ(info.details["unsatisfied"], R"("queue:worker-id:g/w1")");
  EXPECT_NE(info.message.find("would suffice: [\"queue:worker-id:g/w1\"]"),
            std::string::npos)
      << info.message;

  absl::Status impossible =
      InsufficientScopesError("x", E::AnyOf({}), ScopeSet({"*"}));
  EXPECT_NE(impossible.message().find("no scopes can satisfy"),
            std::string::npos);
}

}  // namespace
}  // namespace drover::queue::auth
