# The project's commands. `make test` is what CI runs (.ci/run).
GO ?= go
STATICCHECK_VERSION ?= v0.8.2
GOBIN := $(shell $(GO) env GOPATH)/bin

.PHONY: run test check vet staticcheck fmt-check race bench fuzz interop-deps

# run is the main job on the embedded default: the command's demo, on a
# temporary SQLite store (create a key, encrypt, rotate, decrypt, rewrap,
# verify the audit log).
run:
	$(GO) run ./cmd/pocketkms demo

# test runs every check and the whole suite under the race detector. It
# installs what the tests need: staticcheck, Node.js with the official AWS
# Encryption SDK for JavaScript for the interoperability tests, and
# PostgreSQL for the SQL store's tests.
test: fmt-check vet staticcheck interop-deps race

interop-deps:
	@command -v node >/dev/null 2>&1 && command -v npm >/dev/null 2>&1 || \
		(apt-get update && DEBIAN_FRONTEND=noninteractive apt-get install -y nodejs npm)
	cd interop/node && npm ci --no-audit --no-fund

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

# bench/ is its own module (its peers' dependencies stay out of the
# library's go.mod): every check runs in both.
vet:
	$(GO) vet ./...
	cd bench && $(GO) vet ./...

staticcheck:
	@test -x $(GOBIN)/staticcheck || $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	$(GOBIN)/staticcheck ./...
	cd bench && $(GOBIN)/staticcheck ./...

# Both suites run beside one private PostgreSQL server, which
# scripts/with-postgres.sh installs (Debian's package), starts and stops.
race:
	bash scripts/with-postgres.sh sh -c '$(GO) test -race -count=1 -timeout 20m ./... && cd bench && $(GO) test -race -count=1 -timeout 20m ./...'

# bench runs the benchmarks beside their peers and prints the ratios.
bench:
	bash bench/run.sh

# fuzz runs each fuzz target for FUZZTIME (their seed corpora run in `make test`).
# With a duration, Go 1.26's fuzz coordinator can end a clean run with a bare
# "context deadline exceeded" and no crasher written (golang/go#75804, fixed
# in Go 1.27); a count such as FUZZTIME=500000x has no deadline to race.
FUZZTIME ?= 30s
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzParseBlob$$' -fuzztime $(FUZZTIME) ./internal/format/
	$(GO) test -run '^$$' -fuzz '^FuzzParseContext$$' -fuzztime $(FUZZTIME) ./internal/format/
	$(GO) test -run '^$$' -fuzz '^FuzzDecrypt$$' -fuzztime $(FUZZTIME) .
	$(GO) test -run '^$$' -fuzz '^FuzzParseHeader$$' -fuzztime $(FUZZTIME) .
	$(GO) test -run '^$$' -fuzz '^FuzzParseKeyPolicy$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s .
	$(GO) test -run '^$$' -fuzz '^FuzzVerifyChainedLog$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s .
	$(GO) test -run '^$$' -fuzz '^FuzzRetireGrantToken$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s .
	$(GO) test -run '^$$' -fuzz '^FuzzNewReader$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s .
	$(GO) test -run '^$$' -fuzz '^FuzzEnvelopeOpen$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s .
	$(GO) test -run '^$$' -fuzz '^FuzzParseMessageHeader$$' -fuzztime $(FUZZTIME) ./internal/format/
	$(GO) test -run '^$$' -fuzz '^FuzzOpen$$' -fuzztime $(FUZZTIME) -fuzzminimizetime 5s ./internal/esdk/
