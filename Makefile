# Everything here also works without make: see README.md.
GO      ?= go
IMAGE   ?= herd-chaos/herd:latest
export CGO_ENABLED := 0

.PHONY: all build image run test unit specs specs-local specs-sim quick mutants mutants-quick fixtures interrupts examples fuzz bench clean vet sim sim-mutants

all: build

build:
	$(GO) build -o bin/herd ./cmd/herd
	$(GO) build -o bin/herdctl ./cmd/herdctl

# The herd image, offline: a static binary on scratch.
image:
	GOOS=linux $(GO) build -trimpath -o bin/linux/herd ./cmd/herd
	cp /etc/ssl/certs/ca-certificates.crt bin/linux/ca-certificates.crt
	docker build -t $(IMAGE) .

# The main job: the five-server herd and the Places emulator from the image, in the
# foreground (Ctrl-C stops it). Clients reach Goloman..Wilkes on 127.0.0.1:12000..12004.
run: image
	trap 'docker-compose down -t 2' EXIT INT TERM; docker-compose up --abort-on-container-exit

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || { gofmt -l .; exit 1; }

unit:
	$(GO) test -count=1 ./herd/... ./chaos/... ./cmd/... ./local/... ./simulated/... ./specs/mutants

# The whole suite, and the quick subset (label "quick").
specs:
	$(GO) tool ginkgo ./specs

quick:
	$(GO) tool ginkgo --label-filter=quick ./specs

# The whole suite again with the servers as local processes (no Docker).
specs-local:
	HERD_BACKEND=local $(GO) tool ginkgo ./specs

# The whole suite once more, our herd in the suite's process on an in-memory network, in
# simulated time (testing/synctest): the same specs in seconds.
specs-sim:
	HERD_BACKEND=sim $(GO) tool ginkgo ./specs

test: vet unit specs specs-local specs-sim examples mutants-quick fixtures interrupts

# The mutation campaign: our herd built with one realistic bug at a time (specs/mutants),
# the whole suite against each on the local backend; a table of which spec killed which.
mutants:
	$(GO) run ./specs/mutants

# The deterministic simulator (herd/sim): SEEDS schedules on every core; each failing
# seed is printed with the command that replays and shrinks it.
SEEDS ?= 10000
sim:
	$(GO) run ./cmd/herdsim -seeds $(SEEDS)

# Every mutant of herd/core, herd/proto and herd/places against the simulator, a table.
sim-mutants:
	$(GO) run ./specs/mutants -sim

# The mutants marked quick, each against the spec that kills it (part of make test).
mutants-quick:
	$(GO) run ./specs/mutants -quick

# herdctl test against each example herd of specs/testdata/herds (Python, each with one
# planted flaw): its scorecard must fail exactly that flaw. Needs python3-aiohttp,
# python3-yaml and iproute2 (installed when missing by specs/fixtures/deps.sh) and root.
fixtures:
	bash specs/fixtures/deps.sh
	HERD_FIXTURES=1 $(GO) test -count=1 -timeout 80m -v -run TestEachFixtureHerdFailsExactlyItsFlaw ./specs/fixtures

# examples/ is a module of its own, as a user's repository is: its tests import the
# framework and start the herd with chaos/herdtest, on both backends; examples/ginkgo is a
# Ginkgo suite, run by go test and by the ginkgo CLI the examples module pins.
examples:
	cd examples && $(GO) vet ./... && $(GO) test -count=1 ./...
	cd examples && HERD_BACKEND=local $(GO) test -count=1 ./...
	cd examples && $(GO) tool ginkgo ./ginkgo
	cd examples && HERD_BACKEND=local $(GO) tool ginkgo ./ginkgo

# The suite on the containers backend, interrupted at 20 seeded moments (Ctrl-C, Ctrl-C
# twice, SIGKILL): each time, no container and no network of the run may be left.
interrupts:
	HERD_INTERRUPTS=1 $(GO) test -count=1 -timeout 60m -v ./specs/interrupt

fuzz:
	$(GO) test ./herd/proto -run '^$$' -fuzz FuzzParseCommand -fuzztime 60s
	$(GO) test ./herd/proto -run '^$$' -fuzz FuzzParsePeer -fuzztime 60s
	$(GO) test ./herd/server -run '^$$' -fuzz FuzzServer -fuzztime 60s

bench:
	$(GO) test ./herd/... -run '^$$' -bench . -benchmem

# Removes build outputs and every container and network a run of the framework left.
clean:
	rm -rf bin specs/artifacts
	-$(GO) run ./cmd/herdctl clean
