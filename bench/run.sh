#!/usr/bin/env bash
# Runs Drover's benchmarks (issue 9) in one command:
#   builds the bench programs, drover-queue and drover-worker; starts a fresh
#   drover-queue on a fresh embedded PostgreSQL in a temporary data directory
#   on free ports; runs pgbench (-i, then -N -c 8 -j 2 -T 15) against that
#   same PostgreSQL and each benchmark; prints one table of every figure with
#   its target; writes bench/results/latest.json; stops everything.
#
# Usage: bench/run.sh [options]
#   --only LIST        comma-separated subset of: pgbench, throughput,
#                      latency, worker, many, graph, livelog, docker
#                      (default: all but docker, which needs dockerd)
#   --skip LIST        run everything except these
#   --quick            smaller sizes (2,000 tasks, 200 latency samples,
#                      graphs of 2k and 10k, 200 workers): a smoke run
#   --graph-sizes L    graph sizes (default 10000,100000)
#   --tasks N          throughput tasks (default 20000)
#   --build-dir DIR    CMake build directory (default <repo>/build-bench)
#   --jobs N           parallel build jobs (default 2)
#   --no-build         use the binaries already in the build directory
#   --keep             keep the temporary data directory and logs
#   --out FILE         combined JSON (default bench/results/latest.json)
#   --server-arg ARG   extra drover-queue flag (repeatable)
# Needs the packages of scripts/install-deps.sh (PostgreSQL 15 with pgbench).
# Credentials for a server with authentication come from the usual
# DROVER_CLIENT_ID / DROVER_ACCESS_TOKEN environment variables.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR="$REPO/build-bench"
JOBS=2
ONLY=""
SKIP=""
QUICK=0
BUILD=1
KEEP=0
OUT="$REPO/bench/results/latest.json"
GRAPH_SIZES="10000,100000"
TASKS=20000
SERVER_ARGS=()
COMMAND_LINE="bench/run.sh $*"

while (($#)); do
  case "$1" in
    --only) ONLY="$2"; shift 2 ;;
    --skip) SKIP="$2"; shift 2 ;;
    --quick) QUICK=1; shift ;;
    --graph-sizes) GRAPH_SIZES="$2"; shift 2 ;;
    --tasks) TASKS="$2"; shift 2 ;;
    --build-dir) BUILD_DIR="$2"; shift 2 ;;
    --jobs) JOBS="$2"; shift 2 ;;
    --no-build) BUILD=0; shift ;;
    --keep) KEEP=1; shift ;;
    --out) OUT="$2"; shift 2 ;;
    --server-arg) SERVER_ARGS+=("$2"); shift 2 ;;
    -h|--help) sed -n '2,27p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "run.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

ALL="pgbench throughput latency worker many graph livelog"
KNOWN="$ALL docker"
if [[ -n "$ONLY" ]]; then SELECTED="${ONLY//,/ }"; else SELECTED="$ALL"; fi
for b in $SELECTED ${SKIP//,/ }; do
  [[ " $KNOWN " == *" $b "* ]] || { echo "run.sh: unknown benchmark '$b' (known: $KNOWN)" >&2; exit 2; }
done
selected() { [[ " $SELECTED " == *" $1 "* && " ${SKIP//,/ } " != *" $1 "* ]]; }

LATENCY_TASKS=1000; MANY_WORKERS=1000; MANY_TASKS=1000; WORKER_TASKS=200
LIVELOG_UPLOAD_MIB=64
if ((QUICK)); then
  TASKS=2000; LATENCY_TASKS=200; MANY_WORKERS=200; MANY_TASKS=200
  WORKER_TASKS=50; GRAPH_SIZES="2000,10000"; LIVELOG_UPLOAD_MIB=8
fi

log() { printf '[run.sh %(%H:%M:%S)T] %s\n' -1 "$*"; }
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
json_str() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }
json_load() { local a; read -r -a a < /proc/loadavg; printf '[%s, %s, %s]' "${a[0]}" "${a[1]}" "${a[2]}"; }

# --- build ---------------------------------------------------------------
if ((BUILD)); then
  if [[ ! -f "$BUILD_DIR/build.ninja" && ! -f "$BUILD_DIR/Makefile" ]]; then
    log "configuring $BUILD_DIR"
    generator=(); command -v ninja >/dev/null && generator=(-G Ninja)
    cmake -S "$REPO" -B "$BUILD_DIR" "${generator[@]}" \
      -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDROVER_BUILD_TESTS=OFF \
      -DDROVER_BUILD_BENCH=ON >/dev/null
  fi
  targets=(drover-queue bench_report bench_throughput bench_latency
           bench_many_workers bench_worker_overhead bench_graph)
  selected worker && targets+=(drover-worker)
  selected docker && targets+=(docker_overhead)
  selected livelog && targets+=(artifacts_bench)
  log "building ${targets[*]} (-j$JOBS)"
  cmake --build "$BUILD_DIR" --target "${targets[@]}" -j "$JOBS"
fi
QUEUE_BIN="$BUILD_DIR/queue/server/drover-queue"
WORKER_BIN="$BUILD_DIR/worker/drover-worker"
B="$BUILD_DIR/bench"
for bin in "$QUEUE_BIN" "$B/bench_report"; do
  [[ -x "$bin" ]] || { echo "run.sh: $bin is missing; build first" >&2; exit 1; }
done

# Benchmarks other issues added in their own folders under bench/.
EXTRAS=()
for exe in "$B"/*/*; do
  [[ -f "$exe" && -x "$exe" && "$exe" != */CMakeFiles/* ]] && EXTRAS+=("$exe")
done
if ((${#EXTRAS[@]})); then
  log "other benchmark programs in this build: ${EXTRAS[*]#$B/}"
fi

# --- fresh server on fresh embedded PostgreSQL ---------------------------
RUN_DIR=$(mktemp -d /tmp/drover-bench.XXXXXX)
# As root, PostgreSQL runs as `postgres`, which must enter the data dir.
chmod 755 "$RUN_DIR"
DATA="$RUN_DIR/data"
RESULTS="$RUN_DIR/results"
mkdir -p "$DATA" "$RESULTS"
SERVER_PID=""
PG_RUN=()
if [[ $(id -u) -eq 0 ]]; then PG_RUN=(runuser -u postgres --); fi
PG_BIN=$(pg_config --bindir 2>/dev/null || true)
[[ -x "$PG_BIN/pgbench" ]] || PG_BIN=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -1)

cleanup() {
  local rc=$?
  if [[ -n "$SERVER_PID" ]] && kill -0 "$SERVER_PID" 2>/dev/null; then
    log "stopping drover-queue (pid $SERVER_PID)"
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    for _ in $(seq 1 300); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$SERVER_PID" 2>/dev/null || true
  fi
  # drover-queue stops its PostgreSQL; make sure, should it have died.
  if [[ -f "$DATA/postgres/postmaster.pid" ]]; then
    "${PG_RUN[@]}" "$PG_BIN/pg_ctl" stop -D "$DATA/postgres" -m fast -s >/dev/null 2>&1 || true
  fi
  if ((KEEP)); then log "kept $RUN_DIR"; else rm -rf "$RUN_DIR"; fi
  exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
LOAD_BEFORE=$(json_load)
STARTED=$(date -u +%Y-%m-%dT%H:%M:%SZ)
log "load average before: $(loadavg) on $(nproc) cores"

log "starting drover-queue on a fresh embedded PostgreSQL in $DATA"
"$QUEUE_BIN" --data-dir "$DATA" --listen 127.0.0.1:0 --http-listen 127.0.0.1:0 \
  --log-level warn "${SERVER_ARGS[@]}" >"$RUN_DIR/server.out" 2>"$RUN_DIR/server.log" &
SERVER_PID=$!
for _ in $(seq 1 1200); do
  grep -q "gRPC listening on" "$RUN_DIR/server.out" 2>/dev/null && break
  kill -0 "$SERVER_PID" 2>/dev/null || { cat "$RUN_DIR/server.out" "$RUN_DIR/server.log" >&2; echo "run.sh: drover-queue failed to start" >&2; exit 1; }
  sleep 0.1
done
URL=$(sed -n 's/.*gRPC listening on \([^ ,;]*\).*/\1/p' "$RUN_DIR/server.out" | head -1)
[[ -n "$URL" ]] || { echo "run.sh: drover-queue did not report its address" >&2; exit 1; }
export DROVER_URL="$URL"
# With authentication on, the first start bootstraps a root client (scope *)
# and writes its credentials here; the benchmarks and the worker use them.
if [[ -z "${DROVER_CLIENT_ID:-}" && -f "$DATA/root-credentials.json" ]]; then
  export DROVER_CREDENTIALS_FILE="$DATA/root-credentials.json"
  AUTH_NOTE="on: root client from $DATA/root-credentials.json"
elif [[ -n "${DROVER_CLIENT_ID:-}" ]]; then
  AUTH_NOTE="on: client $DROVER_CLIENT_ID from the environment"
else
  AUTH_NOTE="no credentials found (server without authentication?)"
fi
log "authentication: $AUTH_NOTE"
# Line 5 of postmaster.pid names the socket directory.
PG_SOCKET=$(sed -n 5p "$DATA/postgres/postmaster.pid")
log "drover-queue pid $SERVER_PID at $URL; PostgreSQL socket in $PG_SOCKET"

run_bench() {  # name, then the command
  local name=$1; shift
  log "running $name: ${*#$B/}"
  if ! "$@" --json "$RESULTS/$name.json"; then
    log "$name did not complete (its figures are marked incomplete)"
  fi
}

# pgbench brackets the throughput run: once before it and, when both are
# selected, once after it; the ratio is taken against the mean of the two,
# because this machine's speed drifts within minutes and a single reference
# run made the ratio follow pgbench's noise more than Drover's.
PGBENCH_TPS=()
PGBENCH_LAT=()
run_pgbench() {  # label
  [[ -n "${PGBENCH_LOAD:-}" ]] || PGBENCH_LOAD=$(json_load)
  log "pgbench -N -c 8 -j 2 -T 15 ($1)"
  "${PG_RUN[@]}" "$PG_BIN/pgbench" -h "$PG_SOCKET" -p 5432 -U drover -N -c 8 -j 2 -T 15 pgbench \
    >"$RUN_DIR/pgbench-$1.log" 2>&1
  cat "$RUN_DIR/pgbench-$1.log"
  PGBENCH_TPS+=("$(sed -n 's/^tps = \([0-9.]*\).*/\1/p' "$RUN_DIR/pgbench-$1.log" | tail -1)")
  PGBENCH_LAT+=("$(sed -n 's/^latency average = \([0-9.]*\) ms.*/\1/p' "$RUN_DIR/pgbench-$1.log" | tail -1)")
}
write_pgbench_json() {
  local runs="" sep="" i
  for i in "${!PGBENCH_TPS[@]}"; do
    runs+="$sep{\"tps\": ${PGBENCH_TPS[$i]:-0}, \"latency_average_ms\": ${PGBENCH_LAT[$i]:-0}}"
    sep=", "
  done
  local mean
  mean=$(printf '%s\n' "${PGBENCH_TPS[@]}" | awk '{s += $1; n++} END {printf "%.1f", n ? s / n : 0}')
  printf '{"tps": %s, "runs": [%s], "clients": 8, "threads": 2, "duration_s": 15, "mode": "-N (simple-update)", "load_before": %s}\n' \
    "$mean" "$runs" "$PGBENCH_LOAD" >"$RESULTS/pgbench.json"
}
if selected pgbench; then
  log "pgbench: initialising database 'pgbench'"
  "${PG_RUN[@]}" "$PG_BIN/createdb" -h "$PG_SOCKET" -p 5432 -U drover pgbench
  "${PG_RUN[@]}" "$PG_BIN/pgbench" -h "$PG_SOCKET" -p 5432 -U drover -i -q pgbench \
    >"$RUN_DIR/pgbench-init.log" 2>&1
  run_pgbench before
  write_pgbench_json
fi

selected throughput && run_bench throughput "$B/bench_throughput" --tasks "$TASKS"
if selected pgbench && selected throughput; then
  run_pgbench after
  write_pgbench_json
fi
selected latency && run_bench latency "$B/bench_latency" --tasks "$LATENCY_TASKS"
if selected worker; then
  if [[ -x "$WORKER_BIN" ]]; then
    run_bench worker_overhead "$B/bench_worker_overhead" --worker-binary "$WORKER_BIN" \
      --tasks "$WORKER_TASKS" --work-dir "$RUN_DIR/worker"
  else
    log "skipping worker overhead: $WORKER_BIN is missing"
  fi
fi
selected many && run_bench many_workers "$B/bench_many_workers" --workers "$MANY_WORKERS" \
  --tasks "$MANY_TASKS" --server-pid "$SERVER_PID"
selected graph && run_bench graph "$B/bench_graph" --sizes "$GRAPH_SIZES"
if selected livelog; then
  if [[ -x "$B/artifacts/artifacts_bench" ]]; then
    run_bench livelog "$B/artifacts/artifacts_bench" --url "$URL" \
      --upload-mib "$LIVELOG_UPLOAD_MIB" --scratch "$RUN_DIR"
  else
    log "skipping livelog: $B/artifacts/artifacts_bench is missing"
  fi
fi
if selected docker; then
  if [[ -x "$B/docker_overhead/docker_overhead" ]] && docker info >/dev/null 2>&1; then
    log "running docker_overhead (bench/docker_overhead)"
    "$B/docker_overhead/docker_overhead" | tee "$RUN_DIR/docker_overhead.txt" || true
  else
    log "skipping docker: docker_overhead not built or dockerd not reachable"
  fi
fi

LOAD_AFTER=$(json_load)
SERVER_RSS=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\).*/\1/p' "/proc/$SERVER_PID/status" 2>/dev/null || echo 0)
{
  printf '{"command": %s, "started": "%s", "finished": "%s",' \
    "$(json_str "$COMMAND_LINE")" "$STARTED" "$(date -u +%Y-%m-%dT%H:%M:%SZ)"
  printf ' "git_revision": %s,' "$(json_str "$(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo unknown)")"
  printf ' "load_before": %s, "load_after": %s, "cores": %s,' "$LOAD_BEFORE" "$LOAD_AFTER" "$(nproc)"
  printf ' "cpu": %s,' "$(json_str "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)")"
  printf ' "server": {"url": "%s", "vmhwm_kib": %s, "args": %s},' "$URL" "${SERVER_RSS:-0}" "$(json_str "${SERVER_ARGS[*]:-}")"
  printf ' "authentication": %s}\n' "$(json_str "$AUTH_NOTE")"
} >"$RESULTS/run.json"

mkdir -p "$(dirname "$OUT")"
"$B/bench_report" --results-dir "$RESULTS" --out "$OUT"
log "load average after: $(loadavg)"
