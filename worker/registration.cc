#include "worker/registration.h"

#include <sys/sysinfo.h>
#include <sys/utsname.h>

#include <algorithm>
#include <utility>

#include "absl/time/clock.h"
#include "client/call.h"
#include "client/worker_manager_client.h"
#include "common/crypto/secret_file.h"
#include "common/status.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"
#include "worker/config.h"

namespace drover::worker {
namespace {

using nlohmann::json;

constexpr char kWorkerVersion[] = "drover-worker 0.1";

absl::Time FromProto(const google::protobuf::Timestamp& ts) {
  return absl::FromUnixSeconds(ts.seconds()) + absl::Nanoseconds(ts.nanos());
}

bool Unreachable(const absl::Status& status) {
  return absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status);
}

}  // namespace

absl::StatusOr<std::optional<RegistrationState>> LoadRegistrationState(
    const std::string& path) {
  absl::StatusOr<std::string> text = crypto::ReadSecretFile(path);
  if (!text.ok()) {
    if (HasErrorCode(text.status(), ErrorCode::kResourceNotFound)) {
      return std::nullopt;
    }
    return text.status();
  }
  json doc = json::parse(*text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    return InputError("registration.state_file", path,
                      "not a registration state written by drover-worker");
  }
  try {
    RegistrationState s;
    s.worker_pool_id = doc.at("worker_pool_id").get<std::string>();
    s.worker_group = doc.at("worker_group").get<std::string>();
    s.worker_id = doc.at("worker_id").get<std::string>();
    s.client_id = doc.at("client_id").get<std::string>();
    s.certificate = doc.at("certificate").get<std::string>();
    s.issued = absl::FromUnixSeconds(doc.at("issued").get<int64_t>());
    s.expires = absl::FromUnixSeconds(doc.at("expires").get<int64_t>());
    s.reregistration_secret =
        doc.at("reregistration_secret").get<std::string>();
    return s;
  } catch (const json::exception& e) {
    return InputError(
        "registration.state_file", path,
        std::string("incomplete registration state: ") + e.what());
  }
}

absl::Status SaveRegistrationState(const std::string& path,
                                   const RegistrationState& state) {
  json doc = {{"worker_pool_id", state.worker_pool_id},
              {"worker_group", state.worker_group},
              {"worker_id", state.worker_id},
              {"client_id", state.client_id},
              {"certificate", state.certificate},
              {"issued", absl::ToUnixSeconds(state.issued)},
              {"expires", absl::ToUnixSeconds(state.expires)},
              {"reregistration_secret", state.reregistration_secret}};
  return crypto::WriteSecretFile(path, doc.dump(2) + "\n", /*overwrite=*/true);
}

v1::WorkerFacts HostFacts(const std::string& engine) {
  v1::WorkerFacts facts;
  facts.set_hostname(HostName());
  struct utsname u {};
  if (uname(&u) == 0) {
    facts.set_os(std::string(u.sysname) + " " + u.release + " " + u.machine);
  }
  facts.set_engine(engine);
  facts.set_worker_version(kWorkerVersion);
  struct sysinfo info {};
  if (sysinfo(&info) == 0) {
    const absl::Time boot = absl::Now() - absl::Seconds(info.uptime);
    facts.mutable_boot_time()->set_seconds(absl::ToUnixSeconds(boot));
  }
  return facts;
}

Registrar::Registrar(RegistrarOptions options) : options_(std::move(options)) {}

Registrar::~Registrar() { Stop(/*announce=*/false); }

absl::StatusOr<std::shared_ptr<const client::Connection>> Registrar::Connect(
    const client::Credentials& credentials) {
  client::ConnectionOptions options;
  {
    std::lock_guard<std::mutex> lock(mu_);
    options.url = options_.queue_urls[url_index_ % options_.queue_urls.size()];
  }
  options.ca_file = options_.tls_ca_file;
  options.credentials = credentials;
  return client::Connection::Create(options);
}

void Registrar::NoteUnavailable(const absl::Status& status) {
  if (!Unreachable(status)) return;
  std::lock_guard<std::mutex> lock(mu_);
  ++url_index_;
}

client::Credentials Registrar::CurrentCredentials() const {
  std::lock_guard<std::mutex> lock(mu_);
  client::Credentials c;
  if (state_.has_value()) {
    c.client_id = state_->client_id;
    c.certificate = state_->certificate;
    c.expires = state_->expires;
    c.source = "worker registration";
  }
  return c;
}

absl::StatusOr<v1::RegisterWorkerResponse> Registrar::CallRegister() {
  DROVER_ASSIGN_OR_RETURN(auto connection, Connect(client::Credentials{}));
  client::CallOptions call;
  call.retry.max_attempts = 1;
  client::WorkerManagerClient wm(connection, call);
  v1::RegisterWorkerRequest request;
  request.set_worker_pool_id(options_.worker_pool_id);
  request.set_worker_group(options_.worker_group);
  request.set_worker_id(options_.worker_id);
  request.set_proof(options_.proof);
  *request.mutable_facts() = options_.facts;
  request.set_capacity(options_.capacity);
  request.set_supports_reregistration(true);
  auto response = wm.RegisterWorker(request);
  if (!response.ok()) NoteUnavailable(response.status());
  return response;
}

absl::StatusOr<v1::RegisterWorkerResponse> Registrar::CallReregister(
    const RegistrationState& state) {
  client::Credentials credentials;
  credentials.client_id = state.client_id;
  credentials.certificate = state.certificate;
  credentials.source = "worker registration";
  DROVER_ASSIGN_OR_RETURN(auto connection, Connect(credentials));
  client::CallOptions call;
  call.retry.max_attempts = 1;
  client::WorkerManagerClient wm(connection, call);
  v1::ReregisterWorkerRequest request;
  request.set_worker_pool_id(options_.worker_pool_id);
  request.set_worker_group(options_.worker_group);
  request.set_worker_id(options_.worker_id);
  request.set_reregistration_secret(state.reregistration_secret);
  auto response = wm.ReregisterWorker(request);
  if (!response.ok()) NoteUnavailable(response.status());
  return response;
}

absl::StatusOr<client::Credentials> Registrar::Adopt(
    const v1::RegisterWorkerResponse& response) {
  RegistrationState state;
  state.worker_pool_id = options_.worker_pool_id;
  state.worker_group = options_.worker_group;
  state.worker_id = options_.worker_id;
  state.client_id = response.credentials().client_id();
  state.certificate = response.credentials().certificate();
  state.issued = absl::Now();
  state.expires = FromProto(response.credentials().expires());
  state.reregistration_secret = response.reregistration_secret();
  // The secret is single-use and the server already rotated it: keep it on
  // disk before anything else, or a crash now would strand the chain (the
  // proof still works then, but only as a fallback).
  if (absl::Status s = SaveRegistrationState(options_.state_file, state);
      !s.ok()) {
    spdlog::error("cannot save the registration state to {}: {}",
                  options_.state_file, s.ToString());
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    state_ = state;
  }
  return CurrentCredentials();
}

absl::StatusOr<client::Credentials> Registrar::Renew() {
  std::optional<RegistrationState> state;
  {
    std::lock_guard<std::mutex> lock(mu_);
    state = state_;
  }
  if (state.has_value() && state->expires > absl::Now()) {
    auto again = CallReregister(*state);
    if (again.ok()) {
      renewals_.fetch_add(1);
      return Adopt(*again);
    }
    if (Unreachable(again.status())) return again.status();
    spdlog::warn("re-registration refused ({}); registering with the proof",
                 again.status().ToString());
  }
  auto registered = CallRegister();
  if (!registered.ok()) return registered.status();
  renewals_.fetch_add(1);
  return Adopt(*registered);
}

absl::StatusOr<client::Credentials> Registrar::RegisterAtStart() {
  // A saved state of this identity continues its chain of secrets.
  auto saved = LoadRegistrationState(options_.state_file);
  if (!saved.ok()) {
    spdlog::warn("ignoring the registration state: {}",
                 saved.status().ToString());
  } else if (saved->has_value() &&
             (*saved)->worker_pool_id == options_.worker_pool_id &&
             (*saved)->worker_group == options_.worker_group &&
             (*saved)->worker_id == options_.worker_id) {
    std::lock_guard<std::mutex> lock(mu_);
    state_ = **saved;
  }
  absl::Duration backoff = options_.initial_backoff;
  for (int attempt = 1;; ++attempt) {
    auto credentials = Renew();
    if (credentials.ok()) {
      renewals_.store(0);
      spdlog::info("registered as {} until {}", credentials->client_id,
                   absl::FormatTime(credentials_expire()));
      return credentials;
    }
    spdlog::warn("registration attempt {} failed: {}; retrying in ~{}", attempt,
                 credentials.status().ToString(),
                 absl::FormatDuration(backoff));
    if (!Sleep(client::Jitter(backoff))) {
      return absl::UnavailableError("stopped before registering");
    }
    backoff = std::min(backoff * 2, options_.max_backoff);
  }
}

void Registrar::Start(CredentialsCallback on_credentials,
                      std::function<void()> on_stop_requested) {
  on_credentials_ = std::move(on_credentials);
  on_stop_requested_ = std::move(on_stop_requested);
  thread_ = std::thread([this] { Loop(); });
}

void Registrar::RenewSoon() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    renew_requested_ = true;
  }
  wake_.notify_all();
}

absl::Time Registrar::quarantine_until() const {
  std::lock_guard<std::mutex> lock(mu_);
  return quarantine_until_;
}

absl::Time Registrar::credentials_expire() const {
  std::lock_guard<std::mutex> lock(mu_);
  return state_.has_value() ? state_->expires : absl::InfinitePast();
}

bool Registrar::Sleep(absl::Duration d) {
  std::unique_lock<std::mutex> lock(mu_);
  wake_.wait_for(lock, absl::ToChronoMilliseconds(d),
                 [this] { return stop_ || renew_requested_; });
  return !stop_;
}

void Registrar::Heartbeat() {
  auto connection = Connect(CurrentCredentials());
  if (!connection.ok()) return;
  client::CallOptions call;
  call.retry.max_attempts = 1;
  call.timeout = absl::Seconds(10);
  client::WorkerManagerClient wm(*connection, call);
  v1::WorkerHeartbeatRequest request;
  request.mutable_worker()->set_worker_pool_id(options_.worker_pool_id);
  request.mutable_worker()->set_worker_group(options_.worker_group);
  request.mutable_worker()->set_worker_id(options_.worker_id);
  auto response = wm.WorkerHeartbeat(request);
  if (!response.ok()) {
    NoteUnavailable(response.status());
    if (HasErrorCode(response.status(), ErrorCode::kAuthenticationFailed)) {
      RenewSoon();
    }
    spdlog::debug("heartbeat failed: {}", response.status().ToString());
    return;
  }
  {
    std::lock_guard<std::mutex> lock(mu_);
    quarantine_until_ = response->has_quarantine_until()
                            ? FromProto(response->quarantine_until())
                            : absl::InfinitePast();
  }
  if (response->stop() && !stop_requested_sent_) {
    stop_requested_sent_ = true;
    spdlog::warn("the worker manager removed this worker; shutting down");
    if (on_stop_requested_) on_stop_requested_();
  }
}

void Registrar::Loop() {
  absl::Time next_heartbeat = absl::Now();
  absl::Duration backoff = options_.initial_backoff;
  absl::Time retry_at = absl::InfinitePast();
  while (true) {
    absl::Time renew_at;
    bool requested = false;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (stop_) return;
      requested = renew_requested_;
      renew_at = state_.has_value()
                     ? state_->issued + (state_->expires - state_->issued) *
                                            options_.reregister_fraction
                     : absl::InfinitePast();
    }
    const absl::Time now = absl::Now();
    if ((requested || now >= renew_at) && now >= retry_at) {
      {
        std::lock_guard<std::mutex> lock(mu_);
        renew_requested_ = false;
      }
      auto credentials = Renew();
      if (credentials.ok()) {
        backoff = options_.initial_backoff;
        retry_at = absl::InfinitePast();
        spdlog::info("re-registered; credentials until {}",
                     absl::FormatTime(credentials_expire()));
        if (on_credentials_) on_credentials_(*credentials);
      } else {
        retry_at = now + client::Jitter(backoff);
        spdlog::warn("re-registration failed: {}; retrying in ~{}",
                     credentials.status().ToString(),
                     absl::FormatDuration(backoff));
        backoff = std::min(backoff * 2, options_.max_backoff);
      }
      continue;
    }
    if (now >= next_heartbeat) {
      Heartbeat();
      next_heartbeat = absl::Now() + options_.heartbeat_interval;
      continue;
    }
    // Wall-clock deadlines: wake at the earliest, and at least every
    // max_tick, so a suspended host notices at once that time has passed.
    absl::Time wake = std::min(next_heartbeat, std::max(renew_at, retry_at));
    absl::Duration sleep =
        std::clamp(wake - now, absl::Milliseconds(10), options_.max_tick);
    if (!Sleep(sleep)) return;
  }
}

void Registrar::Stop(bool announce) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    if (stop_ && !thread_.joinable()) return;
    stop_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
  if (!announce || CurrentCredentials().certificate.empty()) return;
  auto connection = Connect(CurrentCredentials());
  if (!connection.ok()) return;
  client::CallOptions call;
  call.retry.max_attempts = 2;
  call.timeout = absl::Seconds(10);
  client::WorkerManagerClient wm(*connection, call);
  v1::WorkerKey key;
  key.set_worker_pool_id(options_.worker_pool_id);
  key.set_worker_group(options_.worker_group);
  key.set_worker_id(options_.worker_id);
  auto done = wm.WorkerShutdown(key);
  if (!done.ok()) {
    spdlog::warn("announcing shutdown failed: {}", done.status().ToString());
  } else {
    spdlog::info("announced shutdown; {} run(s) resolved worker-shutdown",
                 done->resolved_runs());
  }
}

void ReregisteringQueueApi::CancelClaims() {
  {
    std::lock_guard<std::mutex> lock(mu_);
    canceled_ = true;
  }
  canceled_cv_.notify_all();
  inner_->CancelClaims();
}

absl::StatusOr<std::vector<v1::ClaimedTask>> ReregisteringQueueApi::ClaimWork(
    const WorkerIdentity& worker, int max_tasks) {
  const absl::Time quarantined = registrar_->quarantine_until();
  if (quarantined > absl::Now()) {
    // As a long-poll that found nothing.
    std::unique_lock<std::mutex> lock(mu_);
    canceled_cv_.wait_for(lock,
                          absl::ToChronoMilliseconds(std::min(
                              quarantined - absl::Now(), absl::Seconds(20))),
                          [this] { return canceled_; });
    return std::vector<v1::ClaimedTask>{};
  }
  auto claimed = inner_->ClaimWork(worker, max_tasks);
  if (!claimed.ok() &&
      (HasErrorCode(claimed.status(), ErrorCode::kAuthenticationFailed) ||
       absl::IsUnauthenticated(claimed.status()))) {
    registrar_->RenewSoon();
  }
  return claimed;
}

}  // namespace drover::worker
