#!/usr/bin/env bash
# Starts a local S3-compatible server (the npm package s3rver) for the S3
# blob-store tests, idempotently, and prints its endpoint.
#
# s3rver is installed into the project-local .deps/s3rver (never globally).
# State (pid file, log, bucket data) lives under .drover/s3rver unless
# DROVER_S3RVER_DIR says otherwise. A server this script started earlier and
# that still answers is reused. Output on stdout is exactly one line:
#   DROVER_TEST_S3_ENDPOINT=http://127.0.0.1:PORT
# so callers can `eval "$(scripts/start-s3.sh)"` (then export it).
#
# Options (environment):
#   DROVER_S3RVER_PORT    preferred port (default 4569; the next free port is
#                         used when it is taken by something else)
#   DROVER_TEST_S3_BUCKET bucket to pre-create (default drover-test)
#   --stop                stops the server this script started
set -euo pipefail

root="$(cd "$(dirname "$0")/.." && pwd)"
deps="${root}/.deps/s3rver"
state="${DROVER_S3RVER_DIR:-${root}/.drover/s3rver}"
bucket="${DROVER_TEST_S3_BUCKET:-drover-test}"
port="${DROVER_S3RVER_PORT:-4569}"
version="3.7.1"
pidfile="${state}/pid"
portfile="${state}/port"
log="${state}/s3rver.log"

log_err() { echo "start-s3: $*" >&2; }

# True when something answers HTTP on 127.0.0.1:$1.
answers() {
  curl -s -o /dev/null --max-time 2 "http://127.0.0.1:$1/" 2>/dev/null
}

# True when the pid in the pid file is a live s3rver we started.
ours_running() {
  [[ -f "${pidfile}" ]] || return 1
  local pid
  pid="$(cat "${pidfile}")"
  [[ -n "${pid}" ]] && kill -0 "${pid}" 2>/dev/null &&
    tr '\0' ' ' <"/proc/${pid}/cmdline" 2>/dev/null | grep -q s3rver
}

if [[ "${1:-}" == "--stop" ]]; then
  if ours_running; then
    kill "$(cat "${pidfile}")"
    log_err "stopped"
  fi
  rm -f "${pidfile}" "${portfile}"
  exit 0
fi

if ours_running && [[ -f "${portfile}" ]] && answers "$(cat "${portfile}")"; then
  echo "DROVER_TEST_S3_ENDPOINT=http://127.0.0.1:$(cat "${portfile}")"
  exit 0
fi

if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
  log_err "node and npm are needed (scripts/install-deps.sh --with-test-services)"
  exit 1
fi

bin="${deps}/node_modules/.bin/s3rver"
if [[ ! -x "${bin}" ]]; then
  log_err "installing s3rver ${version} into ${deps}"
  mkdir -p "${deps}"
  # A private package.json keeps npm from walking up into the repository.
  [[ -f "${deps}/package.json" ]] ||
    echo '{"name":"drover-s3rver","private":true}' >"${deps}/package.json"
  (cd "${deps}" && npm install --no-audit --no-fund --loglevel=error \
    "s3rver@${version}" >&2)
fi

# True when anything accepts TCP connections on 127.0.0.1:$1.
taken() {
  (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# Take the preferred port unless someone else holds it.
while taken "${port}"; do
  port=$((port + 1))
done

mkdir -p "${state}/data"
rm -f "${pidfile}" "${portfile}"
# setsid detaches it from the caller's process group so it outlives this
# script; --configure-bucket creates the bucket at startup.
setsid "${bin}" --address 127.0.0.1 --port "${port}" \
  --directory "${state}/data" --configure-bucket "${bucket}" \
  --silent >"${log}" 2>&1 </dev/null &
echo $! >"${pidfile}"
echo "${port}" >"${portfile}"

for _ in $(seq 1 100); do
  if answers "${port}"; then
    echo "DROVER_TEST_S3_ENDPOINT=http://127.0.0.1:${port}"
    exit 0
  fi
  if ! ours_running; then break; fi
  sleep 0.1
done
log_err "s3rver did not come up on 127.0.0.1:${port}; log follows"
cat "${log}" >&2
exit 1
