// PgConnectionPool against a real PostgreSQL: how many server sessions it
// opens, and when.
#include "queue/store/pg_pool.h"

#include <optional>
#include <set>
#include <vector>

#include "common/status.h"
#include "gtest/gtest.h"
#include "queue/store/testing/test_database.h"

namespace drover::queue::store {
namespace {

using testing::DatabaseTest;

const PreparedStatement kWhoAmI = {"pool_test_backend_pid",
                                   "SELECT pg_backend_pid()"};

class PgPoolTest : public DatabaseTest {
 protected:
  std::unique_ptr<PgConnectionPool> MakePool(int size) {
    PgConnectionPool::Options options;
    options.connection_string = connection_string();
    options.size = size;
    options.acquire_timeout = absl::Milliseconds(200);
    auto pool = PgConnectionPool::Create(options, {kWhoAmI});
    EXPECT_TRUE(pool.ok()) << pool.status();
    return pool.ok() ? std::move(pool).value() : nullptr;
  }

  // Server sessions connected to this test's database, ours excluded.
  int Sessions() {
    pqxx::connection conn(connection_string());
    pqxx::nontransaction txn(conn);
    return txn
        .exec_params1(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()")[0]
        .as<int>();
  }

  // The server process behind a lease, through the prepared statement (so
  // it also shows the statement was prepared on that connection).
  static int BackendOf(PgConnectionPool::Lease& lease) {
    pqxx::nontransaction txn(lease.connection());
    return txn.exec_prepared1(kWhoAmI.name)[0].as<int>();
  }
};

TEST_F(PgPoolTest, OpensOneConnectionAtCreation) {
  auto pool = MakePool(4);
  ASSERT_NE(pool, nullptr);
  EXPECT_EQ(pool->size(), 4);
  EXPECT_EQ(Sessions(), 1);
}

TEST_F(PgPoolTest, SequentialCallsReuseTheOpenConnection) {
  auto pool = MakePool(4);
  ASSERT_NE(pool, nullptr);
  std::set<int> backends;
  for (int i = 0; i < 5; ++i) {
    auto lease = pool->Acquire();
    ASSERT_TRUE(lease.ok()) << lease.status();
    backends.insert(BackendOf(*lease));
  }
  EXPECT_EQ(backends.size(), 1u);
  EXPECT_EQ(Sessions(), 1);
}

TEST_F(PgPoolTest, ConcurrentCallsOpenMoreUpToTheSize) {
  auto pool = MakePool(3);
  ASSERT_NE(pool, nullptr);
  std::vector<PgConnectionPool::Lease> held;
  std::set<int> backends;
  for (int i = 0; i < 3; ++i) {
    auto lease = pool->Acquire();
    ASSERT_TRUE(lease.ok()) << lease.status();
    backends.insert(BackendOf(*lease));
    held.push_back(std::move(lease).value());
  }
  EXPECT_EQ(backends.size(), 3u);
  EXPECT_EQ(Sessions(), 3);
  // All three are in use: a fourth caller waits and times out rather than
  // opening a connection beyond the size.
  auto fourth = pool->Acquire();
  EXPECT_FALSE(fourth.ok());
  EXPECT_EQ(Sessions(), 3);
  // Once they are free, calls go to the open connections again.
  held.clear();
  for (int i = 0; i < 3; ++i) {
    auto lease = pool->Acquire();
    ASSERT_TRUE(lease.ok()) << lease.status();
    EXPECT_EQ(backends.count(BackendOf(*lease)), 1u);
  }
  EXPECT_EQ(Sessions(), 3);
}

TEST_F(PgPoolTest, ABrokenConnectionIsReplacedOnNextUse) {
  auto pool = MakePool(2);
  ASSERT_NE(pool, nullptr);
  int first = 0;
  {
    auto lease = pool->Acquire();
    ASSERT_TRUE(lease.ok()) << lease.status();
    first = BackendOf(*lease);
    lease->MarkBroken();
  }
  auto lease = pool->Acquire();
  ASSERT_TRUE(lease.ok()) << lease.status();
  EXPECT_NE(BackendOf(*lease), first);
}

TEST_F(PgPoolTest, AConnectionThatCannotOpenLaterFailsOnlyThatCall) {
  auto pool = MakePool(2);
  ASSERT_NE(pool, nullptr);
  auto admin = testing::AdminConnectionString();
  ASSERT_TRUE(admin.ok()) << admin.status();
  auto allow_connections = [&](bool allow) {
    pqxx::connection conn(*admin);
    pqxx::nontransaction txn(conn);
    txn.exec0("ALTER DATABASE " + txn.quote_name(db().name()) +
              " ALLOW_CONNECTIONS " + (allow ? "true" : "false"));
  };
  auto held = pool->Acquire();
  ASSERT_TRUE(held.ok()) << held.status();
  // The second slot has no connection yet and the database now refuses
  // new ones: that call fails, and the slot is free again afterwards.
  allow_connections(false);
  auto refused = pool->Acquire();
  allow_connections(true);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(GetErrorInfo(refused.status()).code, ErrorCode::kInternalError)
      << refused.status();
  // The open connection was untouched, and the slot opens once allowed.
  EXPECT_GT(BackendOf(*held), 0);
  auto second = pool->Acquire();
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_NE(BackendOf(*second), BackendOf(*held));
}

TEST_F(PgPoolTest, AStatementThatDoesNotPrepareFailsCreation) {
  PgConnectionPool::Options options;
  options.connection_string = connection_string();
  options.size = 4;
  auto pool = PgConnectionPool::Create(
      options, {{"pool_test_broken", "SELECT FROM no_such_table"}});
  ASSERT_FALSE(pool.ok());
  EXPECT_NE(pool.status().message().find("pool_test_broken"), std::string::npos)
      << pool.status();
}

}  // namespace
}  // namespace drover::queue::store
