#include "cli/commands/workers.h"

#include <cctype>
#include <optional>
#include <set>

#include "cli/output.h"
#include "client/time_spec.h"
#include "common/status.h"

namespace drover::cli::commands {
namespace {

// Flags of create/update; unset ones (nullopt) keep the current value on
// update and take the server's default on create.
struct PoolArgs {
  std::string pool;
  std::optional<std::string> owner;
  std::optional<std::string> description;
  std::optional<int> min_capacity;
  std::optional<int> max_capacity;
  std::optional<std::string> registration_timeout;
  std::optional<std::string> reregistration_timeout;
  std::optional<std::string> inactivity_timeout;
  std::optional<std::string> sunset;
  bool no_sunset = false;
  std::optional<std::string> worker_config;
  bool remove = false;
};

struct WorkerArgs {
  std::string pool;
  std::string group;
  std::string id;
  int capacity = 0;
  std::string state;
  std::string until;
  std::string reason;
  bool lift = false;
};

std::string OrDash(const std::string& s) { return s.empty() ? "-" : s; }

std::string Age(bool present, const google::protobuf::Timestamp& ts,
                absl::Time now) {
  if (!present) return "-";
  const int64_t seconds =
      absl::ToInt64Seconds(now - client::FromProtoTimestamp(ts));
  if (seconds < 0) return "0s ago";
  if (seconds < 120) return std::to_string(seconds) + "s ago";
  if (seconds < 7200) return std::to_string(seconds / 60) + "m ago";
  if (seconds < 172800) return std::to_string(seconds / 3600) + "h ago";
  return std::to_string(seconds / 86400) + "d ago";
}

absl::Status ApplyPoolArgs(const PoolArgs& args, Context& ctx,
                           v1::WorkerPoolConfig* config) {
  if (args.owner) config->set_owner(*args.owner);
  if (args.description) config->set_description(*args.description);
  if (args.min_capacity) config->set_min_capacity(*args.min_capacity);
  if (args.max_capacity) config->set_max_capacity(*args.max_capacity);
  if (args.registration_timeout) {
    DROVER_ASSIGN_OR_RETURN(int64_t s,
                            ParseTimeoutSeconds(*args.registration_timeout,
                                                "--registration-timeout"));
    config->set_registration_timeout_seconds(s);
  }
  if (args.reregistration_timeout) {
    DROVER_ASSIGN_OR_RETURN(int64_t s,
                            ParseTimeoutSeconds(*args.reregistration_timeout,
                                                "--reregistration-timeout"));
    config->set_reregistration_timeout_seconds(s);
  }
  if (args.inactivity_timeout) {
    DROVER_ASSIGN_OR_RETURN(
        int64_t s,
        ParseTimeoutSeconds(*args.inactivity_timeout, "--inactivity-timeout"));
    config->set_queue_inactivity_timeout_seconds(s);
  }
  if (args.no_sunset) config->clear_reregistration_sunset();
  if (args.sunset) {
    DROVER_ASSIGN_OR_RETURN(
        absl::Time t,
        client::ParseTimeSpec(*args.sunset, "--sunset", ctx.Now()));
    *config->mutable_reregistration_sunset() = client::ToProtoTimestamp(t);
  }
  if (args.worker_config) config->set_worker_config(*args.worker_config);
  return absl::OkStatus();
}

std::string FormatPool(const v1::WorkerPool& p) {
  const v1::WorkerPoolConfig& c = p.config();
  Table t({"pool", p.worker_pool_id()});
  t.AddRow({"owner", OrDash(c.owner())});
  t.AddRow({"description", OrDash(c.description())});
  t.AddRow({"provider", OrDash(c.provider())});
  t.AddRow({"capacity", std::to_string(c.min_capacity()) + ".." +
                            (c.max_capacity() > 0
                                 ? std::to_string(c.max_capacity())
                                 : std::string("unlimited"))});
  t.AddRow({"registration timeout",
            std::to_string(c.registration_timeout_seconds()) + "s"});
  t.AddRow({"re-registration timeout",
            std::to_string(c.reregistration_timeout_seconds()) + "s"});
  t.AddRow({"queue inactivity timeout",
            c.queue_inactivity_timeout_seconds() == 0
                ? "never"
                : std::to_string(c.queue_inactivity_timeout_seconds()) + "s"});
  t.AddRow(
      {"re-registration sunset", FormatTimestamp(c.has_reregistration_sunset(),
                                                 c.reregistration_sunset())});
  t.AddRow({"registration secret", p.has_registration_secret() ? "set" : "-"});
  t.AddRow({"worker config", OrDash(c.worker_config())});
  t.AddRow({"created", FormatTimestamp(p.has_created(), p.created())});
  return t.Render();
}

std::string FormatWorker(const v1::Worker& w, absl::Time now) {
  Table t({"worker",
           w.worker_pool_id() + " " + w.worker_group() + "/" + w.worker_id()});
  t.AddRow({"state", w.state()});
  t.AddRow({"capacity", std::to_string(w.capacity())});
  t.AddRow({"running tasks", std::to_string(w.running_tasks())});
  t.AddRow({"created", FormatTimestamp(w.has_created(), w.created())});
  t.AddRow({"registered", FormatTimestamp(w.has_registered(), w.registered())});
  t.AddRow({"last seen", Age(w.has_last_seen(), w.last_seen(), now)});
  t.AddRow({"credentials expire", FormatTimestamp(w.has_credentials_expire(),
                                                  w.credentials_expire())});
  t.AddRow({"quarantined until",
            FormatTimestamp(w.has_quarantine_until(), w.quarantine_until())});
  if (!w.quarantine_reason().empty()) {
    t.AddRow({"quarantine reason", w.quarantine_reason()});
  }
  t.AddRow({"static secret", w.has_static_secret() ? "yes" : "no"});
  t.AddRow({"re-registration", w.supports_reregistration() ? "yes" : "no"});
  t.AddRow({"host", OrDash(w.facts().hostname())});
  t.AddRow({"os", OrDash(w.facts().os())});
  t.AddRow({"engine", OrDash(w.facts().engine())});
  t.AddRow({"version", OrDash(w.facts().worker_version())});
  std::string recent;
  for (const std::string& r : w.recent_tasks()) {
    if (!recent.empty()) recent += " ";
    recent += r;
  }
  t.AddRow({"recent tasks", OrDash(recent)});
  return t.Render();
}

template <typename Fn>
int WithClient(Context& ctx, Fn&& fn) {
  auto wm = WorkerManagerClientFor(ctx);
  if (!wm.ok()) return ctx.LocalError(wm.status());
  return fn(**wm);
}

int RunPoolStats(Context& ctx) {
  return WithClient(ctx, [&](client::WorkerManagerClient& wm) {
    v1::ListWorkerPoolStatsRequest request;
    v1::ListWorkerPoolStatsResponse all;
    std::set<std::string> tokens;
    while (true) {
      auto page = wm.ListWorkerPoolStats(request);
      if (!page.ok()) return ctx.RequestError(page.status());
      for (auto& s : *page->mutable_stats()) *all.add_stats() = std::move(s);
      const std::string& token = page->continuation_token();
      if (token.empty() || !tokens.insert(token).second) break;
      request.set_continuation_token(token);
    }
    if (ctx.options().json) {
      ctx.PrintJson(all);
    } else {
      ctx.out() << FormatPoolStats({all.stats().begin(), all.stats().end()});
    }
    return static_cast<int>(kExitOk);
  });
}

int RunPoolCreate(Context& ctx, const PoolArgs& args) {
  return WithClient(ctx, [&](client::WorkerManagerClient& wm) {
    v1::CreateWorkerPoolRequest request;
    request.set_worker_pool_id(args.pool);
    if (absl::Status s = ApplyPoolArgs(args, ctx, request.mutable_config());
        !s.ok()) {
      return ctx.LocalError(s);
    }
    auto pool = wm.CreateWorkerPool(request);
    if (!pool.ok()) return ctx.RequestError(pool.status());
    if (ctx.options().json) {
      ctx.PrintJson(*pool);
    } else {
      ctx.out() << FormatPool(*pool);
    }
    return static_cast<int>(kExitOk);
  });
}

int RunPoolUpdate(Context& ctx, const PoolArgs& args) {
  return WithClient(ctx, [&](client::WorkerManagerClient& wm) {
    v1::WorkerPoolIdRequest id;
    id.set_worker_pool_id(args.pool);
    auto current = wm.GetWorkerPool(id);
    if (!current.ok()) return ctx.RequestError(current.status());
    v1::UpdateWorkerPoolRequest request;
    request.set_worker_pool_id(args.pool);
    *request.mutable_config() = current->config();
    if (absl::Status s = ApplyPoolArgs(args, ctx, request.mutable_config());
        !s.ok()) {
      return ctx.LocalError(s);
    }
    auto pool = wm.UpdateWorkerPool(request);
    if (!pool.ok()) return ctx.RequestError(pool.status());
    if (ctx.options().json) {
      ctx.PrintJson(*pool);
    } else {
      ctx.out() << FormatPool(*pool);
    }
    return static_cast<int>(kExitOk);
  });
}

int RunPoolDelete(Context& ctx, const PoolArgs& args) {
  return WithClient(ctx, [&](client::WorkerManagerClient& wm) {
    v1::WorkerPoolIdRequest id;
    id.set_worker_pool_id(args.pool);
    auto deleted = wm.DeleteWorkerPool(id);
    if (!deleted.ok()) return ctx.RequestError(deleted.status());
    if (ctx.options().json) {
      ctx.PrintJson(*deleted);
    } else {
      ctx.out() << "deleted worker pool " << args.pool << "\n";
    }
    return static_cast<int>(kExitOk);
  });
}

int RunPoolGet(Context& ctx, const PoolArgs& args) {
  return WithClient(ctx, [&](client::WorkerManagerClient& wm) {
    v1::WorkerPoolIdRequest id;
    id.set_worker_pool_id(args.pool);
    auto pool = wm.GetWorkerPool(id);
    if (!pool.ok()) return ctx.RequestError(pool.status());
    auto stats = wm.GetWorkerPoolStats(id);
    if (!stats.ok()) return ctx.RequestError(stats.status());
    if (ctx.options().json) {
      ctx.PrintJson(*pool);
      ctx.PrintJson(*stats);
    } else {
      ctx.out() << FormatPool(*pool) << "\n" << FormatPoolStats({*stats});
    }
    return static_cast<int>(kExitOk);
  });
}

int RunPoolList(Context& ctx) {
  return WithClient(ctx, [&](client::WorkerManagerClient& wm) {
    v1::ListWorkerPoolsRequest request;
    v1::ListWorkerPoolsResponse all;
    std::set<std::string> tokens;
    while (true) {
      auto page = wm.ListWorkerPools(request);
      if (!page.ok()) return ctx.RequestError(page.status());
      for (auto& p : *page->mutable_worker_pools()) {
        *all.add_worker_pools() = std::move(p);
      }
      const std::string& token = page->continuation_token();
      if (token.empty() || !tokens.insert(token).second) break;
      request.set_continuation_token(token);
    }
    if (ctx.options().json) {
      ctx.PrintJson(all);
      return static_cast<int>(kExitOk);
    }
    Table t({"POOL", "OWNER", "PROVIDER", "MIN", "MAX", "DESCRIPTION"});
    for (const v1::WorkerPool& p : all.worker_pools()) {
      std::string description = p.config().description();
      if (const size_t nl = description.find('\n'); nl != std::string::npos) {
        description = description.substr(0, nl);
      }
      t.AddRow(
          {p.worker_pool_id(), OrDash(p.config().owner()),
           p.config().provider(), std::to_string(p.config().min_capacity()),
           std::to_string(p.config().max_capacity()), OrDash(description)});
    }
    ctx.out() << t.Render();
    return static_cast<int>(kExitOk);
  });
}

int RunPoolSecret(Context& ctx, const PoolArgs& args) {
  return WithClient(ctx, [&](client::WorkerManagerClient& wm) {
    v1::ResetRegistrationSecretRequest request;
    request.set_worker_pool_id(args.pool);
    request.set_remove(args.remove);
    auto reset = wm.ResetRegistrationSecret(request);
    if (!reset.ok()) return ctx.RequestError(reset.status());
    if (ctx.options().json) {
      ctx.PrintJson(*reset);
    } else if (args.remove) {
      ctx.out() << "removed the registration secret of " << args.pool << "\n";
    } else {
      ctx.out() << reset->registration_secret() << "\n";
      ctx.err() << "the registration secret of " << args.pool
                << " (shown once; any worker holding it may register)\n";
    }
    return static_cast<int>(kExitOk);
  });
}

v1::WorkerKey Key(const WorkerArgs& args) {
  v1::WorkerKey key;
  key.set_worker_pool_id(args.pool);
  key.set_worker_group(args.group);
  key.set_worker_id(args.id);
  return key;
}

int RunWorkerCreate(Context& ctx, const WorkerArgs& args) {
  return WithClient(ctx, [&](client::WorkerManagerClient& wm) {
    v1::CreateWorkerRequest request;
    request.set_worker_pool_id(args.pool);
    request.set_worker_group(args.group);
    request.set_worker_id(args.id);
    request.set_capacity(args.capacity);
    auto created = wm.CreateWorker(request);
    if (!created.ok()) return ctx.RequestError(created.status());
    if (ctx.options().json) {
      ctx.PrintJson(*created);
    } else {
      ctx.out() << created->static_secret() << "\n";
      ctx.err() << "static secret of worker " << args.group << "/" << args.id
                << " in " << args.pool
                << " (shown once): put it in the worker's "
                   "registration.secret_file\n";
    }
    return static_cast<int>(kExitOk);
  });
}

int RunWorkerList(Context& ctx, const WorkerArgs& args) {
  return WithClient(ctx, [&](client::WorkerManagerClient& wm) {
    v1::ListWorkersRequest request;
    request.set_worker_pool_id(args.pool);
    request.set_state(args.state);
    v1::ListWorkersResponse all;
    std::set<std::string> tokens;
    while (true) {
      auto page = wm.ListWorkers(request);
      if (!page.ok()) return ctx.RequestError(page.status());
      for (auto& w : *page->mutable_workers())
        *all.add_workers() = std::move(w);
      const std::string& token = page->continuation_token();
      if (token.empty() || !tokens.insert(token).second) break;
      request.set_continuation_token(token);
    }
    if (ctx.options().json) {
      ctx.PrintJson(all);
    } else {
      ctx.out() << FormatWorkers({all.workers().begin(), all.workers().end()},
                                 ctx.Now());
    }
    return static_cast<int>(kExitOk);
  });
}

int RunWorkerGet(Context& ctx, const WorkerArgs& args) {
  return WithClient(ctx, [&](client::WorkerManagerClient& wm) {
    auto worker = wm.GetWorker(Key(args));
    if (!worker.ok()) return ctx.RequestError(worker.status());
    if (ctx.options().json) {
      ctx.PrintJson(*worker);
    } else {
      ctx.out() << FormatWorker(*worker, ctx.Now());
    }
    return static_cast<int>(kExitOk);
  });
}

int RunWorkerQuarantine(Context& ctx, const WorkerArgs& args) {
  if (args.lift == !args.until.empty()) {
    return ctx.LocalError(
        InputError("--until", args.until,
                   "give either --until T (with --reason) or --lift"));
  }
  v1::QuarantineWorkerRequest request;
  *request.mutable_worker() = Key(args);
  if (!args.lift) {
    auto until = client::ParseTimeSpec(args.until, "--until", ctx.Now());
    if (!until.ok()) return ctx.LocalError(until.status());
    *request.mutable_quarantine_until() = client::ToProtoTimestamp(*until);
    request.set_reason(args.reason);
  }
  return WithClient(ctx, [&](client::WorkerManagerClient& wm) {
    auto worker = wm.QuarantineWorker(request);
    if (!worker.ok()) return ctx.RequestError(worker.status());
    if (ctx.options().json) {
      ctx.PrintJson(*worker);
    } else if (args.lift) {
      ctx.out() << "lifted the quarantine of " << args.group << "/" << args.id
                << "\n";
    } else {
      ctx.out() << "quarantined " << args.group << "/" << args.id << " until "
                << FormatTimestamp(worker->has_quarantine_until(),
                                   worker->quarantine_until())
                << "\n";
    }
    return static_cast<int>(kExitOk);
  });
}

int RunWorkerRemove(Context& ctx, const WorkerArgs& args) {
  return WithClient(ctx, [&](client::WorkerManagerClient& wm) {
    auto removed = wm.RemoveWorker(Key(args));
    if (!removed.ok()) return ctx.RequestError(removed.status());
    if (ctx.options().json) {
      ctx.PrintJson(*removed);
    } else {
      ctx.out() << "removed " << args.group << "/" << args.id << " (now "
                << removed->worker().state() << "); "
                << removed->resolved_runs()
                << " run(s) resolved exception/worker-shutdown\n";
    }
    return static_cast<int>(kExitOk);
  });
}

void AddPoolFlags(CLI::App* cmd, PoolArgs& args) {
  cmd->add_option("--owner", args.owner, "Who to ask about the pool");
  cmd->add_option("--description", args.description, "Free text");
  cmd->add_option("--min", args.min_capacity, "Minimum capacity (slots)");
  cmd->add_option("--max", args.max_capacity, "Maximum capacity (slots)");
  cmd->add_option("--registration-timeout", args.registration_timeout,
                  "Created workers must register within this (default 1d)");
  cmd->add_option("--reregistration-timeout", args.reregistration_timeout,
                  "Credential lifetime; workers re-register before it ends "
                  "(default 96h, at most 30d)");
  cmd->add_option("--inactivity-timeout", args.inactivity_timeout,
                  "Stop workers not seen for this long (0: never)");
  cmd->add_option("--sunset", args.sunset,
                  "From then on, refuse workers without re-registration "
                  "support (RFC 3339 or relative)");
  cmd->add_option("--worker-config", args.worker_config,
                  "JSON object handed to registering workers");
}

}  // namespace

absl::StatusOr<int64_t> ParseTimeoutSeconds(const std::string& text,
                                            const std::string& field) {
  if (!text.empty() &&
      std::all_of(text.begin(), text.end(),
                  [](unsigned char c) { return std::isdigit(c) != 0; })) {
    if (text.size() > 12) return InputError(field, text, "too large");
    return std::stoll(text);
  }
  DROVER_ASSIGN_OR_RETURN(absl::Duration d,
                          client::ParseRelativeDuration(text, field));
  if (d < absl::ZeroDuration()) {
    return InputError(field, text, "must not be negative");
  }
  return absl::ToInt64Seconds(d);
}

std::string FormatPoolStats(const std::vector<v1::WorkerPoolStats>& stats) {
  Table t({"POOL", "REQUESTED", "RUNNING", "STOPPING", "STOPPED", "QUARANTINED",
           "CAPACITY", "MIN..MAX", "RUNNING-TASKS", "IDLE", "PENDING",
           "OLDEST-PENDING"});
  for (const v1::WorkerPoolStats& s : stats) {
    t.AddRow({s.worker_pool_id(), std::to_string(s.requested_workers()),
              std::to_string(s.running_workers()),
              std::to_string(s.stopping_workers()),
              std::to_string(s.stopped_workers()),
              std::to_string(s.quarantined_workers()),
              std::to_string(s.total_capacity()) +
                  (s.below_min_capacity() ? " (below min)" : ""),
              std::to_string(s.min_capacity()) + ".." +
                  (s.max_capacity() > 0 ? std::to_string(s.max_capacity())
                                        : std::string("unlimited")),
              std::to_string(s.running_tasks()),
              std::to_string(s.idle_capacity()),
              std::to_string(s.pending_tasks()),
              s.pending_tasks() == 0
                  ? "-"
                  : std::to_string(s.oldest_pending_age_seconds()) + "s"});
  }
  return t.Render();
}

std::string FormatWorkers(const std::vector<v1::Worker>& workers,
                          absl::Time now) {
  Table t({"GROUP/ID", "STATE", "CAPACITY", "RUNNING", "LAST-SEEN",
           "QUARANTINE", "HOST"});
  for (const v1::Worker& w : workers) {
    std::string quarantine = "-";
    if (w.has_quarantine_until()) {
      quarantine = "until " + FormatTimestamp(true, w.quarantine_until());
      if (!w.quarantine_reason().empty()) {
        quarantine += " (" + w.quarantine_reason() + ")";
      }
    }
    t.AddRow({w.worker_group() + "/" + w.worker_id(), w.state(),
              std::to_string(w.capacity()), std::to_string(w.running_tasks()),
              Age(w.has_last_seen(), w.last_seen(), now), quarantine,
              OrDash(w.facts().hostname())});
  }
  return t.Render();
}

absl::StatusOr<std::unique_ptr<client::WorkerManagerClient>>
WorkerManagerClientFor(Context& context) {
  DROVER_ASSIGN_OR_RETURN(const client::QueueClient* queue, context.Queue());
  // The Context owns the connection and outlives the command.
  std::shared_ptr<const client::Connection> borrowed(
      std::shared_ptr<const client::Connection>(), &queue->connection());
  return std::make_unique<client::WorkerManagerClient>(borrowed,
                                                       queue->defaults());
}

void AddWorkerManagerCommands(CLI::App& app, Context& context) {
  auto pool_args = std::make_shared<PoolArgs>();
  CLI::App* pools = app.add_subcommand(
      "pools", "Worker pools; without a subcommand: capacity of every pool");
  pools->require_subcommand(0, 1);
  pools->callback([&context, pools] {
    if (pools->get_subcommands().empty()) {
      context.set_exit_code(RunPoolStats(context));
    }
  });

  CLI::App* create = pools->add_subcommand("create", "Create a worker pool");
  create->add_option("POOL", pool_args->pool, "<provisioner>/<worker-type>")
      ->required();
  AddPoolFlags(create, *pool_args);
  create->callback([&context, pool_args] {
    context.set_exit_code(RunPoolCreate(context, *pool_args));
  });

  CLI::App* update = pools->add_subcommand(
      "update", "Change a pool (flags not given keep their value)");
  update->add_option("POOL", pool_args->pool, "Pool id")->required();
  AddPoolFlags(update, *pool_args);
  update->add_flag("--no-sunset", pool_args->no_sunset,
                   "Remove the re-registration sunset");
  update->callback([&context, pool_args] {
    context.set_exit_code(RunPoolUpdate(context, *pool_args));
  });

  CLI::App* del = pools->add_subcommand(
      "delete", "Delete a pool (refused while it has live workers)");
  del->add_option("POOL", pool_args->pool, "Pool id")->required();
  del->callback([&context, pool_args] {
    context.set_exit_code(RunPoolDelete(context, *pool_args));
  });

  CLI::App* get =
      pools->add_subcommand("get", "A pool's configuration and capacity");
  get->add_option("POOL", pool_args->pool, "Pool id")->required();
  get->callback([&context, pool_args] {
    context.set_exit_code(RunPoolGet(context, *pool_args));
  });

  CLI::App* list = pools->add_subcommand("list", "List worker pools");
  list->callback([&context] { context.set_exit_code(RunPoolList(context)); });

  CLI::App* secret = pools->add_subcommand(
      "registration-secret",
      "Set a new pool registration secret (printed once), or --remove it");
  secret->add_option("POOL", pool_args->pool, "Pool id")->required();
  secret->add_flag("--remove", pool_args->remove, "Remove the secret");
  secret->callback([&context, pool_args] {
    context.set_exit_code(RunPoolSecret(context, *pool_args));
  });

  auto worker_args = std::make_shared<WorkerArgs>();
  CLI::App* workers =
      app.add_subcommand("workers", "Workers of a pool")->require_subcommand(1);
  auto add_key = [&](CLI::App* cmd) {
    cmd->add_option("POOL", worker_args->pool, "Pool id")->required();
    cmd->add_option("GROUP", worker_args->group, "Worker group")->required();
    cmd->add_option("ID", worker_args->id, "Worker id")->required();
  };

  CLI::App* wcreate = workers->add_subcommand(
      "create", "Create a static worker; prints its secret once");
  add_key(wcreate);
  wcreate->add_option("--capacity", worker_args->capacity,
                      "Task slots (default 1)");
  wcreate->callback([&context, worker_args] {
    context.set_exit_code(RunWorkerCreate(context, *worker_args));
  });

  CLI::App* wlist = workers->add_subcommand("list", "Workers of a pool");
  wlist->add_option("POOL", worker_args->pool, "Pool id")->required();
  wlist->add_option("--state", worker_args->state,
                    "requested, running, stopping, stopped or all (default: "
                    "all but stopped)");
  wlist->callback([&context, worker_args] {
    context.set_exit_code(RunWorkerList(context, *worker_args));
  });

  CLI::App* wget = workers->add_subcommand("get", "One worker in detail");
  add_key(wget);
  wget->callback([&context, worker_args] {
    context.set_exit_code(RunWorkerGet(context, *worker_args));
  });

  CLI::App* quarantine = workers->add_subcommand(
      "quarantine", "Stop a worker claiming until a time, or --lift");
  add_key(quarantine);
  quarantine->add_option("--until", worker_args->until,
                         "RFC 3339 or relative (\"+2 hours\")");
  quarantine->add_option("--reason", worker_args->reason, "Why");
  quarantine->add_flag("--lift", worker_args->lift, "End the quarantine");
  quarantine->callback([&context, worker_args] {
    context.set_exit_code(RunWorkerQuarantine(context, *worker_args));
  });

  CLI::App* remove = workers->add_subcommand(
      "remove",
      "Remove a worker: its claimed runs resolve worker-shutdown at once");
  add_key(remove);
  remove->callback([&context, worker_args] {
    context.set_exit_code(RunWorkerRemove(context, *worker_args));
  });
}

}  // namespace drover::cli::commands
