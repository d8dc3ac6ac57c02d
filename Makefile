# Everything here also works without make: see README.md.
GO      ?= go
IMAGE   ?= herd-chaos/herd:latest
export CGO_ENABLED := 0

.PHONY: all build image test unit specs fuzz bench clean vet

all: build

build:
	$(GO) build -o bin/herd ./cmd/herd
	$(GO) build -o bin/herdctl ./cmd/herdctl

# The herd image, offline: a static binary on scratch.
image:
	GOOS=linux $(GO) build -trimpath -o bin/linux/herd ./cmd/herd
	cp /etc/ssl/certs/ca-certificates.crt bin/linux/ca-certificates.crt
	docker build -t $(IMAGE) .

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || { gofmt -l .; exit 1; }

unit:
	$(GO) test ./herd/... ./chaos/... ./cmd/...

specs:
	$(GO) tool ginkgo -r --junit-report=junit.xml --output-dir=artifacts ./specs

test: vet unit specs

fuzz:
	$(GO) test ./herd/proto -run '^$$' -fuzz FuzzParseCommand -fuzztime 60s

bench:
	$(GO) test ./herd/... -run '^$$' -bench . -benchmem

# Removes build outputs and every container and network a run of the framework left.
clean:
	rm -rf bin artifacts junit.xml
	-$(GO) run ./cmd/herdctl clean
