#!/usr/bin/env bash
# A throwaway PostgreSQL cluster for the indexer's tests and benchmark: a new data directory in a
# temp dir, listening on a free loopback port, trusting local connections. Prints its URL (the only
# line on stdout), so CI can do:
#
#   export TEST_DATABASE_URL=$(scripts/postgres-test-server.sh)
#   ... npm run test:indexer ...
#   scripts/postgres-test-server.sh stop   # stops every cluster this script started
#
# Run as root, the server runs as the `postgres` user (PostgreSQL refuses to run as root).
# Installs Debian's `postgresql` package when no server binaries are found.
set -euo pipefail

STATE_DIR=${POSTGRES_TEST_STATE_DIR:-${TMPDIR:-/tmp}/indexer-postgres-test}

find_bin_dir() {
  local dir
  for dir in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
    [ -x "$dir/pg_ctl" ] && { echo "$dir"; return 0; }
  done
  command -v pg_ctl >/dev/null 2>&1 && { dirname "$(command -v pg_ctl)"; return 0; }
  return 1
}

as_server_user() {
  if [ "$(id -u)" -eq 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

if [ "${1:-}" = "stop" ]; then
  bin_dir=$(find_bin_dir) || { echo "no PostgreSQL binaries found" >&2; exit 1; }
  for data in "$STATE_DIR"/*/data; do
    [ -d "$data" ] || continue
    as_server_user "$bin_dir/pg_ctl" stop -D "$data" -m fast >&2 || true
    rm -rf "$(dirname "$data")"
  done
  exit 0
fi

if ! bin_dir=$(find_bin_dir); then
  if [ "$(id -u)" -ne 0 ]; then
    echo "PostgreSQL is not installed; run as root to install Debian's postgresql package" >&2
    exit 1
  fi
  echo "installing PostgreSQL from Debian's packages" >&2
  apt-get update >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y postgresql >&2
  bin_dir=$(find_bin_dir)
fi

mkdir -p "$STATE_DIR"
cluster=$(mktemp -d "$STATE_DIR/cluster-XXXXXX")
chmod 755 "$STATE_DIR" "$cluster"
[ "$(id -u)" -eq 0 ] && chown postgres: "$cluster"

# A port nobody listens on (the OS picks it); the tiny race with other programs is acceptable here.
port=$(node -e 'const s = require("net").createServer().listen(0, "127.0.0.1", () => { console.log(s.address().port); s.close(); });')

as_server_user "$bin_dir/initdb" -D "$cluster/data" -U postgres --auth=trust -E UTF8 >"$cluster/initdb.log" 2>&1 || {
  cat "$cluster/initdb.log" >&2
  exit 1
}
as_server_user "$bin_dir/pg_ctl" start -w -D "$cluster/data" -l "$cluster/server.log" \
  -o "-p $port -k $cluster -c listen_addresses=127.0.0.1 -c max_connections=200" >&2 || {
  cat "$cluster/server.log" >&2
  exit 1
}

echo "PostgreSQL $("$bin_dir/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (data in $cluster; stop with: $0 stop)" >&2
echo "postgresql://postgres@127.0.0.1:$port/postgres"
