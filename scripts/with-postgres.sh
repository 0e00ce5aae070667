#!/usr/bin/env bash
# with-postgres.sh CMD...: runs CMD with a private PostgreSQL server for the
# tests, and stops the server afterwards. The server is Debian's package
# (installed when missing), its data in a temporary directory, listening on
# a free port of 127.0.0.1 only. CMD sees the connection string in
# POCKETKMS_TEST_POSTGRES, and POCKETKMS_REQUIRE_POSTGRES=1, so that the
# PostgreSQL tests fail rather than skip if anything is amiss.
set -euo pipefail

bindir() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }

if [ -z "$(bindir)" ]; then
	if [ "$(id -u)" != 0 ]; then
		echo "with-postgres.sh: PostgreSQL is not installed; run as root, or: apt-get install postgresql" >&2
		exit 1
	fi
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql
fi
BIN=$(bindir)

# The server refuses to run as root: run it as the postgres user then.
as_db() { "$@"; }
DBUSER=$(id -un)
if [ "$(id -u)" = 0 ]; then
	id postgres >/dev/null 2>&1 || useradd --system --home-dir /nonexistent --shell /usr/sbin/nologin postgres
	as_db() { runuser -u postgres -- "$@"; }
	DBUSER=postgres
fi

DATA=$(mktemp -d "${TMPDIR:-/tmp}/pocketkms-pg.XXXXXX")
chmod 755 "$DATA"
[ "$(id -u)" = 0 ] && chown postgres "$DATA"
stop() {
	as_db "$BIN/pg_ctl" -D "$DATA/db" -m immediate stop >/dev/null 2>&1 || true
	rm -rf "$DATA"
}
trap stop EXIT

as_db "$BIN/initdb" -D "$DATA/db" -U "$DBUSER" --auth=trust --no-sync -E UTF8 >/dev/null

# A free port: the first of a random run that nothing answers on.
PORT=
for _ in $(seq 1 50); do
	p=$((20000 + RANDOM % 30000))
	if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
		PORT=$p
		break
	fi
done
[ -n "$PORT" ] || { echo "with-postgres.sh: no free port found" >&2; exit 1; }

as_db "$BIN/pg_ctl" -D "$DATA/db" -l "$DATA/server.log" -w -t 60 \
	-o "-c listen_addresses=127.0.0.1 -p $PORT -k $DATA -c fsync=off -c max_connections=200" start >/dev/null ||
	{ cat "$DATA/server.log" >&2; exit 1; }
as_db "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U "$DBUSER" pocketkms_test

export POCKETKMS_TEST_POSTGRES="postgres://$DBUSER@127.0.0.1:$PORT/pocketkms_test?sslmode=disable"
export POCKETKMS_REQUIRE_POSTGRES=1
"$@"
