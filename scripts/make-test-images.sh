#!/usr/bin/env bash
# Builds the docker test images without any public registry, idempotently:
#   drover-test/busybox:latest  a root filesystem made from Debian's
#                               busybox-static, imported with `docker import`;
#   pushed as 127.0.0.1:5000/drover-test/busybox:latest (anonymous registry)
#   and, when it runs, 127.0.0.1:5001/drover-test/busybox:latest (registry
#   with credentials; see start-docker.sh);
#   127.0.0.1:5000/drover-test/pull-only:latest, the same files plus a
#   marker, so its layer exists only in the registry: pulling it downloads
#   a layer for real.
# The registry-tagged local copies are removed after the push so tests that
# pull really pull. Needs dockerd running (scripts/start-docker.sh).
set -euo pipefail

IMAGE=drover-test/busybox:latest
PULL_ONLY=127.0.0.1:5000/drover-test/pull-only:latest
log() { echo "make-test-images: $*"; }

if ! dpkg-query -W -f='${Status}' busybox-static 2>/dev/null | grep -q "install ok installed"; then
  SUDO=""
  if [[ $(id -u) -ne 0 ]]; then SUDO="sudo"; fi
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends busybox-static
fi

root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,sbin,usr/bin,usr/sbin,tmp,etc,root,proc,sys,dev,work}
chmod 1777 "$root/tmp"
cp /bin/busybox "$root/bin/busybox"
# --install -s writes symlinks for every applet; run busybox from inside the
# new root so the links point at /bin/busybox there.
chroot "$root" /bin/busybox --install -s
printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' \
  'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' >"$root/etc/passwd"
printf '%s\n' 'root:x:0:' 'nogroup:x:65534:' >"$root/etc/group"

import_rootfs() {
  tar -C "$root" -c . | docker import \
    --change 'CMD ["/bin/sh"]' \
    --change 'ENV PATH=/usr/sbin:/usr/bin:/sbin:/bin' \
    - "$1" >/dev/null
}

if ! docker image inspect "$IMAGE" >/dev/null 2>&1; then
  import_rootfs "$IMAGE"
  log "imported $IMAGE"
else
  log "$IMAGE present"
fi

push() {
  local registry=$1 remote="$1/$IMAGE"
  docker tag "$IMAGE" "$remote"
  docker push "$remote" >/dev/null
  docker image rm "$remote" >/dev/null
  log "pushed $remote (local copy removed)"
}

push 127.0.0.1:5000

# A layer of its own (the marker differs on every run), so no local image
# shares it.
echo "pull-only $(date +%s%N)" >"$root/drover-pull-marker"
import_rootfs "$PULL_ONLY"
docker push "$PULL_ONLY" >/dev/null
docker image rm "$PULL_ONLY" >/dev/null
log "pushed $PULL_ONLY (only in the registry)"

if [[ -s ${DROVER_DOCKER_STATE:-/tmp/drover-docker}/htpasswd ]] &&
  [[ $(curl -s -o /dev/null -w '%{http_code}' --max-time 2 http://127.0.0.1:5001/v2/ || true) == 401 ]]; then
  # A private config dir keeps the test login out of the user's ~/.docker.
  export DOCKER_CONFIG
  DOCKER_CONFIG=$(mktemp -d)
  echo drover-test-password | docker login --username drover-test --password-stdin 127.0.0.1:5001 >/dev/null 2>&1
  push 127.0.0.1:5001
  docker logout 127.0.0.1:5001 >/dev/null || true
  rm -rf "$DOCKER_CONFIG"
fi
