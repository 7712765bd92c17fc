#include "queue/auth/auth_state.h"

#include <utility>

#include "common/status.h"
#include "pqxx/pqxx"
#include "queue/auth/auth_sql.h"
#include "queue/store/pg_util.h"
#include "spdlog/spdlog.h"

namespace drover::queue::auth {
namespace {

// Wakes the refresh loop; the payload does not matter because the loop
// re-reads the counters.
class Wakeup final : public pqxx::notification_receiver {
 public:
  Wakeup(pqxx::connection_base& conn, bool* woken)
      : pqxx::notification_receiver(conn, sql::kAuthChannel), woken_(woken) {}
  void operator()(const std::string&, int) override { *woken_ = true; }

 private:
  bool* woken_;
};

// A LISTENing connection; the receiver goes before the connection.
struct Listener {
  std::unique_ptr<pqxx::connection> conn;
  std::unique_ptr<Wakeup> wakeup;
  bool woken = false;
  ~Listener() { wakeup.reset(); }
};

std::unique_ptr<Listener> Listen(const std::string& connection_string) {
  auto listener = std::make_unique<Listener>();
  auto conn = store::pg::Connect(connection_string);
  if (!conn.ok()) {
    spdlog::warn("auth change listener: {}",
                 std::string(conn.status().message()));
    return nullptr;
  }
  listener->conn = std::move(conn).value();
  try {
    listener->wakeup =
        std::make_unique<Wakeup>(*listener->conn, &listener->woken);
    listener->conn->get_notifs();
  } catch (const std::exception& e) {
    spdlog::warn("auth change listener: {}", e.what());
    return nullptr;
  }
  return listener;
}

}  // namespace

AuthState::AuthState(AuthStore* store, AuthStateOptions options)
    : store_(store), options_(std::move(options)), scopes_(options_.resolver) {}

AuthState::~AuthState() { Stop(); }

absl::Status AuthState::Start() {
  DROVER_RETURN_IF_ERROR(Refresh());
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = false;
  }
  if (!thread_.joinable()) thread_ = std::thread([this] { Loop(); });
  return absl::OkStatus();
}

void AuthState::Stop() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void AuthState::Loop() {
  std::unique_ptr<Listener> listener;
  const auto poll = absl::ToChronoMilliseconds(options_.poll_interval);
  while (true) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) break;
    }
    if (listener == nullptr && !options_.listen_connection_string.empty()) {
      listener = Listen(options_.listen_connection_string);
    }
    if (listener != nullptr) {
      // Waits for a notification in short slices so Stop() stays prompt.
      try {
        listener->woken = false;
        const auto give_up = std::chrono::steady_clock::now() + poll;
        while (!listener->woken &&
               std::chrono::steady_clock::now() < give_up) {
          listener->conn->await_notification(0, 200000);
          if (!listener->conn->is_open()) throw pqxx::broken_connection();
          std::lock_guard<std::mutex> lock(mu_);
          if (stop_) break;
        }
      } catch (const std::exception& e) {
        spdlog::warn("auth change listener lost its connection: {}",
                     e.what());
        listener.reset();
      }
    } else {
      std::unique_lock<std::mutex> lock(mu_);
      stop_cv_.wait_for(lock, poll, [this] { return stop_; });
      if (stop_) break;
    }
    if (absl::Status s = Refresh(); !s.ok()) {
      spdlog::warn("refreshing roles and clients: {}", s.ToString());
    }
  }
}

absl::Status AuthState::Refresh() {
  std::lock_guard<std::mutex> refresh_lock(refresh_mu_);
  DROVER_ASSIGN_OR_RETURN(AuthGenerations generations, store_->Generations());
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (generations.clients != clients_generation_) {
      ClearClientsLocked();
      clients_generation_ = generations.clients;
    }
  }
  if (generations.roles != scopes_.generation()) {
    DROVER_ASSIGN_OR_RETURN(RoleSnapshot snapshot, store_->LoadRoles());
    absl::Status rebuilt =
        scopes_.Rebuild(std::move(snapshot.roles), snapshot.generation);
    if (!rebuilt.ok()) {
      return MakeError(ErrorCode::kInputError,
                       "the stored roles do not expand; keeping the previous "
                       "role table: " +
                           std::string(rebuilt.message()),
                       GetErrorInfo(rebuilt).details);
    }
  }
  return absl::OkStatus();
}

void AuthState::ClientsChanged() {
  std::lock_guard<std::mutex> lock(mu_);
  ClearClientsLocked();
}

void AuthState::ClearClientsLocked() {
  clients_.clear();
  ++epoch_;
}

uint64_t AuthState::client_reads() const {
  std::lock_guard<std::mutex> lock(mu_);
  return client_reads_;
}

absl::StatusOr<std::shared_ptr<const ClientRecord>> AuthState::FindClient(
    const std::string& client_id) {
  const SteadyTime now = std::chrono::steady_clock::now();
  uint64_t epoch;
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = clients_.find(client_id);
    if (it != clients_.end()) {
      const absl::Duration ttl = it->second.client != nullptr
                                     ? options_.client_ttl
                                     : options_.unknown_client_ttl;
      if (now - it->second.fetched < absl::ToChronoNanoseconds(ttl)) {
        if (it->second.client == nullptr) {
          return NotFoundError("client", client_id);
        }
        return it->second.client;
      }
    }
    epoch = epoch_;
    ++client_reads_;
  }
  absl::StatusOr<ClientRecord> read = store_->GetClient(client_id);
  std::shared_ptr<const ClientRecord> client;
  if (read.ok()) {
    client = std::make_shared<const ClientRecord>(std::move(read).value());
  } else if (!HasErrorCode(read.status(), ErrorCode::kResourceNotFound)) {
    return read.status();
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (epoch == epoch_) {
      if (clients_.size() >= options_.max_cached_clients) ClearClientsLocked();
      clients_[client_id] = CachedClient{client, now};
    }
  }
  if (client == nullptr) return NotFoundError("client", client_id);
  return client;
}

void AuthState::NoteUsed(const ClientRecord& client) {
  const absl::Time now = absl::Now();
  if (client.last_used.has_value() &&
      now - *client.last_used < options_.last_used_granularity) {
    return;
  }
  const SteadyTime steady = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = touched_.find(client.client_id);
    if (it != touched_.end() &&
        steady - it->second <
            absl::ToChronoNanoseconds(options_.last_used_granularity)) {
      return;
    }
    if (touched_.size() >= options_.max_cached_clients) touched_.clear();
    touched_[client.client_id] = steady;
  }
  if (absl::Status s = store_->TouchClient(client.client_id,
                                           options_.last_used_granularity);
      !s.ok()) {
    spdlog::warn("recording the use of client {}: {}", client.client_id,
                 s.ToString());
  }
}

}  // namespace drover::queue::auth
