#!/usr/bin/env bash
# Installs and configures the container tools the image scripts use (Debian bookworm, root):
# buildah, podman, runc (crun 1.8 refuses some VMs' hybrid cgroup layout), mmdebstrap (the
# base-image stand-in), and sets podman/buildah to the vfs storage driver and to ulimits under the
# host's hard limits. Idempotent: installs only what is missing, edits a setting only when absent.
#
#   bash scripts/image-tools.sh        # or: source it
set -euo pipefail

image_tools_install() {
  local missing=()
  command -v buildah >/dev/null 2>&1 || missing+=(buildah)
  command -v podman >/dev/null 2>&1 || missing+=(podman)
  command -v runc >/dev/null 2>&1 || missing+=(runc)
  command -v mmdebstrap >/dev/null 2>&1 || missing+=(mmdebstrap)
  # podman's port forwarding and bridge network (-p): slirp4netns, netavark, aardvark-dns.
  command -v slirp4netns >/dev/null 2>&1 || missing+=(slirp4netns)
  [ -x /usr/lib/podman/netavark ] || missing+=(netavark aardvark-dns)
  command -v jq >/dev/null 2>&1 || missing+=(jq)
  if [ "${#missing[@]}" -gt 0 ]; then
    echo "image-tools: installing ${missing[*]}" >&2
    # Another job may hold dpkg's lock (shared CI machines): wait for it.
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 update -qq
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=900 install -y -qq --no-install-recommends \
      "${missing[@]}" uidmap iptables ca-certificates >/dev/null
  fi
}

# Writes "key = value" into [section] of a TOML file unless the key is already set there.
image_tools_toml_set() {
  local file=$1 section=$2 key=$3 value=$4
  mkdir -p "$(dirname "$file")"
  touch "$file"
  if awk -v s="[$section]" -v k="$key" '
      $0 == s { in_s = 1; next }
      /^\[/ { in_s = 0 }
      in_s && $1 == k { found = 1 }
      END { exit found ? 0 : 1 }' "$file"; then
    return 0
  fi
  if grep -qx "\[$section\]" "$file"; then
    sed -i "/^\[$section\]\$/a $key = $value" "$file"
  else
    printf '\n[%s]\n%s = %s\n' "$section" "$key" "$value" >>"$file"
  fi
}

image_tools_configure() {
  # The environment variable STORAGE_DRIVER is ignored by podman 4.3: the file decides.
  image_tools_toml_set /etc/containers/storage.conf storage driver '"vfs"'
  image_tools_toml_set /etc/containers/storage.conf storage runroot '"/run/containers/storage"'
  image_tools_toml_set /etc/containers/storage.conf storage graphroot '"/var/lib/containers/storage"'
  # podman's default nofile/nproc exceed the hard limits of some hosts; runc as the runtime.
  image_tools_toml_set /etc/containers/containers.conf containers default_ulimits \
    '["nofile=20000:20000", "nproc=32768:32768"]'
  image_tools_toml_set /etc/containers/containers.conf engine runtime '"runc"'
  # Short names (node:20-bookworm-slim) resolve to Docker Hub, as with Docker.
  # (a top-level key: it goes first, before any table)
  local reg=/etc/containers/registries.conf
  mkdir -p /etc/containers && touch "$reg"
  if ! grep -q '^[[:space:]]*unqualified-search-registries' "$reg"; then
    { echo 'unqualified-search-registries = ["docker.io"]'; cat "$reg"; } >"$reg.new" && mv "$reg.new" "$reg"
  fi
}

image_tools_setup() {
  image_tools_install
  image_tools_configure
}

if [ "${BASH_SOURCE[0]}" = "$0" ]; then
  image_tools_setup
fi
