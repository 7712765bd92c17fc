#!/usr/bin/env bash
# Installs the Debian 12 packages Drover needs to build, test and run.
# Idempotent: only missing packages are installed. Needs root (or sudo).
set -euo pipefail

BUILD_PACKAGES=(
  build-essential cmake ninja-build pkg-config git
  libgrpc++-dev protobuf-compiler-grpc libprotobuf-dev protobuf-compiler
  libpqxx-dev libpq-dev libsodium-dev libspdlog-dev nlohmann-json3-dev
  libabsl-dev libcurl4-openssl-dev libcli11-dev libcpp-httplib-dev
  libgtest-dev libgmock-dev zlib1g-dev libssl-dev
  postgresql-15 postgresql-client-15 postgresql-contrib
  busybox-static ca-certificates curl procps
)
# Only for the test and benchmark command: real services the tests use.
TEST_PACKAGES=(docker.io docker-registry nodejs npm python3)

want=("${BUILD_PACKAGES[@]}")
if [[ "${1:-}" == "--with-test-services" ]]; then
  want+=("${TEST_PACKAGES[@]}")
fi

missing=()
for pkg in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done

if ((${#missing[@]} == 0)); then
  echo "install-deps: all packages present"
  exit 0
fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
