#include "cli/commands/secrets.h"

#include <iterator>
#include <ostream>
#include <set>
#include <sstream>

#include "cli/output.h"
#include "client/time_spec.h"
#include "common/status.h"
#include "nlohmann/json.hpp"

namespace drover::cli::commands {
namespace {

struct SecretArgs {
  std::string name;
  std::string value;
  bool as_string = false;
  std::string expires;
  std::string prefix;
};

int RunSet(Context& ctx, const SecretArgs& args) {
  auto secrets = SecretsClientFor(ctx);
  if (!secrets.ok()) return ctx.LocalError(secrets.status());
  std::string text = args.value;
  if (text.empty() || text == "-") {
    text.assign(std::istreambuf_iterator<char>(ctx.in()),
                std::istreambuf_iterator<char>());
    // A trailing newline from `echo` or a here-string is not part of it.
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) {
      text.pop_back();
    }
  }
  auto value = SecretValue(text, args.as_string);
  if (!value.ok()) return ctx.LocalError(value.status());
  v1::SetSecretRequest request;
  request.set_name(args.name);
  request.set_value(*value);
  if (!args.expires.empty()) {
    auto expires = client::ParseTimeSpec(args.expires, "--expires", ctx.Now());
    if (!expires.ok()) return ctx.LocalError(expires.status());
    *request.mutable_expires() = client::ToProtoTimestamp(*expires);
  }
  auto set = (*secrets)->SetSecret(request);
  if (!set.ok()) return ctx.RequestError(set.status());
  if (ctx.options().json) {
    ctx.PrintJson(*set);
  } else {
    ctx.out() << "set secret " << args.name << "\n";
  }
  return kExitOk;
}

int RunGet(Context& ctx, const SecretArgs& args) {
  auto secrets = SecretsClientFor(ctx);
  if (!secrets.ok()) return ctx.LocalError(secrets.status());
  v1::SecretNameRequest request;
  request.set_name(args.name);
  auto got = (*secrets)->GetSecret(request);
  if (!got.ok()) return ctx.RequestError(got.status());
  if (ctx.options().json) {
    ctx.PrintJson(*got);
  } else {
    ctx.out() << got->value() << "\n";
  }
  return kExitOk;
}

int RunRemove(Context& ctx, const SecretArgs& args) {
  auto secrets = SecretsClientFor(ctx);
  if (!secrets.ok()) return ctx.LocalError(secrets.status());
  v1::SecretNameRequest request;
  request.set_name(args.name);
  auto removed = (*secrets)->RemoveSecret(request);
  if (!removed.ok()) return ctx.RequestError(removed.status());
  if (ctx.options().json) {
    ctx.PrintJson(*removed);
  } else {
    ctx.out() << "removed secret " << args.name << "\n";
  }
  return kExitOk;
}

int RunList(Context& ctx, const SecretArgs& args) {
  auto secrets = SecretsClientFor(ctx);
  if (!secrets.ok()) return ctx.LocalError(secrets.status());
  v1::ListSecretsResponse all;
  v1::ListSecretsRequest request;
  request.set_prefix(args.prefix);
  std::set<std::string> tokens;
  while (true) {
    auto page = (*secrets)->ListSecrets(request);
    if (!page.ok()) return ctx.RequestError(page.status());
    for (auto& name : *page->mutable_names()) all.add_names(std::move(name));
    const std::string& token = page->continuation_token();
    if (token.empty() || !tokens.insert(token).second) break;
    request.set_continuation_token(token);
  }
  if (ctx.options().json) {
    ctx.PrintJson(all);
  } else {
    for (const std::string& name : all.names()) ctx.out() << name << "\n";
  }
  return kExitOk;
}

}  // namespace

absl::StatusOr<std::unique_ptr<client::SecretsClient>> SecretsClientFor(
    Context& context) {
  DROVER_ASSIGN_OR_RETURN(const client::QueueClient* queue, context.Queue());
  // The Context owns the connection and outlives the command.
  std::shared_ptr<const client::Connection> borrowed(
      std::shared_ptr<const client::Connection>(), &queue->connection());
  return std::make_unique<client::SecretsClient>(borrowed, queue->defaults());
}

absl::StatusOr<std::string> SecretValue(const std::string& text,
                                        bool as_string) {
  if (as_string) return nlohmann::json(text).dump();
  if (!nlohmann::json::accept(text)) {
    return MakeError(ErrorCode::kInputError,
                     "the value is not JSON; pass --string to store it as a "
                     "JSON string",
                     {{"field", "VALUE"}});
  }
  return text;
}

void AddSecretsCommands(CLI::App& app, Context& context) {
  CLI::App* group = app.add_subcommand("secrets", "Manage secrets")
                        ->require_subcommand(1);
  auto args = std::make_shared<SecretArgs>();

  CLI::App* set = group->add_subcommand(
      "set", "Create or replace a secret (VALUE is JSON; - reads stdin)");
  set->add_option("NAME", args->name, "Secret name")->required();
  set->add_option("VALUE", args->value,
                  "JSON value; omitted or - reads it from stdin (safer: "
                  "arguments show in process lists)");
  set->add_flag("--string", args->as_string,
                "Store the text as a JSON string");
  set->add_option("--expires", args->expires,
                  "When it expires: 30d, RFC 3339 (default: never)");
  set->callback([&context, args] { context.set_exit_code(RunSet(context, *args)); });

  CLI::App* get = group->add_subcommand("get", "Print a secret's value");
  get->add_option("NAME", args->name, "Secret name")->required();
  get->callback([&context, args] { context.set_exit_code(RunGet(context, *args)); });

  CLI::App* remove = group->add_subcommand("remove", "Remove a secret");
  remove->add_option("NAME", args->name, "Secret name")->required();
  remove->callback(
      [&context, args] { context.set_exit_code(RunRemove(context, *args)); });

  CLI::App* list = group->add_subcommand("list", "List secret names");
  list->add_option("--prefix", args->prefix, "Only names with this prefix");
  list->callback([&context, args] { context.set_exit_code(RunList(context, *args)); });
}

}  // namespace drover::cli::commands
