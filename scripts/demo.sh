#!/usr/bin/env bash
# Drover's main job on one machine: installs dependencies, builds, starts the
# queue on an embedded PostgreSQL, starts a worker with the native engine,
# runs an example task graph (build -> two tests -> report) to completion
# with visible progress, prints the logs and the build's artifact through
# the CLI, and stops everything.
#
#   scripts/demo.sh             # state under ./.drover-demo (removed first)
#   KEEP=1 scripts/demo.sh      # leave the queue and worker running
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD_DIR=${BUILD_DIR:-$ROOT/build}
DEMO_DIR=${DEMO_DIR:-$ROOT/.drover-demo}

scripts/install-deps.sh
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$BUILD_DIR" -j"$(nproc)" --target drover-queue drover-worker drover

QUEUE_BIN=$(find "$BUILD_DIR" -type f -name drover-queue -perm -u+x | head -1)
WORKER_BIN=$(find "$BUILD_DIR" -type f -name drover-worker -perm -u+x | head -1)
CLI_BIN=$(find "$BUILD_DIR" -type f -name drover -perm -u+x | head -1)

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
GRPC_PORT=$(free_port)
HTTP_PORT=$(free_port)

rm -rf "$DEMO_DIR"
mkdir -p "$DEMO_DIR"
# The embedded PostgreSQL runs as the postgres user when we are root.
chmod 755 "$DEMO_DIR"

cleanup() {
  if [[ -z "${KEEP:-}" ]]; then
    [[ -n "${WORKER_PID:-}" ]] && kill -TERM "$WORKER_PID" 2>/dev/null || true
    [[ -n "${WORKER_PID:-}" ]] && wait "$WORKER_PID" 2>/dev/null || true
    [[ -n "${QUEUE_PID:-}" ]] && kill -TERM "$QUEUE_PID" 2>/dev/null || true
    [[ -n "${QUEUE_PID:-}" ]] && wait "$QUEUE_PID" 2>/dev/null || true
  fi
}
trap cleanup EXIT

echo "==> starting drover-queue on an embedded PostgreSQL in $DEMO_DIR/queue"
"$QUEUE_BIN" --data-dir "$DEMO_DIR/queue" --listen "127.0.0.1:$GRPC_PORT" \
  --http-listen "127.0.0.1:$HTTP_PORT" >"$DEMO_DIR/queue.log" 2>&1 &
QUEUE_PID=$!

export DROVER_URL="127.0.0.1:$GRPC_PORT"
for _ in $(seq 1 120); do
  if [[ -f "$DEMO_DIR/queue/root-credentials.json" ]] &&
     curl -fsS "http://127.0.0.1:$HTTP_PORT/healthz" >/dev/null 2>&1; then
    break
  fi
  if ! kill -0 "$QUEUE_PID" 2>/dev/null; then
    echo "drover-queue exited; its log:"; cat "$DEMO_DIR/queue.log"; exit 1
  fi
  sleep 0.5
done
export DROVER_CREDENTIALS_FILE="$DEMO_DIR/queue/root-credentials.json"
echo "    queue: $DROVER_URL (gRPC), http://127.0.0.1:$HTTP_PORT/metrics"
echo "    root credentials: $DROVER_CREDENTIALS_FILE"

POOL=demo/native
# The demo worker uses the root client; a real pool registers its workers
# (docs/operator-guide.md).
ROOT_CLIENT_ID=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["clientId"])' "$DROVER_CREDENTIALS_FILE")
python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["accessToken"], end="")' "$DROVER_CREDENTIALS_FILE" >"$DEMO_DIR/worker-token"
chmod 600 "$DEMO_DIR/worker-token"
cat >"$DEMO_DIR/worker.json" <<JSON
{
  "queue_url": "$DROVER_URL",
  "worker_pool_id": "$POOL",
  "worker_group": "demo",
  "worker_id": "worker-1",
  "capacity": 2,
  "credentials": {"client_id": "$ROOT_CLIENT_ID", "access_token_file": "$DEMO_DIR/worker-token"},
  "engine": {"name": "native", "config": {}},
  "plugins": {"logprefix": {}, "env": {}, "maxruntime": {"max": 600}, "exit-status": {},
              "mounts": {}, "artifacts": {}, "livelog": {}},
  "work_dir": "$DEMO_DIR/worker",
  "shutdown_grace_seconds": 30
}
JSON
echo "==> starting drover-worker (native engine, capacity 2) for $POOL"
"$WORKER_BIN" --config "$DEMO_DIR/worker.json" >"$DEMO_DIR/worker.log" 2>&1 &
WORKER_PID=$!

# The example graph: build, then two tests in parallel, then a report that
# needs both. Ids are chosen by the client.
BUILD_ID=$("$CLI_BIN" slugid)
TEST_A_ID=$("$CLI_BIN" slugid)
TEST_B_ID=$("$CLI_BIN" slugid)
REPORT_ID=$("$CLI_BIN" slugid)
GROUP_ID=$BUILD_ID

task_json() {  # name, command, dependencies (JSON array), extra payload keys
  cat <<JSON
{
  "taskQueueId": "$POOL",
  "schedulerId": "demo",
  "taskGroupId": "$GROUP_ID",
  "dependencies": $3,
  "priority": "medium",
  "deadline": "+1 hour",
  "payload": {"command": [["/bin/sh", "-c", "$2"]], "maxRunTime": 60${4:+, $4}},
  "metadata": {"name": "$1", "description": "Drover demo: $1",
               "owner": "demo@example.com", "source": "https://example.com/drover-demo"}
}
JSON
}
echo "==> submitting the example graph (group $GROUP_ID)"
task_json build "echo compiling; mkdir -p dist; echo demo build by \$TASK_ID > dist/app.txt; sleep 1; echo built" '[]' \
  '"artifacts": [{"type": "directory", "path": "dist", "name": "public/build"}]' |
  "$CLI_BIN" task create - --task-id "$BUILD_ID" >/dev/null
task_json test-a "echo running test a on \$TASK_ID; sleep 1; echo ok" "[\"$BUILD_ID\"]" |
  "$CLI_BIN" task create - --task-id "$TEST_A_ID" >/dev/null
task_json test-b "echo running test b; sleep 1; echo ok" "[\"$BUILD_ID\"]" |
  "$CLI_BIN" task create - --task-id "$TEST_B_ID" >/dev/null
task_json report "echo all tests passed" "[\"$TEST_A_ID\", \"$TEST_B_ID\"]" |
  "$CLI_BIN" task create - --task-id "$REPORT_ID" >/dev/null

state_of() {
  "$CLI_BIN" task status "$1" --json |
    python3 -c 'import json,sys; print(json.load(sys.stdin).get("status",{}).get("state","?"))'
}
echo "==> progress (build -> test-a, test-b -> report)"
final=""
for _ in $(seq 1 120); do
  line=""
  done_count=0
  for pair in "build:$BUILD_ID" "test-a:$TEST_A_ID" "test-b:$TEST_B_ID" "report:$REPORT_ID"; do
    name=${pair%%:*}; id=${pair#*:}
    st=$(state_of "$id")
    line+=$(printf '%-8s %-12s' "$name" "$st")
    case $st in completed|failed|exception) done_count=$((done_count + 1));; esac
  done
  if [[ "$line" != "$final" ]]; then echo "    $line"; final=$line; fi
  [[ $done_count -eq 4 ]] && break
  sleep 0.5
done

echo "==> the report task's status"
"$CLI_BIN" task status "$REPORT_ID"
echo "==> task logs (streamed to the queue by the worker's livelog plugin)"
for pair in "build:$BUILD_ID" "test-a:$TEST_A_ID" "report:$REPORT_ID"; do
  echo "--- drover task logs ${pair#*:}   (${pair%%:*})"
  "$CLI_BIN" task logs "${pair#*:}"
done
echo "==> the build's artifacts"
"$CLI_BIN" artifacts list "$BUILD_ID"
echo "--- drover artifacts get $BUILD_ID public/build/app.txt"
"$CLI_BIN" artifacts get "$BUILD_ID" public/build/app.txt
[[ "$(state_of "$REPORT_ID")" == "completed" ]] || { echo "the graph did not complete; see $DEMO_DIR/*.log"; exit 1; }

cat <<EOF2
==> done. Where to look next:
    queue log:   $DEMO_DIR/queue.log      worker log: $DEMO_DIR/worker.log
    metrics:     curl http://127.0.0.1:$HTTP_PORT/metrics
    CLI:         export DROVER_URL=$DROVER_URL DROVER_CREDENTIALS_FILE=$DROVER_CREDENTIALS_FILE
                 $CLI_BIN task status $REPORT_ID
                 $CLI_BIN task logs $BUILD_ID
                 $CLI_BIN artifacts list $BUILD_ID
    docs:        README.md, docs/architecture.md, docs/operator-guide.md, docs/cli.md
EOF2
