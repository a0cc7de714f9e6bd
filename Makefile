# v2m: turn videos into MP3s.
#   make run    start v2md standalone on 127.0.0.1:8080 (installs ffmpeg when missing)
#   make test   run every test against real servers (see scripts/test.sh)

GO       ?= go
VERSION  ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT   ?= $(shell git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
LDFLAGS  := -s -w -X github.com/v2m/v2m/internal/version.Version=$(VERSION) -X github.com/v2m/v2m/internal/version.commit=$(COMMIT)
BIN      := bin
ADDR     ?= 127.0.0.1:8080
DATA     ?= ./data

# The linter, at a pinned version, built once from the Go module proxy into TOOLS.
STATICCHECK_VERSION := v0.8.2
TOOLS    ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/v2m-tools
STATICCHECK := $(TOOLS)/staticcheck-$(STATICCHECK_VERSION)
# v2m for every platform users run it on; v2md is Linux only (Landlock, the image).
RELEASE_PLATFORMS := linux/amd64 linux/arm64 darwin/amd64 darwin/arm64 windows/amd64 windows/arm64
DIST     := dist

.PHONY: run build test dev services-up services-down bench bench-distributed lint release clean

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

lint: $(STATICCHECK)
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); exit 1; }
	$(GO) vet ./...
	$(STATICCHECK) ./...
	cd manifests && $(GO) vet ./... && $(STATICCHECK) ./...

$(STATICCHECK):
	mkdir -p $(TOOLS)
	GOBIN=$(TOOLS) $(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)
	mv $(TOOLS)/staticcheck $@

# release cross-builds v2m for RELEASE_PLATFORMS and v2md for linux/amd64 and linux/arm64
# into dist/, with SHA256SUMS.
release:
	rm -rf $(DIST) && mkdir -p $(DIST)
	set -e; for p in $(RELEASE_PLATFORMS); do \
		os=$${p%/*}; arch=$${p#*/}; ext=; [ $$os = windows ] && ext=.exe; \
		CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' \
			-o $(DIST)/v2m-$(VERSION)-$$os-$$arch$$ext ./cmd/v2m; \
	done
	set -e; for arch in amd64 arm64; do \
		CGO_ENABLED=0 GOOS=linux GOARCH=$$arch $(GO) build -trimpath -ldflags '$(LDFLAGS)' \
			-o $(DIST)/v2md-$(VERSION)-linux-$$arch ./cmd/v2md; \
	done
	cd $(DIST) && sha256sum v2m* > SHA256SUMS && cat SHA256SUMS

clean:
	rm -rf $(BIN) $(DIST)
