#!/usr/bin/env bash
# Runs the pocketkms benchmarks and the floor they are measured against in one
# `go test` run, then prints the median ns/op ratio Encrypt/RawAESGCM at each
# size (bench/cmd/ratio) and checks the 1 KiB target (within 2x).
#
#   bench/run.sh                       # -count 5, every benchmark
#   bench/run.sh -count 10 -benchtime 2s
#   bench/run.sh -bench 'Encrypt|RawAESGCM'
#   ROUNDS=5 bench/run.sh
#
# Extra arguments go to `go test` after the defaults, so they override them.
# The raw output goes to bench/results.txt and the tables to bench/ratios.txt
# (both ignored by git; set RESULTS / RATIOS to write elsewhere).
#
# Environment:
#   ROUNDS=n      run `go test` n times with -count 1 and pool the samples, so
#                 that Encrypt and RawAESGCM samples alternate in time; this
#                 resists a noisy neighbour better than -count 5, whose five
#                 samples of one benchmark run back to back (default 1: one
#                 run with -count 5)
#   TINK=0        leave out BenchmarkTinkEnvelope
#   RATIO_FLAGS   flags for bench/cmd/ratio, e.g. RATIO_FLAGS=-strict to exit 1
#                 when the 1 KiB target is missed
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
results=${RESULTS:-bench/results.txt}
ratios=${RATIOS:-bench/ratios.txt}

flags=()
if [[ "${TINK:-1}" == 0 ]]; then
	flags=(-bench '^Benchmark[^T]')
fi

rounds=${ROUNDS:-1}
if [[ "$rounds" == 1 ]]; then
	go test -run '^$' -bench . -count 5 "${flags[@]}" "$@" ./bench/ | tee "$results"
else
	: >"$results"
	for ((i = 1; i <= rounds; i++)); do
		echo "run.sh: round $i of $rounds" >&2
		go test -run '^$' -bench . -count 1 "${flags[@]}" "$@" ./bench/ | tee -a "$results"
	done
fi
echo
go run ./bench/cmd/ratio ${RATIO_FLAGS:-} <"$results" | tee "$ratios"
