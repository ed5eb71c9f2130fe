#!/usr/bin/env bash
# Builds the Dockerfile for real and tests the image from outside (CI: .ci/run). As root on Debian:
#
#   bash scripts/image-test.sh
#
# 1. installs and configures buildah/podman when missing (scripts/image-tools.sh);
# 2. the base image: node:20-bookworm-slim pulled when a registry answers, else a stand-in made from
#    Debian packages and the official Node build (scripts/image-base.sh), under a tag of this run;
# 3. builds the Dockerfile (docker format: the OCI format drops HEALTHCHECK) with the models
#    fetched at build time, as `docker build .` does, from a mirror on 127.0.0.1 serving
#    CVSERVE_MODELS_DIR (each file sha256-checked by the build);
# 4. prints the build time, the image size and where it goes;
# 5. runs scripts/image-checks.ts: the container read-only, the models mounted read-only, a volume
#    on /data, every route, restart, healthcheck, SIGTERM (see that file).
# Cleans up only what it made (its container, volume, images, by name), also when it fails.
# Traffic only to 127.0.0.1. CVSERVE_IMAGE_KEEP=1 keeps the image and the base for a look;
# CVSERVE_IMAGE_BASE=<tag> builds on that base image (one scripts/image-base.sh made) and leaves it.
set -euo pipefail
cd "$(dirname "$0")/.."

export CVSERVE_MODELS_DIR="${CVSERVE_MODELS_DIR:-$(cd .. && pwd)/shared/models}"
ARCH=$(dpkg --print-architecture)
RUN_ID="$(date +%Y%m%d%H%M%S)-$$"
NAME="cvserve-image-test-$RUN_ID"
IMAGE="localhost/cvserve-image-test:$RUN_ID"
BASE="${CVSERVE_IMAGE_BASE:-localhost/cvserve-image-test-base:$RUN_ID}"
HOST_CA=/etc/ssl/certs/ca-certificates.crt
WORK=$(mktemp -d /var/tmp/cvserve-image-test.XXXXXX)
MIRROR_PID=

log() { echo "image-test: $*" >&2; }

cleanup() {
  local rc=$?
  [ -n "$MIRROR_PID" ] && kill "$MIRROR_PID" 2>/dev/null || true
  podman rm -f -t 0 "$NAME" >/dev/null 2>&1 || true
  podman volume rm -f "$NAME-data" >/dev/null 2>&1 || true
  if [ "${CVSERVE_IMAGE_KEEP:-0}" != 1 ]; then
    podman rmi "$IMAGE" >/dev/null 2>&1 || true
    [ -n "${CVSERVE_IMAGE_BASE:-}" ] || podman rmi "$BASE" >/dev/null 2>&1 || true
  else
    log "kept $IMAGE and $BASE"
  fi
  rm -rf "$WORK"
  exit "$rc"
}
trap cleanup EXIT

# shellcheck source=scripts/image-tools.sh
source scripts/image-tools.sh
image_tools_setup

start=$SECONDS
[ -n "${CVSERVE_IMAGE_BASE:-}" ] || bash scripts/image-base.sh "$ARCH" "$BASE" >/dev/null
base_seconds=$((SECONDS - start))

# The build-time model fetch reads from this mirror (the build runs with the host's network).
node -e '
  const http = require("node:http"), fs = require("node:fs"), path = require("node:path");
  const dir = process.argv[1];
  const server = http.createServer((req, res) => {
    const file = path.join(dir, path.basename(decodeURIComponent(req.url.split("?")[0])));
    fs.stat(file, (err, st) => err || !st.isFile() ? res.writeHead(404).end()
      : (res.writeHead(200, { "Content-Length": st.size }), fs.createReadStream(file).pipe(res)));
  });
  server.listen(0, "127.0.0.1", () => fs.writeFileSync(process.argv[2], String(server.address().port)));
' "$CVSERVE_MODELS_DIR" "$WORK/mirror-port" &
MIRROR_PID=$!
for _ in $(seq 50); do [ -s "$WORK/mirror-port" ] && break; sleep 0.1; done
MIRROR="http://127.0.0.1:$(cat "$WORK/mirror-port")"

# A network whose TLS is re-signed by a proxy: npm in the build needs the host's CA bundle. It is
# mounted for the build only and named by a build argument of the build stages: never in the image.
ca_args=()
if [ -f "$HOST_CA" ]; then
  ca_args=(-v "$HOST_CA:/run/cvserve-build-ca.crt:ro" --build-arg NODE_EXTRA_CA_CERTS=/run/cvserve-build-ca.crt)
fi

log "building $IMAGE"
start=$SECONDS
buildah bud --isolation chroot --network host --format docker --layers=false --force-rm --pull=false \
  "${ca_args[@]}" \
  --build-arg NODE_IMAGE="$BASE" \
  --build-arg FETCH_MODELS=true --build-arg CVSERVE_MODELS_BASE_URL="$MIRROR" \
  -t "$IMAGE" . >"$WORK/build.log" 2>&1 || { tail -40 "$WORK/build.log" >&2; log "build failed"; exit 1; }
build_seconds=$((SECONDS - start))
kill "$MIRROR_PID" 2>/dev/null || true
MIRROR_PID=

# Size, and where it goes (the base, then the app's parts and the largest packages).
size_of() { podman image inspect "$1" --format '{{.Size}}'; }
image_bytes=$(size_of "$IMAGE")
base_bytes=$(size_of "$BASE")
mb() { echo $(( ($1 + 500000) / 1000000 )); }
echo "image-test: base image $(mb "$base_bytes") MB in ${base_seconds} s ($BASE)"
echo "image-test: build ${build_seconds} s; image $(mb "$image_bytes") MB, of which base $(mb "$base_bytes") MB"
podman run --rm --no-healthcheck --network none --entrypoint sh "$IMAGE" -c '
  cd /app && du -sk node_modules dist vendor models data /models
  echo "--- node_modules, largest:"
  cd node_modules && du -sk $(ls -d [!@]* @*/*) | sort -rn | head -12
' | awk '/^---/ { print "image-test: " $0; next } { printf "image-test:   %7.1f MB  %s\n", $1 / 1024, $2 }'

log "checks"
node --import tsx scripts/image-checks.ts --image "$IMAGE" --models "$CVSERVE_MODELS_DIR" --name "$NAME"
echo "image-test: build ${build_seconds} s, image $(mb "$image_bytes") MB"
