#include "queue/auth/role_resolver.h"

#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"
#include "gtest/gtest.h"

namespace drover::queue::auth {
namespace {

using Scopes = std::vector<std::string>;

std::shared_ptr<const RoleResolver> MustBuild(
    std::vector<Role> roles, RoleResolverOptions options = {}) {
  auto resolver = RoleResolver::Build(std::move(roles), options);
  EXPECT_TRUE(resolver.ok()) << resolver.status();
  return resolver.ok() ? *resolver : nullptr;
}

Scopes MustExpand(const RoleResolver& resolver, const Scopes& scopes) {
  auto expanded = resolver.Expand(scopes);
  EXPECT_TRUE(expanded.ok()) << expanded.status();
  return expanded.ok() ? (*expanded)->scopes() : Scopes{"<error>"};
}

struct ExpansionCase {
  std::string name;
  std::vector<Role> roles;
  Scopes scopes;
  Scopes expected;
};

class ExpansionTest : public ::testing::TestWithParam<ExpansionCase> {};

TEST_P(ExpansionTest, Expands) {
  const ExpansionCase& c = GetParam();
  auto resolver = MustBuild(c.roles);
  ASSERT_NE(resolver, nullptr);
  EXPECT_EQ(MustExpand(*resolver, c.scopes), NormalizeScopes(c.expected));
  // Cached and uncached expansions agree.
  auto uncached = resolver->ExpandUncached(c.scopes);
  ASSERT_TRUE(uncached.ok());
  EXPECT_EQ((*uncached)->scopes(), NormalizeScopes(c.expected));
}

const std::vector<Role> kProjectAdmin = {
    {"project-admin:*",
     {"auth:create-role:project-<..>/*", "secrets:get:project/<..>/*"}}};

INSTANTIATE_TEST_SUITE_P(
    TaskCluster, ExpansionTest,
    ::testing::Values(
        ExpansionCase{"ScopesPassThrough", {}, {"a", "b"}, {"a", "b"}},
        ExpansionCase{"UnknownRoleIsJustAScope",
                      {{"r", {"x"}}},
                      {"assume:other"},
                      {"assume:other"}},
        // The docs' group:admins / group:devs example.
        ExpansionCase{
            "RecursiveRoles",
            {{"group:admins",
              {"admin-scope-1", "admin-scope-2", "assume:group:devs"}},
             {"group:devs", {"dev-scope"}}},
            {"assume:group:admins", "my-scope"},
            {"admin-scope-1", "admin-scope-2", "assume:group:admins",
             "assume:group:devs", "dev-scope", "my-scope"}},
        // Scope expansion: an assume: wildcard grants every role below it.
        ExpansionCase{
            "AssumeWildcardGrantsRolesWithThePrefix",
            {{"repo:github.com/taskcluster/taskcluster-auth",
              {"secrets:get:auth-tests"}},
             {"repo:github.com/other/x", {"secrets:get:other"}}},
            {"assume:repo:github.com/taskcluster/*"},
            {"assume:repo:github.com/taskcluster/*", "secrets:get:auth-tests"}},
        // Role expansion: a role ending in '*' applies to matching assumes.
        ExpansionCase{
            "StarRoleAppliesToMatchingAssume",
            {{"hook-id:taskcluster/*",
              {"queue:create-task:aws-provisioner/taskcluster-hooks"}}},
            {"assume:hook-id:taskcluster/nightly-diagnostics"},
            {"assume:hook-id:taskcluster/nightly-diagnostics",
             "queue:create-task:aws-provisioner/taskcluster-hooks"}},
        ExpansionCase{
            "ParameterisedRole",
            kProjectAdmin,
            {"assume:project-admin:zap"},
            {"assume:project-admin:zap", "auth:create-role:project-zap/*",
             "secrets:get:project/zap/*"}},
        // Stars in parameters drop what follows <..>.
        ExpansionCase{
            "StarInParameterTruncates",
            kProjectAdmin,
            {"assume:project-admin:ops*"},
            {"assume:project-admin:ops*", "auth:create-role:project-ops*",
             "secrets:get:project/ops*"}},
        ExpansionCase{
            "OrganisationWildcardSurprise",
            {{"repo:github.com/*", {"secrets:get:github/<..>/repo-secrets"}}},
            {"assume:repo:github.com/mozilla/*"},
            {"assume:repo:github.com/mozilla/*",
             "secrets:get:github/mozilla/*"}},
        ExpansionCase{"WildcardShorterThanRolePrefix",
                      kProjectAdmin,
                      {"assume:project*"},
                      {"assume:project*", "auth:create-role:project-*",
                       "secrets:get:project/*"}},
        ExpansionCase{"EmptyParameter",
                      kProjectAdmin,
                      {"assume:project-admin:"},
                      {"assume:project-admin:", "auth:create-role:project-/*",
                       "secrets:get:project//*"}},
        ExpansionCase{"NestedPatternRoles",
                      {{"a*", {"x<..>"}}, {"ab*", {"y<..>"}}},
                      {"assume:abc"},
                      {"assume:abc", "xbc", "yc"}},
        ExpansionCase{"PlainAndPatternRoleBothApply",
                      {{"ab", {"p"}}, {"a*", {"q<..>"}}},
                      {"assume:ab"},
                      {"assume:ab", "p", "qb"}},
        ExpansionCase{"PatternRoleFeedsPlainRole",
                      {{"repo:*", {"assume:project:<..>"}},
                       {"project:x", {"secret-x"}},
                       {"project:y", {"secret-y"}}},
                      {"assume:repo:x"},
                      {"assume:repo:x", "assume:project:x", "secret-x"}},
        ExpansionCase{"TwoRoleCycleTerminates",
                      {{"a", {"assume:b", "sa"}}, {"b", {"assume:a", "sb"}}},
                      {"assume:a"},
                      {"assume:a", "assume:b", "sa", "sb"}},
        ExpansionCase{"SelfCycleTerminates",
                      {{"a", {"assume:a", "x"}}},
                      {"assume:a"},
                      {"assume:a", "x"}},
        ExpansionCase{
            "ParameterisedCycleWithSameParameterTerminates",
            {{"a*", {"assume:b<..>"}}, {"b*", {"assume:a<..>", "s<..>"}}},
            {"assume:a1"},
            {"assume:a1", "assume:b1", "s1"}},
        ExpansionCase{"StarHoldsEverything",
                      {{"r", {"x"}}, {"p*", {"y<..>"}}},
                      {"*", "assume:r"},
                      {"*"}},
        ExpansionCase{"WildcardReachingAssumeGrantsAllRoles",
                      {{"r", {"x"}}, {"p*", {"y<..>z"}}},
                      {"assu*"},
                      {"assu*", "x", "y*"}},
        ExpansionCase{"AssumeStarGrantsAllRoles",
                      {{"r", {"x"}}, {"p:*", {"s:<..>:t", "plain"}}},
                      {"assume:*"},
                      {"assume:*", "x", "s:*", "plain"}},
        ExpansionCase{"NonAssumeWildcardGrantsNothing",
                      {{"r", {"x"}}},
                      {"queue:*"},
                      {"queue:*"}},
        ExpansionCase{"RoleGrantingStarCollapses",
                      {{"root", {"*"}}, {"r", {"x"}}},
                      {"assume:root", "other"},
                      {"*"}},
        ExpansionCase{"ResultIsNormalised",
                      {{"r", {"queue:*", "queue:x", "b"}}},
                      {"assume:r", "queue:claim-work:p/w"},
                      {"assume:r", "b", "queue:*"}},
        ExpansionCase{"MidStarIsLiteral",
                      {{"a*b", {"literal"}}, {"axb", {"other"}}},
                      {"assume:a*b"},
                      {"assume:a*b", "literal"}},
        ExpansionCase{
            "AnonymousRoleStyle",
            {{"anonymous", {"queue:get-task:*", "queue:status:*"}}},
            {"assume:anonymous"},
            {"assume:anonymous", "queue:get-task:*", "queue:status:*"}}),
    [](const auto& info) { return info.param.name; });

TEST(RoleResolverTest, LongChainsExpandFully) {
  std::vector<Role> roles;
  for (int i = 0; i < 500; ++i) {
    roles.push_back(
        {"r" + std::to_string(i),
         {"assume:r" + std::to_string(i + 1), "s" + std::to_string(i)}});
  }
  auto resolver = MustBuild(roles);
  ASSERT_NE(resolver, nullptr);
  Scopes expanded = MustExpand(*resolver, {"assume:r0"});
  // r0..r500 assume scopes plus s0..s499.
  EXPECT_EQ(expanded.size(), 501u + 500u);
  EXPECT_EQ(MustExpand(*resolver, {"assume:r499"}),
            (Scopes{"assume:r499", "assume:r500", "s499"}));
}

TEST(RoleResolverTest, RunawayParameterisedCycleIsRejectedAtBuild) {
  auto resolver = RoleResolver::Build({{"a*", {"assume:a<..>x"}}});
  ASSERT_FALSE(resolver.ok());
  ErrorInfo info = GetErrorInfo(resolver.status());
  EXPECT_EQ(info.code, ErrorCode::kInputError);
  EXPECT_EQ(info.details["value"], "a*");
  EXPECT_NE(info.message.find("longer than 1024"), std::string::npos)
      << info.message;
}

TEST(RoleResolverTest, RunawayThroughSeveralRolesIsRejectedAtBuild) {
  // assume:c:qr<S> -> a:qr<S> -> d:r<S> -> c:qr<S>r -> ... only for
  // parameters starting with "qr"; the probe of d:r* finds it.
  auto resolver = RoleResolver::Build({{"c:*", {"assume:a:<..>"}},
                                       {"a:q*", {"assume:d:<..>"}},
                                       {"d:r*", {"assume:c:qr<..>r"}}});
  ASSERT_FALSE(resolver.ok());
  EXPECT_TRUE(HasErrorCode(resolver.status(), ErrorCode::kInputError));
}

TEST(RoleResolverTest, LimitsAtRequestTimeAreErrorsNotHangs) {
  RoleResolverOptions options;
  options.max_expanded_scopes = 10;
  auto resolver = MustBuild(
      {{"r1", {"a", "b", "c", "d", "e"}}, {"r2", {"f", "g", "h", "i", "j"}}},
      options);
  ASSERT_NE(resolver, nullptr);
  EXPECT_TRUE(resolver->Expand({"assume:r1"}).ok());
  auto both = resolver->Expand({"assume:r1", "assume:r2"});
  ASSERT_FALSE(both.ok());
  EXPECT_TRUE(HasErrorCode(both.status(), ErrorCode::kInputError));
  EXPECT_NE(both.status().message().find("exceeds 10 scopes"),
            std::string::npos);
}

TEST(RoleResolverTest, GrowingTwoRoleCycleIsRejectedAtBuild) {
  auto growing = RoleResolver::Build(
      {{"a:*", {"assume:b:<..>"}}, {"b:*", {"assume:a:<..>/more"}}});
  ASSERT_FALSE(growing.ok());
  EXPECT_NE(growing.status().message().find("ever longer parameter"),
            std::string::npos)
      << growing.status();
}

TEST(RoleResolverTest, ExpansionSizeLimit) {
  std::vector<Role> roles = {{"big", {}}};
  for (int i = 0; i < 20; ++i)
    roles[0].scopes.push_back("s" + std::to_string(i));
  RoleResolverOptions options;
  options.max_expanded_scopes = 10;
  auto resolver = RoleResolver::Build(roles, options);
  ASSERT_FALSE(resolver.ok());
  EXPECT_NE(resolver.status().message().find("exceeds 10 scopes"),
            std::string::npos);
}

struct BadRole {
  std::string name;
  std::vector<Role> roles;
  std::string field;
  std::string message_part;
};

class BadRoleTest : public ::testing::TestWithParam<BadRole> {};

TEST_P(BadRoleTest, IsAnInputErrorNamingTheField) {
  const BadRole& c = GetParam();
  auto resolver = RoleResolver::Build(c.roles);
  ASSERT_FALSE(resolver.ok());
  ErrorInfo info = GetErrorInfo(resolver.status());
  EXPECT_EQ(info.code, ErrorCode::kInputError);
  EXPECT_EQ(info.details["field"], c.field);
  EXPECT_NE(info.message.find(c.message_part), std::string::npos)
      << info.message;
}

INSTANTIATE_TEST_SUITE_P(
    Validation, BadRoleTest,
    ::testing::Values(
        BadRole{"EmptyId", {{"", {"x"}}}, "roles[0].role_id", "empty"},
        BadRole{"ControlCharInId",
                {{"ok", {}}, {"a\tb", {}}},
                "roles[1].role_id",
                "printable ASCII"},
        BadRole{"LongId",
                {{std::string(kMaxRoleIdLength + 1, 'r'), {}}},
                "roles[0].role_id",
                "longer than 256"},
        BadRole{"Duplicate",
                {{"a", {}}, {"b", {}}, {"a", {"x"}}},
                "roles[2].role_id",
                "duplicate"},
        BadRole{"DuplicatePattern",
                {{"a*", {}}, {"a*", {}}},
                "roles[1].role_id",
                "duplicate"},
        BadRole{"InvalidScope",
                {{"a", {"ok", "bad\n"}}},
                "roles[0].scopes[1]",
                "0x0a"},
        BadRole{"EmptyScope", {{"a", {""}}}, "roles[0].scopes[0]", "empty"},
        BadRole{"ParameterInPlainRole",
                {{"a", {"x<..>"}}},
                "roles[0].scopes[0]",
                "only allowed in roles whose id ends"},
        BadRole{"ParameterTwice",
                {{"a*", {"<..>/<..>"}}},
                "roles[0].scopes[0]",
                "only once"},
        BadRole{"StarBeforeParameter",
                {{"a*", {"x*<..>"}}},
                "roles[0].scopes[0]",
                "'*' directly before <..>"}),
    [](const auto& info) { return info.param.name; });

TEST(RoleResolverTest, InvalidInputScopeIsNamed) {
  auto resolver = MustBuild({});
  auto expanded = resolver->Expand({"fine", "bad\x01"});
  ASSERT_FALSE(expanded.ok());
  EXPECT_EQ(GetErrorInfo(expanded.status()).details["field"], "scopes[1]");
}

TEST(RoleResolverTest, CacheHitsIgnoreOrderAndDuplicates) {
  auto resolver = MustBuild({{"r", {"x"}}});
  auto first = resolver->Expand({"assume:r", "b"});
  auto second = resolver->Expand({"b", "assume:r", "b"});
  ASSERT_TRUE(first.ok() && second.ok());
  EXPECT_EQ(first->get(), second->get()) << "served from the cache";
  auto stats = resolver->cache_stats();
  EXPECT_EQ(stats.hits, 1u);
  EXPECT_EQ(stats.misses, 1u);
  EXPECT_EQ(stats.entries, 1u);
}

TEST(RoleResolverTest, CacheEvictsLeastRecentlyUsed) {
  RoleResolverOptions options;
  options.cache_entries = 2;
  auto resolver = MustBuild({}, options);
  ASSERT_TRUE(resolver->Expand({"a"}).ok());
  ASSERT_TRUE(resolver->Expand({"b"}).ok());
  ASSERT_TRUE(resolver->Expand({"a"}).ok());  // a is now most recent
  ASSERT_TRUE(resolver->Expand({"c"}).ok());  // evicts b
  ASSERT_TRUE(resolver->Expand({"a"}).ok());  // hit
  ASSERT_TRUE(resolver->Expand({"b"}).ok());  // miss
  auto stats = resolver->cache_stats();
  EXPECT_EQ(stats.hits, 2u);
  EXPECT_EQ(stats.misses, 4u);
  EXPECT_EQ(stats.entries, 2u);
}

TEST(RoleResolverTest, ConcurrentExpansionIsConsistent) {
  auto resolver = MustBuild({{"group:admins", {"assume:group:devs", "admin"}},
                             {"group:devs", {"dev"}}});
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 500; ++i) {
        auto expanded = resolver->Expand(
            {"assume:group:admins", "extra" + std::to_string((i + t) % 7)});
        if (!expanded.ok() || !(*expanded)->Satisfies("dev")) ++wrong;
      }
    });
  }
  for (auto& thread : threads) thread.join();
  EXPECT_EQ(wrong.load(), 0);
}

TEST(ScopeResolverTest, RebuildInstallsOnlyNewerGenerations) {
  ScopeResolver resolver;
  EXPECT_EQ(resolver.generation(), 0);
  EXPECT_EQ(resolver.Current()->role_count(), 0u);
  auto before = resolver.Current();

  ASSERT_TRUE(resolver.Rebuild({{"r", {"v1"}}}, 2).ok());
  EXPECT_EQ(resolver.generation(), 2);
  EXPECT_TRUE((*resolver.Current()->Expand({"assume:r"}))->Satisfies("v1"));
  // The old snapshot held by an in-flight request is unaffected.
  EXPECT_FALSE((*before->Expand({"assume:r"}))->Satisfies("v1"));

  ASSERT_TRUE(resolver.Rebuild({{"r", {"stale"}}}, 1).ok());
  EXPECT_EQ(resolver.generation(), 2);
  EXPECT_FALSE((*resolver.Current()->Expand({"assume:r"}))->Satisfies("stale"));

  absl::Status bad = resolver.Rebuild({{"r", {"x<..>"}}}, 3);
  EXPECT_FALSE(bad.ok());
  EXPECT_EQ(resolver.generation(), 2) << "a bad role table changes nothing";
  EXPECT_TRUE((*resolver.Current()->Expand({"assume:r"}))->Satisfies("v1"));
}

// Property: if held scopes A satisfy every scope of B, the expansion of A
// satisfies every scope of the expansion of B (TaskCluster's soundness rule
// behind the '*'-in-parameter truncation).
TEST(RoleResolverPropertyTest, ExpansionIsMonotonic) {
  std::mt19937 rng(20240607);
  const std::vector<std::string> atoms = {"a", "b", "ab", "a:", "b:c", ""};
  auto pick = [&](const std::vector<std::string>& from) {
    return from[rng() % from.size()];
  };
  auto random_id = [&] { return pick(atoms) + pick(atoms) + pick(atoms); };
  int checked = 0;
  for (int round = 0; round < 300; ++round) {
    std::vector<Role> roles;
    std::set<std::string> ids;
    for (int r = 0; r < 4; ++r) {
      std::string id = random_id();
      if (rng() % 2) id += "*";
      if (id.empty() || !ids.insert(id).second) continue;
      Role role{id, {}};
      for (int s = 0; s < 2; ++s) {
        std::string scope = (rng() % 2 ? "assume:" : "s:") + random_id();
        if (id.back() == '*' && rng() % 2) scope += "<..>" + pick(atoms);
        if (scope.find("*<..>") != std::string::npos) continue;
        role.scopes.push_back(scope);
      }
      roles.push_back(role);
    }
    auto resolver = RoleResolver::Build(roles);
    if (!resolver.ok()) continue;  // e.g. a runaway cycle
    std::string target = "assume:" + random_id();
    std::string covering = target.substr(0, rng() % (target.size() + 1)) + "*";
    auto narrow = (*resolver)->Expand({target});
    auto wide = (*resolver)->Expand({covering});
    if (!narrow.ok() || !wide.ok()) continue;
    for (const auto& scope : (*narrow)->scopes()) {
      EXPECT_TRUE((*wide)->Satisfies(scope))
          << covering << " should cover " << scope << " from " << target;
    }
    ++checked;
  }
  EXPECT_GT(checked, 200);
}

}  // namespace
}  // namespace drover::queue::auth
