// AuthState: one server process's in-memory view of the auth tables, kept
// fresh: the role table as a RoleResolver (expansions cached), and a cache
// of permanent clients, so that authenticating a call normally reads no
// database at all.
//
// Freshness across replicas: every writer bumps a generation counter in
// auth_state and NOTIFYs drover_auth in the same transaction (AuthStore).
// A background thread LISTENs on that channel and, on every notification
// and at least once per poll_interval, reads the counters (a single-row
// read) and reloads what moved: the whole role table when the roles
// generation changed, an emptied client cache when the clients generation
// did. A lost notification therefore costs at most poll_interval. Writers
// in this process call RolesChanged()/ClientsChanged() after committing so
// their own next call already sees the change.
//
// Thread-safe.
#ifndef DROVER_QUEUE_AUTH_AUTH_STATE_H_
#define DROVER_QUEUE_AUTH_AUTH_STATE_H_

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unordered_map>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "queue/auth/auth_store.h"
#include "queue/auth/role_resolver.h"

namespace drover::queue::auth {

struct AuthStateOptions {
  // Connection string for the LISTEN connection; empty: poll only.
  std::string listen_connection_string;
  // The counters are read at least this often.
  absl::Duration poll_interval = absl::Seconds(1);
  // A cached client is re-read after this long even without a change
  // notice (a backstop; changes normally evict it sooner).
  absl::Duration client_ttl = absl::Minutes(1);
  // "No such client" is remembered this long, so a caller hammering with a
  // made-up id does not cost a read per call.
  absl::Duration unknown_client_ttl = absl::Seconds(5);
  // The cache is emptied when it grows beyond this.
  size_t max_cached_clients = 10000;
  // last_used is written at most this often per client and process.
  absl::Duration last_used_granularity = absl::Minutes(5);
  RoleResolverOptions resolver;
};

class AuthState {
 public:
  // `store` must outlive this object.
  AuthState(AuthStore* store, AuthStateOptions options);
  // Stops the refresh thread.
  ~AuthState();

  AuthState(const AuthState&) = delete;
  AuthState& operator=(const AuthState&) = delete;

  // Loads the roles and starts the refresh thread. Errors: the store's
  // (InternalError), or InputError when the stored roles do not build.
  absl::Status Start();
  // Stops the refresh thread; idempotent.
  void Stop();

  // The role table to use for one request.
  std::shared_ptr<const RoleResolver> resolver() const {
    return scopes_.Current();
  }

  // The client, from the cache when fresh. Errors: ResourceNotFound (also
  // cached briefly), the store's InternalError.
  absl::StatusOr<std::shared_ptr<const ClientRecord>> FindClient(
      const std::string& client_id);

  // Records that `client` authenticated: writes last_used when the stored
  // value is older than last_used_granularity and this process has not
  // written it within that time. Failures are logged, never returned:
  // bookkeeping must not fail a call.
  void NoteUsed(const ClientRecord& client);

  // Reads the counters now and reloads whatever moved. Errors: the
  // store's; a role table that does not build (the old one stays).
  absl::Status Refresh();

  // For writers in this process, after their commit.
  void ClientsChanged();
  absl::Status RolesChanged() { return Refresh(); }

  int64_t roles_generation() const { return scopes_.generation(); }
  // Database reads of clients made so far (cache misses); for tests.
  uint64_t client_reads() const;

 private:
  using SteadyTime = std::chrono::steady_clock::time_point;
  struct CachedClient {
    std::shared_ptr<const ClientRecord> client;  // Null: not found.
    SteadyTime fetched;
  };

  void Loop();
  void ClearClientsLocked();

  AuthStore* const store_;
  const AuthStateOptions options_;
  ScopeResolver scopes_;

  // Serialises Refresh (the thread and local writers).
  std::mutex refresh_mu_;

  mutable std::mutex mu_;
  std::condition_variable stop_cv_;
  std::unordered_map<std::string, CachedClient> clients_;  // Guarded by mu_.
  // Bumped whenever the cache is emptied; a read that started under an
  // older epoch does not insert its (maybe stale) result.
  uint64_t epoch_ = 0;                           // Guarded by mu_.
  int64_t clients_generation_ = -1;              // Guarded by mu_.
  std::map<std::string, SteadyTime> touched_;    // Guarded by mu_.
  uint64_t client_reads_ = 0;                    // Guarded by mu_.
  bool stop_ = false;                            // Guarded by mu_.
  std::thread thread_;
};

}  // namespace drover::queue::auth

#endif  // DROVER_QUEUE_AUTH_AUTH_STATE_H_
