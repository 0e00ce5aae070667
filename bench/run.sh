#!/usr/bin/env bash
# Runs the pocketkms benchmarks beside their peers (the official AWS
# Encryption SDK for Go, Tink, and the floors written on the standard
# library) and prints the medians, the ratios and the targets
# (bench/cmd/ratio).
#
#   bench/run.sh                       # -count 5, every benchmark
#   bench/run.sh -count 10 -benchtime 2s
#   BENCH='Envelope$' bench/run.sh
#   ROUNDS=5 bench/run.sh
#
# One run is two `go test` invocations in the bench module: every benchmark
# but BenchmarkStream on all cores, then BenchmarkStream with -cpu 1,2 (its
# targets are per core count). Extra arguments go to both after the
# defaults, so they override them. The raw output goes to bench/results.txt
# and the tables to bench/ratios.txt (both ignored by git; set RESULTS /
# RATIOS to write elsewhere).
#
# PostgreSQL: BenchmarkEnvelope's store=postgres needs a server, so run.sh
# runs itself (all of it: both invocations and cmd/ratio) under
# scripts/with-postgres.sh, which starts a private server and exports
# POCKETKMS_TEST_POSTGRES, when it can: PostgreSQL is installed, or run.sh
# runs as root (the script installs Debian's package then). Otherwise, or
# with WITH_POSTGRES=0, store=postgres skips and its target says NO DATA.
# A POCKETKMS_TEST_POSTGRES already set is used as it is.
#
# Environment:
#   BENCH=regexp  the benchmarks to run (default: all); BenchmarkStream runs
#                 only when it matches
#   ROUNDS=n      repeat the run n times with -count 1 and pool the samples,
#                 so that a benchmark and its peers alternate in time; this
#                 resists a noisy neighbour better than -count 5, whose
#                 samples of one benchmark run back to back (default 1: one
#                 run with -count 5)
#   RATIO_FLAGS   flags for bench/cmd/ratio, e.g. RATIO_FLAGS=-strict to exit 1
#                 when a target is missed
#   WITH_POSTGRES=0  do not start PostgreSQL (default 1: start it when
#                 possible)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
cd "$here"

with_postgres=$here/../scripts/with-postgres.sh
if [[ -z "${POCKETKMS_TEST_POSTGRES:-}" && "${WITH_POSTGRES:-1}" != 0 && -f "$with_postgres" ]]; then
	if compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null || [[ "$(id -u)" == 0 ]]; then
		exec bash "$with_postgres" bash "$here/$(basename "${BASH_SOURCE[0]}")" "$@"
	fi
	echo "run.sh: PostgreSQL is not installed (apt-get install postgresql, or run as root): store=postgres will skip" >&2
fi
results=${RESULTS:-$here/results.txt}
ratios=${RATIOS:-$here/ratios.txt}
pattern=${BENCH:-.}

rounds=${ROUNDS:-1}
count=5
if [[ "$rounds" != 1 ]]; then
	count=1
fi
: >"$results"
for ((i = 1; i <= rounds; i++)); do
	[[ "$rounds" == 1 ]] || echo "run.sh: round $i of $rounds" >&2
	go test -run '^$' -bench "$pattern" -skip '^BenchmarkStream$' -count "$count" "$@" . | tee -a "$results"
	if [[ "BenchmarkStream" =~ $pattern ]]; then
		go test -run '^$' -bench '^BenchmarkStream$' -cpu 1,2 -count "$count" "$@" . | tee -a "$results"
	fi
done
echo
go run ./cmd/ratio ${RATIO_FLAGS:-} <"$results" | tee "$ratios"
