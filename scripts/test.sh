#!/usr/bin/env bash
# The test command: installs dependencies, builds, starts the real services
# the tests need (dockerd + a local registry, an S3-compatible server; each
# test binary starts its own throw-away PostgreSQL) and runs ctest.
#
#   scripts/test.sh            # everything
#   scripts/test.sh -R store   # extra arguments go to ctest
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}

scripts/install-deps.sh --with-test-services

CMAKE_ARGS=(-G Ninja -DCMAKE_BUILD_TYPE=Release)
# A compiler cache, when the machine has one, makes rebuilds of a fresh clone
# at the same path cheap; nothing depends on it.
if command -v ccache >/dev/null && [[ -z "${DROVER_NO_CCACHE:-}" ]]; then
  CMAKE_ARGS+=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache -DCMAKE_C_COMPILER_LAUNCHER=ccache)
fi
cmake -S . -B "$BUILD_DIR" "${CMAKE_ARGS[@]}" >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)"

# Services. A service that cannot start here leaves its tests to report
# themselves skipped with the reason; the rest of the suite still runs.
if [[ -x scripts/start-docker.sh ]]; then
  if scripts/start-docker.sh && [[ -x scripts/make-test-images.sh ]]; then
    scripts/make-test-images.sh || echo "test.sh: test images could not be built; docker tests will skip"
  else
    echo "test.sh: dockerd could not start; docker tests will skip"
  fi
fi
if [[ -x scripts/start-s3.sh ]]; then
  if S3_ENV=$(scripts/start-s3.sh); then
    eval "$S3_ENV"
    export DROVER_TEST_S3_ENDPOINT
  else
    echo "test.sh: the S3-compatible server could not start; S3 tests will skip"
  fi
fi

cd "$BUILD_DIR"
ctest --output-on-failure --timeout 900 "$@"
