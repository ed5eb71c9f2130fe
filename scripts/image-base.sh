#!/usr/bin/env bash
# The Dockerfile's base image, node:20-bookworm-slim, for one architecture, in the local
# container storage under a tag of its own (so builds for two architectures in one storage never
# take each other's base):
#
#   bash scripts/image-base.sh amd64|arm64 [TAG]     # prints TAG (stdout, last line); logs on stderr
#
# TAG defaults to localhost/cvserve-base:node20-bookworm-slim-ARCH. Build with
# `--build-arg NODE_IMAGE=TAG` (the Dockerfile itself is unchanged).
#
# When a registry answers, the real image is pulled for ARCH and tagged TAG. Otherwise a stand-in
# is made from Debian packages and the official Node build, the way the official image is:
# - Debian bookworm `mmdebstrap --variant=minbase` with the slim image's dpkg excludes (no docs,
#   man pages or locales);
# - Node's official binary and headers (npm package node-linux-ARCH) in /usr/local, npm from the
#   npm package (the version the official image ships), node-gyp's headers where it looks
#   (npm_config_nodedir=/usr/local), no yarn;
# - user and group `node`, uid/gid 1000, home /home/node; the official docker-entrypoint.sh;
# - ENTRYPOINT ["docker-entrypoint.sh"], CMD ["node"], docker format.
# This script runs nothing inside the new root; mmdebstrap does (the packages' maintainer scripts),
# so a foreign ARCH needs qemu-user-static and binfmt-support, installed here when missing.
# CVSERVE_BASE=pull|standin|auto (default auto) forces one way.
# Needs root, buildah, mmdebstrap (scripts/image-tools.sh installs them) and npm on the host.
set -euo pipefail

NODE_VERSION=20.20.2
NPM_VERSION=10.8.2
DEBIAN_SUITE=bookworm
DEBIAN_MIRROR=${CVSERVE_DEBIAN_MIRROR:-http://deb.debian.org/debian}
DEBIAN_SECURITY=${CVSERVE_DEBIAN_SECURITY_MIRROR:-http://deb.debian.org/debian-security}
UPSTREAM=docker.io/library/node:20-bookworm-slim

log() { echo "image-base: $*" >&2; }

# What a stand-in build leaves while it runs, removed however the script ends.
WORK=
CTR=
cleanup() {
  [ -z "$CTR" ] || buildah rm "$CTR" >/dev/null 2>&1 || true
  [ -z "$WORK" ] || rm -rf "$WORK"
}
trap cleanup EXIT

# True when a container registry answers (any HTTP status: 401 is the normal answer to /v2/).
registry_answers() {
  local code
  code=$(curl -s -o /dev/null -m 8 -w '%{http_code}' https://registry-1.docker.io/v2/ 2>/dev/null || true)
  [ -n "$code" ] && [ "$code" != 000 ]
}

base_pull() {
  local arch=$1 tag=$2 id
  log "pulling $UPSTREAM for $arch"
  id=$(timeout 600 podman pull -q --arch "$arch" --os linux "$UPSTREAM") || return 1
  podman tag "$id" "$tag"
}

base_standin() {
  local arch=$1 tag=$2 work
  WORK=$(mktemp -d /var/tmp/cvserve-base.XXXXXX)
  work=$WORK

  log "stand-in: Node $NODE_VERSION and npm $NPM_VERSION from the npm registry"
  (cd "$work" && npm pack --silent "node-linux-$( [ "$arch" = amd64 ] && echo x64 || echo "$arch")@$NODE_VERSION" "npm@$NPM_VERSION" >/dev/null)

  if [ "$arch" != "$(dpkg --print-architecture)" ] \
     && ! { command -v arch-test >/dev/null 2>&1 && arch-test "$arch" >/dev/null 2>&1; }; then
    log "stand-in: installing qemu-user-static, binfmt-support, arch-test for $arch"
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends \
      qemu-user-static binfmt-support arch-test >/dev/null
  fi
  log "stand-in: Debian $DEBIAN_SUITE minbase for $arch (mmdebstrap)"
  local sources="deb $DEBIAN_MIRROR $DEBIAN_SUITE main
deb $DEBIAN_MIRROR $DEBIAN_SUITE-updates main
deb $DEBIAN_SECURITY $DEBIAN_SUITE-security main"
  # The slim image's excludes (debuerreotype's --slimify), kept in the image as dpkg config.
  local dpkg_excludes=(
    'path-exclude=/usr/share/doc/*' 'path-include=/usr/share/doc/*/copyright'
    'path-exclude=/usr/share/man/*' 'path-exclude=/usr/share/groff/*' 'path-exclude=/usr/share/info/*'
    'path-exclude=/usr/share/locale/*' 'path-exclude=/usr/share/lintian/*' 'path-exclude=/usr/share/linda/*'
  )
  local opts=()
  for e in "${dpkg_excludes[@]}"; do opts+=(--dpkgopt="$e"); done
  mkdir -p "$work/root"
  mmdebstrap --quiet --variant=minbase --arch="$arch" --mode=root --format=directory \
    "${opts[@]}" \
    --aptopt='Acquire::Check-Valid-Until "false"' \
    --customize-hook='rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*.bin' \
    "$DEBIAN_SUITE" "$work/root" - <<<"$sources" >&2

  log "stand-in: Node into /usr/local, user node (1000)"
  local root=$work/root
  mkdir -p "$root/usr/local/lib/node_modules/npm"
  tar -xzf "$work"/node-linux-*-"$NODE_VERSION".tgz -C "$root/usr/local" --strip-components=1 \
    package/bin/node package/include package/share
  tar -xzf "$work/npm-$NPM_VERSION.tgz" -C "$root/usr/local/lib/node_modules/npm" --strip-components=1
  ln -s ../lib/node_modules/npm/bin/npm-cli.js "$root/usr/local/bin/npm"
  ln -s ../lib/node_modules/npm/bin/npx-cli.js "$root/usr/local/bin/npx"
  ln -s node "$root/usr/local/bin/nodejs"
  grep -q '^node:' "$root/etc/group" || echo 'node:x:1000:' >>"$root/etc/group"
  grep -q '^node:' "$root/etc/passwd" || echo 'node:x:1000:1000::/home/node:/bin/bash' >>"$root/etc/passwd"
  grep -q '^node:' "$root/etc/shadow" || echo 'node:!:20000:0:99999:7:::' >>"$root/etc/shadow"
  install -d -o 1000 -g 1000 -m 755 "$root/home/node"
  cat >"$root/usr/local/bin/docker-entrypoint.sh" <<'EOF'
#!/bin/sh
set -e

# Run command with node if the first argument contains a "-" or is not a system command. The last
# part inside the "{}" is a workaround for the following bug in ash/dash:
# https://bugs.debian.org/cgi-bin/bugreport.cgi?bug=874264
if [ "${1#-}" != "${1}" ] || [ -z "$(command -v "${1}")" ] || { [ -f "${1}" ] && ! [ -x "${1}" ]; }; then
  set -- node "$@"
fi

exec "$@"
EOF
  chmod 755 "$root/usr/local/bin/docker-entrypoint.sh"

  log "stand-in: importing as $tag"
  tar -C "$root" -cf "$work/rootfs.tar" .
  rm -rf "$root"
  CTR=$(buildah from --name "cvserve-base-$arch-$$" scratch)
  local ctr=$CTR
  buildah add --quiet "$ctr" "$work/rootfs.tar" / >/dev/null
  buildah config --os linux --arch "$arch" \
    --env PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    --env NODE_VERSION="$NODE_VERSION" \
    --entrypoint '["docker-entrypoint.sh"]' --cmd '["node"]' \
    --label org.opencontainers.image.description="stand-in for $UPSTREAM (cvserve scripts/image-base.sh)" \
    "$ctr"
  buildah commit --quiet --rm --format docker "$ctr" "$tag" >/dev/null
  CTR=
}

main() {
  local arch=${1:-}
  case "$arch" in amd64 | arm64) ;; *) echo "usage: $0 amd64|arm64 [TAG]" >&2; exit 2 ;; esac
  local tag=${2:-localhost/cvserve-base:node20-bookworm-slim-$arch}
  local how=${CVSERVE_BASE:-auto} start=$SECONDS
  if [ "$how" = pull ] || { [ "$how" = auto ] && registry_answers; }; then
    base_pull "$arch" "$tag" || { [ "$how" = auto ] && log "pull failed: making the stand-in" && base_standin "$arch" "$tag"; }
  else
    base_standin "$arch" "$tag"
  fi
  log "base $tag ready in $((SECONDS - start)) s"
  echo "$tag"
}

main "$@"
