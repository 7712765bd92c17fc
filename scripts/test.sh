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

# Scratch space. The tests create and drop thousands of files (a database
# per test, containers, blobs); on a disk every one of those is a journal
# entry, and on a slow virtual disk that made the suite several times
# slower. A tmpfs takes them in memory: TMPDIR (every test's temporary
# directory and PostgreSQL cluster), the test dockerd's data root and the
# registries' and s3rver's storage go there when the machine has one with
# room. DROVER_TEST_SCRATCH names another directory (or "" for the usual
# places). The directory stays after the run: the services started here
# keep their storage in it.
pick_scratch() {
  local shm=/dev/shm free_kb
  [[ -d $shm && -w $shm ]] || return 1
  [[ $(stat -f -c %T "$shm" 2>/dev/null) == tmpfs ]] || return 1
  free_kb=$(df -Pk "$shm" | awk 'NR == 2 {print $4}')
  ((free_kb >= 6 * 1024 * 1024)) || return 1
  echo "$shm/drover"
}
if [[ -z ${DROVER_TEST_SCRATCH+set} ]]; then
  DROVER_TEST_SCRATCH=$(pick_scratch || true)
fi
if [[ -n $DROVER_TEST_SCRATCH ]]; then
  # Sticky and world-writable like /tmp: tests hand directories in it to
  # per-task users and to the postgres user.
  mkdir -p "$DROVER_TEST_SCRATCH/tmp"
  chmod 1777 "$DROVER_TEST_SCRATCH" "$DROVER_TEST_SCRATCH/tmp"
  export TMPDIR=$DROVER_TEST_SCRATCH/tmp
  export DROVER_DOCKER_STATE=${DROVER_DOCKER_STATE:-$DROVER_TEST_SCRATCH/docker}
  export DROVER_DOCKER_DATA_ROOT=${DROVER_DOCKER_DATA_ROOT:-$DROVER_TEST_SCRATCH/docker/data-root}
  export DROVER_S3RVER_DIR=${DROVER_S3RVER_DIR:-$DROVER_TEST_SCRATCH/s3rver}
  echo "test.sh: scratch space (TMPDIR, docker, s3rver) in $DROVER_TEST_SCRATCH"
else
  echo "test.sh: no tmpfs with room for scratch space; using the usual directories"
fi

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
