#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# with_pg.sh TEST [ARGS...]: runs a server test against a throwaway
# PostgreSQL cluster: initdb into a new directory under /tmp, a server that
# listens only on a Unix socket in that directory (no TCP port to collide
# with), SOTTO_TEST_PG pointing at it, and everything stopped and removed at
# the end, whatever the test did. PostgreSQL refuses to run as root, so as
# root the cluster runs as the user nobody. Every wait is bounded.
# For measuring (docs/benchmarks.md, "Where the cross-node tail comes
# from"): SOTTO_TEST_PG_OPTS adds server settings (e.g. "-c log_checkpoints=on
# -c log_min_duration_statement=20"), SOTTO_TEST_PG_LOG=FILE keeps a copy of
# PostgreSQL's log.
# Exit status: the test's, or 77 (ctest: skipped) without a PostgreSQL server.
set -euo pipefail

pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
if [ -z "$pgbin" ] || [ ! -x "$pgbin/initdb" ] || [ ! -x "$pgbin/pg_ctl" ]; then
  echo "SKIP: no PostgreSQL server (scripts/deps.sh installs the package postgresql)"
  exit 77
fi

dir=$(mktemp -d /tmp/sotto-pg.XXXXXX)
as=()
if [ "$(id -u)" -eq 0 ]; then
  chown nobody "$dir"
  as=(runuser -u nobody --)
fi

stop() {
  if [ -n "${SOTTO_TEST_PG_LOG:-}" ]; then cp "$dir/server.log" "$SOTTO_TEST_PG_LOG" 2>/dev/null || true; fi
  "${as[@]}" timeout 30 "$pgbin/pg_ctl" -D "$dir/data" -m immediate -w -t 20 stop >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap stop EXIT
trap 'exit 143' TERM INT  # the EXIT trap still stops and removes the cluster

# --no-sync: the cluster is thrown away; the server's own fsync stays on.
if ! (cd "$dir" && "${as[@]}" timeout 60 "$pgbin/initdb" -D "$dir/data" -U sotto --auth=trust -E UTF8 --no-sync \
      >"$dir/initdb.log" 2>&1); then
  cat "$dir/initdb.log" >&2
  exit 1
fi
if ! (cd "$dir" && "${as[@]}" timeout 60 "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
      -o "-k $dir -c listen_addresses='' -c max_connections=60 ${SOTTO_TEST_PG_OPTS:-}" start >/dev/null); then
  cat "$dir/server.log" >&2
  exit 1
fi

export SOTTO_TEST_PG="host=$dir port=5432 user=sotto"
# For the outage test (test_server): stop and start the cluster again.
export SOTTO_TEST_PG_STOP="${as[*]} timeout 30 $pgbin/pg_ctl -D $dir/data -m fast -w -t 20 stop >/dev/null"
export SOTTO_TEST_PG_START="cd $dir && ${as[*]} timeout 60 $pgbin/pg_ctl -D $dir/data -l $dir/server.log -w -t 30 \
-o \"-k $dir -c listen_addresses='' -c max_connections=60 ${SOTTO_TEST_PG_OPTS:-}\" start >/dev/null"
status=0
"$@" || status=$?
if [ "$status" -ne 0 ]; then
  echo "with_pg.sh: PostgreSQL log follows" >&2
  tail -n 40 "$dir/server.log" >&2 || true
fi
exit "$status"
