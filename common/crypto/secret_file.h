// Reading and writing files that hold secrets (signing keys, token-hash
// keys, bootstrap credentials): written atomically with mode 0600, and
// refused on read when group or others may access them, as ssh does for
// private keys.
#ifndef DROVER_COMMON_CRYPTO_SECRET_FILE_H_
#define DROVER_COMMON_CRYPTO_SECRET_FILE_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

namespace drover::crypto {

// Writes `contents` to `path` with mode 0600: a temporary file in the same
// directory is written, fsynced and renamed over `path`, so readers never see
// a partial file. With `overwrite` false an existing file is an error
// (RequestConflict), which keeps a second bootstrap from replacing a key.
// Errors: InputError (field "path") when the directory is missing or not
// writable; RequestConflict as above. Thread-compatible (one writer per path).
absl::Status WriteSecretFile(const std::string& path, std::string_view contents,
                             bool overwrite);

// Reads a secret file. Errors: ResourceNotFound when it does not exist;
// InputError (field "path") when group or others have any permission on it,
// when it is not a regular file, or when it is larger than 1 MiB.
absl::StatusOr<std::string> ReadSecretFile(const std::string& path);

}  // namespace drover::crypto

#endif  // DROVER_COMMON_CRYPTO_SECRET_FILE_H_
