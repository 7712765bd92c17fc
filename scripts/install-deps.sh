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
TEST_PACKAGES=(docker-registry python3)
# A machine may already carry Docker or Node.js from another source (Docker's
# own packages, NodeSource's nodejs which bundles npm); Debian's packages would
# conflict with those, so they are only asked for when the command is missing.
if ! command -v dockerd >/dev/null; then TEST_PACKAGES+=(docker.io); fi
if ! command -v node >/dev/null; then TEST_PACKAGES+=(nodejs); fi
if ! command -v npm >/dev/null; then TEST_PACKAGES+=(npm); fi

SUDO=""
if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
updated=0

# Prints the packages of "$@" that are not installed.
missing_of() {
  local pkg
  for pkg in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
      echo "$pkg"
    fi
  done
}

# Installs "$@" with apt-get; returns apt-get's status.
apt_install() {
  if ((updated == 0)); then
    $SUDO apt-get update -qq
    updated=1
  fi
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "$@"
}

mapfile -t missing < <(missing_of "${BUILD_PACKAGES[@]}")
if ((${#missing[@]} > 0)); then
  echo "install-deps: installing ${missing[*]}"
  apt_install "${missing[@]}"
fi

if [[ "${1:-}" == "--with-test-services" ]]; then
  mapfile -t missing < <(missing_of "${TEST_PACKAGES[@]}")
  for pkg in "${missing[@]}"; do
    # One at a time, so that a package this machine cannot take only costs the
    # tests that need it (they report themselves skipped with the reason).
    echo "install-deps: installing ${pkg}"
    if ! apt_install "${pkg}"; then
      echo "install-deps: WARNING: could not install ${pkg}; tests needing it will be skipped" >&2
    fi
  done
fi
echo "install-deps: done"
