#!/usr/bin/env bash
# Starts the real services the docker engine tests use, idempotently:
#   - installs Debian's docker.io and docker-registry when missing;
#   - starts dockerd in the background (log in $DROVER_DOCKERD_LOG, images
#     and containers in $DROVER_DOCKER_DATA_ROOT when set, else dockerd's
#     default) unless /var/run/docker.sock already answers /_ping;
#   - starts two loopback registries from Debian's docker-registry, each on a
#     throw-away storage directory:
#       127.0.0.1:5000  anonymous (pull tests)
#       127.0.0.1:5001  basic auth, user "drover-test", password
#                       "drover-test-password" (registry credential tests;
#                       test-only credentials, never used anywhere else)
# Needs root. Exits non-zero when dockerd cannot be started.
set -euo pipefail

STATE_DIR=${DROVER_DOCKER_STATE:-/tmp/drover-docker}
DOCKERD_LOG=${DROVER_DOCKERD_LOG:-$STATE_DIR/dockerd.log}
SOCKET=/var/run/docker.sock
mkdir -p "$STATE_DIR"

log() { echo "start-docker: $*"; }

# --- packages --------------------------------------------------------------
missing=()
for pkg in docker.io docker-registry; do
  if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$pkg")
  fi
done
if ((${#missing[@]} > 0)); then
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  log "installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq \
    --no-install-recommends "${missing[@]}"
fi

# --- dockerd ---------------------------------------------------------------
docker_ping() {
  [[ -S $SOCKET ]] &&
    [[ $(curl -sf --max-time 2 --unix-socket "$SOCKET" http://localhost/_ping 2>/dev/null) == OK ]]
}

if docker_ping; then
  log "dockerd already answers on $SOCKET"
else
  if [[ -f $STATE_DIR/dockerd.pid ]] && kill -0 "$(cat "$STATE_DIR/dockerd.pid")" 2>/dev/null; then
    log "dockerd (pid $(cat "$STATE_DIR/dockerd.pid")) is starting; waiting"
  else
    log "starting dockerd (log: $DOCKERD_LOG)"
    # setsid: dockerd must outlive this script and the shell that ran it.
    dockerd_args=(--host "unix://$SOCKET")
    if [[ -n ${DROVER_DOCKER_DATA_ROOT:-} ]]; then
      mkdir -p "$DROVER_DOCKER_DATA_ROOT"
      dockerd_args+=(--data-root "$DROVER_DOCKER_DATA_ROOT")
    fi
    setsid /usr/sbin/dockerd "${dockerd_args[@]}" >>"$DOCKERD_LOG" 2>&1 </dev/null &
    echo $! >"$STATE_DIR/dockerd.pid"
  fi
  for _ in $(seq 1 120); do
    if docker_ping; then break; fi
    if ! kill -0 "$(cat "$STATE_DIR/dockerd.pid")" 2>/dev/null; then
      log "dockerd exited; last lines of $DOCKERD_LOG:"
      tail -20 "$DOCKERD_LOG" >&2
      exit 1
    fi
    sleep 0.5
  done
  if ! docker_ping; then
    log "dockerd did not answer /_ping within 60 s; see $DOCKERD_LOG"
    exit 1
  fi
  log "dockerd is up"
fi

# --- registries ------------------------------------------------------------
registry_up() {
  # 200 (anonymous) or 401 (auth required) both mean the registry answers.
  local code
  code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://$1/v2/" 2>/dev/null || true)
  [[ $code == 200 || $code == 401 ]]
}

start_registry() {
  local name=$1 addr=$2 auth_yaml=$3
  if registry_up "$addr"; then
    log "registry $name already answers on $addr"
    return 0
  fi
  local dir
  dir=$(mktemp -d "$STATE_DIR/registry-$name.XXXXXX")
  cat >"$dir/config.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $dir/storage
  delete:
    enabled: true
http:
  addr: $addr
$auth_yaml
EOF
  setsid /usr/bin/docker-registry serve "$dir/config.yml" \
    >>"$dir/registry.log" 2>&1 </dev/null &
  echo $! >"$STATE_DIR/registry-$name.pid"
  for _ in $(seq 1 40); do
    if registry_up "$addr"; then
      log "registry $name up on $addr (storage $dir/storage)"
      return 0
    fi
    sleep 0.25
  done
  log "registry $name did not start; see $dir/registry.log"
  return 1
}

start_registry open 127.0.0.1:5000 ""

# The authenticated registry needs a bcrypt htpasswd line; python3's crypt
# module (libxcrypt) makes one without extra packages.
HTPASSWD=$STATE_DIR/htpasswd
if [[ ! -s $HTPASSWD ]]; then
  if hash=$(python3 -W ignore -c \
      'import crypt; print(crypt.crypt("drover-test-password", crypt.mksalt(crypt.METHOD_BLOWFISH)))' \
      2>/dev/null) && [[ $hash == \$2* ]]; then
    echo "drover-test:$hash" >"$HTPASSWD"
  fi
fi
if [[ -s $HTPASSWD ]]; then
  start_registry auth 127.0.0.1:5001 "auth:
  htpasswd:
    realm: drover-test
    path: $HTPASSWD" || log "authenticated registry unavailable; credential tests will skip"
else
  log "cannot make a bcrypt htpasswd; credential tests will skip"
fi
