#!/usr/bin/env bash
# test.sh - run every test of v2m against real servers: installs ffmpeg and chromium when
# missing, starts MariaDB, RabbitMQ, FerretDB and Mailpit on loopback (scripts/services.sh), runs
# go vet and the tests of both Go modules, then stops the servers it started.
#
# Environment: V2M_SERVICES_DIR (default .cache/services) holds the servers' data;
# V2M_KEEP_SERVICES=1 leaves them running; GOTEST_FLAGS adds flags to go test (e.g. -run X).
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

log() { printf '[test %(%H:%M:%S)T] %s\n' -1 "$*" >&2; }

# python3-mutagen's mutagen-inspect reads the MP3s' ID3 tags in the converter's tests;
# chromium runs the web page's tests (e2e/web_test.go), headless.
if ! command -v ffmpeg >/dev/null || ! command -v ffprobe >/dev/null || ! command -v mutagen-inspect >/dev/null ||
	! command -v chromium >/dev/null; then
	log "installing ffmpeg, python3-mutagen and chromium"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq >/dev/null
	apt-get install -y -qq --no-install-recommends ffmpeg python3-mutagen chromium >/dev/null
fi

svc_dir=${V2M_SERVICES_DIR:-$root/.cache/services}
started=0
if ! scripts/services.sh status "$svc_dir" >/dev/null 2>&1; then
	scripts/services.sh up "$svc_dir"
	started=1
fi
cleanup() {
	if [ "$started" = 1 ] && [ "${V2M_KEEP_SERVICES:-0}" != 1 ]; then
		scripts/services.sh down "$svc_dir" || true
	fi
}
trap cleanup EXIT
# shellcheck disable=SC1091
source "$svc_dir/env.sh"

export V2M_TESTMEDIA_DIR=${V2M_TESTMEDIA_DIR:-$root/.cache/testmedia}
mkdir -p "$V2M_TESTMEDIA_DIR"

log "go vet"
go vet ./...
log "go test (module github.com/v2m/v2m)"
# Tests that stop the broker or change its settings (the rabbitmq package, the end-to-end
# tests) run one package at a time, after the others.
serial="github.com/v2m/v2m/pkg/server/rabbitmq github.com/v2m/v2m/e2e"
parallel=$(go list ./... | grep -v -x -F -e github.com/v2m/v2m/pkg/server/rabbitmq -e github.com/v2m/v2m/e2e)
# shellcheck disable=SC2086
go test -race -count=1 -timeout 20m ${GOTEST_FLAGS:-} $parallel
# shellcheck disable=SC2086
go test -count=1 -timeout 30m -p 1 ${GOTEST_FLAGS:-} $serial
if [ -f manifests/go.mod ]; then
	log "go test (module manifests: Kubernetes validation)"
	# shellcheck disable=SC2086
	(cd manifests && go test -count=1 -timeout 20m ${GOTEST_FLAGS:-} ./...)
fi
log "all tests passed"
