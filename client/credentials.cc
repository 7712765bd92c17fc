#include "client/credentials.h"

#include <fstream>
#include <sstream>
#include <utility>

#include "client/time_spec.h"
#include "common/status.h"
#include "grpcpp/client_context.h"
#include "nlohmann/json.hpp"

namespace drover::client {
namespace {

using nlohmann::json;

// Scope lists arrive as JSON arrays of strings, both in files and in
// DROVER_AUTHORIZED_SCOPES; `field` is the name reported on errors.
absl::StatusOr<std::vector<std::string>> ScopesFromJson(
    const json& value, const std::string& field) {
  if (!value.is_array()) {
    return InputError(field, value.dump(),
                      "must be a JSON array of scope strings");
  }
  std::vector<std::string> scopes;
  for (size_t i = 0; i < value.size(); ++i) {
    if (!value[i].is_string()) {
      return InputError(field + "[" + std::to_string(i) + "]", value[i].dump(),
                        "a scope must be a string");
    }
    scopes.push_back(value[i].get<std::string>());
  }
  return scopes;
}

}  // namespace

absl::Status ValidateCredentials(const Credentials& c) {
  // Secrets never go into error details; their presence is enough.
  constexpr std::string_view kHidden = "(set, hidden)";
  auto fail = [&](std::string_view field, std::string_view value,
                  std::string_view message) {
    return MakeError(ErrorCode::kInputError, message,
                     {{"field", std::string(field)},
                      {"value", std::string(value)},
                      {"source", c.source}});
  };
  if (!c.access_token.empty() && !c.certificate.empty()) {
    return fail("certificate", kHidden,
                "give either an access token or a certificate, not both");
  }
  if (!c.access_token.empty() && c.client_id.empty()) {
    return fail("clientId", "", "an access token needs its client id");
  }
  if (!c.client_id.empty() && c.access_token.empty() && c.certificate.empty()) {
    return fail(
        "accessToken", "",
        "client id " + c.client_id + " needs an access token or a certificate");
  }
  if (c.Anonymous() && !c.authorized_scopes.empty()) {
    return fail("authorizedScopes", json(c.authorized_scopes).dump(),
                "authorized scopes narrow credentials; none are set");
  }
  return absl::OkStatus();
}

absl::StatusOr<Credentials> ParseCredentialsJson(std::string_view text,
                                                 std::string_view source) {
  json doc = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) {
    return MakeError(
        ErrorCode::kInputError, "the credentials file is not valid JSON",
        {{"field", "credentials"}, {"value", std::string(source)}});
  }
  if (!doc.is_object()) {
    return InputError("credentials", source,
                      "the credentials file must hold a JSON object");
  }
  Credentials out;
  out.source = std::string(source);
  for (const auto& [key, value] : doc.items()) {
    auto string_field = [&](std::string* target) -> absl::Status {
      if (value.is_null()) return absl::OkStatus();
      if (!value.is_string()) {
        return InputError(key, value.dump(), "must be a string");
      }
      *target = value.get<std::string>();
      return absl::OkStatus();
    };
    if (key == "clientId") {
      DROVER_RETURN_IF_ERROR(string_field(&out.client_id));
    } else if (key == "accessToken") {
      DROVER_RETURN_IF_ERROR(string_field(&out.access_token));
    } else if (key == "certificate") {
      DROVER_RETURN_IF_ERROR(string_field(&out.certificate));
    } else if (key == "authorizedScopes") {
      if (value.is_null()) continue;
      DROVER_ASSIGN_OR_RETURN(out.authorized_scopes,
                              ScopesFromJson(value, key));
    } else if (key == "expires") {
      if (value.is_null()) continue;
      if (!value.is_string()) {
        return InputError(key, value.dump(), "must be an RFC 3339 string");
      }
      DROVER_ASSIGN_OR_RETURN(out.expires,
                              ParseRfc3339(value.get<std::string>(), key));
    } else {
      return InputError(key, source,
                        "unknown key in credentials file; expected clientId, "
                        "accessToken, certificate, authorizedScopes, expires");
    }
  }
  DROVER_RETURN_IF_ERROR(ValidateCredentials(out));
  return out;
}

absl::StatusOr<Credentials> ReadCredentialsFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return InputError("credentials", path, "cannot read the credentials file");
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  return ParseCredentialsJson(buffer.str(), path);
}

absl::StatusOr<std::optional<Credentials>> CredentialsFromEnvironment(
    const EnvLookup& env) {
  auto client_id = env("DROVER_CLIENT_ID");
  auto access_token = env("DROVER_ACCESS_TOKEN");
  auto certificate = env("DROVER_CERTIFICATE");
  if (!client_id && !access_token && !certificate) return std::nullopt;
  Credentials out;
  out.source = "environment";
  out.client_id = client_id.value_or("");
  out.access_token = access_token.value_or("");
  out.certificate = certificate.value_or("");
  if (auto scopes = env("DROVER_AUTHORIZED_SCOPES")) {
    json doc = json::parse(*scopes, nullptr, /*allow_exceptions=*/false);
    if (doc.is_discarded()) {
      return InputError("DROVER_AUTHORIZED_SCOPES", *scopes,
                        "must be a JSON array of scope strings");
    }
    DROVER_ASSIGN_OR_RETURN(out.authorized_scopes,
                            ScopesFromJson(doc, "DROVER_AUTHORIZED_SCOPES"));
  }
  if (absl::Status valid = ValidateCredentials(out); !valid.ok()) {
    // Name the variable people must set, not the JSON key.
    ErrorInfo info = GetErrorInfo(valid);
    std::string field = info.details["field"];
    std::string variable = field == "clientId"      ? "DROVER_CLIENT_ID"
                           : field == "accessToken" ? "DROVER_ACCESS_TOKEN"
                           : field == "certificate" ? "DROVER_CERTIFICATE"
                                                    : field;
    info.details["field"] = variable;
    return MakeError(info.code, info.message, std::move(info.details));
  }
  return std::optional<Credentials>(std::move(out));
}

std::string DefaultCredentialsPath(const EnvLookup& env) {
  if (auto xdg = env("XDG_CONFIG_HOME")) {
    return *xdg + "/drover/credentials.json";
  }
  if (auto home = env("HOME")) {
    return *home + "/.config/drover/credentials.json";
  }
  return "";
}

absl::StatusOr<Credentials> LoadCredentials(const EnvLookup& env,
                                            std::string_view explicit_file) {
  if (!explicit_file.empty()) {
    return ReadCredentialsFile(std::string(explicit_file));
  }
  DROVER_ASSIGN_OR_RETURN(std::optional<Credentials> from_env,
                          CredentialsFromEnvironment(env));
  if (from_env) return std::move(*from_env);
  if (auto named = env("DROVER_CREDENTIALS_FILE")) {
    return ReadCredentialsFile(*named);
  }
  std::string path = DefaultCredentialsPath(env);
  if (!path.empty()) {
    std::ifstream probe(path);
    if (probe.good()) return ReadCredentialsFile(path);
  }
  return Credentials{};
}

void AttachCredentials(const Credentials& c, grpc::ClientContext* context) {
  if (!c.client_id.empty()) {
    context->AddMetadata(std::string(kClientIdHeader), c.client_id);
  }
  if (!c.access_token.empty()) {
    context->AddMetadata(std::string(kAccessTokenHeader), c.access_token);
  }
  if (!c.certificate.empty()) {
    context->AddMetadata(std::string(kCertificateHeader), c.certificate);
  }
  if (!c.authorized_scopes.empty()) {
    context->AddMetadata(std::string(kAuthorizedScopesHeader),
                         json(c.authorized_scopes).dump());
  }
}

}  // namespace drover::client
