#include "cli/commands/auth.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <ostream>
#include <set>
#include <sstream>

#include "cli/output.h"
#include "client/time_spec.h"
#include "common/status.h"
#include "nlohmann/json.hpp"

namespace drover::cli::commands {
namespace {

namespace fs = std::filesystem;

// Lists are fetched page by page until the server hands out no token; a
// repeated token would otherwise loop forever.
constexpr int kMaxPages = 10000;

std::string Quote(const std::string& value) {
  std::string out = "'";
  for (char c : value) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

std::string Join(const google::protobuf::RepeatedPtrField<std::string>& items,
                 const std::string& separator) {
  std::string out;
  for (const std::string& item : items) {
    if (!out.empty()) out += separator;
    out += item;
  }
  return out;
}

// Writes `contents` to `path` readable by the owner only: a temporary file
// in the same directory, then rename, so a reader never sees half a file.
absl::Status WritePrivateFile(const std::string& path,
                              const std::string& contents) {
  const fs::path target(path);
  std::error_code ec;
  if (target.has_parent_path() && !fs::exists(target.parent_path(), ec)) {
    fs::create_directories(target.parent_path(), ec);
    if (ec) {
      return InputError("--output", path,
                        "cannot create the directory: " + ec.message());
    }
    fs::permissions(target.parent_path(), fs::perms::owner_all, ec);
  }
  const std::string temp = path + ".tmp";
  int fd = ::open(temp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    return InputError("--output", path,
                      std::string("cannot write: ") + std::strerror(errno));
  }
  ::fchmod(fd, 0600);
  size_t written = 0;
  while (written < contents.size()) {
    ssize_t n = ::write(fd, contents.data() + written, contents.size() - written);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      ::close(fd);
      ::unlink(temp.c_str());
      return InputError("--output", path,
                        std::string("cannot write: ") + std::strerror(errno));
    }
    written += static_cast<size_t>(n);
  }
  ::fsync(fd);
  ::close(fd);
  if (::rename(temp.c_str(), path.c_str()) != 0) {
    ::unlink(temp.c_str());
    return InputError("--output", path,
                      std::string("cannot replace: ") + std::strerror(errno));
  }
  return absl::OkStatus();
}

// --expires for signin: a duration ("1d", "12h", "+90m").
absl::StatusOr<absl::Duration> ParseLifetime(const std::string& text) {
  DROVER_ASSIGN_OR_RETURN(absl::Duration d,
                          client::ParseRelativeDuration(text, "--expires"));
  if (d < absl::Seconds(1) || d > absl::Hours(24 * 31)) {
    return InputError("--expires", text,
                      "--expires must be within 1s..31 days (e.g. 1d, 8h)");
  }
  return d;
}

// --expires for clients: a time spec counted from now ("1y", RFC 3339).
absl::StatusOr<google::protobuf::Timestamp> ParseExpiry(Context& ctx,
                                                        const std::string& text) {
  DROVER_ASSIGN_OR_RETURN(absl::Time t,
                          client::ParseTimeSpec(text, "--expires", ctx.Now()));
  if (t <= ctx.Now()) {
    return InputError("--expires", text, "--expires must be in the future");
  }
  return client::ToProtoTimestamp(t);
}

template <typename Response>
int Print(Context& ctx, const Response& response, const std::string& text) {
  if (ctx.options().json) {
    ctx.PrintJson(response);
  } else {
    ctx.out() << text;
  }
  return kExitOk;
}

// ---- signin / whoami --------------------------------------------------------

struct SigninArgs {
  std::vector<std::string> scopes;
  std::string expires = "1d";
  std::string name;
  std::string output;
};

int RunSignin(Context& ctx, const SigninArgs& args) {
  auto auth = AuthClientFor(ctx);
  if (!auth.ok()) return ctx.LocalError(auth.status());
  auto lifetime = ParseLifetime(args.expires);
  if (!lifetime.ok()) return ctx.LocalError(lifetime.status());
  const client::Credentials& current = (*auth)->connection().credentials();
  if (current.access_token.empty()) {
    return ctx.LocalError(InputError(
        "credentials", current.source,
        "signin needs permanent credentials (a client id and access token); "
        "the current ones are " +
            std::string(current.Anonymous() ? "missing" : "temporary")));
  }
  if (!args.output.empty() && !current.source.empty() &&
      fs::weakly_canonical(args.output) == fs::weakly_canonical(current.source)) {
    return ctx.LocalError(InputError(
        "--output", args.output,
        "this file holds the permanent credentials signin uses; write the "
        "temporary ones elsewhere"));
  }
  v1::CreateTemporaryCredentialsRequest request;
  for (const std::string& scope : args.scopes) request.add_scopes(scope);
  request.mutable_lifetime()->set_seconds(absl::ToInt64Seconds(*lifetime));
  request.set_client_id(args.name);
  auto minted = (*auth)->CreateTemporaryCredentials(request);
  if (!minted.ok()) return ctx.RequestError(minted.status());
  if (!args.output.empty()) {
    absl::Status written =
        WritePrivateFile(args.output, FormatCredentialsFile(*minted));
    if (!written.ok()) return ctx.LocalError(written);
    ctx.err() << "wrote temporary credentials for " << minted->client_id()
              << " to " << args.output << " (expires "
              << FormatTimestamp(true, minted->expiry())
              << "); use them with DROVER_CREDENTIALS_FILE=" << args.output
              << "\n";
    return kExitOk;
  }
  if (ctx.options().json) {
    ctx.PrintJson(*minted);
  } else {
    ctx.out() << FormatSigninExports(*minted);
  }
  return kExitOk;
}

int RunWhoami(Context& ctx) {
  auto auth = AuthClientFor(ctx);
  if (!auth.ok()) return ctx.LocalError(auth.status());
  auto whoami = (*auth)->CurrentScopes();
  if (!whoami.ok()) return ctx.RequestError(whoami.status());
  return Print(ctx, *whoami, FormatCurrentScopes(*whoami));
}

// ---- clients ----------------------------------------------------------------

struct ClientArgs {
  std::string client_id;
  std::string description;
  bool description_set = false;
  std::vector<std::string> scopes;
  std::vector<std::string> add_scopes;
  std::vector<std::string> remove_scopes;
  std::string expires;
  bool delete_on_expiration = false;
  std::string prefix;
};

int RunClientCreate(Context& ctx, const ClientArgs& args) {
  auto auth = AuthClientFor(ctx);
  if (!auth.ok()) return ctx.LocalError(auth.status());
  v1::CreateClientRequest request;
  request.set_client_id(args.client_id);
  request.set_description(args.description);
  for (const std::string& scope : args.scopes) request.add_scopes(scope);
  auto expires = ParseExpiry(ctx, args.expires.empty() ? "1y" : args.expires);
  if (!expires.ok()) return ctx.LocalError(expires.status());
  *request.mutable_expires() = *expires;
  request.set_delete_on_expiration(args.delete_on_expiration);
  auto created = (*auth)->CreateClient(request);
  if (!created.ok()) return ctx.RequestError(created.status());
  return Print(ctx, *created,
               FormatClient(created->client()) +
                   "accessToken:  " + created->access_token() +
                   "\n(the token is shown only now; store it safely)\n");
}

int RunClientList(Context& ctx, const ClientArgs& args) {
  auto auth = AuthClientFor(ctx);
  if (!auth.ok()) return ctx.LocalError(auth.status());
  v1::ListClientsResponse all;
  v1::ListClientsRequest request;
  request.set_prefix(args.prefix);
  std::set<std::string> tokens;
  for (int page = 0; page < kMaxPages; ++page) {
    auto listed = (*auth)->ListClients(request);
    if (!listed.ok()) return ctx.RequestError(listed.status());
    for (auto& c : *listed->mutable_clients()) *all.add_clients() = std::move(c);
    const std::string& token = listed->continuation_token();
    if (token.empty() || !tokens.insert(token).second) break;
    request.set_continuation_token(token);
  }
  Table table({"CLIENT", "STATE", "EXPIRES", "LAST USED", "SCOPES"});
  for (const v1::Client& c : all.clients()) {
    table.AddRow({c.client_id(), c.disabled() ? "disabled" : "enabled",
                  FormatTimestamp(c.has_expires(), c.expires()),
                  FormatTimestamp(c.has_last_date_used(), c.last_date_used()),
                  Join(c.scopes(), " ")});
  }
  return Print(ctx, all, table.Render());
}

int RunClientAction(Context& ctx, const std::string& action,
                    const std::string& client_id) {
  auto auth = AuthClientFor(ctx);
  if (!auth.ok()) return ctx.LocalError(auth.status());
  v1::ClientIdRequest request;
  request.set_client_id(client_id);
  if (action == "delete") {
    auto deleted = (*auth)->DeleteClient(request);
    if (!deleted.ok()) return ctx.RequestError(deleted.status());
    return Print(ctx, *deleted, "deleted client " + client_id + "\n");
  }
  if (action == "reset-token") {
    auto reset = (*auth)->ResetAccessToken(request);
    if (!reset.ok()) return ctx.RequestError(reset.status());
    return Print(ctx, *reset,
                 FormatClient(reset->client()) +
                     "accessToken:  " + reset->access_token() +
                     "\n(the old token no longer works; the new one is "
                     "shown only now)\n");
  }
  absl::StatusOr<v1::ClientResponse> response =
      action == "get"       ? (*auth)->GetClient(request)
      : action == "disable" ? (*auth)->DisableClient(request)
                            : (*auth)->EnableClient(request);
  if (!response.ok()) return ctx.RequestError(response.status());
  return Print(ctx, *response, FormatClient(response->client()));
}

int RunClientUpdate(Context& ctx, const ClientArgs& args) {
  auto auth = AuthClientFor(ctx);
  if (!auth.ok()) return ctx.LocalError(auth.status());
  v1::ClientIdRequest id;
  id.set_client_id(args.client_id);
  auto current = (*auth)->GetClient(id);
  if (!current.ok()) return ctx.RequestError(current.status());
  const v1::Client& before = current->client();
  v1::UpdateClientRequest request;
  request.set_client_id(args.client_id);
  request.set_description(args.description_set ? args.description
                                                : before.description());
  for (const std::string& scope :
       EditScopes({before.scopes().begin(), before.scopes().end()},
                  args.scopes, args.add_scopes, args.remove_scopes)) {
    request.add_scopes(scope);
  }
  if (!args.expires.empty()) {
    auto expires = ParseExpiry(ctx, args.expires);
    if (!expires.ok()) return ctx.LocalError(expires.status());
    *request.mutable_expires() = *expires;
  }
  request.set_delete_on_expiration(before.delete_on_expiration() ||
                                   args.delete_on_expiration);
  auto updated = (*auth)->UpdateClient(request);
  if (!updated.ok()) return ctx.RequestError(updated.status());
  return Print(ctx, *updated, FormatClient(updated->client()));
}

// ---- roles ------------------------------------------------------------------

struct RoleArgs {
  std::string role_id;
  std::string description;
  bool description_set = false;
  std::vector<std::string> scopes;
  std::vector<std::string> add_scopes;
  std::vector<std::string> remove_scopes;
  std::string prefix;
};

int RunRoleCreate(Context& ctx, const RoleArgs& args) {
  auto auth = AuthClientFor(ctx);
  if (!auth.ok()) return ctx.LocalError(auth.status());
  v1::CreateRoleRequest request;
  request.set_role_id(args.role_id);
  request.set_description(args.description);
  for (const std::string& scope : args.scopes) request.add_scopes(scope);
  auto created = (*auth)->CreateRole(request);
  if (!created.ok()) return ctx.RequestError(created.status());
  return Print(ctx, *created, FormatRole(created->role()));
}

int RunRoleUpdate(Context& ctx, const RoleArgs& args) {
  auto auth = AuthClientFor(ctx);
  if (!auth.ok()) return ctx.LocalError(auth.status());
  v1::RoleIdRequest id;
  id.set_role_id(args.role_id);
  auto current = (*auth)->GetRole(id);
  if (!current.ok()) return ctx.RequestError(current.status());
  const v1::Role& before = current->role();
  v1::UpdateRoleRequest request;
  request.set_role_id(args.role_id);
  request.set_description(args.description_set ? args.description
                                                : before.description());
  for (const std::string& scope :
       EditScopes({before.scopes().begin(), before.scopes().end()},
                  args.scopes, args.add_scopes, args.remove_scopes)) {
    request.add_scopes(scope);
  }
  auto updated = (*auth)->UpdateRole(request);
  if (!updated.ok()) return ctx.RequestError(updated.status());
  return Print(ctx, *updated, FormatRole(updated->role()));
}

int RunRoleAction(Context& ctx, const std::string& action,
                  const std::string& role_id) {
  auto auth = AuthClientFor(ctx);
  if (!auth.ok()) return ctx.LocalError(auth.status());
  v1::RoleIdRequest request;
  request.set_role_id(role_id);
  if (action == "delete") {
    auto deleted = (*auth)->DeleteRole(request);
    if (!deleted.ok()) return ctx.RequestError(deleted.status());
    return Print(ctx, *deleted, "deleted role " + role_id + "\n");
  }
  auto role = (*auth)->GetRole(request);
  if (!role.ok()) return ctx.RequestError(role.status());
  return Print(ctx, *role, FormatRole(role->role()));
}

int RunRoleList(Context& ctx, const RoleArgs& args) {
  auto auth = AuthClientFor(ctx);
  if (!auth.ok()) return ctx.LocalError(auth.status());
  v1::ListRolesResponse all;
  v1::ListRolesRequest request;
  request.set_prefix(args.prefix);
  std::set<std::string> tokens;
  for (int page = 0; page < kMaxPages; ++page) {
    auto listed = (*auth)->ListRoles(request);
    if (!listed.ok()) return ctx.RequestError(listed.status());
    for (auto& r : *listed->mutable_roles()) *all.add_roles() = std::move(r);
    const std::string& token = listed->continuation_token();
    if (token.empty() || !tokens.insert(token).second) break;
    request.set_continuation_token(token);
  }
  Table table({"ROLE", "SCOPES"});
  for (const v1::Role& r : all.roles()) {
    table.AddRow({r.role_id(), Join(r.scopes(), " ")});
  }
  return Print(ctx, all, table.Render());
}

int RunExpand(Context& ctx, const std::vector<std::string>& scopes) {
  auto auth = AuthClientFor(ctx);
  if (!auth.ok()) return ctx.LocalError(auth.status());
  v1::ExpandScopesRequest request;
  for (const std::string& scope : scopes) request.add_scopes(scope);
  auto expanded = (*auth)->ExpandScopes(request);
  if (!expanded.ok()) return ctx.RequestError(expanded.status());
  std::string text;
  for (const std::string& scope : expanded->scopes()) text += scope + "\n";
  return Print(ctx, *expanded, text);
}

void AddScopeEditOptions(CLI::App* command, std::vector<std::string>& scopes,
                         std::vector<std::string>& add,
                         std::vector<std::string>& remove) {
  command->add_option("--scope", scopes,
                      "Replace the scopes with these (repeatable)");
  command->add_option("--add-scope", add, "Add a scope (repeatable)");
  command->add_option("--remove-scope", remove, "Remove a scope (repeatable)");
}

}  // namespace

absl::StatusOr<std::unique_ptr<client::AuthClient>> AuthClientFor(
    Context& context) {
  DROVER_ASSIGN_OR_RETURN(const client::QueueClient* queue, context.Queue());
  // The Context owns the connection and outlives the command.
  std::shared_ptr<const client::Connection> borrowed(
      std::shared_ptr<const client::Connection>(), &queue->connection());
  return std::make_unique<client::AuthClient>(borrowed, queue->defaults());
}

std::string FormatSigninExports(
    const v1::CreateTemporaryCredentialsResponse& credentials) {
  std::ostringstream out;
  out << "# temporary credentials for " << credentials.client_id()
      << ", expiring " << FormatTimestamp(true, credentials.expiry()) << "\n"
      << "export DROVER_CLIENT_ID=" << Quote(credentials.client_id()) << "\n"
      << "export DROVER_CERTIFICATE=" << Quote(credentials.certificate())
      << "\n"
      << "unset DROVER_ACCESS_TOKEN\n";
  return out.str();
}

std::string FormatCredentialsFile(
    const v1::CreateTemporaryCredentialsResponse& credentials) {
  nlohmann::json json = {
      {"clientId", credentials.client_id()},
      {"certificate", credentials.certificate()},
      {"expires", FormatTimestamp(true, credentials.expiry())}};
  return json.dump(2) + "\n";
}

std::vector<std::string> EditScopes(std::vector<std::string> current,
                                    const std::vector<std::string>& replace,
                                    const std::vector<std::string>& add,
                                    const std::vector<std::string>& remove) {
  if (!replace.empty()) current = replace;
  current.insert(current.end(), add.begin(), add.end());
  const std::set<std::string> dropped(remove.begin(), remove.end());
  std::vector<std::string> out;
  std::set<std::string> seen;
  for (std::string& scope : current) {
    if (dropped.count(scope) > 0 || !seen.insert(scope).second) continue;
    out.push_back(std::move(scope));
  }
  return out;
}

std::string FormatClient(const v1::Client& client) {
  std::ostringstream out;
  out << "clientId:     " << client.client_id() << "\n"
      << "description:  " << client.description() << "\n"
      << "state:        " << (client.disabled() ? "disabled" : "enabled")
      << "\n"
      << "expires:      "
      << FormatTimestamp(client.has_expires(), client.expires())
      << (client.delete_on_expiration() ? " (then deleted)" : "") << "\n"
      << "created:      "
      << FormatTimestamp(client.has_created(), client.created()) << "\n"
      << "lastUsed:     "
      << FormatTimestamp(client.has_last_date_used(), client.last_date_used())
      << "\n"
      << "lastRotated:  "
      << FormatTimestamp(client.has_last_rotated(), client.last_rotated())
      << "\n"
      << "scopes:\n";
  for (const std::string& s : client.scopes()) out << "  " << s << "\n";
  out << "expandedScopes:\n";
  for (const std::string& s : client.expanded_scopes()) out << "  " << s << "\n";
  return out.str();
}

std::string FormatRole(const v1::Role& role) {
  std::ostringstream out;
  out << "roleId:       " << role.role_id() << "\n"
      << "description:  " << role.description() << "\n"
      << "scopes:\n";
  for (const std::string& s : role.scopes()) out << "  " << s << "\n";
  out << "expandedScopes:\n";
  for (const std::string& s : role.expanded_scopes()) out << "  " << s << "\n";
  return out.str();
}

std::string FormatCurrentScopes(const v1::CurrentScopesResponse& whoami) {
  std::ostringstream out;
  out << "clientId:     "
      << (whoami.client_id().empty() ? "(anonymous)" : whoami.client_id())
      << "\n";
  if (whoami.temporary()) {
    out << "credentials:  temporary, issued by " << whoami.issuer()
        << ", expiring " << FormatTimestamp(true, whoami.expires()) << "\n";
  } else if (!whoami.client_id().empty()) {
    out << "credentials:  permanent, expiring "
        << FormatTimestamp(whoami.has_expires(), whoami.expires()) << "\n";
  }
  out << "scopes:\n";
  for (const std::string& s : whoami.scopes()) out << "  " << s << "\n";
  return out.str();
}

void AddAuthCommands(CLI::App& app, Context& context) {
  // signin
  auto signin_args = std::make_shared<SigninArgs>();
  CLI::App* signin = app.add_subcommand(
      "signin",
      "Mint temporary credentials from your permanent ones: "
      "eval \"$(drover signin)\", or -o FILE");
  signin->add_option("--scope", signin_args->scopes,
                     "Scope to include (repeatable; default: all of yours)");
  signin->add_option("--expires", signin_args->expires,
                     "Lifetime: 1d, 8h, 90m ... (at most 31 days)")
      ->capture_default_str();
  signin->add_option("--name", signin_args->name,
                     "Client id the credentials carry (default: yours; "
                     "another needs auth:create-client:<id>)");
  signin->add_option("-o,--output", signin_args->output,
                     "Write a credentials file (mode 0600) instead of "
                     "printing shell exports");
  signin->callback([&context, signin_args] {
    context.set_exit_code(RunSignin(context, *signin_args));
  });

  CLI::App* whoami =
      app.add_subcommand("whoami", "Show who you are and your scopes");
  whoami->callback([&context] { context.set_exit_code(RunWhoami(context)); });

  // clients
  CLI::App* clients = app.add_subcommand("clients", "Manage permanent clients")
                          ->require_subcommand(1);
  auto cargs = std::make_shared<ClientArgs>();

  CLI::App* create = clients->add_subcommand(
      "create", "Create a client and print its access token (shown once)");
  create->add_option("CLIENT_ID", cargs->client_id, "e.g. user/alice")
      ->required();
  create->add_option("--scope", cargs->scopes, "Scope (repeatable)");
  create->add_option("--description", cargs->description, "What it is for");
  create->add_option("--expires", cargs->expires,
                     "When it stops working: 1y, 90d, RFC 3339 (default 1y)");
  create->add_flag("--delete-on-expiration", cargs->delete_on_expiration,
                   "Delete it once expired");
  create->callback([&context, cargs] {
    context.set_exit_code(RunClientCreate(context, *cargs));
  });

  CLI::App* list = clients->add_subcommand("list", "List clients");
  list->add_option("--prefix", cargs->prefix, "Only ids with this prefix");
  list->callback(
      [&context, cargs] { context.set_exit_code(RunClientList(context, *cargs)); });

  for (const char* action : {"get", "disable", "enable", "delete",
                             "reset-token"}) {
    const std::string name = action;
    const std::string help =
        name == "get"           ? "Show a client"
        : name == "disable"     ? "Refuse the client's token (its temporary "
                                  "credentials run out on their own)"
        : name == "enable"      ? "Accept the client's token again"
        : name == "delete"      ? "Delete a client"
                                : "Issue a new access token (the old one "
                                  "stops working)";
    CLI::App* command = clients->add_subcommand(name, help);
    command->add_option("CLIENT_ID", cargs->client_id, "Client id")
        ->required();
    command->callback([&context, cargs, name] {
      context.set_exit_code(RunClientAction(context, name, cargs->client_id));
    });
  }

  CLI::App* update = clients->add_subcommand(
      "update", "Change a client's scopes, description or expiry");
  update->add_option("CLIENT_ID", cargs->client_id, "Client id")->required();
  AddScopeEditOptions(update, cargs->scopes, cargs->add_scopes,
                      cargs->remove_scopes);
  update
      ->add_option("--description", cargs->description, "New description")
      ->each([cargs](const std::string&) { cargs->description_set = true; });
  update->add_option("--expires", cargs->expires,
                     "New expiry: 1y, 90d, RFC 3339");
  update->add_flag("--delete-on-expiration", cargs->delete_on_expiration,
                   "Delete it once expired");
  update->callback([&context, cargs] {
    context.set_exit_code(RunClientUpdate(context, *cargs));
  });

  // roles
  CLI::App* roles =
      app.add_subcommand("roles", "Manage roles")->require_subcommand(1);
  auto rargs = std::make_shared<RoleArgs>();

  CLI::App* rcreate = roles->add_subcommand("create", "Create a role");
  rcreate->add_option("ROLE_ID", rargs->role_id, "e.g. project:ci")
      ->required();
  rcreate->add_option("--scope", rargs->scopes, "Scope (repeatable)");
  rcreate->add_option("--description", rargs->description, "What it is for");
  rcreate->callback([&context, rargs] {
    context.set_exit_code(RunRoleCreate(context, *rargs));
  });

  CLI::App* rlist = roles->add_subcommand("list", "List roles");
  rlist->add_option("--prefix", rargs->prefix, "Only ids with this prefix");
  rlist->callback(
      [&context, rargs] { context.set_exit_code(RunRoleList(context, *rargs)); });

  for (const char* action : {"get", "delete"}) {
    const std::string name = action;
    CLI::App* command = roles->add_subcommand(
        name, name == "get" ? "Show a role and its expansion" : "Delete a role");
    command->add_option("ROLE_ID", rargs->role_id, "Role id")->required();
    command->callback([&context, rargs, name] {
      context.set_exit_code(RunRoleAction(context, name, rargs->role_id));
    });
  }

  CLI::App* rupdate =
      roles->add_subcommand("update", "Change a role's scopes or description");
  rupdate->add_option("ROLE_ID", rargs->role_id, "Role id")->required();
  AddScopeEditOptions(rupdate, rargs->scopes, rargs->add_scopes,
                      rargs->remove_scopes);
  rupdate
      ->add_option("--description", rargs->description, "New description")
      ->each([rargs](const std::string&) { rargs->description_set = true; });
  rupdate->callback([&context, rargs] {
    context.set_exit_code(RunRoleUpdate(context, *rargs));
  });

  auto expand_scopes = std::make_shared<std::vector<std::string>>();
  CLI::App* expand = roles->add_subcommand(
      "expand", "Expand scopes through the roles (assume:...)");
  expand->add_option("SCOPE", *expand_scopes, "Scopes")->required();
  expand->callback([&context, expand_scopes] {
    context.set_exit_code(RunExpand(context, *expand_scopes));
  });
}

}  // namespace drover::cli::commands
