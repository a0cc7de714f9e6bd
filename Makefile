# v2m: turn videos into MP3s.
#   make run    start v2md standalone on 127.0.0.1:8080 (installs ffmpeg when missing)
#   make test   run every test against real servers (see scripts/test.sh)

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS  := -s -w -X github.com/v2m/v2m/pkg/server/daemon.Version=$(VERSION)
BIN      := bin
ADDR     ?= 127.0.0.1:8080
DATA     ?= ./data

.PHONY: run build test dev services-up services-down bench bench-distributed lint clean

build:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/v2md ./cmd/v2md
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN)/v2m ./cmd/v2m

run: build
	@scripts/install-ffmpeg.sh
	$(BIN)/v2md standalone --addr $(ADDR) --data $(DATA)

test:
	scripts/test.sh

dev: build
	scripts/dev.sh

services-up:
	scripts/services.sh up

services-down:
	scripts/services.sh down

bench: build
	scripts/bench.sh

bench-distributed: build
	scripts/bench-distributed.sh

lint:
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...

clean:
	rm -rf $(BIN)
