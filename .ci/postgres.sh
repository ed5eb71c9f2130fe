#!/usr/bin/env bash
# A throwaway PostgreSQL for the face-gallery tests: a fresh cluster under a temp directory, trust
# auth, listening on 127.0.0.1 on a free port only, fsync off. It exports
#   CVSERVE_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:<port>/cvserve_test
#
#   source .ci/postgres.sh          # (CI) start, export, stop and remove it when the shell exits
#   eval "$(bash .ci/postgres.sh start)"   # (by hand) start and print the exports
#   bash .ci/postgres.sh stop       # stop the one named by $CVSERVE_TEST_PG_DIR and remove it
#
# Debian's `postgresql` package is installed when no server binaries are found. As root the server
# runs as the `postgres` user (initdb refuses root); otherwise as the calling user.

cvserve_pg_bin() {
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
  [ -n "$dir" ] && [ -x "$dir/initdb" ] && echo "$dir"
}

cvserve_pg_as_owner() {
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

cvserve_pg_free_port() {
  node -e "const s=require('net').createServer();s.listen(0,'127.0.0.1',()=>{console.log(s.address().port);s.close()})"
}

# Starts a cluster; sets CVSERVE_TEST_PG_DIR and CVSERVE_TEST_DATABASE_URL.
cvserve_pg_start() {
  local bin dir port attempt
  bin=$(cvserve_pg_bin) || true
  if [ -z "$bin" ]; then
    echo "postgres.sh: installing Debian's postgresql" >&2
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    bin=$(cvserve_pg_bin)
  fi
  dir=$(mktemp -d "${TMPDIR:-/tmp}/cvserve-pg.XXXXXX")
  chmod 0755 "$dir"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
  cvserve_pg_as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-sync >"$dir/initdb.log" 2>&1 || {
    cat "$dir/initdb.log" >&2
    return 1
  }
  # A free port can be taken between the check and the start: try a few.
  for attempt in 1 2 3 4 5; do
    port=$(cvserve_pg_free_port)
    if cvserve_pg_as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -c unix_socket_directories=$dir -c fsync=off -c synchronous_commit=off -c full_page_writes=off" \
      start >/dev/null; then
      break
    fi
    port=""
  done
  if [ -z "$port" ]; then
    cat "$dir/server.log" >&2
    return 1
  fi
  cvserve_pg_as_owner "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -v ON_ERROR_STOP=1 -q -c 'CREATE DATABASE cvserve_test' >/dev/null
  export CVSERVE_TEST_PG_DIR="$dir"
  export CVSERVE_TEST_DATABASE_URL="postgres://postgres@127.0.0.1:$port/cvserve_test"
  echo "postgres.sh: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') at $CVSERVE_TEST_DATABASE_URL (data in $dir)" >&2
}

cvserve_pg_stop() {
  local dir="${1:-${CVSERVE_TEST_PG_DIR:-}}" bin
  [ -n "$dir" ] && [ -d "$dir/data" ] || return 0
  bin=$(cvserve_pg_bin) || true
  [ -n "$bin" ] && cvserve_pg_as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}

if [ "${BASH_SOURCE[0]}" != "$0" ]; then
  # Sourced: start now, stop when the sourcing shell exits.
  cvserve_pg_start
  trap 'cvserve_pg_stop' EXIT
else
  set -euo pipefail
  case "${1:-}" in
    start)
      cvserve_pg_start
      echo "export CVSERVE_TEST_PG_DIR=$CVSERVE_TEST_PG_DIR"
      echo "export CVSERVE_TEST_DATABASE_URL=$CVSERVE_TEST_DATABASE_URL"
      ;;
    stop) cvserve_pg_stop "${2:-}" ;;
    *)
      echo "usage: source .ci/postgres.sh | bash .ci/postgres.sh start | bash .ci/postgres.sh stop [dir]" >&2
      exit 2
      ;;
  esac
fi
