// drover_api_scopes_doc: prints docs/api-scopes.md, the scopes reference
// generated from the RPC scope table.
//   drover_api_scopes_doc > docs/api-scopes.md
#include <iostream>

#include "queue/auth/rpc_scopes.h"

int main() {
  std::cout << drover::queue::auth::RenderScopesReference();
  return std::cout.good() ? 0 : 1;
}
